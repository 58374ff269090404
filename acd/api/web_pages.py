"""Web sign-in and the agent desktop's pages: `GET /login` (the form), `POST /login` (JSON
`{"user", "password"}` → session cookie), `POST /logout`, `GET /agent` (the desktop, plain HTML/JS).

The cookie is HttpOnly (scripts cannot read it), SameSite=Strict (no other site's page sends it)
and lives no longer than the session. `POST /login` takes JSON only and refuses a foreign Origin,
so another site cannot sign a browser in to an account of its choosing (login CSRF).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from twisted.web import resource, server, static

from .sign_in import SignIn
from .web_sessions import CSRF_HEADER, SESSION_COOKIE

__all__ = ["LoginResource", "LogoutResource", "page"]

log = logging.getLogger("acd.api")

PAGES = Path(__file__).parent
# A user name and a password: anything bigger is not a sign-in.
MAX_LOGIN_BODY_BYTES = 4096
# Where each role lands after signing in.
LANDING = {"agent": "/agent", "supervisor": "/wallboard"}


def page(name: str) -> static.File:
    """One of the HTML pages next to this module, served as text/html, never cached."""
    return static.File(str(PAGES / name), defaultType="text/html")


def _json(request: server.Request, status: int, body: dict[str, Any]) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body).encode() + b"\n"


def _error(request: server.Request, status: int, error_id: str, message: str) -> bytes:
    return _json(request, status, {"error_id": error_id, "message": message, "details": {}})


class LoginResource(resource.Resource):
    """/login: the sign-in page (GET) and the sign-in itself (POST). `reactor` provides IReactorTime."""

    isLeaf = True

    def __init__(self, sign_in: SignIn, reactor) -> None:
        super().__init__()
        self.sign_in = sign_in
        self.reactor = reactor
        self._page = page("login.html")

    def render_GET(self, request: server.Request) -> bytes | int:  # noqa: N802 - Twisted API
        """The sign-in form."""
        return self._page.render(request)

    def render_POST(self, request: server.Request) -> bytes:  # noqa: N802 - Twisted API
        """Check the password; on success set the session cookie and say where to go."""
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            return _error(request, 415, "json-only", 'POST /login with Content-Type: application/json and '
                                                     '{"user": "1001", "password": "..."}')
        origin = request.getHeader(b"origin")
        host = request.getHeader(b"host") or b""
        if origin is not None and origin not in (b"http://" + host, b"https://" + host):
            return _error(request, 403, "foreign-origin", "sign in from this server's own /login page")
        data = request.content.read(MAX_LOGIN_BODY_BYTES + 1) if request.content else b""
        try:
            body = json.loads(data) if len(data) <= MAX_LOGIN_BODY_BYTES else None
        except ValueError:
            body = None
        user, password = (body.get("user"), body.get("password")) if isinstance(body, dict) else (None, None)
        if not isinstance(user, str) or not isinstance(password, str) or not user or len(user) > 64 \
                or len(password) > 256:
            return _error(request, 400, "invalid-request", 'send {"user": "1001", "password": "..."}')
        address = request.getClientAddress()
        source = (getattr(address, "host", "unknown"), getattr(address, "port", 0))
        outcome = self.sign_in.sign_in(user, password, source=source, now=self.reactor.seconds())
        if outcome.result == "blocked":
            request.setHeader(b"retry-after", str(int(outcome.retry_after_seconds)).encode())
            return _error(request, 429, "sign-in-blocked", "too many wrong passwords: wait a few minutes, or ask a "
                                                           "supervisor to unlock the account")
        if outcome.session is None:
            return _error(request, 401, "wrong-password", "wrong user or password (your SIP phone's)")
        session = outcome.session
        request.addCookie(SESSION_COOKIE, session.session_id.encode(), path=b"/", httpOnly=True, sameSite="strict",
                          max_age=str(int(self.sign_in.sessions.max_seconds)).encode(),
                          secure=request.isSecure() or None)
        return _json(request, 200, {"user": session.user, "role": session.role, "name": session.name,
                                    "csrf_token": session.csrf_token, "redirect": LANDING[session.role]})


class LogoutResource(resource.Resource):
    """/logout (POST, with the session's X-CSRF-Token): ends the web session and clears the cookie."""

    isLeaf = True

    def __init__(self, sign_in: SignIn, reactor) -> None:
        super().__init__()
        self.sign_in = sign_in
        self.reactor = reactor

    def render_POST(self, request: server.Request) -> bytes:  # noqa: N802 - Twisted API
        """Sign out (the agent's ACD state is not changed: log out of the queues first if wanted)."""
        cookie = (request.getCookie(SESSION_COOKIE) or b"").decode("latin-1")
        session = self.sign_in.sessions.find(cookie, self.reactor.seconds()) if cookie else None
        if session is None:
            return _error(request, 401, "unauthorized", "not signed in")
        if not session.csrf_matches((request.getHeader(CSRF_HEADER) or b"").decode("latin-1")):
            return _error(request, 403, "csrf-token-refused", "signing out needs the session's X-CSRF-Token header")
        self.sign_in.sessions.close(session.session_id)
        request.addCookie(SESSION_COOKIE, b"", path=b"/", httpOnly=True, sameSite="strict", max_age=b"0")
        log.info("web sign-out: user=%s", session.user)
        return _json(request, 200, {"result": "signed-out"})
