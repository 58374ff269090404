"""The one error family of the SIP core (STYLE 6).

Peer input that breaks the protocol raises `RemoteProtocolError`, which carries the status code the
shell should answer with (when an answer is possible at all). Misuse of the core by our own code
raises `LocalProtocolError`: that is a bug, and must surface.
"""

from __future__ import annotations

__all__ = ["SipProtocolError", "RemoteProtocolError", "LocalProtocolError"]


class SipProtocolError(Exception):
    """Base of every error the SIP core raises on purpose."""


class RemoteProtocolError(SipProtocolError):
    """A peer sent something we cannot accept; `status` is the SIP reply to send (400, 481, 513...)."""

    def __init__(self, reason: str, status: int = 400, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers  # extra headers the reply needs (Unsupported for 420, Accept for 415)


class LocalProtocolError(SipProtocolError):
    """Our own code asked the core for something the protocol forbids."""
