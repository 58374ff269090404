"""Web sign-in sessions, in memory: who is signed in to the agent desktop or as a supervisor. Pure.

A session is a random id (the cookie; 256 bits from `secrets`) that maps to the account and a CSRF
token of its own. It ends after `idle_seconds` without a request and after `max_seconds` in all,
whatever the activity (a shift; a stolen cookie does not live for ever). Time is an argument
(STYLE 2): `find(session_id, now)` both checks and refreshes. A restart signs everybody out; the
desktop then shows the sign-in page again, which is fine for an in-memory table.

Memory is bounded: at most `max_sessions` (a node has a few hundred agents); past that, the least
recently used session is ended first.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

__all__ = ["CSRF_HEADER", "MAX_SESSIONS", "SESSION_COOKIE", "SessionTable", "WebSession"]

SESSION_COOKIE = b"acd_session"
# Sent by the desktop's scripts on every change; a form on another site cannot set a header.
CSRF_HEADER = b"x-csrf-token"
# A few hundred agents and supervisors per node, each with a desktop or two (phone and PC).
MAX_SESSIONS = 5000


@dataclass(slots=True)
class WebSession:
    """One signed-in browser: the account (`user`, `role` "agent" or "supervisor", display `name`),
    its CSRF token, and when it started and was last used."""

    session_id: str
    csrf_token: str
    user: str
    role: str
    name: str
    created_at: float
    last_seen_at: float

    def csrf_matches(self, given: str) -> bool:
        """True when `given` is this session's CSRF token (compared in constant time)."""
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf_token.encode())


class SessionTable:
    """Session id → WebSession, with idle and absolute expiry."""

    def __init__(self, *, idle_seconds: float, max_seconds: float, max_sessions: int = MAX_SESSIONS,
                 new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> None:
        if idle_seconds <= 0 or max_seconds <= 0 or max_sessions < 1:
            raise ValueError("session lifetimes and the session limit must be positive")
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.max_sessions = max_sessions
        self._new_token = new_token
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, *, user: str, role: str, name: str, now: float) -> WebSession:
        """A new session for a signed-in account."""
        if role not in ("agent", "supervisor"):
            raise ValueError(f"unknown role {role!r}")
        session = WebSession(session_id=self._new_token(), csrf_token=self._new_token(), user=user, role=role,
                             name=name, created_at=now, last_seen_at=now)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def find(self, session_id: str, now: float) -> WebSession | None:
        """The live session with this id (refreshed: it was used at `now`), or None when unknown or
        expired (an expired one is dropped)."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            return None
        if now - session.last_seen_at > self.idle_seconds or now - session.created_at > self.max_seconds:
            del self._sessions[session_id]
            return None
        session.last_seen_at = now
        self._sessions.move_to_end(session_id)
        return session

    def close(self, session_id: str) -> bool:
        """End a session (signing out); True if it existed."""
        return self._sessions.pop(session_id, None) is not None

    def close_user(self, user: str) -> int:
        """End every session of `user` (the account was removed); how many."""
        ids = [key for key, session in self._sessions.items() if session.user == user]
        for key in ids:
            del self._sessions[key]
        return len(ids)
