"""Domain errors of the routing core.

The engine raises only `RoutingError` subclasses for bad input; any other exception is a bug.
Each class has a stable `error_id` that is part of the exposed API (REST answers, logs,
IVR fallback branches): never rename one.  The engine checks every precondition before it
changes any state, so an event that raises leaves the engine exactly as it was.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RoutingError",
    "InvalidEvent",
    "InvalidConfig",
    "UnknownQueue",
    "UnknownSkill",
    "UnknownAgent",
    "UnknownCall",
    "AgentAlreadyLoggedIn",
    "CallAlreadyExists",
    "NoSuchOffer",
    "IllegalAgentTransition",
    "CallNotWaiting",
]


class RoutingError(Exception):
    """Base of every routing domain error.

    `error_id` is stable API, `status` a matching HTTP status for `acd/api/`, `details` a
    small JSON-able mapping naming the offending values.
    """

    error_id = "routing-error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error_id!r}, {self.message!r}, {self.details!r})"


class InvalidEvent(RoutingError, ValueError):
    """An event was built with values outside its documented range."""

    error_id = "invalid-event"


class InvalidConfig(RoutingError, ValueError):
    """The routing configuration is inconsistent (the loader reports it with file:line)."""

    error_id = "invalid-routing-config"


class UnknownQueue(RoutingError):
    """An event names a queue that is not configured."""

    error_id = "unknown-queue"
    status = 404


class UnknownSkill(RoutingError):
    """An event names a skill that is not in the configured skill list."""

    error_id = "unknown-skill"


class UnknownAgent(RoutingError):
    """An event names an agent that is not logged in."""

    error_id = "no-such-agent"
    status = 404


class UnknownCall(RoutingError):
    """An event names a call the engine does not hold (never arrived, or already ended)."""

    error_id = "no-such-call"
    status = 404


class AgentAlreadyLoggedIn(RoutingError):
    """A login for an agent that is already logged in."""

    error_id = "agent-already-logged-in"
    status = 409


class CallAlreadyExists(RoutingError):
    """A second `CallArrived` with the id of a call the engine still holds."""

    error_id = "call-already-exists"
    status = 409


class NoSuchOffer(RoutingError):
    """An answer or decline for an offer that is not (or no longer) ringing.

    Normal in one race: the ring timeout fired and the shell already cancelled the agent's leg
    when the 200 OK arrived. The shell then hangs up that leg.
    """

    error_id = "no-such-offer"
    status = 409


class IllegalAgentTransition(RoutingError):
    """The agent state table has no entry for this trigger in the agent's current state."""

    error_id = "illegal-agent-transition"
    status = 409


class CallNotWaiting(RoutingError):
    """A position or estimated wait was asked for a call that is not waiting in line."""

    error_id = "call-not-waiting"
    status = 409
