"""QueueLog: Asterisk-like queue_log lines (ENTERQUEUE, CONNECT, ABANDON, AGENTLOGIN, PAUSE...) into
the records store; durations in whole seconds."""

from __future__ import annotations

from ..routing import AgentStateChanged
from .pauses import EndedPause
from .ports import Records

__all__ = ["QueueLog"]


class QueueLog:
    """Writes queue_log rows stamped with the reactor's time. `reactor` provides IReactorTime."""

    def __init__(self, records: Records, reactor) -> None:
        self.records = records
        self.reactor = reactor

    def write(self, event: str, call_id: str = "", queue: str = "", agent: str | None = "", *data: object) -> None:
        """One line; up to three data fields, floats rounded to whole seconds."""
        fields = [f"{d:.0f}" if isinstance(d, float) else str(d) for d in data] + ["", "", ""]
        self.records.queue_log(at=self.reactor.seconds(), call_id=call_id, queue=queue or "", agent=agent or "",
                               event=event, data1=fields[0], data2=fields[1], data3=fields[2])

    def agent_state_changed(self, change: AgentStateChanged, *, pause_reason: str = "",
                            ended: EndedPause | None = None) -> None:
        """The agent's log-in, log-off, pause and unpause lines (other state changes leave none).
        PAUSE data1 is the reason code (`pause_reason`, as Asterisk's); UNPAUSE data1 the reason of
        the pause that `ended`, data2 its length in seconds."""
        agent, previous, state = change.agent_id, change.previous.value, change.state.value
        if previous == "logged_out":
            self.write("AGENTLOGIN", "", "", agent, agent)
        elif state == "logged_out":
            self.write("AGENTLOGOFF", "", "", agent, agent)
        elif state == "paused":
            self.write("PAUSE", "", "", agent, pause_reason or change.reason)
        elif previous == "paused":
            self.write("UNPAUSE", "", "", agent, *((ended.reason, ended.seconds) if ended else (change.reason,)))
