"""QueuedCall: everything the ACD shell holds for one call from joining a queue until it leaves.

One record per queued call (instead of per-call dicts beside the routing engine's own state): the
caller's session while they are on the line, what they hear while waiting, the offers ringing,
the agent they were connected to, and for a callback where to reach them. The routing engine
keeps the queue order and agent states; this keeps what the shell needs to act on its decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Callback", "QueuedCall"]


@dataclass(frozen=True, slots=True)
class Callback:
    """A caller who asked to be called back: where to reach them, in which codec, the trunk they
    called on (the call's metric label) and when they asked (their wait in line ends there)."""

    number: str
    destination: tuple[str, int]
    codec: str
    payload_type: int
    telephone_event_pt: int | None
    trunk: str = ""
    requested_at: float = 0.0


# A call's story is for a supervisor's "why": a few dozen lines; a call waiting for hours keeps its
# first and latest decisions.
STORY_LIMIT = 40


@dataclass(eq=False, slots=True)
class QueuedCall:
    """One call the ACD holds. `session` is None once a callback caller has hung up."""

    call_id: str
    queue: str
    context: dict
    queued_at: float
    session: Any = None
    entry_position: int | None = None
    wait: Any = None                                       # QueueWait while the caller waits
    offers: dict[str, Any] = field(default_factory=dict)   # agent id -> AgentLeg ringing for this call
    agent_leg: Any = None                                  # the agent's leg once connected
    connected_at: float | None = None
    served_queue: str | None = None                        # the queue whose agent took it (overflow: not `queue`)
    callback: Callback | None = None
    customer_leg: Any = None                               # our call back to the customer
    explanation: str | None = None                         # the routing engine's latest "why"
    order: str | None = None                               # why this call went before the others
    priority_detail: str = ""                              # where the priority came from
    story: list[tuple[float, str]] = field(default_factory=list)  # routing decisions, oldest first
    record: Any = None                                     # Records port: the story is also recorded

    def tell(self, at: float, text: str) -> None:
        """Add one routing decision to the call's story (bounded in memory: the first and last ones are
        kept; every one is recorded)."""
        if self.record is not None:
            self.record.routing_event(self.call_id, at=at, what=text)
        self.story.append((at, text))
        if len(self.story) > STORY_LIMIT:
            del self.story[STORY_LIMIT // 2]

    @property
    def agent_id(self) -> str | None:
        """The agent connected to this call, if any."""
        return self.agent_leg.agent_id if self.agent_leg is not None else None

    def waited(self, now: float) -> float:
        """Seconds since the call joined the queue."""
        return now - self.queued_at

    @property
    def log_queue(self) -> str:
        """The queue its agent lines (CONNECT, COMPLETE*, TRANSFER) are written in: the serving one."""
        return self.served_queue or self.queue
