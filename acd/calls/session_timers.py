"""SessionTimers: the Twisted side of one answered call's RFC 4028 session timer.

The rules and deadlines are in acd/sip/session_timer.py; this keeps one IDelayedCall at the timer's
next deadline (STYLE 2) and does what falls due on the call: our refresh (UPDATE without a body
when the caller allows UPDATE, as RFC 4028 §7.4 prefers; else a re-INVITE offering our SDP as it
stands, whose answer is taken as unchanged) or, when no refresh succeeded in time, the call's end
(BYE, record "session expired: ...", acd_calls_session_expired_total). A refresh of ours answered
408 or 481, or not at all, ends the call the same way (§10); another refusal leaves the call to the
expiry deadline. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..sip.errors import RemoteProtocolError
from ..sip.message import Request
from ..sip.session_timer import SessionTimer, TimerAction, TimerTerms, negotiate
from .leg_states import CallState, EndReason

if TYPE_CHECKING:
    from ..config.model import SessionTimerSettings

__all__ = ["SessionTimers", "REFRESH_FAILURES", "refusal_headers"]

log = logging.getLogger("acd.call")

# §10: a refresh answered 408 or 481 (or timed out, None) means the dialog is gone; BYE it.
REFRESH_FAILURES = frozenset({408, 481, None})


class SessionTimers:
    """One call's session timer (None terms: no timer until a re-INVITE or UPDATE asks for one).

    `session` is the CallSession (its dialog, signalling, hang_up, current SDP); `use_update` says
    whether our refreshes are UPDATEs. `release()` at the call's end cancels the timer and lets go
    of the session (no reference cycle left behind)."""

    def __init__(self, *, session: Any, terms: TimerTerms | None, reactor, use_update: bool, metrics: Any) -> None:
        self.session = session
        self.terms = terms
        self.reactor = reactor
        self.use_update = use_update
        self.metrics = metrics
        self.timer: SessionTimer | None = None
        self._call = None
        self._refreshing = False

    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """What our 2xx to an INVITE, re-INVITE or UPDATE says about the timer (nothing without one)."""
        return self.terms.response_headers() if self.terms is not None else ()

    def terms_for(self, request: Request, settings: "SessionTimerSettings") -> TimerTerms | None:
        """The terms a re-INVITE or UPDATE from the caller asks for (None: it names none, those in force
        stay). Raises RemoteProtocolError (422 with Min-SE, 400) for the shell to answer with; nothing
        changes until `refreshed`."""
        return negotiate(request, min_seconds=settings.min_seconds, default_seconds=settings.default_seconds)

    def headers_for(self, terms: TimerTerms | None) -> tuple[tuple[str, str], ...]:
        """The timer headers of our 2xx to a refresh asking for `terms` (or keeping those in force)."""
        chosen = terms if terms is not None else self.terms
        return chosen.response_headers() if chosen is not None else ()

    def refreshed(self, terms: TimerTerms | None) -> None:
        """We answered a re-INVITE or UPDATE 2xx: a refresh (§10); its terms replace ours when it had some."""
        if terms is not None:
            self.terms = terms
        self.start()

    def start(self) -> None:
        """A 2xx agreeing the terms was sent (or our refresh got its 2xx): the timer (re)starts now."""
        if self.terms is None or self.session is None:
            return
        now = self.reactor.seconds()
        if self.timer is None:
            self.timer = SessionTimer(self.terms, now)
        else:
            self.timer.start(self.terms, now)
        self._refreshing = False
        self._arm()

    def refresh_answered(self, status: int | None) -> None:
        """The final response (None: timeout) to our refresh."""
        if not self._refreshing or self.session is None:
            return
        self._refreshing = False
        if status is not None and 200 <= status < 300:
            log.info("call=%s session refreshed (our %s answered %d)", self.session.call_id, self._method, status)
            self.start()
        elif status in REFRESH_FAILURES:
            self._expire(f"our refresh got {status or 'no answer'}")
        else:
            log.warning("call=%s our session refresh was refused %d: the call ends at the expiry unless the caller "
                        "refreshes", self.session.call_id, status)

    @property
    def _method(self) -> str:
        return "UPDATE" if self.use_update else "INVITE"

    def release(self) -> None:
        """The call ended: no timer, no session."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.session = None

    def _arm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        deadline = self.timer.next_deadline()
        self._call = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_timer)

    def _on_timer(self) -> None:
        self._call = None
        session = self.session
        if session is None or self.timer is None:
            return
        action = self.timer.due(self.reactor.seconds())
        if action is TimerAction.EXPIRE:
            interval = self.timer.terms.interval_seconds
            self._expire(f"no refresh within {interval} s" if not self._refreshing
                         else f"no answer to our refresh within {interval} s")
            return
        if action is TimerAction.REFRESH and session.active:
            self._refresh(session)
        self._arm()

    def _refresh(self, session: Any) -> None:
        """Send our refresh (§7.4): we stay the refresher, with the same interval."""
        self._refreshing = True
        headers = self.timer.terms.refresh_headers()
        log.info("call=%s refreshing the session (%s, Session-Expires %d)", session.call_id, self._method,
                 self.timer.terms.interval_seconds)
        if self.use_update:
            session.signalling.send_in_dialog(session, "UPDATE", extra_headers=headers)
        else:
            session.signalling.send_in_dialog(session, "INVITE", extra_headers=headers, body=session.current_sdp,
                                              content_type="application/sdp")

    def _expire(self, why: str) -> None:
        session = self.session
        if session is None or not (session.active or session.state is CallState.CLOSING):
            return  # our BYE is already on its way
        log.warning("call=%s session expired (RFC 4028): %s; sending BYE", session.call_id, why)
        self.metrics.calls_session_expired.inc()
        self.release()
        session.hang_up(EndReason.SESSION_EXPIRED, why)


def refusal_headers(error: RemoteProtocolError) -> tuple[tuple[str, str], ...]:
    """The headers of our refusal of a request for its session timer (Min-SE for 422, and a Warning)."""
    return (*error.headers, ("Warning", f'399 acd "{error.reason[:100]}"'))
