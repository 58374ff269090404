"""`acd simulate`: walk a flow without the network, printing each step, prompt and decision.

A dry run for operators before deploying. Prompts "play" at once (their real length is added to
the simulated clock), look-ups read the configured tables, the ACD is not involved: a queue step
ends the simulation. Inputs are consumed whenever the flow waits: digits ("1", "1234#") are
pressed one by one, words ("billing") are said to a speech menu, and `-` is silence (a timeout).
"""

from __future__ import annotations

import time
from typing import Callable

from .config.model import Config
from .ivr.context import CallContext
from .ivr.events import (DigitReceived, DigitsCollected, EnqueueCall, FlowEnded, FlowEvent, HangUp, LookUp,
                         LookupFinished, MenuChoiceMade, PlaybackFinished, PlayPrompts, QueueFinished,
                         RecordingFinished, SpeechChoiceMade, SpeechNotRecognized, SpeechRecognized, StartListening,
                         StartRecording, StepEntered, StopListening, StopPlayback, StopRecording, TransferCall)
from .ivr.interpreter import FlowRun
from .context.routing_hints import TIER_PRIORITY_BONUS, caller_priority
from .context.sources import apply_lookup_result, directory_lookup
from .media.prompts import PromptLibrary

__all__ = ["simulate", "MAX_SIMULATED_EVENTS"]

# A flow that is still going after this many events is stuck in a loop the checker missed.
MAX_SIMULATED_EVENTS = 2000


def simulate(config: Config, flow_name: str, *, caller: str, dialled: str = "", inputs: list[str],
             now: float | None = None, out: Callable[[str], None] = print, directory=None) -> str:
    """Run the flow and print what happens; returns the outcome ("completed", "queued to sales"...)."""
    if flow_name not in config.flows:
        raise KeyError(f"no flow named {flow_name!r} (known: {', '.join(sorted(config.flows))})")
    clock = time.time() if now is None else now
    prompts = PromptLibrary(config.prompts)
    context = CallContext({"caller_id": caller, "caller_name": "", "dialled": dialled, "trunk": "simulation",
                           "call_id": "simulation"})
    if directory is not None and (customer := directory.find_by_phone(caller)) is not None:
        context.set("customer", customer.context())
        out(f"caller {caller} is customer {customer.id} ({customer.name}, tier {customer.tier})")
    run = FlowRun(config.flows[flow_name], flows=config.flows, context=context, calendars=config.calendars)
    pending = list(inputs)
    outcome = "unfinished"
    queue: list = list(run.start(clock))
    waiting_for: str | None = None
    for _ in range(MAX_SIMULATED_EVENTS):
        playback = listening = recording = None
        for action in queue:
            if isinstance(action, StepEntered):
                kind = type(run.flows[action.flow].steps[action.step]).__name__.removesuffix("Step").lower()
                out(f"step {action.flow}:{action.step} ({kind})")
            elif isinstance(action, PlayPrompts):
                seconds = sum(_duration(prompts, name) for name in action.prompts)
                out(f"  play {' '.join(action.prompts)}  ({seconds:.1f}s)")
                playback = (action.playback_id, seconds)
            elif isinstance(action, StopPlayback):
                out("  (prompt interrupted: barge-in)")
            elif isinstance(action, MenuChoiceMade):
                out(f"  choice {action.digit} -> {action.next_step}")
            elif isinstance(action, DigitsCollected):
                out(f"  collected {action.variable} = {'****' if action.masked else action.value}")
            elif isinstance(action, SpeechChoiceMade):
                out(f"  heard {action.phrase!r} -> {action.next_step}")
            elif isinstance(action, StartListening):
                out(f"  listening for: {', '.join(action.phrases)}")
                listening = action
            elif isinstance(action, StopListening):
                out("  (listening stopped)")
            elif isinstance(action, LookUp):
                if action.source in config.lookups or directory is None:
                    record = config.lookups.get(action.source, {}).get(action.key)
                else:
                    record = directory_lookup(directory, action.source, action.key)
                    apply_lookup_result(context, action.source, record)
                out(f"  lookup {action.source}[{'****' if action.masked else action.key}] -> {record}")
                queue_next = LookupFinished(lookup_id=action.lookup_id, record=dict(record) if record else None)
                listening = ("lookup", queue_next)
            elif isinstance(action, EnqueueCall):
                customer = (action.context or {}).get("customer") or {}
                tiers = config.agents.tier_priority if config.agents else TIER_PRIORITY_BONUS
                priority = caller_priority(action.priority, customer, tiers)
                tier = f" (step {action.priority} + tier {customer.get('tier')})" if priority != action.priority else ""
                out(f"  queue {action.queue} priority={priority}{tier} skills={action.skills}")
                out(f"  context for the agent: {action.context}")
                outcome = f"queued to {action.queue}"
                run.handle(QueueFinished(outcome="answered"), clock)
            elif isinstance(action, TransferCall):
                out(f"  transfer to {action.target}")
            elif isinstance(action, StartRecording):
                out(f"  record {action.kind} (max {action.max_seconds:.0f}s, ends after {action.silence_seconds:g}s of silence)")
                recording = action
            elif isinstance(action, StopRecording):
                out("  (recording stopped by #)")
            elif isinstance(action, FlowEvent):
                out(f"  event {action.name}")
            elif isinstance(action, HangUp):
                out(f"  hang up: {action.reason}")
            elif isinstance(action, FlowEnded):
                if outcome == "unfinished":
                    outcome = action.outcome
        if run.finished:
            break
        queue, clock, waiting_for = _next(run, clock, playback, listening, recording, pending, out)
        if queue is None:
            break
    out(f"end: {outcome} (path: {' > '.join(run.path)})")
    if pending:
        out(f"unused inputs: {', '.join(pending)}")
    return outcome


def _next(run: FlowRun, clock: float, playback, listening, recording, pending: list[str], out):
    """Feed the next event: playback end, an input, a look-up result or a timeout."""
    if isinstance(listening, tuple):
        return run.handle(listening[1], clock), clock, None
    if playback is not None:
        playback_id, seconds = playback
        if pending and pending[0] != "-" and run.step is not None and getattr(run.step, "barge_in", False) \
                and not isinstance(run.step, type(None)) and _accepts_digits(pending[0]):
            digit = pending[0][0]
            pending[0] = pending[0][1:]
            if not pending[0]:
                pending.pop(0)
            out(f"  press {digit} (during the prompt)")
            return run.handle(DigitReceived(digit=digit), clock + 0.5), clock + 0.5, None
        return run.handle(PlaybackFinished(playback_id=playback_id), clock + seconds), clock + seconds, None
    if isinstance(listening, StartListening):
        if not pending or pending[0] == "-":
            if pending:
                pending.pop(0)
            out("  (silence)")
            return run.handle(SpeechNotRecognized(listen_id=listening.listen_id, reason="no-input"),
                              clock + listening.timeout_seconds), clock + listening.timeout_seconds, None
        token = pending.pop(0)
        if _accepts_digits(token):
            out(f"  press {token[0]}")
            if token[1:]:
                pending.insert(0, token[1:])
            return run.handle(DigitReceived(digit=token[0]), clock + 1), clock + 1, None
        out(f"  say {token!r}")
        phrase = token.lower()
        event = (SpeechRecognized(listen_id=listening.listen_id, phrase=phrase, confidence=1.0)
                 if phrase in listening.phrases else
                 SpeechNotRecognized(listen_id=listening.listen_id, reason="no-match"))
        return run.handle(event, clock + 2), clock + 2, None
    if recording is not None:
        out("  (caller speaks for 5s)")
        return run.handle(RecordingFinished(record_id=recording.record_id, path=None, seconds=5.0),
                          clock + 5), clock + 5, None
    deadline = run.next_deadline()
    if pending and pending[0] != "-" and _accepts_digits(pending[0]):
        digit = pending[0][0]
        pending[0] = pending[0][1:]
        if not pending[0]:
            pending.pop(0)
        out(f"  press {digit}")
        return run.handle(DigitReceived(digit=digit), clock + 0.5), clock + 0.5, None
    if pending and pending[0] == "-":
        pending.pop(0)
    if deadline is None:
        out("  (the flow waits for something this simulation cannot give)")
        return None, clock, None
    out("  (no input: timeout)")
    return run.handle_timers(deadline), deadline, None


def _accepts_digits(token: str) -> bool:
    return bool(token) and all(c in "0123456789*#" for c in token)


def _duration(prompts: PromptLibrary, name: str) -> float:
    try:
        return prompts.duration_seconds(name)
    except (KeyError, OSError, ValueError):
        return 0.0
