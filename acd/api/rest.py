"""The REST API: `GET /api/agents`, `POST /api/agents/{id}/{login,logout,pause,ready}`, `GET /api/queues`,
`GET /api/calls`, `POST|PATCH|DELETE /api/calls/{id}/monitor`, `GET /api/monitoring`, `GET /api/today?since=`,
`POST /api/reload`.
JSON in and out; every request needs `Authorization: Bearer TOKEN`, or a web session's cookie
(`/login`; `access.py` says what an agent's session may do, and every change from a session needs
its `X-CSRF-Token` header; the token, for automation, needs none).

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

from twisted.internet.defer import Deferred

from ..calls.view import AgentDesk, CallCommands, LiveView, MonitorCommands
from .access import Principal, check_access
from .desk_endpoints import DeskEndpoints, agent_entry
from .errors import (ApiError, Conflict, CsrfRefused, InvalidRequest, MonitorRefused, NoSuchAgent, NotASupervisor,
                     NotFound, NotYourPhone, Unauthorized)
from .events import EventHub
from .sign_in import SignIn
from .web_sessions import CSRF_HEADER, SESSION_COOKIE

__all__ = ["ApiResource", "MAX_BODY_BYTES"]

log = logging.getLogger("acd.api")

# Requests here are tiny ({"reason": "lunch"}); anything big is a mistake or an attack.
MAX_BODY_BYTES = 16_384
# `GET /api/today` without ?since=: the last day. A "day" asked for is at most this long (a day with a
# daylight-saving change has 25 hours; more is a mistake, and a report's job: `acd report`).
TODAY_DEFAULT_SECONDS = 86400.0
# What a refused monitoring means and what to do (the wallboard shows the message as it is).
MONITOR_REFUSALS = {
    "already-monitored": "another supervisor monitors it (GET /api/monitoring says who)",
    "not-registered": "phone {supervisor} is not registered: register it, then try again",
    "no-rtp-port": "no RTP port free for the supervisor's call: try again in a moment",
}
TODAY_MAX_SECONDS = 26 * 3600.0


class ApiResource(resource.Resource):
    """/api/...; `reload(why)` is called for POST /api/reload and returns an outcome with `applied`,
    `generation`, `changes` and `problems` (acd.reload.ReloadOutcome)."""

    isLeaf = True

    def __init__(self, *, view: LiveView, desk: AgentDesk, events: EventHub, token: str,
                 reload: Callable[[str], Any], unlock: Callable[[str], bool] | None = None,
                 control: CallCommands | None = None, monitor: MonitorCommands | None = None,
                 sign_in: SignIn | None = None, history: Callable[[str, float], Deferred] | None = None,
                 trunks: Callable[[], list[dict[str, Any]]] | None = None,
                 today: Callable[[float], Deferred] | None = None,
                 cluster: Callable[[], dict[str, Any]] | None = None) -> None:
        """`sign_in`: web sessions (None: the token only). `history(agent, since)`: a Deferred firing
        with the agent's calls since then, read from the records off the reactor thread. `trunks()`:
        the trunks and their registrations at carriers. `today(since)`: a Deferred firing with the
        wallboard's figures since then (acd.today_figures.Today), read off the reactor thread."""
        super().__init__()
        self.view = view
        self.desk = desk
        self.events = events
        self.token = token
        self.reload = reload
        self.unlock = unlock  # clears a user's authentication lock (None without agents)
        self.control = control  # hang-up and transfer of calls in progress
        self.monitor = monitor  # supervisors listening, whispering, barging
        self.sign_in = sign_in
        self.desk_endpoints = DeskEndpoints(view=view, history=history)
        self.trunks = trunks  # the trunks and their registrations at carriers
        self.today = today  # the wallboard's figures of the day (per agent, per queue)
        self.cluster = cluster  # this node's role in a routing cluster (None: one node)

    def render(self, request: server.Request) -> bytes | int:  # noqa: D401 - Twisted API
        """Dispatch, answer JSON; ApiErrors become their status and error_id. Event streams stay open."""
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        try:
            principal = self._principal(request)
            parts = [p.decode() for p in request.postpath if p]
            check_access(principal, request.method.decode(), parts[1:] if parts[:1] == ["api"] else parts)
            if len(parts) == 2 and parts[0] == "events" and request.method == b"GET":
                self._check_topic(parts[1])
                if not self.events.subscribe(parts[1], request):
                    raise Conflict("too many event streams open", topic=parts[1])
                return server.NOT_DONE_YET
            status, body = self._dispatch(request, principal)
        except ApiError as error:
            status, body = _error_body(error)
        if isinstance(body, Deferred):
            body.addCallbacks(lambda result: (200, result), _deferred_error)
            body.addCallback(lambda answer: _finish(request, *answer))
            return server.NOT_DONE_YET
        request.setResponseCode(status)
        return json.dumps(body).encode() + b"\n"

    def _principal(self, request: server.Request) -> Principal:
        """Who sent the request: the API token (header or ?token=), else a web session's cookie; a
        change from a session must carry the session's CSRF token."""
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        # Browsers' EventSource cannot send headers: streams and the wallboard may pass ?token=.
        query = (request.args.get(b"token") or [b""])[0].decode("latin-1")
        given = header[7:].strip() if header.startswith("Bearer ") else query
        if given:
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise Unauthorized("send Authorization: Bearer <token> (the token is in the api token file)")
            return Principal(user="api-token", role="automation")
        cookie = (request.getCookie(SESSION_COOKIE) or b"").decode("latin-1")
        session = self.sign_in.sessions.find(cookie, self.view.now()) if self.sign_in and cookie else None
        if session is None:
            raise Unauthorized("sign in at /login, or send Authorization: Bearer <token> (the token is in the "
                               "api token file)")
        if request.method not in (b"GET", b"HEAD") and \
                not session.csrf_matches((request.getHeader(CSRF_HEADER) or b"").decode("latin-1")):
            raise CsrfRefused("a change from a web session needs its X-CSRF-Token header (GET /api/me gives it)")
        request.web_session = session
        return Principal(user=session.user, role=session.role, name=session.name)

    def _check_topic(self, topic: str) -> None:
        if topic == "wallboard":
            return
        if topic.startswith("agent-") and self.view.is_agent(topic[6:]):
            return
        raise NotFound(f"no event stream {topic!r} (wallboard, or agent-<id> of a configured agent)")

    def _dispatch(self, request: server.Request, principal: Principal) -> tuple[int, Any]:
        method = request.method.decode()
        parts = [p.decode() for p in request.postpath if p]
        if parts and parts[0] == "api":
            parts = parts[1:]
        desk = self.desk_endpoints.dispatch(method, parts, request, principal)
        if desk is not None:
            return 200, desk
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
        if parts == ["cluster"] and method == "GET":
            return 200, self.cluster() if self.cluster is not None else {"node_id": None, "role": "single"}
        if parts == ["trunks"] and method == "GET":
            return 200, self.trunks() if self.trunks is not None else []
        if parts == ["queues"] and method == "GET":
            return 200, self._queues()
        if parts == ["calls"] and method == "GET":
            return 200, self._calls(principal)
        if len(parts) == 3 and parts[0] == "calls" and parts[2] == "explanation" and method == "GET":
            return 200, self._call_explanation(parts[1])
        if len(parts) == 3 and parts[0] == "calls" and parts[2] == "monitor" and method in ("POST", "PATCH", "DELETE"):
            return 200, self._monitor(parts[1], method, self._body(request), principal)
        if parts == ["today"] and method == "GET":
            return 200, self._today(request)
        if parts == ["monitoring"] and method == "GET":
            return 200, self.monitor.describe() if self.monitor is not None else []
        if len(parts) == 3 and parts[0] == "calls" and parts[2] in ("hangup", "transfer") and method == "POST":
            return 200, self._call_command(parts[1], parts[2], self._body(request))
        if len(parts) == 2 and parts[0] == "calls" and method == "PATCH":
            return 200, self._change_call(parts[1], self._body(request))
        if parts == ["reload"] and method == "POST":
            outcome = self.reload("API" if principal.role == "automation" else f"API ({principal.user})")
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
        return [agent_entry(agent) for agent in self.view.agents()]

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
            code, notes = self.desk_endpoints.check_disposition(body)
            call_id = desk.set_disposition(agent_id, code, notes)
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

    def _monitor(self, call_id: str, method: str, body: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """POST {supervisor, mode}: call the supervisor's phone and join it to the call (a signed-in
        supervisor's own phone: `supervisor` may be left out, and no other may be named); PATCH {mode}:
        switch; DELETE: leave."""
        if self.monitor is None:
            raise NotFound("monitoring is not available on this server")
        mode = body.get("mode", "listen" if method == "POST" else None)
        if method != "DELETE" and mode not in ("listen", "whisper", "barge"):
            raise InvalidRequest('monitor with {"mode": "listen" | "whisper" | "barge"}' +
                                 (', "supervisor": "extension"' if method == "POST" else ""))
        if method == "POST":
            supervisor = body.get("supervisor", principal.user if principal.role == "supervisor" else None)
            if principal.role == "supervisor" and supervisor != principal.user:
                raise NotYourPhone(f"signed in as {principal.user}: you monitor on your own phone, not {supervisor!r}'s",
                                   supervisor=supervisor)
            if not isinstance(supervisor, str) or not supervisor or set(body) - {"supervisor", "mode"}:
                raise InvalidRequest('POST {"supervisor": "2001", "mode": "listen" | "whisper" | "barge"}')
            result = self.monitor.start(call_id, supervisor, mode, by=_by(principal))
            if result == "not-a-supervisor":
                raise NotASupervisor(f"{supervisor} is no supervisor account (role: supervisor in conf/agents.yaml)",
                                     supervisor=supervisor)
            if result == "not-bridged":
                raise NotFound(f"no call {call_id!r} talking to an agent now", call_id=call_id)
            if result != "calling":
                why = MONITOR_REFUSALS.get(result, result).format(supervisor=supervisor)
                raise MonitorRefused(f"cannot monitor call {call_id} now: {why}", call_id=call_id, result=result)
            log.info("call=%s monitoring by supervisor=%s (%s) via API", call_id, supervisor, mode)
            return {"call_id": call_id, "supervisor": supervisor, "mode": mode, "result": result}
        result = self.monitor.change(call_id, mode, by=_by(principal)) if method == "PATCH" \
            else self.monitor.stop(call_id, by=_by(principal))
        if result == "not-monitored":
            raise NotFound(f"no supervisor monitors call {call_id!r}", call_id=call_id)
        if result == "ringing":
            raise MonitorRefused(f"the supervisor's phone has not answered yet (call {call_id})", call_id=call_id,
                                 result=result)
        return {"call_id": call_id, "mode": mode, "result": result}

    def _today(self, request: server.Request) -> Deferred:
        """Per-agent and per-queue figures since `?since=` (POSIX seconds: the start of the wallboard's
        local day; without it the last 24 hours). The server never decides what today is."""
        if self.today is None:
            raise NotFound("the figures of the day are not available on this server")
        raw = (request.args.get(b"since") or [b""])[0].decode("latin-1")
        now = self.view.now()
        try:
            since = float(raw) if raw else now - TODAY_DEFAULT_SECONDS
        except ValueError:
            raise InvalidRequest(f"since must be POSIX seconds (the start of your day), not {raw!r}") from None
        if not since >= now - TODAY_MAX_SECONDS:
            raise InvalidRequest(f"since must be within the last {TODAY_MAX_SECONDS / 3600:.0f} hours (the start of "
                                 "your day; longer periods: acd report)", since=raw)
        return self.today(since).addCallback(_today_body)

    def _calls(self, principal: Principal) -> list[dict[str, Any]]:
        """Every call in progress; a signed-in agent's own calls only."""
        mine = principal.user if principal.role == "agent" else None
        return [{"call_id": call.call_id, "state": call.state, "dialled": call.dialled, "queue": call.queue,
                 "seconds": call.seconds, "agent": call.agent, "ivr_step": call.ivr_step,
                 "routing_explanation": call.routing_explanation, "customer": call.customer,
                 "waited_seconds": call.waited_seconds} for call in self.view.calls()
                if mine is None or call.agent == mine]


def _by(principal: Principal) -> str:
    """Who asked, for the logs and the records: the token, or a signed-in user."""
    return "API" if principal.role == "automation" else f"API ({principal.user})"


def _today_body(today: Any) -> dict[str, Any]:
    """The figures of the day as JSON, seconds rounded to tenths."""
    body = asdict(today)
    for entry in body["queues"] + body["agents"]:
        for key, value in entry.items():
            if key.endswith("seconds") and isinstance(value, float):
                entry[key] = round(value, 1)
        if entry.get("service_level") is not None:
            entry["service_level"] = round(entry["service_level"], 4)
    return body


def _error_body(error: ApiError) -> tuple[int, dict[str, Any]]:
    return error.status, {"error_id": error.error_id, "message": error.message, "details": error.details}


def _deferred_error(failure) -> tuple[int, dict[str, Any]]:
    """An ApiError from a Deferred answer becomes its status; anything else is a bug: logged, 500."""
    if failure.check(ApiError):
        return _error_body(failure.value)
    log.error("API request failed: %s", failure.getTraceback())
    return 500, {"error_id": "api-error", "message": "internal error (see the server log)", "details": {}}


def _finish(request: server.Request, status: int, body: Any) -> None:
    """Answer a request whose body came later (a read off the reactor thread), unless it went away."""
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.setResponseCode(status)
    request.write(json.dumps(body).encode() + b"\n")
    request.finish()
