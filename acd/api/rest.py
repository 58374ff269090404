"""The REST API: `GET /api/agents`, `POST /api/agents/{id}/{login,logout,pause,ready}`, `GET /api/queues`,
`GET /api/calls`, `POST /api/reload`. JSON in and out; every request needs `Authorization: Bearer TOKEN`.

Handlers parse the request, `_check_*` preconditions raise ApiErrors with stable ids, and the action
goes through the AgentDesk (the ACD: the same path feature codes use). Reads come from the LiveView
only. Documented in `acd/api/openapi.yaml`.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import asdict
from typing import Any, Callable

from twisted.web import resource, server

from ..calls.view import AgentDesk, CallCommands, LiveView
from .errors import ApiError, Conflict, InvalidRequest, NoSuchAgent, NotFound, Unauthorized
from .events import EventHub

__all__ = ["ApiResource", "MAX_BODY_BYTES"]

log = logging.getLogger("acd.api")

# Requests here are tiny ({"reason": "lunch"}); anything big is a mistake or an attack.
MAX_BODY_BYTES = 16_384


class ApiResource(resource.Resource):
    """/api/...; `reload(why)` is called for POST /api/reload and returns an outcome with `applied`,
    `generation`, `changes` and `problems` (acd.reload.ReloadOutcome)."""

    isLeaf = True

    def __init__(self, *, view: LiveView, desk: AgentDesk, events: EventHub, token: str,
                 reload: Callable[[str], Any], unlock: Callable[[str], bool] | None = None,
                 control: CallCommands | None = None,
                 trunks: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        super().__init__()
        self.view = view
        self.desk = desk
        self.events = events
        self.token = token
        self.reload = reload
        self.unlock = unlock  # clears a user's authentication lock (None without agents)
        self.control = control  # hang-up and transfer of calls in progress
        self.trunks = trunks  # the trunks and their registrations at carriers

    def render(self, request: server.Request) -> bytes | int:  # noqa: D401 - Twisted API
        """Dispatch, answer JSON; ApiErrors become their status and error_id. Event streams stay open."""
        request.setHeader(b"content-type", b"application/json")
        try:
            self._check_token(request)
            parts = [p.decode() for p in request.postpath if p]
            if len(parts) == 2 and parts[0] == "events" and request.method == b"GET":
                self._check_topic(parts[1])
                if not self.events.subscribe(parts[1], request):
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
        if topic.startswith("agent-") and self.view.is_agent(topic[6:]):
            return
        raise NotFound(f"no event stream {topic!r} (wallboard, or agent-<id> of a configured agent)")

    def _dispatch(self, request: server.Request) -> tuple[int, Any]:
        method = request.method.decode()
        parts = [p.decode() for p in request.postpath if p]
        if parts and parts[0] == "api":
            parts = parts[1:]
        if parts == ["agents"] and method == "GET":
            return 200, self._agents()
        if len(parts) == 3 and parts[0] == "agents" and parts[2] == "unlock" and method == "POST":
            self._check_agent(parts[1])
            unlocked = self.unlock is not None and self.unlock(parts[1])
            return 200, {"id": parts[1], "result": "unlocked" if unlocked else "not-locked"}
        if len(parts) == 3 and parts[0] == "agents" and parts[2] == "queues" and method == "POST":
            return 200, self._add_membership(parts[1], self._body(request))
        if len(parts) == 4 and parts[0] == "agents" and parts[2] == "queues" and method == "DELETE":
            return 200, self._membership_result(parts[1], parts[3], None)
        if len(parts) == 3 and parts[0] == "agents" and method == "POST":
            return 200, self._agent_action(parts[1], parts[2], self._body(request))
        if parts == ["trunks"] and method == "GET":
            return 200, self.trunks() if self.trunks is not None else []
        if parts == ["queues"] and method == "GET":
            return 200, self._queues()
        if parts == ["calls"] and method == "GET":
            return 200, self._calls()
        if len(parts) == 3 and parts[0] == "calls" and parts[2] == "explanation" and method == "GET":
            return 200, self._call_explanation(parts[1])
        if len(parts) == 3 and parts[0] == "calls" and parts[2] in ("hangup", "transfer") and method == "POST":
            return 200, self._call_command(parts[1], parts[2], self._body(request))
        if len(parts) == 2 and parts[0] == "calls" and method == "PATCH":
            return 200, self._change_call(parts[1], self._body(request))
        if parts == ["reload"] and method == "POST":
            outcome = self.reload("API")
            body = {"reloaded": outcome.applied, "generation": outcome.generation}
            body.update({"changes": list(outcome.changes)} if outcome.applied else {"problems": list(outcome.problems)})
            return (200 if outcome.applied else 422), body
        if parts == ["config"] and method == "GET":
            return 200, {"generation": self.view.generation, "server_time": self.view.now()}
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
        agents = []
        for agent in self.view.agents():
            entry: dict[str, Any] = {"id": agent.agent_id, "name": agent.name, "queues": agent.queues,
                                     "skills": agent.skills, "registered": agent.registered, "state": agent.state}
            if agent.state != "logged_out":
                entry.update(pause_reason=agent.pause_reason, call_id=agent.call_id,
                             calls_handled=agent.calls_handled, missed_offers=agent.missed_offers,
                             state_since=agent.state_since, reachable=agent.reachable)
            agents.append(entry)
        return agents

    def _check_agent(self, agent_id: str) -> None:
        if not self.view.is_agent(agent_id):
            raise NoSuchAgent(f"no agent {agent_id!r} in conf/agents.yaml", agent_id=agent_id)

    def _agent_action(self, agent_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_agent(agent_id)
        desk = self.desk
        if action == "login":
            result = desk.login(agent_id)
        elif action == "logout":
            result = desk.logout(agent_id)
        elif action == "ready":
            result = desk.unpause(agent_id)
        elif action == "disposition":
            code = body.get("code")
            if not isinstance(code, str) or not code.strip() or len(code) > 64:
                raise InvalidRequest("disposition needs {\"code\": \"sale\"} (1-64 characters)")
            call_id = desk.set_disposition(agent_id, code.strip())
            if call_id is None:
                raise Conflict(f"agent {agent_id} has no call to set a disposition on", agent_id=agent_id)
            return {"id": agent_id, "result": "disposition-set", "call_id": call_id}
        elif action == "pause":
            reason = body.get("reason")
            if not isinstance(reason, str) or not reason.strip() or len(reason) > 64:
                raise InvalidRequest("pause needs {\"reason\": \"lunch\"} (1-64 characters)")
            result = desk.pause(agent_id, reason.strip())
        else:
            raise NotFound(f"no agent action {action!r} (login, logout, pause, ready, disposition)")
        if result in ("not-logged-in", "not-paused", "no-queues"):
            raise Conflict(f"agent {agent_id} cannot {action} now: {result}", agent_id=agent_id, result=result)
        log.info("agent=%s %s via API: %s", agent_id, action, result)
        return {"id": agent_id, "result": result}

    # ---- queues and calls --------------------------------------------------------------------
    def _queues(self) -> list[dict[str, Any]]:
        return [dict(asdict(queue), longest_wait_seconds=round(queue.longest_wait_seconds, 1),
                     average_handle_seconds=round(queue.average_handle_seconds, 1)) for queue in self.view.queues()]

    def _call_explanation(self, call_id: str) -> dict[str, Any]:
        explanation = self.view.call_explanation(call_id)
        if explanation is None:
            raise NotFound(f"no queued call {call_id!r} (only calls in a queue have a routing explanation)")
        body = asdict(explanation)
        body["story"] = [{"at": at, "what": text} for at, text in explanation.story]
        return body

    def _change_call(self, call_id: str, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"priority", "queue", "skills"}
        if unknown or not body:
            raise InvalidRequest("PATCH a call with any of {\"priority\": 0-9, \"queue\": \"name\", "
                                 "\"skills\": {\"billing\": 5}}" + (f"; unknown: {sorted(unknown)}" if unknown else ""))
        priority, queue, skills = body.get("priority"), body.get("queue"), body.get("skills")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                     or not 0 <= priority <= 9):
            raise InvalidRequest("priority must be an integer 0..9")
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise InvalidRequest("queue must be a queue name")
        if skills is not None and (not isinstance(skills, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10
                for k, v in skills.items())):
            raise InvalidRequest("skills must map skill names to levels 1..10")
        result = self.desk.change_call(call_id, priority=priority, queue=queue, requirements=skills, by="API")
        if result == "unknown-call":
            raise NotFound(f"no queued call {call_id!r}")
        if result == "connected":
            raise Conflict(f"call {call_id} is already connected to an agent", call_id=call_id, result=result)
        if result != "changed":
            raise InvalidRequest(f"cannot change call {call_id}: {result}")
        explanation = self.view.call_explanation(call_id)
        return {"call_id": call_id, "result": result,
                "position": explanation.position if explanation is not None else None}

    def _add_membership(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        queue, penalty = body.get("queue"), body.get("penalty", 0)
        if not isinstance(queue, str) or not queue or set(body) - {"queue", "penalty"} or isinstance(penalty, bool) \
                or not isinstance(penalty, int) or not 0 <= penalty <= 100:
            raise InvalidRequest('POST {"queue": "name", "penalty": 0..100 (default 0)}')
        return self._membership_result(agent_id, queue, penalty)

    def _membership_result(self, agent_id: str, queue: str, penalty: int | None) -> dict[str, Any]:
        self._check_agent(agent_id)
        result = self.desk.set_membership(agent_id, queue, penalty, by="API")
        if result == "unknown-queue":
            raise NotFound(f"no queue {queue!r} in conf/agents.yaml", queue=queue)
        if result == "not-a-member":
            raise Conflict(f"agent {agent_id} is not a member of {queue}", agent_id=agent_id, queue=queue)
        return {"id": agent_id, "queue": queue, "penalty": penalty, "result": result}

    def _call_command(self, call_id: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.control is None:
            raise NotFound("call commands are not available on this server")
        if command == "hangup":
            result = self.control.hang_up(call_id, by="API")
        else:
            target = body.get("to")
            if not isinstance(target, str) or not target.strip() or set(body) - {"to"}:
                raise InvalidRequest('POST a transfer with {"to": "queue name or dialplan number"}')
            result = self.control.transfer(call_id, target.strip(), by="API")
            if result == "unknown-target":
                raise InvalidRequest(f"no queue or dialplan number {target!r}", to=target)
        if result == "unknown-call":
            raise NotFound(f"no call {call_id!r} in progress")
        return {"call_id": call_id, "result": result}

    def _calls(self) -> list[dict[str, Any]]:
        return [{"call_id": call.call_id, "state": call.state, "dialled": call.dialled, "queue": call.queue,
                 "seconds": call.seconds, "agent": call.agent, "ivr_step": call.ivr_step,
                 "routing_explanation": call.routing_explanation, "customer": call.customer,
                 "waited_seconds": call.waited_seconds} for call in self.view.calls()]
