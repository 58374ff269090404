"""SipServer: drives the sans-IO SipEndpoint on the reactor, sends SIP for every leg (it is the
`Signalling` port), and dispatches what arrives: new INVITEs and INFO to the call set-up
(`InboundCalls`), REGISTER to the registrar, in-dialog requests to the leg they belong to. While
the server drains before stopping (`refuse_new_calls`), new INVITEs and OPTIONS get 503 with
Retry-After; everything inside dialogs, REGISTER and responses go on as before.

It owns the one IDelayedCall for the endpoint's next deadline (STYLE 2). It knows no call-centre
rule. `reactor` must provide IReactorTime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..metrics import SIP_METHODS
from ..sip.build import ALLOWED_METHODS, new_tag
from ..sip.endpoint import SUPPORTED_OPTION_TAGS, UNMATCHED_ACK, SipEndpoint
from ..sip.errors import RemoteProtocolError
from ..sip.events import (AckReceived, CancelReceived, Datagram, MessageDropped, MessageRejected, RequestReceived,
                          ResponseReceived, TransactionTimedOut)
from ..sip.dialog import Dialog
from ..sip.headers import CSeq, NameAddr
from ..sip.message import Request
from .call_table import CallTable
from .leg_states import CallState
from .ports import ConfigSource, DialogOwner, Headers, InviteOwner

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["CallSetup", "RegisterHandler", "SipServer"]

# Enough to recognise the retransmissions of every stray 2xx of a restart, bounded against a flood.
STRAY_DIALOGS_REMEMBERED = 1024

log = logging.getLogger("acd.sip")

SERVER_NAME = "acd/0.1"
# The option tags we implement (RFC 3261 §20.37), in every Supported header of ours: "100rel, timer".
SUPPORTED_OPTION_TAGS_TEXT = ", ".join(sorted(SUPPORTED_OPTION_TAGS))


class CallSetup(Protocol):
    """Takes new calls (an INVITE outside any dialog), their ACK and a caller's in-dialog INFO."""

    def new_call(self, event: RequestReceived) -> None: ...

    def confirmed(self, session: Any) -> None: ...

    def info(self, session: Any, event: RequestReceived) -> None: ...


class RegisterHandler(Protocol):
    """Answers REGISTER."""

    def on_register(self, event: RequestReceived) -> None: ...

    def is_agent_address(self, address: tuple[str, int]) -> bool: ...


class SipServer:
    """The SIP edge of the shell around one SipEndpoint."""

    def __init__(self, *, endpoint: SipEndpoint, config: ConfigSource, reactor, metrics: "Metrics",
                 calls: CallTable) -> None:
        self.endpoint = endpoint
        self.config = config
        self.reactor = reactor
        self.metrics = metrics
        self.calls = calls
        self.call_setup: CallSetup | None = None
        self.registrar: RegisterHandler | None = None
        self._request_owner: dict[tuple, tuple[DialogOwner, str]] = {}
        self._stray_dialogs: dict[str, bool] = {}  # Call-IDs of stray 2xx already BYEd (insertion order)
        self._unowned: dict[tuple, str] = {}  # out-of-dialog requests nobody waits for → what they were
        self._tracked: dict[tuple, Callable[[Any], None]] = {}  # out-of-dialog requests whose answer is awaited
        self._senders: dict[str, Callable[[Datagram], None]] = {}
        self._timer = None
        self._timer_deadline: float | None = None
        self.retry_after: int | None = None  # set while new calls are refused (the server drains)

    def set_sender(self, transport: str, send: Callable[[Datagram], None]) -> None:
        """Register how datagrams of a transport ("UDP", "TCP", "TLS") leave."""
        self._senders[transport] = send

    def set_handlers(self, *, call_setup: CallSetup, registrar: RegisterHandler | None) -> None:
        """Where new calls and REGISTERs go (wired by the composition root)."""
        self.call_setup = call_setup
        self.registrar = registrar

    def refuse_new_calls(self, retry_after_seconds: int) -> None:
        """From now on answer new INVITEs and OPTIONS with 503 and Retry-After (RFC 3261 §21.5.4):
        the server is stopping. Requests inside dialogs, REGISTER and responses go on."""
        self.retry_after = retry_after_seconds

    def _refuse_while_draining(self, event: RequestReceived) -> None:
        request = event.request
        if request.method == "INVITE":
            log.info("call=%s refused 503: the server is shutting down", request.call_id)
        self.respond(event.transaction_id, 503, to_tag=new_tag(),
                     headers=(("Retry-After", str(self.retry_after)),
                              ("Warning", '399 acd "shutting down"')))

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
                session = self.calls.sessions.get(event.request.call_id)
                if session is not None:
                    self.call_setup.confirmed(session)
                    session.on_ack_body(event.request.body)
                elif (leg := self.calls.placed.get(event.request.call_id)) is not None:
                    leg.on_ack_body(event.request.body)
            elif isinstance(event, CancelReceived):
                session = self.calls.sessions.get(event.request.call_id)
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
                log.log(logging.DEBUG if event.reason == UNMATCHED_ACK else logging.WARNING,
                        "dropped message from %s:%s: %s; raw=%r", event.source[0], event.source[1],
                        event.reason, event.raw[:200])
        self._flush()

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        method = request.method
        to_tag = NameAddr.parse(request.headers.get("To", "")).tag
        leg = self.calls.placed.get(request.call_id)
        if leg is not None and to_tag is not None:
            self._on_placed_leg_request(leg, event, to_tag)
            return
        session = self.calls.sessions.get(request.call_id)
        if method == "INVITE" and to_tag is None:
            if session is not None:
                raise RemoteProtocolError("a call with this Call-ID is already in progress", 482)
            if self.retry_after is not None:
                self._refuse_while_draining(event)
                return
            self.call_setup.new_call(event)
            return
        if method == "REGISTER":
            if self.registrar is None:
                self.respond(event.transaction_id, 405, to_tag=new_tag(), headers=(("Allow", ALLOWED_METHODS),))
            else:
                self.registrar.on_register(event)
            return
        if method == "OPTIONS" and to_tag is None:
            if self.retry_after is not None:
                self._refuse_while_draining(event)
                return
            self.respond(event.transaction_id, 200, to_tag=new_tag(), headers=self.capability_headers())
            return
        if to_tag is not None:
            if session is None or to_tag != session.dialog.local_tag:
                raise RemoteProtocolError("no dialog matches this request", 481)
            session.dialog.check_request(request)
            self._on_caller_request(session, event)
            return
        if method in ("BYE", "INFO", "NOTIFY", "PRACK"):
            raise RemoteProtocolError(f"{method} outside a dialog", 481)
        self.respond(event.transaction_id, 405 if method in ("SUBSCRIBE", "MESSAGE", "NOTIFY", "REFER", "UPDATE",
                                                             "PUBLISH") else 501,
                     to_tag=new_tag(), headers=(("Allow", ALLOWED_METHODS),))

    def _on_caller_request(self, session: Any, event: RequestReceived) -> None:
        """Requests the caller's side sends inside the call's dialog."""
        method = event.request.method
        if method == "BYE":
            session.on_bye(event.transaction_id)
        elif method == "INVITE":
            session.on_reinvite(event.request, event.transaction_id)
        elif method == "UPDATE":
            session.on_update(event.request, event.transaction_id)
        elif method == "PRACK":
            session.provisionals.on_prack(event.request, event.transaction_id)
        elif method == "INFO":
            self.call_setup.info(session, event)
        elif method == "NOTIFY":
            session.on_notify(event.request, event.transaction_id)
        elif method == "OPTIONS":
            self.respond(event.transaction_id, 200, headers=self.capability_headers())
        elif method == "REFER":
            self.respond(event.transaction_id, 403, headers=(("Warning", '399 acd "callers cannot transfer"'),))
        else:
            self.respond(event.transaction_id, 405, headers=(("Allow", ALLOWED_METHODS),))

    def _on_placed_leg_request(self, leg: Any, event: RequestReceived, to_tag: str) -> None:
        """Requests the agent's phone (or a called-back customer) sends inside the dialog we opened."""
        if leg.dialog is None or to_tag != leg.dialog.local_tag:
            raise RemoteProtocolError("no dialog matches this request", 481)
        leg.dialog.check_request(event.request)
        method = event.request.method
        if method == "BYE":
            leg.on_bye(event.transaction_id)
        elif method == "INVITE":
            leg.on_reinvite(event.request, event.transaction_id)
        elif method == "UPDATE":
            leg.on_update(event.request, event.transaction_id)
        elif method == "REFER":
            leg.on_refer(event.request, event.transaction_id)
        elif method in ("INFO", "NOTIFY", "OPTIONS"):
            self.respond(event.transaction_id, 200)
        else:
            self.respond(event.transaction_id, 405, headers=(("Allow", ALLOWED_METHODS),))

    def _on_response(self, event: ResponseReceived) -> None:
        if event.method == "INVITE":
            leg = self.calls.invites.get(event.transaction_id) if event.transaction_id else None
            if leg is None and event.transaction_id is None:
                leg = self.calls.placed.get(event.response.call_id)  # a 2xx retransmitted after Timer M
            if leg is not None:
                leg.on_invite_response(event.response)
            elif (session := self.calls.sessions.get(event.response.call_id)) is not None:
                self._on_reinvite_response(session, event)
            elif 200 <= event.response.status < 300:
                self._end_stray_dialog(event.response)
            return
        if event.transaction_id is None:
            return
        if event.transaction_id in self._tracked and event.response.status >= 200:
            self._tracked.pop(event.transaction_id)(event.response)
            return
        if event.transaction_id in self._unowned and event.response.status >= 200:
            what = self._unowned.pop(event.transaction_id)
            level = logging.DEBUG if event.response.status < 300 else logging.INFO
            log.log(level, "%s answered %d %s", what, event.response.status, event.response.reason)
            return
        owner = self._request_owner.get(event.transaction_id)
        if owner is not None and event.response.status >= 200:
            del self._request_owner[event.transaction_id]
            owner[0].on_response(owner[1], event.response.status)

    def _on_reinvite_response(self, session: Any, event: ResponseReceived) -> None:
        """A response to a re-INVITE we sent in a caller's dialog (a session refresh, RFC 4028): every
        2xx, retransmissions too, is ACKed with the re-INVITE's CSeq (§13.2.2.4; the transaction ACKs
        the others); the first final response goes to its owner."""
        response = event.response
        if 200 <= response.status < 300:
            ack = session.dialog.create_request("ACK")
            ack.headers.set("CSeq", f"{CSeq.parse(response.headers.get('CSeq', '')).number} ACK")
            self.send_ack(ack, session.dialog.destination(), session.dialog.transport)
        owner = self._request_owner.get(event.transaction_id) if event.transaction_id is not None else None
        if owner is not None and response.status >= 200:
            del self._request_owner[event.transaction_id]
            owner[0].on_response(owner[1], response.status)

    def _end_stray_dialog(self, response) -> None:
        """A 2xx to an INVITE no leg owns (an offer placed before a restart, answered after it): ACK
        every copy, as a UAC core must (RFC 3261 §13.2.2.4), and BYE it once: nobody waits for it."""
        via = response.headers.get("Via") or ""
        transport = next((name for name in ("TCP", "TLS") if f"/{name}" in via.upper()), "UDP")
        dialog = Dialog.from_stray_2xx(response, transport=transport)
        self.send_ack(dialog.create_request("ACK"), dialog.destination(), transport)
        if response.call_id in self._stray_dialogs:
            return
        self._stray_dialogs[response.call_id] = True
        while len(self._stray_dialogs) > STRAY_DIALOGS_REMEMBERED:
            del self._stray_dialogs[next(iter(self._stray_dialogs))]
        destination = dialog.destination()
        if self.registrar is None or not self.registrar.is_agent_address(destination):
            # Only agents' phones are BYEd: a forged 2xx must not turn us into a BYE reflector.
            log.warning("call=%s 200 OK to an INVITE we no longer know, from %s:%s (not an agent's phone): "
                        "ACKed only", response.call_id, *destination)
            return
        log.warning("call=%s 200 OK to an INVITE we no longer know (an offer from before a restart?): "
                    "ACK and BYE", response.call_id)
        self.send_out_of_dialog(dialog.create_request("BYE"), dialog.destination(), transport,
                                f"call={response.call_id} BYE of a stray dialog")

    def _on_timeout(self, event: TransactionTimedOut) -> None:
        if event.reason == "no-ack":
            session = self.calls.sessions.get(event.call_id)
            if session is not None and session.state is CallState.ANSWERED:
                log.warning("call=%s no ACK for 200 OK within 64*T1; hanging up", event.call_id)
                session.on_ack_timeout()
                self._flush()
            elif session is not None:
                session.on_reinvite_ack_timeout()  # a re-INVITE's: an offer of ours in it is given up
            elif (leg := self.calls.placed.get(event.call_id)) is not None:
                leg.on_reinvite_ack_timeout()
            return
        leg = self.calls.invites.pop(event.transaction_id, None)
        if leg is not None:
            log.warning("call=%s agent=%s: no final response to our INVITE", leg.customer_call_id, leg.agent_id)
            leg.on_invite_timeout()
            return
        what = self._unowned.pop(event.transaction_id, None)
        if what is not None:
            log.info("%s: no answer (%s)", what, event.reason)
            return
        on_final = self._tracked.pop(event.transaction_id, None)
        if on_final is not None:
            on_final(None)
            return
        owner = self._request_owner.pop(event.transaction_id, None)
        if owner is not None:
            log.warning("call=%s no answer to our %s", owner[0].call_id, event.method)
            owner[0].on_response(owner[1], None)

    # ---- output (the Signalling port) --------------------------------------------------------
    def respond(self, transaction: tuple, status: int, *, to_tag: str | None = None, body: bytes = b"",
                headers: Headers = (), stateless: bool = False) -> None:
        """Answer a server transaction; the response leaves at once (`stateless`: once, never
        retransmitted, for refusals of strangers)."""
        self.metrics.sip_responses.labels(str(status)).inc()
        if status >= 300 and transaction[-1] == "INVITE" and status not in (401, 487):
            self.metrics.calls_refused.labels(str(status)).inc()
        self.endpoint.respond(transaction, status, now=self.reactor.seconds(), to_tag=to_tag, body=body,
                              headers=(("Server", SERVER_NAME), *headers),
                              content_type="application/sdp" if body else None, stateless=stateless)
        self._flush()

    def send_in_dialog(self, owner: DialogOwner, method: str, extra_headers: Headers = (), body: bytes = b"",
                       content_type: str | None = None) -> tuple:
        """Send an in-dialog request (BYE, REFER, NOTIFY); its final response goes to `owner.on_response`."""
        dialog = owner.dialog
        request = dialog.create_request(method, extra_headers=extra_headers, body=body, content_type=content_type)
        transaction = self.endpoint.send_request(request, dialog.destination(), dialog.transport,
                                                 self.reactor.seconds())
        self._request_owner[transaction] = (owner, method)
        self._flush()
        return transaction

    def send_invite(self, owner: InviteOwner, invite: Request, destination: tuple[str, int], transport: str) -> tuple:
        """Send a new INVITE; its responses go to `owner.on_invite_response`, requests in its dialog to the owner."""
        transaction = self.endpoint.send_request(invite, destination, transport, self.reactor.seconds())
        self.calls.add_placed(owner, transaction)
        self._flush()
        return transaction

    def send_out_of_dialog(self, request: Request, destination: tuple[str, int], transport: str, what: str) -> tuple:
        """Send a non-INVITE request outside any dialog (a MESSAGE) and forget it: its final response
        or timeout is only logged, under `what` ("agent=1001 MESSAGE")."""
        if request.method in ("INVITE", "ACK", "CANCEL"):
            raise ValueError(f"send_out_of_dialog: {request.method} has its own method")
        transaction = self.endpoint.send_request(request, destination, transport, self.reactor.seconds())
        self._unowned[transaction] = what
        self._flush()
        return transaction

    def send_tracked(self, request: Request, destination: tuple[str, int], transport: str,
                     on_final: Callable[[Any], None]) -> tuple:
        """Send a non-INVITE request outside any dialog (a REGISTER to a carrier); its final Response,
        or None when the transaction times out, goes to `on_final`."""
        transaction = self.endpoint.send_request(request, destination, transport, self.reactor.seconds())
        self._tracked[transaction] = on_final
        self._flush()
        return transaction

    def send_cancel(self, cancel: Request, destination: tuple[str, int], transport: str) -> None:
        """CANCEL a ringing INVITE of ours (the 487 to the INVITE then ends the leg)."""
        self.endpoint.send_request(cancel, destination, transport, self.reactor.seconds())
        self._flush()

    def send_ack(self, ack: Request, destination: tuple[str, int], transport: str) -> None:
        """Send the ACK for a 2xx (outside any transaction, §13.2.2.4); its Via is added once."""
        if ack.headers.get("Via") is None:
            ack.headers.prepend("Via", self.endpoint.new_via(transport))
        self.endpoint.send_stateless(ack, destination, transport)
        self._flush()

    def forget_invite(self, owner: InviteOwner, transaction: tuple | None) -> None:
        """A leg we placed ended."""
        self.calls.forget_placed(owner, transaction)

    def capability_headers(self) -> Headers:
        """Allow/Accept/Supported, for responses to INVITE and OPTIONS."""
        return (("Allow", ALLOWED_METHODS), ("Accept", "application/sdp, application/dtmf-relay"),
                ("Supported", SUPPORTED_OPTION_TAGS_TEXT))

    def contact(self, transport: str, secure: bool = False) -> str:
        """Our Contact for dialogs on `transport`; `secure` (the peer used a sips: URI, RFC 3261
        §12.1.1) makes it a SIPS URI, which implies TLS."""
        sip = self.config.config.sip
        if transport == "TLS":
            return f"<sips:acd@{sip.public_address}:{sip.tls.port}>" if secure else \
                f"<sip:acd@{sip.public_address}:{sip.tls.port};transport=tls>"
        suffix = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:acd@{sip.public_address}:{sip.port}{suffix}>"

    def connection_in_use(self, peer: tuple[str, int], transport: str) -> bool:
        """True when an agent's live registration or a call's dialog runs over the stream connection
        from `peer`: an idle timeout must not cut a registered phone off from its next call, nor a
        call from its BYE (we cannot reconnect to a phone; it connected to us)."""
        if self.registrar is not None and self.registrar.is_agent_address(peer):
            return True
        for owner in (*self.calls.sessions.values(), *self.calls.placed.values()):
            dialog = getattr(owner, "dialog", None)
            if dialog is not None and dialog.transport == transport and dialog.destination() == peer:
                return True
            if getattr(owner, "transport", None) == transport and getattr(owner, "destination", None) == peer:
                return True
        return False

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
