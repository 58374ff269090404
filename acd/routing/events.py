"""Events the shell feeds into the routing engine: one frozen class per thing that happened.

Rules of this file:
- Keyword-only, frozen, slotted dataclasses that validate themselves; a bad value raises
  `InvalidEvent` (a `RoutingError`) naming the field, before the engine sees the event.
- Events carry no timestamp: the clock is the `now` argument of `RoutingEngine.handle`.
- Skill levels and minimum levels are proficiencies 1..10. Mappings (skills, requirements,
  queue penalties) may be passed as dicts; they are stored as tuples of pairs, in the order
  given. For `CallArrived.requirements` that order matters: the first requirement is the
  call's *primary* skill, the one whose proficiency ranks agents in a skills-based queue.
- Whether a named queue or skill exists is checked by the engine against its config
  (`UnknownQueue`, `UnknownSkill`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InvalidEvent

__all__ = [
    "Levels",
    "MIN_LEVEL",
    "MAX_LEVEL",
    "MAX_PRIORITY",
    "Event",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "AgentPauseRequested",
    "AgentReadyRequested",
    "AgentReachable",
    "AgentUnreachable",
    "CallArrived",
    "CallEnded",
    "CallbackRequested",
    "CallChanged",
    "OfferAnswered",
    "OfferDeclined",
    "OfferFailed",
]

MIN_LEVEL = 1
MAX_LEVEL = 10  # proficiency scale 1..10, as in the issue and most ACD admin screens
MAX_PRIORITY = 9  # caller priority 0 (default) .. 9 (top VIP tier)

Levels = tuple[tuple[str, int], ...]


def _text(owner: object, name: str, value: object, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value or len(value) > 128:
        raise InvalidEvent(
            f"{type(owner).__name__}.{name} must be a non-empty string of at most 128 characters",
            field=name,
            value=repr(value),
        )


def _levels(owner: object, name: str, value: object, low: int, high: int) -> Levels:
    """Normalise a mapping or pairs of name -> int into a tuple of pairs, checking ranges."""
    pairs = value.items() if isinstance(value, Mapping) else value
    try:
        result = tuple((key, level) for key, level in pairs)  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidEvent(
            f"{type(owner).__name__}.{name} must map names to integers", field=name
        ) from None
    seen: set[str] = set()
    for key, level in result:
        _text(owner, name, key)
        if key in seen:
            raise InvalidEvent(f"{type(owner).__name__}.{name} repeats {key!r}", field=name)
        seen.add(key)
        if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high:
            raise InvalidEvent(
                f"{type(owner).__name__}.{name}[{key!r}] must be an integer {low}..{high}, "
                f"got {level!r}",
                field=name,
                value=repr(level),
            )
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedIn:
    """An agent logged in to some queues, with skills and a penalty per queue.

    `queues` maps queue name to penalty (0 best; an agent with a higher penalty in a queue is
    only chosen when no lower-penalty agent qualifies). `paused_reason` logs in paused.
    `reachable=False`: the agent's phone has no live registration (a login from the API); the
    agent is logged in but offered nothing until `AgentReachable`.
    """

    agent_id: str
    queues: Levels | Mapping[str, int]
    skills: Levels | Mapping[str, int] = field(default_factory=tuple)
    paused_reason: str | None = None
    reachable: bool = True

    def __post_init__(self) -> None:
        _text(self, "agent_id", self.agent_id)
        _text(self, "paused_reason", self.paused_reason, optional=True)
        object.__setattr__(self, "queues", _levels(self, "queues", self.queues, 0, 1000))
        object.__setattr__(
            self, "skills", _levels(self, "skills", self.skills, MIN_LEVEL, MAX_LEVEL)
        )
        if not self.queues:
            raise InvalidEvent("AgentLoggedIn.queues must name at least one queue", field="queues")
        if not isinstance(self.reachable, bool):
            raise InvalidEvent("AgentLoggedIn.reachable must be True or False", field="reachable")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedOut:
    """An agent logged out. While on a call, the logout happens after the call's wrap-up."""

    agent_id: str

    def __post_init__(self) -> None:
        _text(self, "agent_id", self.agent_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPauseRequested:
    """An agent (or a supervisor) paused with a reason code; on a call, after the call."""

    agent_id: str
    reason: str

    def __post_init__(self) -> None:
        _text(self, "agent_id", self.agent_id)
        _text(self, "reason", self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReadyRequested:
    """An agent is ready: ends a pause, or ends wrap-up early. Resets the missed-offer count."""

    agent_id: str

    def __post_init__(self) -> None:
        _text(self, "agent_id", self.agent_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUnreachable:
    """The agent's phone can no longer be reached: its last registration was removed or expired.

    The agent stays logged in, in the same state, but is offered nothing (a ringing offer is
    withdrawn, not counted as missed) until `AgentReachable`. Nothing happens if already so.
    """

    agent_id: str
    reason: str

    def __post_init__(self) -> None:
        _text(self, "agent_id", self.agent_id)
        _text(self, "reason", self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReachable:
    """The agent's phone registered again: if available, the agent is offered the next call.
    Nothing happens if the agent was reachable already."""

    agent_id: str
    reason: str = "registered"

    def __post_init__(self) -> None:
        _text(self, "agent_id", self.agent_id)
        _text(self, "reason", self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallArrived:
    """The IVR's `queue` step hands a call to a queue.

    `priority` 0..9 (higher first, aged against waiting time), `requirements` skill -> minimum
    level (first = primary skill), `preferred_agent` the customer's last agent or account owner
    (offered first for the queue's `sticky_seconds`, or `sticky_seconds` given here).
    """

    call_id: str
    queue: str
    priority: int = 0
    requirements: Levels | Mapping[str, int] = field(default_factory=tuple)
    preferred_agent: str | None = None
    sticky_seconds: float | None = None

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)
        _text(self, "queue", self.queue)
        _text(self, "preferred_agent", self.preferred_agent, optional=True)
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InvalidEvent("CallArrived.priority must be an integer", field="priority")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise InvalidEvent(
                f"CallArrived.priority must be 0..{MAX_PRIORITY}, got {self.priority}",
                field="priority",
            )
        if self.sticky_seconds is not None and not 0 <= self.sticky_seconds < 86400:
            raise InvalidEvent(
                "CallArrived.sticky_seconds must be 0..86400", field="sticky_seconds"
            )
        object.__setattr__(
            self,
            "requirements",
            _levels(self, "requirements", self.requirements, MIN_LEVEL, MAX_LEVEL),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    """Either side hung up. Before the call was connected this is an abandonment.

    `reached=False`: a callback the agent answered whose customer was never reached (busy, no
    answer). The agent's answer is taken back: not answered in the queue, not a call handled.
    """

    call_id: str
    reached: bool = True

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested:
    """The caller accepted a callback and hung up; the call keeps its place in line."""

    call_id: str

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallChanged:
    """A supervisor (or the flow) steers a call not yet connected: a new `priority`, `queue` or
    `requirements` (None keeps the current one). The call keeps its arrival time, so its place
    follows the line rule at once; a ringing offer is left to ring."""

    call_id: str
    priority: int | None = None
    queue: str | None = None
    requirements: Levels | Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)
        _text(self, "queue", self.queue, optional=True)
        if self.priority is not None and (
            isinstance(self.priority, bool) or not isinstance(self.priority, int)
            or not 0 <= self.priority <= MAX_PRIORITY
        ):
            raise InvalidEvent(
                f"CallChanged.priority must be an integer 0..{MAX_PRIORITY}, got {self.priority!r}",
                field="priority",
            )
        if self.requirements is not None:
            object.__setattr__(
                self,
                "requirements",
                _levels(self, "requirements", self.requirements, MIN_LEVEL, MAX_LEVEL),
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAnswered:
    """The offered agent answered (200 OK on the agent leg)."""

    call_id: str
    agent_id: str

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)
        _text(self, "agent_id", self.agent_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferDeclined:
    """The offered agent declined or was busy (486/603 on the agent leg): counts as a miss."""

    call_id: str
    agent_id: str
    reason: str = "declined"

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)
        _text(self, "agent_id", self.agent_id)
        _text(self, "reason", self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferFailed:
    """The offer never reached the agent: no registration, no response at all (timeout, transport
    error), or a 4xx-6xx other than busy/decline (480, 404, 408, 503...). Not a miss: the agent
    becomes unreachable (as `AgentUnreachable`) and the call goes back to its place in line."""

    call_id: str
    agent_id: str
    reason: str

    def __post_init__(self) -> None:
        _text(self, "call_id", self.call_id)
        _text(self, "agent_id", self.agent_id)
        _text(self, "reason", self.reason)


Event = (
    AgentLoggedIn
    | AgentLoggedOut
    | AgentPauseRequested
    | AgentReadyRequested
    | AgentReachable
    | AgentUnreachable
    | CallArrived
    | CallEnded
    | CallbackRequested
    | CallChanged
    | OfferAnswered
    | OfferDeclined
    | OfferFailed
)
