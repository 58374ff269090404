"""InboundCalls: a new INVITE becomes a call. Which trunk, which route, which flow; media negotiated
and an RTP port bound before we answer; an agent's feature code (*45 log in, *46 log out, *47
pause, *48 ready) authenticated and confirmed by voice; a supervisor's monitor code (*60 listen,
*61 whisper, *62 barge + the agent's extension: acd.calls.monitoring; 403 for anyone else); DTMF
sent as SIP INFO.

Refusals answer at once: 403 unknown source, 404 no route, 488 unusable SDP (or SDP the trunk's or
agent's SRTP policy refuses), 503 no RTP port (stateless; logged once a second at most: admission
control, acd/calls/admission_gate.py, keeps calls under the range), and 503 (stateless) when too many
calls from a source that ACKs none, or from everywhere, wait for their ACK (`sip: limits:`,
`acd.sip.unconfirmed`). `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from ..config.model import Route
from ..config.srtp_policy import DEFAULT_SRTP_POLICY
from ..ivr.flow import Flow, PlayStep
from ..media.sdp import NegotiatedAudio, SdpError, SessionDescription, answer_offer, build_offer
from ..sip.build import new_tag
from ..sip.dialog import Dialog, wants_sips
from ..sip.errors import RemoteProtocolError
from ..sip.events import RequestReceived
from ..sip.headers import NameAddr, SipUri
from ..sip.identity import asserted_caller, diverted_from
from ..sip.rate_limit import ReportThrottle
from ..sip.reliable_provisional import peer_reliability
from ..sip.session_timer import TimerTerms, negotiate, peer_allows_update
from ..sip.unconfirmed import UnconfirmedCalls
from .call_table import CallTable
from .ivr_runner import IvrServices
from .null_records import NullRecords
from .ports import ConfigSource, Media, Records, Signalling, Webhooks
from .session import CallSession, configure_leg
from .session_timers import refusal_headers
from .trunk_auth import TrunkAuthenticator

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["AgentCommands", "InboundCalls", "FEATURE_PROMPTS", "dtmf_from_info"]

log = logging.getLogger("acd.sip")

# What an agent hears after a feature code, by the ACD's answer.
FEATURE_PROMPTS = {"logged-in": "agent_logged_in", "already": "agent_logged_in", "logged-out": "agent_logged_out",
                   "not-logged-in": "agent_logged_out", "paused": "agent_paused", "available": "agent_available",
                   "not-paused": "agent_available", "no-queues": "agent_no_queues"}
DTMF_SYMBOLS = frozenset("0123456789*#ABCD")
# How long a caller refused for too many unconfirmed calls should wait (RFC 3261 §21.5.4): the calls
# that fill the cap are ACKed within a round trip, or given up after 64*T1 at the latest.
UNCONFIRMED_RETRY_AFTER_SECONDS = 5
# One log line per source and interval for those refusals, however many INVITEs a flood sends.
REFUSAL_REPORT_SECONDS = 10.0
# At most one line a second for refusals that come in floods: no RTP port, a source that is no trunk.
CAPACITY_REPORT_SECONDS = 1.0
# When to try again after "no RTP port": calls end and free ports every second at this load.
NO_RTP_PORT_RETRY_AFTER_SECONDS = 5
# The media of a call whose INVITE had no SDP (delayed offer, RFC 3261 §13.2.1) until the ACK brings
# the answer to our offer in the 200: nowhere to send yet (0.0.0.0, as RFC 3264 §8.4 hold), PCMU.
AWAITING_ANSWER = NegotiatedAudio(remote_address="0.0.0.0", remote_port=9, payload_type=0, codec="PCMU",
                                  telephone_event_pt=None, direction="sendrecv")


class AgentCommands(Protocol):
    """Agent state changes (the ACD); each returns what happened ("logged-in", "already"...)."""

    def login(self, agent_id: str) -> str: ...

    def logout(self, agent_id: str) -> str: ...

    def pause(self, agent_id: str, reason: str) -> str: ...

    def unpause(self, agent_id: str) -> str: ...


class Authenticator(Protocol):
    """Digest authentication of a request (the registrar); None after answering 401/403 itself."""

    def authenticate(self, event: RequestReceived, what: str) -> str | None: ...


def dtmf_from_info(content_type: str, body: str) -> str | None:
    """The digit in a SIP INFO body: application/dtmf-relay `Signal=5`, or application/dtmf `5`."""
    digit = None
    if content_type == "application/dtmf-relay":
        for line in body.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                digit = value.strip()[:1]
    elif content_type == "application/dtmf":
        digit = body.strip()[:1]
    return digit.upper() if digit and digit.upper() in DTMF_SYMBOLS else None


class InboundCalls:
    """Implements `CallSetup` for the SipServer."""

    def __init__(self, *, signalling: Signalling, media: Media, config: ConfigSource, records: Records,
                 webhooks: Webhooks, metrics: "Metrics", reactor, calls: CallTable, ivr: IvrServices,
                 agents: AgentCommands, authenticator: Authenticator | None, on_call_ended,
                 monitoring: Any = None) -> None:
        """`on_call_ended(session)` lets the ACD release what it holds for the call; `monitoring`
        (acd.calls.monitoring.Monitoring) takes supervisors' monitor codes (None: no such codes)."""
        self.signalling = signalling
        self.media = media
        self.config = config
        self.records = records
        self.webhooks = webhooks
        self.metrics = metrics
        self.reactor = reactor
        self.calls = calls
        self.ivr = ivr
        self.agents = agents
        self.authenticator = authenticator
        self.on_call_ended = on_call_ended
        self.monitoring = monitoring
        self.unconfirmed = UnconfirmedCalls()
        self.trunk_auth = TrunkAuthenticator(signalling=signalling, reactor=reactor)
        self._refusal_reports = ReportThrottle(interval_seconds=REFUSAL_REPORT_SECONDS)
        self._capacity_reports = ReportThrottle(interval_seconds=CAPACITY_REPORT_SECONDS)

    def new_call(self, event: RequestReceived) -> None:
        """An INVITE outside any dialog: a feature code, or a trunk call routed by the dialplan."""
        request = event.request
        call_id = request.call_id
        host, port = event.source
        config = self.config.config
        dialled = SipUri.parse(request.uri).user or ""
        feature = self._feature_code(dialled)
        if feature is not None:
            self._feature_call(event, feature, dialled)
            return
        monitor = self._monitor_code(dialled) if self.monitoring is not None else None
        if monitor is not None:
            self._monitor_call(event, *monitor, dialled)
            return
        trunk = config.trunk_for(host, port)
        if trunk is None and any(t.auth is not None for t in config.trunks):
            trunk = self.trunk_auth.identify(event, config.trunks)  # 407 until a trunk's credentials come
            if trunk is None:
                return
        if trunk is None:
            refused = self._capacity_reports.report("not_a_trunk", self.reactor.seconds())
            if refused is not None:
                log.warning("call=%s refused 403: source %s:%s is not a configured trunk (%d INVITE(s) from "
                            "sources that are no trunk since the last such line)", call_id, host, port, refused)
            # Stateless: a spoofed source must not get the 403 retransmitted to it until Timer H.
            self.signalling.respond(event.transaction_id, 403, to_tag=new_tag(), stateless=True)
            return
        if trunk.register is not None and dialled == trunk.register.user:
            # A carrier we register at calls our Contact (sip:account@us, the registrar's rewrite of the
            # Request-URI, RFC 3261 §16.5): the number the caller dialled is the To user.
            dialled = SipUri.parse(NameAddr.parse(request.headers.get("To", "")).uri).user or dialled
        route = config.route_for(dialled)
        if route is None:
            log.info("call=%s refused 404: no dialplan route for %r (trunk %s)", call_id, dialled, trunk.name)
            self.signalling.respond(event.transaction_id, 404, to_tag=new_tag())
            return
        session = self._start_session(event, dialled, config.flows[route.flow], trunk=trunk.name, route=route,
                                      srtp=trunk.srtp, dtmf=trunk.dtmf, trusted=trunk.trusted)
        if session is not None:
            log.info("call=%s INVITE from=%s dialled=%s trunk=%s source=%s:%s route=%s media=%s", call_id,
                     session.dialog.remote_uri, dialled, trunk.name, host, port, route.source,  # the From URI
                     "srtp" if session.negotiated.srtp else "rtp")
            session.start(route.answer_after_seconds)

    def confirmed(self, session: Any) -> None:
        """The caller's ACK for our 200 OK arrived."""
        session.on_ack()
        self.unconfirmed.confirm(session.call_id, self.reactor.seconds())

    def info(self, session: Any, event: RequestReceived) -> None:
        """SIP INFO inside a caller's dialog: 200, and a DTMF digit to the call when it carries one."""
        content_type = (event.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        self.signalling.respond(event.transaction_id, 200)
        digit = dtmf_from_info(content_type, event.request.body.decode("utf-8", "replace"))
        if digit is not None:
            session.on_digit(digit, method="info")

    def _refuse(self, event: RequestReceived, status: int, why: str, headers=()) -> None:
        log.info("call=%s refused %d: %s", event.request.call_id, status, why)
        self.signalling.respond(event.transaction_id, status, to_tag=new_tag(), headers=headers)

    def _start_session(self, event: RequestReceived, dialled: str, flow: Flow, *, trunk: str,
                       route: Route, srtp: str, near: str | None = None, runner_for=None,
                       dtmf: str = "auto", trusted: bool = False) -> CallSession | None:
        """Negotiate media (under the SRTP policy `srtp`), bind an RTP port and build the CallSession
        with its IVR (or what `runner_for` builds; digits by the trunk's `dtmf` mode); None if refused.
        `near`: a call whose media this one's will be mixed with (one media worker). `trusted`: the
        trunk's P-Asserted-Identity names the caller."""
        request = event.request
        call_id = request.call_id
        try:  # no body: a delayed offer (RFC 3261 §13.2.1), ours goes in the 200
            offer = SessionDescription.parse(request.body) if request.body.strip() else None
        except SdpError as error:
            self._refuse(event, 488, str(error), headers=(("Warning", f'399 acd "{error}"'),))
            return None
        # Everything that can refuse the request (no Contact, a malformed From) is checked before an RTP
        # port is taken: a refused INVITE must leave nothing allocated.
        contact = self.signalling.contact(event.transport, secure=wants_sips(request))
        dialog = Dialog.as_uas(request, local_tag=new_tag(), local_contact=contact, source=event.source,
                               transport=event.transport)
        from_addr = NameAddr.parse(request.headers.get("From", ""))
        caller = SipUri.parse(from_addr.uri).user or ""
        if trusted:
            caller = self._asserted_caller(request, trunk, caller)
        timer_settings = self.config.config.sip.session_timer
        try:  # RFC 4028 §9: an interval below our minimum gets 422 with our Min-SE
            session_timer = negotiate(request, min_seconds=timer_settings.min_seconds,
                                      default_seconds=timer_settings.default_seconds)
        except RemoteProtocolError as error:
            self._refuse(event, error.status, error.reason, headers=refusal_headers(error))
            return None
        if self._over_unconfirmed_cap(event):
            return None
        holder: list[CallSession] = []
        # The leg reaches its session through the call table, not by holding it: no reference cycle,
        # so an ended call's objects are freed at once rather than by the garbage collector.
        sessions = self.calls.sessions

        def on_digit(digit: str, method: str = "rfc4733") -> None:
            session = sessions.get(call_id)
            if session is not None:
                session.on_digit(digit, method)

        def on_playback_finished(playback_id: int) -> None:
            session = sessions.get(call_id)
            if session is not None:
                session.on_playback_finished(playback_id)

        leg = self.media.new_leg(call_id=call_id, codec="PCMU", payload_type=0, telephone_event_pt=None,
                                 on_digit=on_digit, on_playback_finished=on_playback_finished, near=near)
        local_port = self.media.open(leg)
        if local_port is None:
            self._no_rtp_port(event)
            return None
        try:
            return self._session_on_port(event, dialled, flow, trunk=trunk, route=route, offer=offer, dialog=dialog,
                                         caller=caller, display_name=from_addr.display_name, leg=leg,
                                         local_port=local_port, holder=holder, srtp=srtp,
                                         session_timer=session_timer, runner_for=runner_for, dtmf=dtmf)
        except BaseException:
            if not holder:
                self.media.release(leg)
            raise

    @staticmethod
    def _asserted_caller(request, trunk: str, caller: str) -> str:
        """The number a trusted trunk asserts (RFC 3325), else the From user; logs where it differs."""
        asserted, diverted = asserted_caller(request.headers), diverted_from(request.headers)
        if (asserted is not None and asserted != caller) or diverted is not None:
            log.info("call=%s trusted trunk %s asserts caller=%s (From user %r) diverted_from=%s", request.call_id,
                     trunk, asserted or caller, caller, diverted or "-")
        return asserted or caller

    def _no_rtp_port(self, event: RequestReceived) -> None:
        """Refuse (503, stateless) a call no RTP port is left for: counted, and logged once a second at
        most with how many (a flood of them must not become a flood of log lines)."""
        self.metrics.admission_refused.labels("no_rtp_port").inc()
        refused = self._capacity_reports.report("no_rtp_port", self.reactor.seconds())
        if refused is not None:
            rtp = self.config.config.rtp
            log.error("call=%s refused 503: no free RTP port in %s-%s (%d call(s) refused for it since the last such "
                      "line); widen rtp ports or lower sip admission max_calls", event.request.call_id, rtp.port_min,
                      rtp.port_max, refused)
        self.signalling.respond(event.transaction_id, 503, to_tag=new_tag(), stateless=True,
                                headers=(("Retry-After", str(NO_RTP_PORT_RETRY_AFTER_SECONDS)),))

    def _over_unconfirmed_cap(self, event: RequestReceived) -> bool:
        """Refuse (503, stateless) a call that would pass a cap on calls waiting for their ACK."""
        config = self.config.config
        per_source, total = config.sip.limits.unconfirmed_caps(config.rtp)
        host, now = event.source[0], self.reactor.seconds()
        cap = self.unconfirmed.refusal(host, now, max_per_source=per_source, max_total=total)
        if cap is None:
            return False
        self.metrics.unconfirmed_refused.labels(cap).inc()
        refused = self._refusal_reports.report(host, now)
        if refused is not None:
            log.warning("call=%s refused 503: %d calls from %s and %d in all wait for their ACK (caps: %d per "
                        "source that ACKs none, %d in all; sip: limits: in conf/acd.yaml); %d INVITE(s) from %s "
                        "refused for it since the last such line", event.request.call_id,
                        self.unconfirmed.count(host), host, self.unconfirmed.total, per_source, total, refused, host)
        # Stateless: under a flood, no transaction is kept and nothing is retransmitted; a trunk's
        # retransmitted INVITE gets its own 503 (or the call, once there is room again).
        self.signalling.respond(event.transaction_id, 503, to_tag=new_tag(), stateless=True,
                                headers=(("Retry-After", str(UNCONFIRMED_RETRY_AFTER_SECONDS)),
                                         ("Warning", '399 acd "too many calls wait for their ACK"')))
        return True

    def _session_on_port(self, event: RequestReceived, dialled: str, flow: Flow, *, trunk: str, route: Route,
                         offer: SessionDescription | None, dialog: Dialog, caller: str, display_name: str | None,
                         leg, local_port: int, holder: list, srtp: str,
                         session_timer: TimerTerms | None = None, runner_for=None,
                         dtmf: str = "auto") -> CallSession | None:
        """The rest of `_start_session` once the RTP port is bound (the caller releases it if this raises)."""
        request = event.request
        call_id = request.call_id
        srtp_key = self.media.new_srtp_key() if srtp != "off" else None
        if offer is None:
            answer = build_offer(self.media.address, local_port, self.media.session_id(), srtp=srtp,
                                 srtp_key=srtp_key)
            negotiated = AWAITING_ANSWER
        else:
            try:
                answer, negotiated = answer_offer(offer, local_address=self.media.address, local_port=local_port,
                                                  session_id=self.media.session_id(), srtp=srtp, srtp_key=srtp_key)
            except SdpError as error:
                self.media.release(leg)
                self._refuse(event, 488, str(error), headers=(("Warning", f'399 acd "{error}"'),))
                return None
        configure_leg(leg, negotiated)
        leg.remote = (negotiated.remote_address, negotiated.remote_port)
        internal = trunk.startswith("agent:")
        context = self.ivr.new_context(caller=caller, caller_name=display_name, dialled=dialled,
                                       trunk=trunk, call_id=call_id)
        session = CallSession(signalling=self.signalling, media=self.media,
                              records=NullRecords() if internal else self.records, webhooks=self.webhooks,
                              metrics=self.metrics, config=self.config, reactor=self.reactor,
                              on_ended=self._ended, call_id=call_id, invite=request,
                              invite_transaction=event.transaction_id, dialog=dialog, route=route, trunk=trunk,
                              leg=leg, local_port=local_port, negotiated=negotiated, sdp_answer=bytes(answer),
                              runner_for=runner_for or self.ivr.runner, flow=flow, context=context, srtp=srtp, srtp_key=srtp_key,
                              session_timer=session_timer, refresh_with_update=peer_allows_update(request),
                              offer_in_200=offer is None, reliability=peer_reliability(request),
                              announcement=self._announcement(call_id, flow, offer), dtmf=dtmf)
        holder.append(session)
        self.calls.add_session(session)
        self.unconfirmed.add(call_id, event.source[0])
        session.records.call_arrived(call_id, trunk=trunk, caller=caller, dialled=dialled, at=self.reactor.seconds())
        return session

    @staticmethod
    def _announcement(call_id: str, flow: Flow, offer: SessionDescription | None) -> tuple[str, ...]:
        """The flow's announce_before_answer, unless the INVITE had no SDP: early media needs the
        caller's offer to answer in the 183 (our offer there is not supported), so it is skipped."""
        if flow.announce_before_answer and offer is None:
            log.info("call=%s no early media announcement: the INVITE has no SDP offer", call_id)
            return ()
        return flow.announce_before_answer

    def _ended(self, session: CallSession) -> None:
        self.unconfirmed.discard(session.call_id)
        self.on_call_ended(session)
        self.calls.forget_session(session)

    # ---- agents' feature codes ---------------------------------------------------------------
    def _feature_code(self, dialled: str) -> str | None:
        """The feature a dialled number is: exact codes, or the pause code followed by a reason code."""
        agents = self.config.config.agents
        if agents is None:
            return None
        exact = next((name for name, code in agents.feature_codes.items() if code == dialled), None)
        if exact is not None:
            return exact
        pause = agents.feature_codes.get("pause", "")
        if pause and dialled.startswith(pause) and dialled[len(pause):] in agents.pause_reasons:
            return "pause"
        return None

    def _monitor_code(self, dialled: str) -> tuple[str, str] | None:
        """(mode, agent extension) when `dialled` is a monitor code followed by an extension."""
        agents = self.config.config.agents
        if agents is None:
            return None
        for mode, code in agents.monitor_codes.items():
            if dialled.startswith(code) and len(dialled) > len(code):
                return mode, dialled[len(code):]
        return None

    def _monitor_call(self, event: RequestReceived, mode: str, agent_id: str, dialled: str) -> None:
        """A monitor code: authenticate, refuse (403) anyone but a supervisor, find the agent's call,
        answer and join it (acd.calls.monitoring)."""
        if self.authenticator is None:
            self.signalling.respond(event.transaction_id, 404, to_tag=new_tag())
            return
        user = self.authenticator.authenticate(event, f"monitor code {mode}")
        if user is None:
            return
        monitoring = self.monitoring
        call_id = monitoring.call_of_agent(agent_id)
        why = monitoring.refusal(call_id, user)
        if why == "not-a-supervisor":
            log.warning("user=%s refused 403: not a supervisor, may not %s agent=%s (add role: supervisor in "
                        "conf/agents.yaml to allow it)", user, mode, agent_id)
            self._refuse(event, 403, f"{user} is not a supervisor", headers=(
                ("Warning", '399 acd "only supervisors may listen to calls"'),))
            return
        if why is not None:
            status, text = (486, "someone already monitors this call") if why == "already-monitored" \
                else (404, f"agent {agent_id} is on no call now")
            self._refuse(event, status, f"supervisor {user} cannot {mode} agent {agent_id}: {text}",
                         headers=(("Warning", f'399 acd "{text}"'),))
            return
        flow = Flow(name=f"monitor-{mode}", start="monitor",
                    steps={"monitor": PlayStep(name="monitor", prompts=(), next=None)})
        account = self.config.config.agents.agents.get(user)
        session = self._start_session(event, dialled, flow, trunk=f"agent:{user}", route=Route(flow=flow.name,
                                      number=dialled), srtp=account.srtp if account is not None else DEFAULT_SRTP_POLICY,
                                      near=call_id, runner_for=monitoring.runner_for(user, call_id, agent_id, mode))
        if session is not None:
            log.info("call=%s supervisor=%s dialled %s: %s agent=%s on call=%s", session.call_id, user, dialled,
                     mode, agent_id, call_id)
            session.start(0.0)

    def _feature_call(self, event: RequestReceived, feature: str, dialled: str) -> None:
        """An agent dialled a feature code: authenticate, change their state, confirm by voice, hang up."""
        if self.authenticator is None:
            self.signalling.respond(event.transaction_id, 404, to_tag=new_tag())
            return
        agent_id = self.authenticator.authenticate(event, f"feature code {feature}")
        if agent_id is None:
            return
        agents_config = self.config.config.agents
        reason_code = dialled[len(agents_config.feature_codes.get("pause", "")):] if feature == "pause" else ""
        reason = agents_config.pause_reasons.get(reason_code, "break")
        agents = self.agents
        result = {"login": agents.login, "logout": agents.logout, "unpause": agents.unpause,
                  "pause": lambda agent: agents.pause(agent, reason)}[feature](agent_id)
        log.info("agent=%s feature=%s result=%s", agent_id, feature, result)
        flow = Flow(name=f"feature-{feature}", start="confirm",
                    steps={"confirm": PlayStep(name="confirm", prompts=(FEATURE_PROMPTS[result],), next=None)})
        route = Route(flow=flow.name, number=dialled)
        agent = agents_config.agents.get(agent_id)
        session = self._start_session(event, dialled, flow, trunk=f"agent:{agent_id}", route=route,
                                      srtp=agent.srtp if agent is not None else DEFAULT_SRTP_POLICY)
        if session is not None:
            session.start(0.0)
