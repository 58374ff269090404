"""Carries out what the IVR interpreter asks for one call: prompts, speech, look-ups, recordings.

`IvrServices` holds what every runner shares (directory, CRM, recognisers, metrics, the ACD's
queue entry, the live config) and builds runners. Results come back to the interpreter as events on a later reactor turn (`callLater(0)`) or from
the thread pool (speech recognition), never re-entrantly. `reactor` provides IReactorTime and
IReactorThreads (for `deferToThreadPool`).
"""

from __future__ import annotations

import logging
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import threads

from ..ivr.events import (DigitsCollected, EnqueueCall, FlowEnded, FlowEvent, HangUp, LookUp, LookupFinished,
                          MenuChoiceMade, PlayPrompts, RecordingFinished, SpeechChoiceMade,
                          SpeechNotRecognized, SpeechRecognized, StartListening, StartRecording, StepEntered,
                          StopListening, StopPlayback, StopRecording, TransferCall)
from ..ivr.conditions import evaluate
from ..ivr.context import CallContext
from ..ivr.flow import Flow
from ..ivr.interpreter import FlowRun
from ..context.sources import apply_lookup_result, directory_lookup
from ..media.g711 import alaw_decode, ulaw_decode
from ..media.silence import QuietTimer
from .caller_lookups import CallerLookups
from .leg_states import EndReason
from .ports import ConfigSource

if TYPE_CHECKING:
    from ..metrics import Metrics
    from .session import CallSession

__all__ = ["IvrRunner", "IvrServices", "CALLER_LOOKUP_TIMEOUT_SECONDS"]

# Answering must not wait on a slow directory: half a second is already a noticeable silence.
CALLER_LOOKUP_TIMEOUT_SECONDS = 0.5

log = logging.getLogger("acd.ivr")
_DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
# A flow that loops (a menu replayed) keeps only its first steps for the screen pop; the records keep all.
MAX_PATH_STEPS = 50
SILENCE_CHECK_SECONDS = 0.25  # how often a recording looks at how long the caller has been quiet


@dataclass(frozen=True)
class IvrServices:
    """What every IvrRunner uses; built once by the composition root. `enqueue` hands a call to the ACD."""

    reactor: Any
    config: ConfigSource
    metrics: "Metrics"
    recognizers: Any
    directory: Any
    enqueue: Callable[["CallSession", EnqueueCall], None]
    caller_lookups: CallerLookups | None = field(init=False, default=None)  # the directory's, batched

    def __post_init__(self) -> None:
        if self.directory is not None:
            object.__setattr__(self, "caller_lookups", CallerLookups(self.reactor, self.directory))

    def new_context(self, *, caller: str, caller_name: str | None, dialled: str, trunk: str,
                    call_id: str) -> CallContext:
        """What the flow knows of a new caller before it starts."""
        return CallContext({"caller_id": caller, "caller_name": caller_name, "dialled": dialled, "trunk": trunk,
                            "call_id": call_id})

    def runner(self, session: "CallSession", flow: Flow, context: CallContext,
               previous: "IvrRunner | None" = None) -> "IvrRunner":
        """A runner for `flow` on the config in force now, continuing `previous`'s path and choices."""
        config = self.config.config
        run = FlowRun(flow, flows=config.flows, context=context, calendars=config.calendars)
        runner = IvrRunner(session, run, self)
        if previous is not None:
            runner.choices = previous.choices
            runner.path = previous.path
        return runner


class IvrRunner:
    """The IVR half of a CallSession."""

    def __init__(self, session: "CallSession", flow_run: FlowRun, services: IvrServices) -> None:
        self.session: "CallSession | None" = session
        self.call_id = session.call_id  # for logs, also after `release`
        self.flow_run = flow_run
        self.services = services
        self.reactor = services.reactor
        config = services.config.config
        self.lookups = config.lookups
        self._data_dir = config.data_dir
        self.choices: list[str] = []
        self.path: list[str] = []  # the steps entered, in order (the agent's screen pop shows them)
        self._timer = None
        self._listen = None
        self._recording = None
        self._masked = False

    @property
    def recordings_dir(self) -> Path:
        """Where the flow's recordings go (the data directory of the config the call started with)."""
        return self._data_dir / "recordings"

    @property
    def _active(self) -> bool:
        """The call is up (False once it ended, and after `release`)."""
        return self.session is not None and self.session.active

    def release(self) -> None:
        """The call is over and written (`stop` came first): let go of the session. The session holds
        this runner, so keeping it would make a reference cycle, and every object of the call would
        wait for the garbage collector (the long GC pauses of issue 16) instead of going at once.
        A look-up or timer answering later finds the call inactive, as before; events fed after this
        are ignored."""
        self.session = None

    def start(self) -> None:
        """Enter the flow."""
        self.carry_out(self.flow_run.start(self.reactor.seconds()))

    def start_after_caller_lookup(self) -> None:
        """Look the caller ID up in the customer directory (thread pool), then enter the flow. A slow or
        failing directory never holds the call: after CALLER_LOOKUP_TIMEOUT_SECONDS the flow starts as
        for an unknown caller."""
        directory = self.services.directory
        caller = self.flow_run.context.get("caller_id") or ""
        if self.session.internal:
            self.start()
            return
        if directory is None or not caller:
            self._crm_then_start()
            return
        started = self.reactor.seconds()
        state = {"done": False}

        def begin(customer) -> None:
            if state["done"]:
                return
            state["done"] = True
            if timer.active():
                timer.cancel()
            if customer is not None:
                self.flow_run.context.set("customer", customer.context())
                log.info("call=%s caller %s is customer %s (tier %s) lookup_ms=%.0f", self.call_id, caller,
                         customer.id, customer.tier, (self.reactor.seconds() - started) * 1000)
            if self._active and not self.flow_run.finished:
                self._crm_then_start()

        def failed(failure) -> None:
            log.warning("call=%s customer look-up failed: %s; going on without it", self.call_id,
                        failure.getErrorMessage())
            begin(None)

        timer = self.reactor.callLater(CALLER_LOOKUP_TIMEOUT_SECONDS, lambda: (
            log.warning("call=%s customer look-up slower than %.1fs; going on without it", self.call_id,
                        CALLER_LOOKUP_TIMEOUT_SECONDS), begin(None)))
        self.services.caller_lookups.find_by_phone(caller).addCallbacks(begin, failed)

    def feed(self, event) -> None:
        """Give the interpreter one event and carry out what it answers (nothing after `release`)."""
        if self.session is None:
            return
        self.carry_out(self.flow_run.handle(event, self.reactor.seconds()))

    def stop(self) -> None:
        """The call is over: cancel timers, stop listening and recording."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._listen = None
        self.session.leg.on_audio = None
        if self._recording is not None:
            self._finish_recording("call ended")

    def carry_out(self, actions: list) -> None:
        """Do each action in order, then re-arm the interpreter's timer."""
        session = self.session
        for action in actions:
            # Most frequent first (StepEntered and FlowEvent come with nearly every step).
            if isinstance(action, StepEntered):
                log.debug("call=%s flow=%s step=%s", self.call_id, action.flow, action.step)
                self.services.metrics.ivr_steps.labels(action.flow, action.step).inc()
                if len(self.path) < MAX_PATH_STEPS:
                    self.path.append(action.step)
                session.records.ivr_step(self.call_id, flow=action.flow, step=action.step,
                                         at=self.reactor.seconds())
            elif isinstance(action, FlowEvent):
                log.info("call=%s event=%s flow=%s step=%s", self.call_id, action.name, action.flow, action.step)
                self.services.metrics.ivr_events.labels(action.flow, action.name).inc()
            elif isinstance(action, PlayPrompts):
                session.play(action.prompts, action.playback_id)
            elif isinstance(action, StopPlayback):
                session.leg.stop()
            elif isinstance(action, MenuChoiceMade):
                self.choices.append(f"{action.step}={action.digit}")
                log.info("call=%s menu=%s choice=%s next=%s", self.call_id, action.step, action.digit, action.next_step)
            elif isinstance(action, DigitsCollected):
                shown = "****" if action.masked else action.value
                self.choices.append(f"{action.step}={shown}")
                log.info("call=%s collect=%s into=%s digits=%s length=%d", self.call_id, action.step, action.variable,
                         shown, action.length)
            elif isinstance(action, SpeechChoiceMade):
                self.choices.append(f"{action.step}={action.phrase!r}")
                log.info("call=%s speech_menu=%s phrase=%r confidence=%.2f next=%s", self.call_id, action.step,
                         action.phrase, action.confidence, action.next_step)
            elif isinstance(action, StartListening):
                self._start_listening(action)
            elif isinstance(action, StopListening):
                self._listen = None
                session.leg.on_audio = None
            elif isinstance(action, LookUp):
                self._look_up(action)
            elif isinstance(action, EnqueueCall):
                log.info("call=%s queue=%s priority=%d skills=%s context=%s", self.call_id, action.queue,
                         action.priority, action.skills, action.context)
                self.reactor.callLater(0, self._enqueue, action)
            elif isinstance(action, TransferCall):
                session.transfer(action.target)
            elif isinstance(action, StartRecording):
                self._start_recording(action)
            elif isinstance(action, StopRecording):
                self._finish_recording("caller pressed #")
            elif isinstance(action, HangUp):
                session.hang_up(EndReason.FLOW_COMPLETED if action.completed else EndReason.FLOW_FAILED,
                                action.reason)
            elif isinstance(action, FlowEnded):
                log.info("call=%s flow=%s ended outcome=%r path=%s", self.call_id, self.flow_run.flow.name,
                         action.outcome, ">".join(self.flow_run.path))
        masked = self.flow_run.collecting_masked
        if masked != self._masked:
            self._masked = masked
            session.masking_changed(masked)
        self._rearm()

    def _crm_then_start(self) -> None:
        """Ask the external CRM (bounded by its timeout), put its answer in the context, start the flow."""
        crm = self.services.config.crm
        if crm is None or not crm.lookup_url:
            self._incidents_then_start()
            return
        context = self.flow_run.context

        def begin(record) -> None:
            if record:
                context.set("crm", record)
            if self._active and not self.flow_run.finished:
                self._incidents_then_start()

        crm.lookup({"caller_id": context.get("caller_id"), "dialled": context.get("dialled"),
                    "call_id": self.call_id}).addCallback(begin)

    def _incidents_then_start(self) -> None:
        """Play the banners of current incidents that match this caller, then enter the flow."""
        incidents = self.services.config.config.incidents
        now = self.reactor.seconds()
        matching = [i for i in incidents if evaluate(i.when, self.flow_run.context, now, self.flow_run.calendars)]
        if not matching:
            self.start()
            return
        log.info("call=%s incident banner(s): %s", self.call_id, ", ".join(i.name for i in matching))
        self.session.play_banner(tuple(p for i in matching for p in i.prompts), then=self.start)

    def _enqueue(self, action: EnqueueCall) -> None:
        if not self.flow_run.finished and self._active:
            self.services.enqueue(self.session, action)

    def _later(self, event) -> None:
        self.reactor.callLater(0, self._deliver, event)

    def _deliver(self, event) -> None:
        if not self.flow_run.finished and self._active:
            self.feed(event)

    def _rearm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.flow_run.next_deadline()
        if deadline is not None and self._active:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._active:
            self.carry_out(self.flow_run.handle_timers(self.reactor.seconds()))

    # ---- look-ups ----------------------------------------------------------------------------
    def _look_up(self, action: LookUp) -> None:
        shown = "****" if action.masked else action.key
        directory = self.services.directory
        if action.source in self.lookups or directory is None:
            record = self.lookups.get(action.source, {}).get(action.key)
            log.info("call=%s lookup source=%s key=%s found=%s", self.call_id, action.source, shown, record is not None)
            self._later(LookupFinished(lookup_id=action.lookup_id, record=dict(record) if record else None))
            return
        context = self.flow_run.context

        def work():
            return directory_lookup(directory, action.source, action.key)

        def done(record) -> None:
            log.info("call=%s lookup source=%s key=%s found=%s", self.call_id, action.source, shown, record is not None)
            apply_lookup_result(context, action.source, record)
            self._deliver(LookupFinished(lookup_id=action.lookup_id, record=record))

        def failed(failure) -> None:
            log.error("call=%s lookup source=%s failed: %s", self.call_id, action.source, failure.getErrorMessage())
            self._deliver(LookupFinished(lookup_id=action.lookup_id, record=None, error=failure.getErrorMessage()))

        threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), work).addCallbacks(done, failed)

    # ---- speech ------------------------------------------------------------------------------
    def _start_listening(self, action: StartListening) -> None:
        from ..speech.endpointing import NoInputDidTimeOut, SpeechDidEnd, SpeechEndpointer

        endpointer = SpeechEndpointer(no_input_timeout_ms=int(action.timeout_seconds * 1000) // 20 * 20,
                                      max_utterance_ms=int(action.max_utterance_seconds * 1000) // 20 * 20)
        decode = _DECODERS[self.session.negotiated.codec]
        listen = (action, endpointer)
        self._listen = listen
        log.info("call=%s listening for %s", self.call_id, "|".join(action.phrases))

        def on_audio(payload: bytes) -> None:
            if self._listen is not listen or len(payload) != 160:
                return
            result = endpointer.feed(decode(payload))
            if isinstance(result, NoInputDidTimeOut):
                self._listen = None
                self.session.leg.on_audio = None
                self.feed(SpeechNotRecognized(listen_id=action.listen_id, reason="no-input"))
            elif isinstance(result, SpeechDidEnd):
                self._listen = None
                self.session.leg.on_audio = None
                self._recognise(action, result.pcm)

        self.session.leg.on_audio = on_audio

    def _recognise(self, action: StartListening, pcm: bytes) -> None:
        recognizer = self.services.recognizers.get(action.phrases)
        started = time.monotonic()
        deferred = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), recognizer.recognize, pcm,
                                             action.min_confidence)

        def done(recognition) -> None:
            log.info("call=%s speech outcome=%s phrase=%r confidence=%.2f decode_ms=%.0f", self.call_id,
                     recognition.outcome, recognition.phrase, recognition.confidence,
                     (time.monotonic() - started) * 1000)
            if recognition.outcome == "match" and recognition.phrase is not None:
                event = SpeechRecognized(listen_id=action.listen_id, phrase=recognition.phrase,
                                         confidence=recognition.confidence)
            else:
                event = SpeechNotRecognized(listen_id=action.listen_id, reason=recognition.outcome,
                                            confidence=recognition.confidence)
            self._deliver(event)

        def failed(failure) -> None:
            log.error("call=%s speech recognition failed: %s", self.call_id, failure.getErrorMessage())
            self._deliver(SpeechNotRecognized(listen_id=action.listen_id, reason="no-match"))

        deferred.addCallbacks(done, failed)

    # ---- recording ---------------------------------------------------------------------------
    def _start_recording(self, action: StartRecording) -> None:
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.call_id)
        path = self.recordings_dir / f"{safe_id}-{action.kind}-{action.record_id}.wav"
        decode = _DECODERS[self.session.negotiated.codec]
        chunks: list[bytes] = []
        timers = [self.reactor.callLater(action.max_seconds, self._finish_recording, "maximum length")]
        self._recording = (action, path, chunks, timers)
        quiet = QuietTimer(self.reactor.seconds())
        log.info("call=%s recording %s to %s (max %.0fs, ends after %gs of silence)", self.call_id, action.kind, path,
                 action.max_seconds, action.silence_seconds)

        def on_audio(payload: bytes) -> None:
            pcm = decode(payload)
            chunks.append(pcm)
            quiet.frame(pcm, self.reactor.seconds())

        def check_silence() -> None:
            if quiet.quiet_for(self.reactor.seconds()) >= action.silence_seconds:
                self._finish_recording(f"{action.silence_seconds:g}s of silence")
            else:
                timers[1] = self.reactor.callLater(SILENCE_CHECK_SECONDS, check_silence)

        if action.silence_seconds > 0:
            timers.append(self.reactor.callLater(SILENCE_CHECK_SECONDS, check_silence))
        self.session.leg.on_audio = on_audio

    def _finish_recording(self, why: str) -> None:
        if self._recording is None:
            return
        action, path, chunks, timers = self._recording
        self._recording = None
        self.session.leg.on_audio = None
        for timer in timers:
            if timer.active():
                timer.cancel()
        pcm = b"".join(chunks)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(pcm)
        seconds = len(pcm) / 16000
        log.info("call=%s recording ended (%s): %.1fs in %s", self.call_id, why, seconds, path)
        self._later(RecordingFinished(record_id=action.record_id, path=str(path), seconds=seconds))
