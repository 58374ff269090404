"""The REST API: `GET /api/agents`, `POST /api/agents/{id}/{login,logout,pause,ready}`, `GET /api/queues`,
`GET /api/calls`, `POST /api/reload`. JSON in and out; every request needs `Authorization: Bearer TOKEN`.

Handlers parse the request, `_check_*` preconditions raise ApiErrors with stable ids, and the action
goes through the AcdService (the same path feature codes use). Documented in `acd/api/openapi.yaml`.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from twisted.web import resource, server

from ..routing import RoutingError
from .errors import ApiError, Conflict, InvalidRequest, NoSuchAgent, NotFound, Unauthorized

if TYPE_CHECKING:
    from ..calls.sip_server import SipServer

__all__ = ["ApiResource", "MAX_BODY_BYTES"]

log = logging.getLogger("acd.api")

# Requests here are tiny ({"reason": "lunch"}); anything big is a mistake or an attack.
MAX_BODY_BYTES = 16_384


class ApiResource(resource.Resource):
    """/api/...; `reload` is called for POST /api/reload and returns (ok, generation)."""

    isLeaf = True

    def __init__(self, sip: "SipServer", token: str, reload: Callable[[str], bool]) -> None:
        super().__init__()
        self.sip = sip
        self.token = token
        self.reload = reload

    def render(self, request: server.Request) -> bytes | int:  # noqa: D401 - Twisted API
        """Dispatch, answer JSON; ApiErrors become their status and error_id. Event streams stay open."""
        request.setHeader(b"content-type", b"application/json")
        try:
            self._check_token(request)
            parts = [p.decode() for p in request.postpath if p]
            if len(parts) == 2 and parts[0] == "events" and request.method == b"GET":
                self._check_topic(parts[1])
                if not self.sip.events.subscribe(parts[1], request):
                    raise Conflict("too many event streams open", topic=parts[1])
                return server.NOT_DONE_YET
            status, body = self._dispatch(request)
        except ApiError as error:
            status, body = error.status, {"error_id": error.error_id, "message": error.message,
                                          "details": error.details}
        request.setResponseCode(status)
        return json.dumps(body).encode() + b"\n"

    def _check_token(self, request: server.Request) -> None:
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        # Browsers' EventSource cannot send headers: streams and the wallboard may pass ?token=.
        query = (request.args.get(b"token") or [b""])[0].decode("latin-1")
        given = header[7:].strip() if header.startswith("Bearer ") else query
        if not given or not hmac.compare_digest(given, self.token):
            raise Unauthorized("send Authorization: Bearer <token> (the token is in the api token file)")

    def _check_topic(self, topic: str) -> None:
        if topic == "wallboard":
            return
        if topic.startswith("agent-") and topic[6:] in self.sip.config.agents.agents:
            return
        raise NotFound(f"no event stream {topic!r} (wallboard, or agent-<id> of a configured agent)")

    def _dispatch(self, request: server.Request) -> tuple[int, Any]:
        method = request.method.decode()
        parts = [p.decode() for p in request.postpath if p]
        if parts and parts[0] == "api":
            parts = parts[1:]
        if parts == ["agents"] and method == "GET":
            return 200, self._agents()
        if len(parts) == 3 and parts[0] == "agents" and method == "POST":
            return 200, self._agent_action(parts[1], parts[2], self._body(request))
        if parts == ["queues"] and method == "GET":
            return 200, self._queues()
        if parts == ["calls"] and method == "GET":
            return 200, self._calls()
        if parts == ["reload"] and method == "POST":
            ok = self.reload("API")
            return (200 if ok else 422), {"reloaded": ok}
        raise NotFound(f"no endpoint {method} /{'/'.join(['api', *parts])}")

    @staticmethod
    def _body(request: server.Request) -> dict[str, Any]:
        data = request.content.read(MAX_BODY_BYTES + 1) if request.content else b""
        if len(data) > MAX_BODY_BYTES:
            raise InvalidRequest(f"body larger than {MAX_BODY_BYTES} bytes")
        if not data.strip():
            return {}
        try:
            body = json.loads(data)
        except ValueError as error:
            raise InvalidRequest(f"body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise InvalidRequest("body must be a JSON object")
        return body

    # ---- agents ------------------------------------------------------------------------------
    def _agents(self) -> list[dict[str, Any]]:
        config = self.sip.config.agents
        engine = self.sip.acd.engine
        logged_in = set(engine.agent_ids())
        agents = []
        for agent_id, agent in sorted(config.agents.items()):
            entry: dict[str, Any] = {"id": agent_id, "name": agent.name, "queues": agent.queues,
                                     "registered": bool(self.sip.agent_contacts(agent_id))}
            if agent_id in logged_in:
                view = engine.agent_view(agent_id)
                entry.update(state=view.state.value, pause_reason=view.pause_reason, call_id=view.call_id,
                             calls_handled=view.calls_handled, missed_offers=view.missed_offers,
                             state_since=self.sip.acd.state_since.get(agent_id))
            else:
                entry.update(state="logged_out")
            agents.append(entry)
        return agents

    def _check_agent(self, agent_id: str) -> None:
        if agent_id not in self.sip.config.agents.agents:
            raise NoSuchAgent(f"no agent {agent_id!r} in conf/agents.yaml", agent_id=agent_id)

    def _agent_action(self, agent_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_agent(agent_id)
        acd = self.sip.acd
        if action == "login":
            result = acd.login(agent_id)
        elif action == "logout":
            result = acd.logout(agent_id)
        elif action == "ready":
            result = acd.unpause(agent_id)
        elif action == "disposition":
            code = body.get("code")
            if not isinstance(code, str) or not code.strip() or len(code) > 64:
                raise InvalidRequest("disposition needs {\"code\": \"sale\"} (1-64 characters)")
            call_id = acd.last_call.get(agent_id)
            if call_id is None:
                raise Conflict(f"agent {agent_id} has no call to set a disposition on", agent_id=agent_id)
            self.sip.records.set_field(call_id, "disposition", code.strip())
            log.info("call=%s agent=%s disposition=%s", call_id, agent_id, code.strip())
            return {"id": agent_id, "result": "disposition-set", "call_id": call_id}
        elif action == "pause":
            reason = body.get("reason")
            if not isinstance(reason, str) or not reason.strip() or len(reason) > 64:
                raise InvalidRequest("pause needs {\"reason\": \"lunch\"} (1-64 characters)")
            result = acd.pause(agent_id, reason.strip())
        else:
            raise NotFound(f"no agent action {action!r} (login, logout, pause, ready, disposition)")
        if result in ("not-logged-in", "not-paused", "no-queues"):
            raise Conflict(f"agent {agent_id} cannot {action} now: {result}", agent_id=agent_id, result=result)
        log.info("agent=%s %s via API: %s", agent_id, action, result)
        return {"id": agent_id, "result": result}

    # ---- queues and calls --------------------------------------------------------------------
    def _queues(self) -> list[dict[str, Any]]:
        now = self.sip.reactor.seconds()
        out = []
        for name in self.sip.config.agents.queues:
            try:
                stats = self.sip.acd.engine.queue_stats(name, now)
            except RoutingError:
                continue
            out.append({"queue": name, "waiting": stats.waiting, "longest_wait_seconds": round(stats.longest_wait_seconds, 1),
                        "agents": stats.agents, "offered": stats.offered, "answered": stats.answered,
                        "abandoned": stats.abandoned, "service_level": stats.service_level,
                        "average_handle_seconds": round(stats.average_handle_seconds, 1)})
        return out

    def _calls(self) -> list[dict[str, Any]]:
        now = self.sip.reactor.seconds()
        return [{"call_id": call_id, "state": session.state.value, "dialled": session.route.number,
                 "queue": session.queue_name, "seconds": round(now - session.started_at, 1),
                 "agent": next((leg.agent_id for leg in [self.sip.acd.bridged.get(call_id)] if leg), None),
                 "ivr_step": session.ivr.flow_run.step_name if session.ivr else None,
                 "routing_explanation": self.sip.acd.explanations.get(call_id)}
                for call_id, session in sorted(self.sip.sessions.items())]
