"""API errors: each has a stable `error_id` (part of the API: never rename), an HTTP status and details."""

from __future__ import annotations

__all__ = ["ApiError", "Unauthorized", "NotFound", "NoSuchAgent", "InvalidRequest", "Conflict", "NotASupervisor",
           "MonitorRefused", "Forbidden", "NotYourAgent", "SupervisorsOnly", "CsrfRefused"]


class ApiError(Exception):
    """An error the API answers with `{"error_id", "message", "details"}`."""

    error_id = "api-error"
    status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(ApiError):
    """Missing or wrong bearer token."""

    error_id = "unauthorized"
    status = 401


class NotFound(ApiError):
    """No such path."""

    error_id = "not-found"
    status = 404


class NoSuchAgent(ApiError):
    """The agent id is not in conf/agents.yaml."""

    error_id = "no-such-agent"
    status = 404


class InvalidRequest(ApiError):
    """The body or method is not what the endpoint takes."""

    error_id = "invalid-request"
    status = 400


class Conflict(ApiError):
    """The agent's state does not allow this change (e.g. pausing a logged-out agent)."""

    error_id = "invalid-agent-state"
    status = 409


class NotASupervisor(ApiError):
    """Only accounts with `role: supervisor` may listen to, whisper on or barge into calls."""

    error_id = "not-a-supervisor"
    status = 403


class MonitorRefused(ApiError):
    """The call cannot be monitored now (already monitored, supervisor's phone not registered...)."""

    error_id = "monitor-refused"
    status = 409


class Forbidden(ApiError):
    """Signed in, but this account may not do that."""

    error_id = "forbidden"
    status = 403


class NotYourAgent(Forbidden):
    """A signed-in agent asked for another agent's calls, state or events."""

    error_id = "not-your-agent"


class SupervisorsOnly(Forbidden):
    """A signed-in agent asked for an endpoint outside their desk."""

    error_id = "supervisors-only"


class CsrfRefused(Forbidden):
    """A change from a web session without its X-CSRF-Token header (or with a wrong one)."""

    error_id = "csrf-token-refused"


class NotYourPhone(Forbidden):
    """A signed-in supervisor asked to monitor a call on another supervisor's phone."""

    error_id = "not-your-phone"
