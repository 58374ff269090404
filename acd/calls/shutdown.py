"""GracefulShutdown: SIGTERM (or `acd stop`) drains the server instead of dropping its calls.

Three phases, each bounded in time, so a stop never hangs:

1. Drain. New INVITEs (agents' feature codes too) and OPTIONS get 503 with Retry-After (the
   SipServer's admission switch: no dialog, no RTP port); everything inside dialogs, REGISTER and
   the agents' legs go on, and waiting callers may still be offered to agents. Calls in progress
   may finish on their own for up to `drain_seconds`; when the last one is gone we go on at once,
   but not before `min_drain_seconds`: behind a front proxy that probes with OPTIONS (Kamailio's
   dispatcher), a node that vanished at once would get new calls until the next probe, each lost
   to a timeout, while one that answers 503 for a probe interval is skipped at once.
2. End the rest. The ACD lets go of every call it holds (ringing offers get CANCEL, connected
   agents BYE); callers in the IVR or a queue hear a short goodbye, then BYE; bridged callers get
   BYE at once. Every call is recorded "server shutdown". Agents are NOT logged out: the last
   state recorded for each is its real state before the stop (available again after a cancelled
   offer, wrap-up after a call), which is what a restart restores.
3. Settle. Up to `settle_seconds` for the BYE/CANCEL transactions to get their final responses
   (the SIP endpoint retransmits them meanwhile), then the end of any call still open is written,
   the records are flushed and `stop` (reactor.stop) is called.

A second request (SIGTERM again, SIGINT) skips what is left: no more waiting for calls, no goodbye,
BYE and CANCEL at once (still recorded); a third stops without waiting for the last responses.
Everything runs on the reactor thread (signal handlers forward with callFromThread). `reactor`
provides IReactorTime.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Callable, Protocol

from twisted.internet import task

from .call_table import CallTable
from .leg_states import AgentLegState, CallState, EndReason
from .ports import ConfigSource

__all__ = ["Admission", "CallReleaser", "GracefulShutdown", "ShutdownPhase", "DEFAULT_DRAIN_SECONDS",
           "GOODBYE_PROMPTS"]

log = logging.getLogger("acd.shutdown")

# Long enough for most IVR calls to finish (a menu round is 10-20 s) and short enough for a process
# manager's stop timeout (systemd's TimeoutStopSec defaults to 90 s).
DEFAULT_DRAIN_SECONDS = 30.0
# The shipped sounds/goodbye.wav lasts 2.7 s; a longer or missing prompt never holds the stop.
GOODBYE_PROMPTS = ("goodbye",)
GOODBYE_MAX_SECONDS = 4.0
# A BYE or CANCEL is answered in milliseconds by a live peer; one lost on UDP is resent after 0.5,
# 1, 2 s (RFC 3261 Timer E), so 4 s covers three retransmissions without waiting for Timer F (32 s).
SETTLE_SECONDS = 4.0
# What the 503 tells trunks and phones: try again after a restart's few seconds (RFC 3261 §20.33).
RETRY_AFTER_SECONDS = 30
POLL_SECONDS = 0.1
REASON = EndReason.SERVER_SHUTDOWN.describe()


class Admission(Protocol):
    """The switch that stops new calls (the SipServer)."""

    def refuse_new_calls(self, retry_after_seconds: int) -> None: ...


class CallReleaser(Protocol):
    """The ACD: lets go of every call it holds; says each one's situation ("connected", ...)."""

    def release_all(self, reason: str) -> dict[str, str]: ...


class ShutdownPhase(enum.Enum):
    """Where the stop is."""

    RUNNING = "running"
    DRAINING = "draining"      # new calls refused, calls in progress go on
    ENDING = "ending"          # goodbyes playing, BYE/CANCEL sent, waiting for their responses
    STOPPED = "stopped"


class GracefulShutdown:
    """Drains, ends and stops the server when asked (`request`). `calls` is the live CallTable,
    `config` says which prompts exist, `flush_records()` waits for the records writer, `stop()`
    stops the reactor."""

    def __init__(self, *, reactor, calls: CallTable, acd: CallReleaser, admission: Admission,
                 config: ConfigSource, flush_records: Callable[[], Any], stop: Callable[[], None],
                 drain_seconds: float = DEFAULT_DRAIN_SECONDS, goodbye: tuple[str, ...] = GOODBYE_PROMPTS,
                 goodbye_max_seconds: float = GOODBYE_MAX_SECONDS, settle_seconds: float = SETTLE_SECONDS,
                 retry_after_seconds: int = RETRY_AFTER_SECONDS, min_drain_seconds: float = 0.0) -> None:
        self.reactor = reactor
        self.calls = calls
        self.acd = acd
        self.admission = admission
        self.config = config
        self.flush_records = flush_records
        self.stop = stop
        self.drain_seconds = drain_seconds
        self.goodbye = goodbye
        self.goodbye_max_seconds = goodbye_max_seconds
        self.settle_seconds = settle_seconds
        self.retry_after_seconds = retry_after_seconds
        self.min_drain_seconds = min(min_drain_seconds, drain_seconds)
        self._drain_started = 0.0
        self.phase = ShutdownPhase.RUNNING
        self.immediate = False
        self.calls_at_start = 0
        self.finished_during_drain = 0
        self.callers_ended = 0
        self.offers_cancelled = 0
        self.bridged_ended = 0
        self._deadline = None
        self._poll: task.LoopingCall | None = None

    # ---- requests ------------------------------------------------------------------------------
    def request(self, why: str) -> None:
        """A stop was asked for (`why`: "SIGTERM", "SIGINT"...): drain first; again: end at once."""
        if self.phase is ShutdownPhase.RUNNING:
            self._drain(why)
        elif self.phase is ShutdownPhase.DRAINING or (self.phase is ShutdownPhase.ENDING and not self.immediate):
            log.warning("shutdown requested again (%s): ending every call at once", why)
            self._end_the_rest(immediate=True)
        elif self.phase is ShutdownPhase.ENDING:
            log.warning("shutdown requested again (%s): exiting without waiting for the last responses", why)
            self._finish()

    def _drain(self, why: str) -> None:
        self.phase = ShutdownPhase.DRAINING
        self.admission.refuse_new_calls(self.retry_after_seconds)
        self.calls_at_start = len(self.calls.sessions)
        self._drain_started = self.reactor.seconds()
        log.info("shutdown requested (%s): draining %d calls for up to %g s; new calls refused with 503", why,
                 self.calls_at_start, self.drain_seconds)
        if self.drain_seconds <= 0 or (self._idle() and self.min_drain_seconds <= 0):
            self._end_the_rest(immediate=False)
            return
        self._deadline = self.reactor.callLater(self.drain_seconds, self._drain_over)
        self._start_polling()

    def _drain_over(self) -> None:
        self._deadline = None
        log.info("shutdown: drain time of %g s is over; %d calls still in progress", self.drain_seconds,
                 len(self.calls.sessions))
        self._end_the_rest(immediate=False)

    # ---- ending what is left -------------------------------------------------------------------
    def _end_the_rest(self, *, immediate: bool) -> None:
        """Release every call from the ACD, then goodbye-and-BYE (or BYE at once) to each caller."""
        self._cancel_timers()
        first = self.phase is not ShutdownPhase.ENDING
        self.phase = ShutdownPhase.ENDING
        self.immediate = immediate
        if first:
            self.finished_during_drain = max(0, self.calls_at_start - len(self.calls.sessions))
        # Every leg of ours still ringing: offers to agents, and customers being called back.
        self.offers_cancelled += sum(1 for leg in self.calls.placed.values()
                                     if leg.state in (AgentLegState.CALLING, AgentLegState.RINGING))
        situations = self.acd.release_all(REASON)
        goodbye = () if immediate else tuple(name for name in self.goodbye if name in self.config.config.prompts)
        for session in list(self.calls.sessions.values()):
            if session.state is CallState.CLOSING:
                session.hang_up(EndReason.SERVER_SHUTDOWN)  # already counted: its goodbye is cut short
            elif session.state in (CallState.ENDING, CallState.ENDED):
                continue  # hanging up on its own
            elif situations.get(session.call_id) == "connected" or session.bridged_to is not None:
                self.bridged_ended += 1
                session.hang_up(EndReason.SERVER_SHUTDOWN)
            else:
                self.callers_ended += 1
                session.close(EndReason.SERVER_SHUTDOWN, goodbye, self.goodbye_max_seconds)
        for leg in list(self.calls.placed.values()):
            leg.cancel(REASON)  # callbacks and anything the ACD no longer held: CANCEL or BYE
        wait = self.settle_seconds + (self.goodbye_max_seconds if goodbye else 0.0)
        self._deadline = self.reactor.callLater(wait, self._settle_over)
        self._start_polling()

    def _settle_over(self) -> None:
        self._deadline = None
        log.warning("shutdown: %d calls and %d agent legs still had no final response; closing them",
                    len(self.calls.sessions), len(self.calls.placed))
        self._finish()

    def _finish(self) -> None:
        """Write the end of what is still open, flush the records, stop the reactor."""
        self._cancel_timers()
        if self.phase is ShutdownPhase.STOPPED:
            return
        self.phase = ShutdownPhase.STOPPED
        for session in list(self.calls.sessions.values()):
            session.end_now(EndReason.SERVER_SHUTDOWN)
        if not self.flush_records():
            log.error("shutdown: the records writer did not catch up; some records may be lost")
        log.info("shutdown: %d calls finished during drain, %d ended by the server (%d callers, %d agent offers "
                 "cancelled, %d bridged); exiting", self.finished_during_drain,
                 self.callers_ended + self.bridged_ended, self.callers_ended, self.offers_cancelled,
                 self.bridged_ended)
        self.stop()

    # ---- waiting -------------------------------------------------------------------------------
    def _idle(self) -> bool:
        return not self.calls.sessions and not self.calls.placed

    def _start_polling(self) -> None:
        if self._poll is None:
            self._poll = task.LoopingCall(self._check)
            self._poll.clock = self.reactor
            self._poll.start(POLL_SECONDS, now=False)

    def _check(self) -> None:
        if not self._idle():
            return
        if self.phase is ShutdownPhase.DRAINING:
            if self.reactor.seconds() - self._drain_started < self.min_drain_seconds:
                return  # still answering 503 for the front proxy's probes
            log.info("shutdown: every call finished during the drain")
            self._end_the_rest(immediate=False)
        elif self.phase is ShutdownPhase.ENDING:
            self._finish()

    def _cancel_timers(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._poll = None
