"""The engine's private, mutable records of agents and calls (never handed to the shell).

The shell sees `AgentView` / `CallView` snapshots. A record lists the sorted-index entries
it currently occupies, so removing it from every index is exact and cheap.
"""

from __future__ import annotations

from .agent_states import AgentState
from .sorted_list import SortedList

__all__ = ["AgentRecord", "CallRecord", "Entry", "Placement"]

Entry = tuple
Placement = list[tuple[SortedList, Entry]]


class AgentRecord:
    """One logged-in agent."""

    __slots__ = (
        "agent_id",
        "queues",
        "skills",
        "state",
        "call_id",
        "offer_queue",
        "pause_reason",
        "pending",
        "pending_reason",
        "misses",
        "missed_offers",
        "reachable",
        "calls_handled",
        "idle_since",
        "busy_since",
        "wrap_deadline",
        "rotation",
        "placement",
        "reserved",
    )

    def __init__(self, agent_id: str, queues: dict[str, int], skills: dict[str, int]) -> None:
        self.agent_id = agent_id
        self.queues = queues  # queue -> penalty
        self.skills = skills  # skill -> level
        self.state = AgentState.LOGGED_OUT
        self.call_id: str | None = None
        self.offer_queue: str | None = None
        self.pause_reason: str | None = None
        self.pending: str | None = None  # "pause" or "logout", applied after the call
        self.pending_reason: str | None = None
        self.misses = 0  # consecutive: reset by an answer or ready (max_missed_offers)
        self.missed_offers = 0  # since login (the queue log's RINGNOANSWER lines)
        self.reachable = True  # the phone can be rung; see `offerable`
        self.calls_handled = 0
        self.idle_since = 0.0
        self.busy_since = 0.0
        self.wrap_deadline: float | None = None
        self.rotation: dict[str, int] = {}
        self.placement: Placement = []
        # Calls waiting for this agent in their sticky window, by line key.
        self.reserved = SortedList()

    @property
    def offerable(self) -> bool:
        """Available and reachable: the only agents the indexes hold and offers go to."""
        return self.state is AgentState.AVAILABLE and self.reachable

    def qualifies(self, requirements: dict[str, int]) -> bool:
        """Whether the agent meets every minimum level in `requirements`."""
        skills = self.skills
        for skill, minimum in requirements.items():
            if skills.get(skill, 0) < minimum:
                return False
        return True


class CallRecord:
    """One call the engine holds: waiting, offered or connected."""

    __slots__ = (
        "call_id",
        "queue",
        "queues",
        "priority",
        "requirements",
        "arrived_at",
        "key",
        "state",
        "offers",
        "agent_id",
        "excluded",
        "preferred_agent",
        "sticky_until",
        "callback",
        "overflow_step",
        "overflow_due",
        "ring_deadline",
        "placement",
        "answered_within_sl",
    )

    def __init__(
        self,
        call_id: str,
        queue: str,
        priority: int,
        requirements: dict[str, int],
        arrived_at: float,
        key: tuple,
    ) -> None:
        self.call_id = call_id
        self.queue = queue  # the home queue (statistics, position, overflow rules)
        self.queues = [queue]  # every queue whose agents may take the call, in order
        self.priority = priority
        self.requirements = requirements  # first item = primary skill
        self.arrived_at = arrived_at
        self.key = key  # line order: (tier, virtual arrival, sequence); see engine docstring
        self.state = "waiting"
        self.offers: dict[str, str] = {}  # agent -> queue the offer came through
        self.agent_id: str | None = None
        self.excluded: dict[str, float] = {}  # agent -> until when this call avoids them
        self.preferred_agent: str | None = None
        self.sticky_until: float | None = None
        self.callback = False
        self.overflow_step = 0
        self.overflow_due: float | None = None  # when the next overflow step applies
        self.ring_deadline: float | None = None
        self.placement: Placement = []
        self.answered_within_sl = False  # counted in answered_within when an agent answered

    def avoids(self, agent_id: str, now: float) -> bool:
        """Whether the agent recently missed this call and must not get it yet."""
        until = self.excluded.get(agent_id)
        return until is not None and until > now
