"""The agent desktop's reads: `GET /api/me`, `GET /api/agents/{id}`, `GET /api/agents/{id}/calls?since=`,
`GET /api/agents/{id}/callbacks`; and the check of a wrap-up (`disposition` code and `notes`).

Who may call them is decided before (access.py): an agent reaches only their own. The calls of the
day come from the records database, read off the reactor thread (`history`, a Deferred).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.web import server

from ..calls.view import AgentSnapshot, LiveView
from .access import Principal
from .errors import InvalidRequest, NoSuchAgent, NotFound

__all__ = ["DeskEndpoints", "MAX_NOTES_CHARACTERS", "DEFAULT_HISTORY_SECONDS", "agent_entry"]

# Wrap-up notes are a few sentences; a CDR column is not a document store.
MAX_NOTES_CHARACTERS = 2000
# Without ?since= the calls of the last day (the desktop sends the start of its local day).
DEFAULT_HISTORY_SECONDS = 86400.0


def agent_entry(agent: AgentSnapshot) -> dict[str, Any]:
    """One agent as `GET /api/agents` and `GET /api/agents/{id}` answer (figures only when logged in)."""
    entry: dict[str, Any] = {"id": agent.agent_id, "name": agent.name, "queues": agent.queues,
                             "skills": agent.skills, "registered": agent.registered, "state": agent.state}
    if agent.state != "logged_out":
        entry.update(pause_reason=agent.pause_reason, call_id=agent.call_id, calls_handled=agent.calls_handled,
                     missed_offers=agent.missed_offers, state_since=agent.state_since, reachable=agent.reachable)
    return entry


class DeskEndpoints:
    """Answers the desktop's own endpoints; `dispatch` returns None for any other path."""

    def __init__(self, *, view: LiveView, history: Callable[[str, float], Deferred] | None) -> None:
        self.view = view
        self.history = history

    def dispatch(self, method: str, parts: list[str], request: server.Request, principal: Principal) -> Any:
        """The body for a desktop endpoint (a Deferred for the calls of the day), or None."""
        if method != "GET":
            return None
        if parts == ["me"]:
            return self._me(request, principal)
        if len(parts) in (2, 3) and parts[0] == "agents" and parts[1:] != ["unlock"]:
            agent_id = parts[1]
            what = parts[2] if len(parts) == 3 else None
            if what not in (None, "calls", "callbacks"):
                return None
            if not self.view.is_agent(agent_id):
                raise NoSuchAgent(f"no agent {agent_id!r} in conf/agents.yaml", agent_id=agent_id)
            if what is None:
                return self._agent(agent_id)
            if what == "callbacks":
                return self._callbacks(agent_id)
            return self._calls(agent_id, request)
        return None

    def check_disposition(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """The code (one of `dispositions:` when the list is configured) and the notes of a wrap-up."""
        code, notes = body.get("code"), body.get("notes")
        if not isinstance(code, str) or not code.strip() or len(code) > 64 or set(body) - {"code", "notes"}:
            raise InvalidRequest("disposition needs {\"code\": \"sale\"} (1-64 characters) and may carry "
                                 f"{{\"notes\": \"...\"}} (at most {MAX_NOTES_CHARACTERS} characters)")
        allowed = self._dispositions()
        if allowed and code.strip() not in allowed:
            raise InvalidRequest(f"unknown disposition {code!r} (conf/agents.yaml dispositions: {', '.join(allowed)})",
                                 code=code)
        if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_NOTES_CHARACTERS):
            raise InvalidRequest(f"notes must be text of at most {MAX_NOTES_CHARACTERS} characters")
        return code.strip(), (notes.strip() or None) if notes is not None else None

    def _dispositions(self) -> tuple[str, ...]:
        config = self.view.agents_config()
        return tuple(getattr(config, "dispositions", ()) or ()) if config is not None else ()

    def _me(self, request: server.Request, principal: Principal) -> dict[str, Any]:
        config = self.view.agents_config()
        session = getattr(request, "web_session", None)
        return {"user": principal.user, "role": principal.role, "name": principal.name,
                "csrf_token": session.csrf_token if session is not None else None,
                "pause_reasons": sorted(set(config.pause_reasons.values())) if config is not None else [],
                "dispositions": list(self._dispositions()), "server_time": self.view.now()}

    def _agent(self, agent_id: str) -> dict[str, Any]:
        return agent_entry(next(agent for agent in self.view.agents() if agent.agent_id == agent_id))

    def _callbacks(self, agent_id: str) -> list[dict[str, Any]]:
        """Callbacks waiting in the agent's queues, and the ones the agent is calling back."""
        queues = next(agent.queues for agent in self.view.agents() if agent.agent_id == agent_id) or {}
        return [asdict(callback) for callback in self.view.callbacks()
                if callback.agent == agent_id or (callback.agent is None and callback.queue in queues)]

    def _calls(self, agent_id: str, request: server.Request) -> Deferred:
        raw = (request.args.get(b"since") or [b""])[0].decode("latin-1")
        try:
            since = float(raw) if raw else self.view.now() - DEFAULT_HISTORY_SECONDS
        except ValueError:
            raise InvalidRequest(f"since must be POSIX seconds, not {raw!r}") from None
        if self.history is None:
            raise NotFound("call history is not available on this server")
        return self.history(agent_id, since)
