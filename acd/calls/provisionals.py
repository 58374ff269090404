"""ProvisionalResponses: the Twisted side of one caller's provisional responses (180 Ringing, 183
Session Progress) and of RFC 3262 reliability (100rel) on them.

The rules and deadlines are in acd/sip/reliable_provisional.py; this sends the responses (with our
Contact: a tagged provisional makes an early dialog, RFC 3261 §12.1.1, and the PRACK goes to it),
keeps one IDelayedCall at the core's next deadline (STYLE 2), retransmits, answers PRACKs (200, or
481 when nothing matches), releases the 2xx the session held for a PRACK, and, when no PRACK came
within 64*T1, has the session reject the INVITE (500) and fail the call. `reactor` provides
IReactorTime.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from ..sip.errors import RemoteProtocolError
from ..sip.message import Request
from ..sip.reliable_provisional import (RSEQ_MAX, DueAction, Provisional, RAck, Reliability, ReliableProvisionals,
                                        wants_reliable)

__all__ = ["ProvisionalResponses"]

log = logging.getLogger("acd.call")


class ProvisionalResponses:
    """The provisional responses to one caller's INVITE (`session`: its CallSession).

    `reliability`: what the INVITE said of 100rel; `t1_seconds`: RFC 3261's T1; `retransmit`: False
    over stream transports. `release()` at the call's end cancels the timer and lets go of the
    session (no reference cycle left behind)."""

    def __init__(self, *, session: Any, reliability: Reliability, reactor, t1_seconds: float,
                 retransmit: bool) -> None:
        self.session = session
        self.reliability = reliability
        self.reactor = reactor
        self.t1_seconds = t1_seconds
        self.retransmit = retransmit
        self.core: ReliableProvisionals | None = None  # made at the first reliable provisional
        self._bodies: dict[int, bytes] = {}  # RSeq -> the body its response carries
        self._call = None

    def send(self, status: int, body: bytes = b"") -> Provisional | None:
        """Send a provisional response (with SDP `body` for early media), reliably when the caller
        requires 100rel, or supports it and there is SDP. Returns the reliable provisional (it may wait in
        line behind one not acknowledged yet), or None when it went unreliably."""
        session = self.session
        if not wants_reliable(self.reliability, has_sdp=bool(body)):
            self._respond(status, body, ())
            return None
        if self.core is None:
            self.core = ReliableProvisionals(invite_cseq=session.dialog.remote_cseq or 0,
                                             first_rseq=random.randint(1, RSEQ_MAX), t1_seconds=self.t1_seconds,
                                             retransmit=self.retransmit)
        provisional = self.core.send(status, has_sdp=bool(body), now=self.reactor.seconds())
        self._bodies[provisional.rseq] = body
        if self.core.unacknowledged is provisional:
            self._transmit(provisional)
        self._rearm()
        return provisional

    def may_answer(self) -> bool:
        """Whether the 2xx may go now; False holds it until the PRACK of our reliable provisional with
        SDP (RFC 3262 §3), which then calls `session.answer()` again."""
        return self.core is None or self.core.may_send_2xx()

    def final_sent(self) -> None:
        """The INVITE got its final response: no more retransmissions."""
        if self.core is not None:
            self.core.final_sent()
            self._rearm()

    def on_prack(self, request: Request, transaction: tuple) -> None:
        """A PRACK in the early dialog (or after the 2xx): 200 when its RAck matches our unacknowledged
        reliable provisional, 481 otherwise (RFC 3262 §4); then what it releases goes out."""
        session = self.session
        try:
            if self.core is None:
                raise RemoteProtocolError("no reliable provisional response was sent on this call", 481)
            outcome = self.core.receive_prack(RAck.parse(request.headers.get("RAck")), self.reactor.seconds())
        except RemoteProtocolError as error:
            log.info("call=%s PRACK refused %d: %s", session.call_id, error.status, error.reason)
            session.signalling.respond(transaction, error.status, headers=(("Warning", f'399 acd "{error.reason[:100]}"'),))
            return
        session.signalling.respond(transaction, 200)
        log.info("call=%s PRACK for our reliable %d (RSeq %d)", session.call_id, outcome.acknowledged.status,
                 outcome.acknowledged.rseq)
        if outcome.send_next is not None:
            self._transmit(outcome.send_next)
        self._rearm()
        if outcome.send_final:
            session.answer()

    def release(self) -> None:
        """The call is over: cancel the timer, let go of the session."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.session = None

    # ---- wire and timer ---------------------------------------------------------------------
    def _respond(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...]) -> None:
        session = self.session
        session.signalling.respond(session.invite_transaction, status, to_tag=session.dialog.local_tag, body=body,
                                   headers=(("Contact", session.dialog.local_contact), *headers,
                                            *session.signalling.capability_headers()))

    def _transmit(self, provisional: Provisional) -> None:
        self._respond(provisional.status, self._bodies.get(provisional.rseq, b""), provisional.headers())

    def _rearm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        deadline = self.core.next_deadline() if self.core is not None and self.session is not None else None
        if deadline is not None:
            self._call = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_timer)

    def _on_timer(self) -> None:
        self._call = None
        if self.session is None or self.core is None:
            return
        due = self.core.due(self.reactor.seconds())
        if due is not None:
            action, provisional = due
            if action is DueAction.RETRANSMIT:
                self._transmit(provisional)
            else:
                log.warning("call=%s no PRACK for our reliable %d (RSeq %d) within 64*T1 (%.1f s): rejecting the "
                            "INVITE 500 (RFC 3262 §3)", self.session.call_id, provisional.status, provisional.rseq,
                            64 * self.t1_seconds)
                self.session.on_no_prack(f"{provisional.status} within {64 * self.t1_seconds:g} s")
        self._rearm()
