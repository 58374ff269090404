"""Which pause an unpause ended, and how long it lasted.

The routing core says only "ready" when a paused agent comes back; a supervisor wants "ready after
lunch (12m 5s)". `PauseBook` follows the agents' state changes in the shell, with the pause reason
code the engine holds (`AgentView.pause_reason`) and the reactor's time, so the unpause event and
the queue log's UNPAUSE line can say which pause ended. A pause restored at start-up counts from
the restart (the time it began in the last run is not kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..routing import AgentState, AgentStateChanged

__all__ = ["EndedPause", "PauseBook", "short_duration"]


def short_duration(seconds: float) -> str:
    """"45s", "12m 5s", "1h 3m": whole seconds, the two largest units."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndedPause:
    """A pause that just ended: its reason code ("lunch") and its length in seconds."""

    reason: str
    seconds: float

    def explain(self, why: str) -> str:
        """The state change's reason with the pause it ended: "ready after lunch (12m 5s)"."""
        return f"{why} after {self.reason} ({short_duration(self.seconds)})"


class PauseBook:
    """The pause each paused agent is in: its reason code and when it began."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[str, float]] = {}

    def follow(self, change: AgentStateChanged, pause_reason: str, now: float) -> EndedPause | None:
        """Record one state change (`pause_reason`: the code of the pause it begins, if it is one);
        returns the pause it ended, if any (also when a new pause replaces it, or at log-out)."""
        ended = None
        began = self._open.pop(change.agent_id, None) if change.previous is AgentState.PAUSED else None
        if began is not None:
            ended = EndedPause(reason=began[0], seconds=max(0.0, now - began[1]))
        if change.state is AgentState.PAUSED:  # a pause while paused changes the reason: a new pause
            self._open[change.agent_id] = (pause_reason, now)
        return ended
