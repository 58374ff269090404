"""Decisions the routing engine hands back to the shell, and the read-only views it offers.

Rules of this file:
- Frozen, slotted, keyword-only dataclasses; the engine builds them, the shell acts on them in
  list order (cancel before offer, offer before the state change that reports it).
- Every `Offer` carries an `explanation`: one short line naming the chosen agent, why it won
  and why the others did not. Logs, the API and the wallboard show it as is.
- Views (`AgentView`, `CallView`, `QueueStats`) are snapshots for the API and for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from .agent_states import AgentState
from .events import Levels

__all__ = [
    "Decision",
    "Offer",
    "OfferCancelled",
    "CallWaiting",
    "CallRefused",
    "CallConnected",
    "CallOverflowed",
    "CallbackOffered",
    "AgentStateChanged",
    "AgentReachabilityChanged",
    "QueueRemoved",
    "CallState",
    "AgentView",
    "CallView",
    "QueueStats",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """Ring `agent_id` for `call_id` until `ring_deadline` (then the engine cancels it).

    `callback` means the caller already hung up: after the agent answers, dial the customer.
    """

    call_id: str
    agent_id: str
    queue: str
    ring_deadline: float
    callback: bool
    explanation: str
    # Why this call, of those waiting, went first: its rank in line, the rule that put it there,
    # the calls ahead of it that this agent could not take and why, the call it beat.
    order: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCancelled:
    """Stop ringing `agent_id` for `call_id`.

    `reason`: ring-no-answer, answered-elsewhere, caller-abandoned, agent-paused, agent-logged-out,
    agent-removed, agent-unreachable.
    """

    call_id: str
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallWaiting:
    """The call waits in line: tell the caller their position and estimated wait.

    `estimated_wait_seconds` is None when nobody staffs the queue (no basis for an estimate).
    """

    call_id: str
    queue: str
    position: int
    estimated_wait_seconds: float | None
    explanation: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRefused:
    """The queue did not take the call; the IVR continues with its fallback step.

    `error_id`: queue-full or no-agents-logged-in (stable, like the domain errors' ids).
    """

    call_id: str
    queue: str
    error_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConnected:
    """The agent answered: bridge the caller (or dial back, for a callback) to the agent."""

    call_id: str
    agent_id: str
    queue: str
    waited_seconds: float
    callback: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOverflowed:
    """An overflow step applied: the call now waits with relaxed requirements or more queues."""

    call_id: str
    queue: str
    step: int
    queues: tuple[str, ...]
    requirements: Levels
    explanation: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackOffered:
    """An overflow step asks the IVR to offer the caller a callback (keeping their place)."""

    call_id: str
    queue: str
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged:
    """An agent moved from `previous` to `state`; `reason` says why (e.g. auto-pause)."""

    agent_id: str
    previous: AgentState
    state: AgentState
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReachabilityChanged:
    """The agent's phone became unreachable (`reachable=False`) or reachable again; the agent's
    `state` (unchanged by this) is given for the records. Unreachable agents are offered nothing."""

    agent_id: str
    state: AgentState
    reachable: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRemoved:
    """A reconfiguration removed `queue`: it takes no new calls. Its `waiting` callers moved to
    `moved_to` (its overflow queues) when any still exists; otherwise they stay until a former
    member serves them or they leave, and the queue is dropped once nothing refers to it."""

    queue: str
    waiting: int
    moved_to: tuple[str, ...]
    explanation: str


Decision = (
    Offer
    | OfferCancelled
    | CallWaiting
    | CallRefused
    | CallConnected
    | CallOverflowed
    | CallbackOffered
    | AgentStateChanged
    | AgentReachabilityChanged
    | QueueRemoved
)


class CallState:
    """Where a call the engine holds is (plain strings, stable in the API)."""

    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    """A snapshot of one logged-in agent.

    `missed_offers`: offers the agent let ring out or declined since logging in (what the queue
    log's RINGNOANSWER lines count); `consecutive_misses`: those since the last answer or ready,
    which `max_missed_offers` compares. Offers that never reached the phone count in neither.
    `reachable`: the agent's phone can be rung (an unreachable agent is offered nothing).
    """

    agent_id: str
    state: AgentState
    call_id: str | None
    queues: Levels
    skills: Levels
    pause_reason: str | None
    pending: str | None
    missed_offers: int
    calls_handled: int
    idle_since: float | None
    reachable: bool = True
    consecutive_misses: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallView:
    """A snapshot of one call the engine holds."""

    call_id: str
    state: str
    queue: str
    queues: tuple[str, ...]
    priority: int
    requirements: Levels
    arrived_at: float
    agent_ids: tuple[str, ...]
    preferred_agent: str | None
    sticky_until: float | None
    callback: bool
    overflow_step: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """Live figures for one queue (wallboard, /metrics).

    `service_level` = answered within `service_level_seconds` / (answered + abandoned after
    the grace period), None before the first such call. `agents`: logged-in members by state
    (available, offered, on_call, wrap_up, paused), those whose phone cannot be reached counted
    apart under "unreachable", whatever their state.
    """

    queue: str
    waiting: int
    longest_wait_seconds: float
    agents: dict[str, int]
    offered: int
    answered: int
    answered_within_service_level: int
    abandoned: int
    service_level: float | None
    average_handle_seconds: float
    estimated_wait_seconds: float | None
