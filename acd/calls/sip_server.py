"""SipServer: drives the sans-IO SipEndpoint on the reactor and dispatches requests to calls.

It owns the one IDelayedCall for the endpoint's next deadline (STYLE 2), the sessions by Call-ID,
and the decisions that need config: which trunk, which route, which flow. `reactor` must provide
IReactorTime and IReactorUDP.
"""

from __future__ import annotations

import logging
import random
from typing import Callable

from ..config.model import Config, Route
from ..api.events import EventHub
from ..context.crm import CrmClient
from .null_records import NullRecords
from ..metrics import SIP_METHODS, Metrics
from ..ivr.context import CallContext
from ..ivr.flow import Flow, PlayStep
from ..ivr.interpreter import FlowRun
from ..media.prompts import PromptLibrary
from ..media.sdp import SdpError, SessionDescription, answer_offer
from ..sip.build import new_tag
from ..sip.dialog import Dialog
from ..sip.endpoint import SipEndpoint
from ..sip.errors import RemoteProtocolError
from ..sip.events import (AckReceived, CancelReceived, Datagram, MessageDropped, MessageRejected, RequestReceived,
                          ResponseReceived, TransactionTimedOut)
from ..sip.headers import NameAddr, SipUri
from ..sip.message import Request
from .acd_service import AcdService
from .agent_leg import AgentLeg
from .ivr_runner import IvrRunner
from .rtp_leg import MediaClock, RtpLeg, RtpPortAllocator
from .session import CallSession, CallState

__all__ = ["SipServer"]

log = logging.getLogger("acd.sip")

ALLOWED_METHODS = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY"
SERVER_NAME = "acd/0.1"


class SipServer:
    """The call-handling shell around one SipEndpoint."""

    def __init__(self, *, config: Config, reactor, prompts: PromptLibrary, recognizers=None,
                 rng: random.Random | None = None, metrics: Metrics | None = None, records=None,
                 directory=None) -> None:
        self.config = config
        self.reactor = reactor
        self.prompts = prompts
        self.recognizers = recognizers
        self.registrar = None
        self.metrics = metrics or Metrics()
        self.metrics.attach(self)
        self.events = EventHub(reactor)
        self.records = records or NullRecords()
        self.directory = directory
        self.crm = CrmClient(reactor, lookup_url=config.crm_lookup_url, webhook_url=config.crm_webhook_url,
                             timeout_seconds=config.crm_timeout_seconds) \
            if (config.crm_lookup_url or config.crm_webhook_url) else None
        self.rng = rng or random.Random()
        self.endpoint = SipEndpoint(local_host=config.sip.public_address, local_port=config.sip.port)
        self.media_clock = MediaClock(reactor)
        self.ports = RtpPortAllocator(reactor, config.rtp.address, config.rtp.port_min, config.rtp.port_max)
        self.sessions: dict[str, CallSession] = {}
        self.agent_legs: dict[str, AgentLeg] = {}
        self._agent_invites: dict[tuple, AgentLeg] = {}
        self.acd = AcdService(server=self, reactor=reactor, config=config, contacts=self.agent_contacts)
        self._request_owner: dict[tuple, tuple[CallSession, str]] = {}
        self._senders: dict[str, Callable[[Datagram], None]] = {}
        self._timer = None
        self._timer_deadline: float | None = None

    def set_sender(self, transport: str, send: Callable[[Datagram], None]) -> None:
        """Register how datagrams of a transport ("UDP", "TCP") leave."""
        self._senders[transport] = send

    # ---- input -------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, source: tuple[str, int], transport: str) -> None:
        """Feed one received message; everything that follows happens before this returns."""
        self.endpoint.receive(data, source, transport, self.reactor.seconds())
        self._process()

    def _process(self) -> None:
        endpoint = self.endpoint
        while (event := endpoint.next_event()) is not None:
            if isinstance(event, RequestReceived):
                method = event.request.method
                self.metrics.sip_requests.labels(method if method in SIP_METHODS else "other").inc()
                try:
                    self._on_request(event)
                except RemoteProtocolError as error:
                    log.info("call=%s %s rejected %d: %s", event.request.call_id, event.request.method,
                             error.status, error.reason)
                    self.endpoint.respond(event.transaction_id, error.status, now=self.reactor.seconds(),
                                          to_tag=new_tag(), headers=(("Warning", f'399 acd "{error.reason[:100]}"'),))
            elif isinstance(event, AckReceived):
                session = self.sessions.get(event.request.call_id)
                if session is not None:
                    session.on_ack()
            elif isinstance(event, CancelReceived):
                session = self.sessions.get(event.request.call_id)
                if session is not None:
                    log.info("call=%s CANCEL received", session.call_id)
                    session.on_cancel()
            elif isinstance(event, ResponseReceived):
                self._on_response(event)
            elif isinstance(event, TransactionTimedOut):
                self._on_timeout(event)
            elif isinstance(event, MessageRejected):
                log.warning("rejected %d from %s:%s: %s; raw=%r", event.status, event.source[0], event.source[1],
                            event.reason, event.raw[:200])
            elif isinstance(event, MessageDropped):
                log.warning("dropped message from %s:%s: %s; raw=%r", event.source[0], event.source[1],
                            event.reason, event.raw[:200])
        self._flush()

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        method = request.method
        to_tag = NameAddr.parse(request.headers.get("To", "")).tag
        agent_leg = self.agent_legs.get(request.call_id)
        if agent_leg is not None and to_tag is not None:
            self._on_agent_leg_request(agent_leg, event, to_tag)
            return
        session = self.sessions.get(request.call_id)
        if method == "INVITE" and to_tag is None:
            if session is not None:
                raise RemoteProtocolError("a call with this Call-ID is already in progress", 482)
            self._new_call(event)
            return
        if method == "REGISTER":
            if self.registrar is None:
                self.respond(event.transaction_id, 405, to_tag=new_tag(), headers=(("Allow", ALLOWED_METHODS),))
            else:
                self.registrar.on_register(event)
            return
        if method == "OPTIONS" and to_tag is None:
            self.respond(event.transaction_id, 200, to_tag=new_tag(), headers=self.capability_headers())
            return
        if to_tag is not None:
            if session is None or to_tag != session.dialog.local_tag:
                raise RemoteProtocolError("no dialog matches this request", 481)
            session.dialog.check_request(request)
            if method == "BYE":
                session.on_bye(event.transaction_id)
            elif method == "INVITE":
                session.on_reinvite(request, event.transaction_id)
            elif method == "INFO":
                self._on_info(session, event)
            elif method == "NOTIFY":
                session.on_notify(request, event.transaction_id)
            elif method == "OPTIONS":
                self.respond(event.transaction_id, 200, headers=self.capability_headers())
            else:
                self.respond(event.transaction_id, 405, headers=(("Allow", ALLOWED_METHODS),))
            return
        if method in ("BYE", "INFO", "NOTIFY"):
            raise RemoteProtocolError(f"{method} outside a dialog", 481)
        self.respond(event.transaction_id, 405 if method in ("SUBSCRIBE", "MESSAGE", "NOTIFY",
                                                             "REFER", "PRACK", "UPDATE", "PUBLISH") else 501,
                     to_tag=new_tag(), headers=(("Allow", ALLOWED_METHODS),))

    def _on_agent_leg_request(self, leg: AgentLeg, event: RequestReceived, to_tag: str) -> None:
        """Requests the agent's phone sends inside our offer's dialog."""
        if leg.dialog is None or to_tag != leg.dialog.local_tag:
            raise RemoteProtocolError("no dialog matches this request", 481)
        leg.dialog.check_request(event.request)
        method = event.request.method
        if method == "BYE":
            leg.on_bye(event.transaction_id)
        elif method == "INVITE":
            leg.on_reinvite(event.request, event.transaction_id)
        elif method == "REFER":
            leg.on_refer(event.request, event.transaction_id)
        elif method in ("INFO", "NOTIFY", "OPTIONS"):
            self.respond(event.transaction_id, 200)
        else:
            self.respond(event.transaction_id, 405, headers=(("Allow", ALLOWED_METHODS),))

    def _on_info(self, session: CallSession, event: RequestReceived) -> None:
        """SIP INFO DTMF (application/dtmf-relay `Signal=5`, or application/dtmf `5`)."""
        content_type = (event.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        self.respond(event.transaction_id, 200)
        body = event.request.body.decode("utf-8", "replace")
        digit = None
        if content_type == "application/dtmf-relay":
            for line in body.splitlines():
                name, _, value = line.partition("=")
                if name.strip().lower() == "signal":
                    digit = value.strip()[:1]
        elif content_type == "application/dtmf":
            digit = body.strip()[:1]
        if digit and digit.upper() in set("0123456789*#ABCD"):
            session.on_digit(digit.upper(), method="info")

    def _new_call(self, event: RequestReceived) -> None:
        request = event.request
        call_id = request.call_id
        host, port = event.source
        dialled = SipUri.parse(request.uri).user or ""
        feature = self._feature_code(dialled)
        if feature is not None:
            self._feature_call(event, feature)
            return
        trunk = self.config.trunk_for(host, port)
        if trunk is None:
            log.warning("call=%s refused 403: source %s:%s is not a configured trunk", call_id, host, port)
            self.respond(event.transaction_id, 403, to_tag=new_tag())
            return
        route = self.config.route_for(dialled)
        if route is None:
            log.info("call=%s refused 404: no dialplan route for %r (trunk %s)", call_id, dialled, trunk.name)
            self.respond(event.transaction_id, 404, to_tag=new_tag())
            return
        flow = self.config.flows[route.flow]
        session = self._start_session(event, dialled, flow, trunk=trunk.name, route=route)
        if session is not None:
            log.info("call=%s INVITE from=%s dialled=%s trunk=%s source=%s:%s route=%s", call_id,
                     NameAddr.parse(request.headers.get("From", "")).uri, dialled, trunk.name, host, port, route.source)
            session.start(route.answer_after_seconds)

    def _start_session(self, event: RequestReceived, dialled: str, flow, *, trunk: str,
                       route) -> CallSession | None:
        """Negotiate media, bind an RTP port and build the CallSession with its IVR; None if refused."""
        request = event.request
        call_id = request.call_id
        try:
            offer = SessionDescription.parse(request.body)
        except SdpError as error:
            log.info("call=%s refused 488: %s", call_id, error)
            self.respond(event.transaction_id, 488, to_tag=new_tag(), headers=(("Warning", f'399 acd "{error}"'),))
            return None
        holder: list[CallSession] = []
        leg = RtpLeg(call_id=call_id, codec="PCMU", payload_type=0, remote=("0.0.0.0", 0), telephone_event_pt=None,
                     on_digit=lambda digit: holder[0].on_digit(digit) if holder else None,
                     on_playback_finished=lambda pid: holder[0].on_playback_finished(pid) if holder else None,
                     rng=self.rng)
        local_port = self.ports.listen(leg)
        if local_port is None:
            log.error("call=%s refused 503: no free RTP port in %s-%s", call_id, self.config.rtp.port_min,
                      self.config.rtp.port_max)
            self.respond(event.transaction_id, 503, to_tag=new_tag(), headers=(("Retry-After", "5"),))
            return None
        try:
            answer, negotiated = answer_offer(offer, local_address=self.config.rtp.address, local_port=local_port,
                                              session_id=self.rng.getrandbits(31))
        except SdpError as error:
            leg.transport.stopListening()
            log.info("call=%s refused 488: %s", call_id, error)
            self.respond(event.transaction_id, 488, to_tag=new_tag(), headers=(("Warning", f'399 acd "{error}"'),))
            return None
        leg.codec = negotiated.codec
        leg.payload_type = negotiated.payload_type
        leg.silence = bytes([0xFF if negotiated.codec == "PCMU" else 0xD5]) * 160
        leg.telephone_event_pt = negotiated.telephone_event_pt
        leg.remote = (negotiated.remote_address, negotiated.remote_port)
        dialog = Dialog.as_uas(request, local_tag=new_tag(), local_contact=self._contact(event.transport),
                               source=event.source, transport=event.transport)
        session = CallSession(server=self, reactor=self.reactor, call_id=call_id, invite=request,
                              invite_transaction=event.transaction_id, dialog=dialog, route=route, trunk=trunk,
                              leg=leg, local_port=local_port, negotiated=negotiated, sdp_answer=bytes(answer),
                              prompts=self.prompts, media_clock=self.media_clock)
        from_addr = NameAddr.parse(request.headers.get("From", ""))
        caller = SipUri.parse(from_addr.uri).user or ""
        context = CallContext({"caller_id": caller, "caller_name": from_addr.display_name, "dialled": dialled,
                               "trunk": trunk, "call_id": call_id})
        config = self.config
        flow_run = FlowRun(flow, flows=config.flows, context=context, calendars=config.calendars)
        session.ivr = IvrRunner(session, flow_run, reactor=self.reactor, recognizers=self.recognizers,
                                lookups=config.lookups, recordings_dir=config.data_dir / "recordings")
        holder.append(session)
        self.sessions[call_id] = session
        session.records.call_arrived(call_id, trunk=trunk, caller=caller, dialled=dialled, at=self.reactor.seconds())
        return session

    def _feature_code(self, dialled: str) -> str | None:
        """The feature a dialled number is: exact codes, or the pause code followed by a reason code."""
        agents = self.config.agents
        if agents is None:
            return None
        exact = next((name for name, code in agents.feature_codes.items() if code == dialled), None)
        if exact is not None:
            return exact
        pause = agents.feature_codes.get("pause", "")
        if pause and dialled.startswith(pause) and dialled[len(pause):] in agents.pause_reasons:
            return "pause"
        return None

    def _feature_call(self, event: RequestReceived, feature: str) -> None:
        """An agent dialled a feature code: authenticate, change their state, confirm by voice, hang up."""
        if self.registrar is None:
            self.respond(event.transaction_id, 404, to_tag=new_tag())
            return
        agent_id = self.registrar.authenticate(event, f"feature code {feature}")
        if agent_id is None:
            return
        acd = self.acd
        dialled = SipUri.parse(event.request.uri).user or ""
        reason_code = dialled[len(self.config.agents.feature_codes.get("pause", "")):] if feature == "pause" else ""
        reason = self.config.agents.pause_reasons.get(reason_code, "break")
        result = {"login": acd.login, "logout": acd.logout, "unpause": acd.unpause,
                  "pause": lambda agent: acd.pause(agent, reason)}[feature](agent_id)
        log.info("agent=%s feature=%s result=%s", agent_id, feature, result)
        prompt = {"logged-in": "agent_logged_in", "already": "agent_logged_in", "logged-out": "agent_logged_out",
                  "not-logged-in": "agent_logged_out", "paused": "agent_paused", "available": "agent_available",
                  "not-paused": "agent_available", "no-queues": "agent_no_queues"}[result]
        flow = Flow(name=f"feature-{feature}", start="confirm",
                    steps={"confirm": PlayStep(name="confirm", prompts=(prompt,), next=None)})
        route = Route(flow=flow.name, number=dialled)
        session = self._start_session(event, route.number, flow, trunk=f"agent:{agent_id}", route=route)
        if session is not None:
            session.start(0.0)
    def _on_response(self, event: ResponseReceived) -> None:
        if event.method == "INVITE":
            leg = self._agent_invites.get(event.transaction_id) if event.transaction_id else None
            if leg is None and event.transaction_id is None:
                leg = self.agent_legs.get(event.response.call_id)  # a 2xx retransmitted after Timer M
            if leg is not None:
                leg.on_invite_response(event.response)
            return
        if event.transaction_id is None:
            return
        owner = self._request_owner.get(event.transaction_id)
        if owner is not None and event.response.status >= 200:
            del self._request_owner[event.transaction_id]
            owner[0].on_response(owner[1], event.response.status)

    def _on_timeout(self, event: TransactionTimedOut) -> None:
        if event.reason == "no-ack":
            session = self.sessions.get(event.call_id)
            if session is not None and session.state is CallState.ANSWERED:
                log.warning("call=%s no ACK for 200 OK within 64*T1; hanging up", event.call_id)
                session.on_ack_timeout()
                self._flush()
            return
        leg = self._agent_invites.pop(event.transaction_id, None)
        if leg is not None:
            log.warning("call=%s agent=%s: no final response to our INVITE", leg.customer_call_id, leg.agent_id)
            leg.on_invite_timeout()
            return
        owner = self._request_owner.pop(event.transaction_id, None)
        if owner is not None:
            log.warning("call=%s no answer to our %s", owner[0].call_id, event.method)
            owner[0].on_response(owner[1], None)

    # ---- output ------------------------------------------------------------------------------
    def respond(self, transaction: tuple, status: int, *, to_tag: str | None = None, body: bytes = b"",
                headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Answer a server transaction; the response leaves at once."""
        self.metrics.sip_responses.labels(str(status)).inc()
        if status >= 300 and transaction[-1] == "INVITE" and status not in (401, 487):
            self.metrics.calls_refused.labels(str(status)).inc()
        self.endpoint.respond(transaction, status, now=self.reactor.seconds(), to_tag=to_tag, body=body,
                              headers=(("Server", SERVER_NAME), *headers),
                              content_type="application/sdp" if body else None)
        self._flush()

    def send_in_dialog(self, session: CallSession, method: str,
                       extra_headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
                       content_type: str | None = None) -> tuple:
        """Send an in-dialog request (BYE, REFER, NOTIFY); its final response goes to `session.on_response`."""
        request = session.dialog.create_request(method, extra_headers=extra_headers, body=body,
                                                content_type=content_type)
        transaction = self.endpoint.send_request(request, session.dialog.destination(), session.dialog.transport,
                                                 self.reactor.seconds())
        self._request_owner[transaction] = (session, method)
        self._flush()
        return transaction

    def send_agent_invite(self, leg: AgentLeg) -> tuple:
        """Send an offer's INVITE; its responses go to `leg.on_invite_response`."""
        transaction = self.endpoint.send_request(leg.invite, leg.destination, leg.transport, self.reactor.seconds())
        self._agent_invites[transaction] = leg
        self.agent_legs[leg.call_id] = leg
        self._flush()
        return transaction

    def send_agent_cancel(self, leg: AgentLeg, cancel: Request) -> None:
        """CANCEL a ringing offer (the 487 to the INVITE then ends the leg)."""
        self.endpoint.send_request(cancel, leg.destination, leg.transport, self.reactor.seconds())
        self._flush()

    def send_stateless(self, message: Request, destination: tuple[str, int], transport: str) -> None:
        """Send a message outside any transaction (the ACK for a 2xx)."""
        self.endpoint.send_stateless(message, destination, transport)
        self._flush()

    def forget_agent_leg(self, leg: AgentLeg) -> None:
        """An agent leg ended."""
        if self.agent_legs.get(leg.call_id) is leg:
            del self.agent_legs[leg.call_id]
        if leg.invite_transaction is not None and self._agent_invites.get(leg.invite_transaction) is leg:
            del self._agent_invites[leg.invite_transaction]

    def agent_contacts(self, agent_id: str) -> list[tuple[str, tuple[str, int], str]]:
        """Where an agent's phone can be reached: (contact URI, address, transport), best first."""
        if self.registrar is None:
            return []
        return self.registrar.contacts(agent_id, self.reactor.seconds())

    def capability_headers(self) -> tuple[tuple[str, str], ...]:
        """Allow/Accept/Supported, for 200 OK to INVITE and OPTIONS."""
        return (("Allow", ALLOWED_METHODS), ("Accept", "application/sdp, application/dtmf-relay"))

    def _contact(self, transport: str) -> str:
        suffix = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:acd@{self.config.sip.public_address}:{self.config.sip.port}{suffix}>"

    def webhook(self, event_type: str, session: CallSession, **fields) -> None:
        """Tell the CRM about a call event (fire and forget); agents' feature-code calls are not sent."""
        if self.crm is None or session.trunk.startswith("agent:"):
            return
        context = session.ivr.flow_run.context if session.ivr is not None else None
        customer = context.get("customer") if context is not None else None
        self.crm.post_event({"type": event_type, "call_id": session.call_id, "at": self.reactor.seconds(),
                             "caller": context.get("caller_id") if context is not None else None,
                             "dialled": context.get("dialled") if context is not None else None,
                             "customer_id": customer.get("id") if isinstance(customer, dict) else None, **fields})

    @staticmethod
    def new_tag() -> str:
        """A fresh To tag (for responses that create no dialog)."""
        return new_tag()

    def forget(self, session: CallSession) -> None:
        """A session ended; drop it."""
        if self.sessions.get(session.call_id) is session:
            del self.sessions[session.call_id]

    def _flush(self) -> None:
        for datagram in self.endpoint.datagrams_to_send():
            sender = self._senders.get(datagram.transport)
            if sender is None:
                log.error("no sender for transport %s; dropped %d bytes to %s", datagram.transport,
                          len(datagram.data), datagram.destination)
                continue
            sender(datagram)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.endpoint.next_deadline()
        if deadline == self._timer_deadline:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        self.endpoint.handle_timers(self.reactor.seconds())
        self._process()
