"""The IVR interpreter: walks one call through its flows. Pure: events in, actions out, `now` passed in.

The shell carries out the actions (play, listen, look up, queue, record, hang up) and reports back
with events carrying the same id; an event whose id is not the current one is stale (stopped by
barge-in) and ignored. The shell calls `handle_timers(now)` at `next_deadline()`. `now` is a POSIX
timestamp (business hours are evaluated on it).
"""

from __future__ import annotations

import re
from typing import Mapping

from .conditions import evaluate
from .context import CallContext, placeholders
from .events import (Action, CallerHungUp, DigitReceived, DigitsCollected, EnqueueCall, FlowEnded, FlowEvent, HangUp,
                     IvrEvent, LookUp, LookupFinished, MenuChoiceMade, PlaybackFinished, PlayPrompts, QueueFinished,
                     RecordingFinished, SpeechChoiceMade, SpeechNotRecognized, SpeechRecognized, StartListening,
                     StartRecording, StepEntered, StopListening, StopPlayback, StopRecording, TransferCall)
from .flow import (BranchStep, CollectStep, Flow, GotoFlowStep, HangupStep, LookupStep, MenuStep, PlayStep, PromptItem,
                   QueueStep, RecordStep, SayDigits, SayNumber, SetStep, SpeechMenuStep, Step, TransferStep)
from .hours import BusinessHours
from .spoken import digit_prompts, number_prompts

__all__ = ["FlowRun", "MAX_STEPS_WITHOUT_INPUT"]

# Steps that take no time (set, branch, goto) could loop forever; `acd check` refuses such loops,
# and this bound stops one at run time too. No sane flow chains 100 steps without waiting.
MAX_STEPS_WITHOUT_INPUT = 100
# How long past its own timeouts a speech menu waits for the shell's answer before giving up.
SPEECH_RESULT_GRACE_SECONDS = 10.0


class FlowRun:
    """One call's walk through a flow (and the sub-flows it goes to)."""

    def __init__(self, flow: Flow, *, flows: Mapping[str, Flow] | None = None, context: CallContext | None = None,
                 calendars: Mapping[str, BusinessHours] | None = None) -> None:
        self.flow = flow
        self._entry_flow = flow.name
        self.flows = flows or {flow.name: flow}
        self.context = context or CallContext()
        self.calendars = calendars or {}
        self.step_name: str | None = None
        self.finished = False
        self.path: list[str] = []
        self._phase = "idle"  # idle | playing | prompting | waiting | listening | lookup | queued | recording
        self._ids = 0
        self._current_id = 0
        self._tries = 0
        self._digits = ""
        self._deadline: float | None = None

    # ---- public ------------------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        """Enter the flow's start step (once: after the flow started or ended, nothing happens)."""
        if self.finished or self.path:
            return []
        return self._enter(self.flow.start, now)

    @property
    def step(self) -> Step | None:
        """The current step."""
        return self.flow.steps[self.step_name] if self.step_name else None

    @property
    def collecting_masked(self) -> bool:
        """True while masked digits are being collected: the shell must not log or record DTMF now."""
        step = self.step
        return (isinstance(step, CollectStep) and step.mask and not self.finished
                and self._phase in ("prompting", "waiting"))

    def next_deadline(self) -> float | None:
        """When `handle_timers` must be called (an input timeout), or None."""
        return self._deadline

    def handle(self, event: IvrEvent, now: float) -> list[Action]:
        """Apply one event; returns the actions the shell must carry out, in order."""
        if self.finished:
            return []
        if isinstance(event, CallerHungUp):
            self._finish()
            return [FlowEnded(outcome=f"caller hung up at {self.step_name}")]
        step = self.step
        if isinstance(event, PlaybackFinished):
            if event.playback_id != self._current_id or self._phase not in ("playing", "prompting"):
                return []
            return self._after_prompt(step, now)
        if isinstance(event, DigitReceived):
            return self._digit(step, event.digit, now)
        if isinstance(event, (SpeechRecognized, SpeechNotRecognized)):
            if event.listen_id != self._current_id or self._phase != "listening":
                return []
            return self._speech(step, event, now)
        if isinstance(event, LookupFinished):
            if event.lookup_id != self._current_id or self._phase != "lookup":
                return []
            return self._lookup_finished(step, event, now)
        if isinstance(event, QueueFinished):
            if self._phase != "queued":
                return []
            return self._queue_finished(step, event, now)
        if isinstance(event, RecordingFinished):
            if event.record_id != self._current_id or self._phase != "recording":
                return []
            self.context.set(step.into, {"path": event.path, "seconds": round(event.seconds, 1)})
            return self._enter(step.next, now)
        raise TypeError(f"unknown IVR event {event!r}")

    def handle_timers(self, now: float) -> list[Action]:
        """Fire the input timeout if it is due."""
        if self._deadline is None or now < self._deadline or self.finished:
            return []
        self._deadline = None
        step = self.step
        if isinstance(step, CollectStep) and self._phase == "waiting":
            if self._digits:
                return self._collect_done(step, now)  # inter-digit timeout ends the input
            return self._retry(step, step.timeout_prompts, "timeout", now)
        if isinstance(step, MenuStep) and self._phase == "waiting":
            return self._retry(step, step.timeout_prompts, "timeout", now)
        if isinstance(step, SpeechMenuStep) and self._phase == "listening":
            return [StopListening()] + self._retry(step, step.no_input_prompts, "no result from the recogniser", now)
        return []

    # ---- input -------------------------------------------------------------------------------
    def _digit(self, step: Step | None, digit: str, now: float) -> list[Action]:
        phase = self._phase
        if isinstance(step, PlayStep):
            if phase == "playing" and step.barge_in:
                actions = [StopPlayback()] + self._enter(step.next, now)
                return actions + self._type_ahead(digit, now)
            return []
        if isinstance(step, MenuStep) and (phase == "waiting" or (phase == "prompting" and step.barge_in)):
            actions = [StopPlayback()] if phase == "prompting" else []
            self._deadline = None
            target = step.choices.get(digit)
            if target is None:
                return actions + self._retry(step, step.invalid_prompts, "invalid", now)
            actions.append(MenuChoiceMade(step=step.name, digit=digit, next_step=target))
            return actions + self._enter(target, now)
        if isinstance(step, CollectStep) and (phase == "waiting" or (phase == "prompting" and step.barge_in)):
            actions = [StopPlayback()] if phase == "prompting" else []
            self._phase = "waiting"
            if step.terminator is not None and digit == step.terminator:
                return actions + self._collect_done(step, now)
            self._digits += digit
            if len(self._digits) >= step.max_length:
                return actions + self._collect_done(step, now)
            self._deadline = now + step.inter_digit_timeout_seconds
            return actions
        if isinstance(step, SpeechMenuStep) and (phase == "listening" or (phase == "prompting" and step.barge_in)):
            actions: list[Action] = [StopPlayback() if phase == "prompting" else StopListening()]
            self._deadline = None
            target = step.choices.get(digit)
            if target is None:
                return actions + self._retry(step, step.no_match_prompts, "invalid key", now)
            actions.append(MenuChoiceMade(step=step.name, digit=digit, next_step=target))
            return actions + self._enter(target, now)
        if isinstance(step, RecordStep) and phase == "recording" and digit == "#":
            return [StopRecording()]
        return []

    def _type_ahead(self, digit: str, now: float) -> list[Action]:
        """A digit that barged into a play step also answers the input step that follows it."""
        # "waiting"/"listening": the step's prompts rendered empty, so it takes input at once.
        taking_input = self._phase in ("prompting", "waiting", "listening")
        if isinstance(self.step, (MenuStep, CollectStep, SpeechMenuStep)) and taking_input:
            return self._digit(self.step, digit, now)
        return []

    def _after_prompt(self, step: Step | None, now: float) -> list[Action]:
        if isinstance(step, PlayStep):
            return self._enter(step.next, now)
        if isinstance(step, (MenuStep, CollectStep)):
            self._phase = "waiting"
            self._deadline = now + step.timeout_seconds
            return []
        if isinstance(step, SpeechMenuStep):
            self._phase = "listening"
            self._current_id = self._new_id()
            self._deadline = now + step.timeout_seconds + step.max_utterance_seconds + SPEECH_RESULT_GRACE_SECONDS
            return [StartListening(listen_id=self._current_id, phrases=tuple(step.phrases),
                                   timeout_seconds=step.timeout_seconds,
                                   max_utterance_seconds=step.max_utterance_seconds,
                                   min_confidence=step.min_confidence)]
        if isinstance(step, RecordStep):
            self._phase = "recording"
            self._current_id = self._new_id()
            return [StartRecording(record_id=self._current_id, kind=step.kind, max_seconds=step.max_seconds,
                                   silence_seconds=step.silence_seconds)]
        return []

    def _collect_done(self, step: CollectStep, now: float) -> list[Action]:
        value, self._digits = self._digits, ""
        self._deadline = None
        valid = len(value) >= step.min_length and (step.pattern is None or re.fullmatch(step.pattern, value))
        if not valid:
            return self._retry(step, step.invalid_prompts, "invalid", now)
        self.context.set(step.into, value, masked=step.mask)
        collected = DigitsCollected(step=step.name, variable=step.into, value=None if step.mask else value,
                                    length=len(value), masked=step.mask)
        return [collected] + self._enter(step.next, now)

    def _speech(self, step: SpeechMenuStep, event: SpeechRecognized | SpeechNotRecognized, now: float) -> list[Action]:
        self._deadline = None
        if isinstance(event, SpeechRecognized):
            target = step.phrases.get(event.phrase)
            if target is not None and event.confidence >= step.min_confidence:
                choice = SpeechChoiceMade(step=step.name, phrase=event.phrase, confidence=event.confidence,
                                          next_step=target)
                return [choice] + self._enter(target, now)
            return self._retry(step, step.no_match_prompts, f"no-match ({event.phrase} at {event.confidence:.2f})", now)
        prompts = step.no_input_prompts if event.reason == "no-input" else step.no_match_prompts
        return self._retry(step, prompts, event.reason, now)

    def _retry(self, step: MenuStep | CollectStep | SpeechMenuStep, feedback: tuple[PromptItem, ...], why: str,
               now: float) -> list[Action]:
        self._tries += 1
        self._digits = ""
        if self._tries >= step.retries:
            if step.on_failure is None:
                self._finish()
                return [HangUp(reason=f"menu {step.name}: no valid choice after {self._tries} tries ({why})"),
                        FlowEnded(outcome=f"menu-failure at {step.name}")]
            return self._enter(step.on_failure, now)
        return self._prompt(feedback + step.prompts, "prompting", step, now)

    def _lookup_finished(self, step: LookupStep, event: LookupFinished, now: float) -> list[Action]:
        if event.record is not None:
            self.context.set(step.into, event.record)
            return self._enter(step.found, now)
        return self._enter(step.not_found, now)

    def _queue_finished(self, step: QueueStep, event: QueueFinished, now: float) -> list[Action]:
        if event.outcome == "failed" and step.on_failure is not None:
            return self._enter(step.on_failure, now)
        self._finish()
        if event.outcome == "failed":
            return [HangUp(reason=f"queue {step.queue}: {event.reason or 'could not queue'}"),
                    FlowEnded(outcome=f"queue-failure at {step.name}")]
        return [FlowEnded(outcome=f"queue {step.queue}: {event.outcome}")]

    # ---- stepping ----------------------------------------------------------------------------
    def _enter(self, name: str | None, now: float) -> list[Action]:
        actions: list[Action] = []
        for _ in range(MAX_STEPS_WITHOUT_INPUT):
            self._deadline = None
            self._tries = 0
            self._digits = ""
            if name is None:
                self._finish()
                return actions + [HangUp(reason=f"flow {self.flow.name} ended after {self.step_name}", completed=True),
                                  FlowEnded(outcome="completed")]
            step = self.flow.steps[name]
            self.step_name = name
            # Steps of sub-flows show as flow:step in the path.
            self.path.append(name if self.flow.name == self._entry_flow else f"{self.flow.name}:{name}")
            actions.append(StepEntered(flow=self.flow.name, step=name))
            if step.event:
                actions.append(FlowEvent(name=step.event, flow=self.flow.name, step=name))
            if isinstance(step, SetStep):
                for variable, template in step.values.items():
                    # A value built from a masked one (a PIN) is masked too, or it would reach agents and logs.
                    masked = any(self.context.is_masked(n) for n in placeholders(template))
                    self.context.set(variable, self.context.render(template), masked=masked)
                name = step.next
            elif isinstance(step, PlayStep) and not self._resolve(step.prompts):
                name = step.next  # nothing to say (spoken values rendered empty): takes no time, like set
            elif isinstance(step, BranchStep):
                name = next((target for condition, target in step.cases
                             if evaluate(condition, self.context, now, self.calendars)), step.otherwise)
            elif isinstance(step, GotoFlowStep):
                self.flow = self.flows[step.flow]
                name = self.flow.start
            else:
                return actions + self._begin(step, now)
        self._finish()
        return actions + [HangUp(reason=f"flow {self.flow.name} looped {MAX_STEPS_WITHOUT_INPUT} steps without input"),
                          FlowEnded(outcome=f"loop-without-input at {self.step_name}")]

    def _begin(self, step: Step, now: float) -> list[Action]:
        if isinstance(step, PlayStep):
            return self._prompt(step.prompts, "playing", step, now)
        if isinstance(step, (MenuStep, CollectStep, SpeechMenuStep, RecordStep)):
            return self._prompt(step.prompts, "prompting", step, now)
        if isinstance(step, LookupStep):
            self._phase = "lookup"
            self._current_id = self._new_id()
            masked = any(self.context.is_masked(n) for n in re.findall(r"\{([^}]+)\}", step.key))
            return [LookUp(lookup_id=self._current_id, source=step.source, key=self.context.render(step.key),
                           masked=masked)]
        if isinstance(step, QueueStep):
            self._phase = "queued"
            return [EnqueueCall(queue=step.queue, priority=step.priority, skills=dict(step.skills),
                                context=self.context.safe_view())]
        if isinstance(step, TransferStep):
            self._finish()
            target = self.context.render(step.target)
            return [TransferCall(target=target), FlowEnded(outcome=f"transferred to {target}")]
        if isinstance(step, HangupStep):
            self._finish()
            return [HangUp(reason=f"hangup step {step.name}", completed=True), FlowEnded(outcome="completed")]
        raise TypeError(f"no handler for step {step!r}")

    def _prompt(self, items: tuple[PromptItem, ...], phase: str, step: Step, now: float) -> list[Action]:
        files = self._resolve(items)
        self._phase = phase
        if not files:
            return self._after_prompt(step, now)
        self._current_id = self._new_id()
        return [PlayPrompts(prompts=tuple(files), playback_id=self._current_id)]

    def _resolve(self, items: tuple[PromptItem, ...]) -> list[str]:
        files: list[str] = []
        for item in items:
            if isinstance(item, SayDigits):
                files += digit_prompts(self.context.render(item.template))
            elif isinstance(item, SayNumber):
                files += number_prompts(self.context.render(item.template))
            else:
                files.append(item)
        return files

    def _new_id(self) -> int:
        self._ids += 1
        return self._ids

    def _finish(self) -> None:
        self.finished = True
        self._phase = "idle"
        self._deadline = None
