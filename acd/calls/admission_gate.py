"""AdmissionGate: admission control in front of the SipServer (issue 21; the rules: acd/sip/admission.py).

The transports' RequestGate hands every message it lets through to this gate, which passes it on
to the SipServer unless it is a new call that admission control refuses. Such an INVITE is
answered here, statelessly: a `503 Service Unavailable` with `Retry-After`, built from a quick look
at its headers (`acd.sip.peek`), and nothing else: no transaction, no dialog, no RTP port, no
record, only a counter. The answer is kept in a small refusal cache, so the INVITE's
retransmissions get the same bytes again and its ACK is dropped here, each for a dictionary look-up.

Everything else passes untouched: requests inside dialogs (ACK, BYE, re-INVITE: their To has a
tag), CANCEL, REGISTER, responses, and a retransmission of an INVITE whose call is in progress.
Calls already taken therefore still complete at the ceiling. OPTIONS outside a dialog get 503 here
while new calls are being refused for capacity, and the server's own 200 otherwise, so a load
balancer probing us sends new calls elsewhere.

A timer measures the event loop's lag (`start`, called once the reactor runs: `acd serve`), the
live signal of overload: a `callLater` re-armed at each tick, whose lateness is the lag (a
LoopingCall would skip the ticks it missed and re-align to its grid, hiding part of it). The
receive backlog needs no signal of its own: a batch of datagrams is handled in one turn of the
loop (acd/calls/udp_batch.py, whose batch sizes are `acd_sip_receive_batch_datagrams`), so a deep
backlog is a late tick. Refusals are counted in `acd_admission_refused_total{reason}` and
summarised in the log once a second at most, never one line per INVITE. `reactor` provides
IReactorTime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from ..sip.admission import OVERLOAD, OVERLOAD_TICKS, REASONS, TICK_SECONDS, Admission, Ceilings
from ..sip.build import new_tag
from ..sip.events import Datagram
from ..sip.peek import peek_request
from ..sip.refusal_cache import RefusalCache
from .call_table import CallTable
from .ports import ConfigSource
from .transports import SipReceiver

if TYPE_CHECKING:
    from ..config.model import Config
    from ..metrics import Metrics

__all__ = ["AdmissionGate"]

log = logging.getLogger("acd.sip")

# Bound on remembered source kinds (trunk or not), cleared at each reload.
MAX_CLASSIFIED = 10_000
UNAVAILABLE = "Service Unavailable"


def _ceilings(config: "Config") -> Ceilings:
    return config.sip.admission.ceilings(config.rtp)


class AdmissionGate:
    """Implements `SipReceiver`: refuses new calls past the ceilings, passes everything else to `server`."""

    def __init__(self, *, server: SipReceiver, config: ConfigSource, calls: CallTable, metrics: "Metrics",
                 reactor) -> None:
        self.server = server
        self.live = config
        self.calls = calls
        self.reactor = reactor
        self._config = config.config
        self.core = Admission(_ceilings(self._config), now=reactor.seconds())
        self.refusals = RefusalCache(lifetime_seconds=64 * self._config.sip.timer_t1_seconds)  # Timer B
        self._senders: dict[str, Callable[[Datagram], None]] = {}
        self._trunk_sources: dict[tuple[str, int], bool] = {}
        self._timer = None
        self.on_tick: Callable[[], None] | None = None  # told at every lag tick (acd serve: the StallWatch)
        self._overload_began_at: float | None = None
        self._last_refused: tuple[str, tuple[str, int]] | None = None
        self._headers = self._refusal_headers()
        self._admitted = metrics.admission_admitted
        self._refused = {reason: metrics.admission_refused.labels(reason) for reason in REASONS}
        self._resent = metrics.admission_resent
        self._lag = metrics.event_loop_lag
        self._invites = metrics.sip_requests.labels("INVITE")
        self._options = metrics.sip_requests.labels("OPTIONS")
        self._sent_503 = metrics.sip_responses.labels("503")
        self._calls_refused_503 = metrics.calls_refused.labels("503")
        metrics.admission_max_calls.set_function(lambda: self.core.ceilings.max_calls)
        metrics.admission_max_rate.set_function(lambda: self.core.ceilings.new_calls_per_second)
        metrics.admission_overloaded.set_function(lambda: 1 if self.core.lag.overloaded else 0)

    # ---- the lag timer -------------------------------------------------------------------------
    def start(self) -> None:
        """Start measuring the event loop's lag (once the reactor runs: a tick due before it started
        would count the start-up as lag)."""
        if self._timer is None:
            self.core.lag.start(self.reactor.seconds())
            self._timer = self.reactor.callLater(TICK_SECONDS, self._tick)

    def stop(self) -> None:
        """Stop the lag timer."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _tick(self) -> None:
        now = self.reactor.seconds()
        self._timer = self.reactor.callLater(TICK_SECONDS, self._tick)
        self._refresh()
        sample = self.core.tick(now)
        self._lag.observe(sample.lag_seconds)
        if self.on_tick is not None:
            self.on_tick()
        if sample.overload_began:
            self._overload_began_at = now
            log.warning("overloaded: the event loop ran %.0f ms late %d ticks running (limit %.0f ms, sip admission "
                        "overload_loop_lag_seconds); new calls and OPTIONS get 503 until it is on time again; "
                        "calls in progress go on", sample.lag_seconds * 1000, OVERLOAD_TICKS,
                        self.core.ceilings.overload_loop_lag_seconds * 1000)
        elif sample.overload_ended:
            began = self._overload_began_at
            self._overload_began_at = None
            log.warning("overload over after %.1f s: the event loop is on time again; new calls are admitted",
                        now - began if began is not None else 0.0)
        self._report(now)

    # ---- SipReceiver -----------------------------------------------------------------------------
    def set_sender(self, transport: str, send: Callable[[Datagram], None]) -> None:
        """Kept for stateless answers, and passed on to the server."""
        self._senders[transport] = send
        self.server.set_sender(transport, send)

    def datagram_received(self, data: bytes, source: tuple[str, int], transport: str) -> None:
        """Answer a refused new call (or its retransmission, or drop its ACK) here; pass the rest on."""
        if data.startswith(b"INVITE "):
            if self._new_call(data, source, transport):
                return
        elif data.startswith(b"ACK "):
            if len(self.refusals) and self._refusal_acked(data):
                return
        elif data.startswith(b"OPTIONS "):
            if self._options_while_overloaded(data, source, transport):
                return
        self.server.datagram_received(data, source, transport)

    # ---- decisions -------------------------------------------------------------------------------
    def _new_call(self, data: bytes, source: tuple[str, int], transport: str) -> bool:
        """True when this INVITE was answered here (refused, or a refusal resent)."""
        peek = peek_request(data)
        if peek is None or peek.in_dialog:
            return False
        now = self.reactor.seconds()
        answer = self.refusals.get(peek.key, now)
        if answer is not None:
            self.core.refusal_resent()
            self._resent.inc()
            self._send(answer, source, transport)
            self._report(now)
            return True
        if peek.call_id in self.calls.sessions:
            return False  # a retransmission of a call in progress: the endpoint absorbs it
        self._refresh()
        reason = self.core.decide(now, active_calls=len(self.calls.sessions), trunk=self._from_trunk(source))
        if reason is None:
            self._admitted.inc()
            return False
        answer = peek.answer(503, UNAVAILABLE, to_tag=new_tag(), headers=self._headers[reason])
        self.refusals.put(peek.key, answer, now)
        self._refused[reason].inc()
        self._invites.inc()
        self._calls_refused_503.inc()
        self._last_refused = (peek.call_id, source)
        self._send(answer, source, transport)
        self._report(now)
        return True

    def _refusal_acked(self, data: bytes) -> bool:
        """True when this is the ACK of a refusal sent here (dropped: there is no transaction)."""
        peek = peek_request(data)
        return peek is not None and self.refusals.get(peek.key, self.reactor.seconds()) is not None

    def _options_while_overloaded(self, data: bytes, source: tuple[str, int], transport: str) -> bool:
        """True when an out-of-dialog OPTIONS was answered 503 here, because new calls are refused now."""
        now = self.reactor.seconds()
        if not self.core.overloaded(now, active_calls=len(self.calls.sessions)):
            return False
        peek = peek_request(data)
        if peek is None or peek.in_dialog:
            return False
        self._options.inc()
        self._send(peek.answer(503, UNAVAILABLE, to_tag=new_tag(), headers=self._headers[OVERLOAD]), source,
                   transport)
        return True

    def _from_trunk(self, source: tuple[str, int]) -> bool:
        known = self._trunk_sources.get(source)
        if known is None:
            known = self._config.trunk_for(*source) is not None
            if len(self._trunk_sources) >= MAX_CLASSIFIED:
                self._trunk_sources.clear()
            self._trunk_sources[source] = known
        return known

    def _refresh(self) -> None:
        """Follow a reload: new ceilings, Retry-After and trunks."""
        config = self.live.config
        if config is self._config:
            return
        self._config = config
        self.core.reconfigure(_ceilings(config))
        self._headers = self._refusal_headers()
        self._trunk_sources.clear()

    def _refusal_headers(self) -> dict[str, tuple[tuple[str, str], ...]]:
        retry_after = str(self._config.sip.admission.retry_after_seconds)
        return {reason: (("Retry-After", retry_after), ("Warning", f'399 acd "overloaded: {reason}"'))
                for reason in REASONS}

    # ---- output ----------------------------------------------------------------------------------
    def _send(self, data: bytes, destination: tuple[str, int], transport: str) -> None:
        self._sent_503.inc()
        sender = self._senders.get(transport)
        if sender is not None:
            sender(Datagram(data, destination, transport))

    def _report(self, now: float) -> None:
        summary = self.core.summary(now)
        if summary is None:
            return
        ceilings = self.core.ceilings
        rate = f"{ceilings.new_calls_per_second:g}/s" if ceilings.new_calls_per_second else "no limit"
        last = self._last_refused
        log.warning("admission: refused %d new call(s) with 503 in the last %.1f s (%s); %d retransmission(s) of "
                    "refused INVITEs answered again; %d admitted; %d calls in progress (max_calls %d), rate ceiling "
                    "%s, event loop %.0f ms late%s%s", summary.refused_total, summary.seconds,
                    ", ".join(f"{reason} {count}" for reason, count in summary.refused) or "none new",
                    summary.resent, summary.admitted, len(self.calls.sessions), ceilings.max_calls, rate,
                    self.core.lag.last_lag_seconds * 1000, "; OVERLOADED" if self.core.lag.overloaded else "",
                    f"; last refused call={last[0]} from {last[1][0]}:{last[1][1]}" if last is not None else "")
