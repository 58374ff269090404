"""CallTable: the live calls by Call-ID, so that incoming requests reach the leg they belong to.

Callers' sessions (we are the UAS) and the legs we placed (agent offers, callbacks: we are the
UAC) each have their own Call-IDs. The SIP dispatcher reads it; call set-up adds sessions; a
session or leg that ends is forgotten. The live view reads it too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CallTable"]


class CallTable:
    """Sessions and placed legs by Call-ID, and which leg owns each of our INVITE transactions."""

    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}
        self.placed: dict[str, Any] = {}
        self.invites: dict[tuple, Any] = {}

    def add_session(self, session: Any) -> None:
        """A new inbound call."""
        self.sessions[session.call_id] = session

    def forget_session(self, session: Any) -> None:
        """A call ended."""
        if self.sessions.get(session.call_id) is session:
            del self.sessions[session.call_id]

    def add_placed(self, leg: Any, transaction: tuple) -> None:
        """We sent an INVITE for `leg` (its responses and later requests come to it)."""
        self.placed[leg.call_id] = leg
        self.invites[transaction] = leg

    def forget_placed(self, leg: Any, transaction: tuple | None) -> None:
        """A leg we placed ended."""
        if self.placed.get(leg.call_id) is leg:
            del self.placed[leg.call_id]
        if transaction is not None and self.invites.get(transaction) is leg:
            del self.invites[transaction]
