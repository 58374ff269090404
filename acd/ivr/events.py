"""What the interpreter is told (events) and what it asks for (actions); frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PlaybackFinished", "DigitReceived", "CallerHungUp", "SpeechRecognized", "SpeechNotRecognized",
    "LookupFinished", "QueueFinished", "RecordingFinished", "IvrEvent",
    "PlayPrompts", "StopPlayback", "StartListening", "StopListening", "LookUp", "EnqueueCall", "TransferCall",
    "StartRecording", "StopRecording", "HangUp", "MenuChoiceMade", "DigitsCollected", "SpeechChoiceMade",
    "StepEntered", "FlowEvent", "FlowEnded", "Action", "DTMF_DIGITS",
]

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished:
    """The prompts asked for by the last PlayPrompts have all been played (or were stopped)."""

    playback_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitReceived:
    """The caller pressed a DTMF key (RFC 4733 or SIP INFO)."""

    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise ValueError(f"{self.digit!r} is not a DTMF digit")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp:
    """The caller left; the flow ends where it is."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechRecognized:
    """The recogniser heard `phrase` with `confidence` (0..1) for listen `listen_id`."""

    listen_id: int
    phrase: str
    confidence: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is not within 0..1")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechNotRecognized:
    """Listening ended without a phrase: `reason` is "no-input" (silence) or "no-match"."""

    listen_id: int
    reason: str
    confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.reason not in ("no-input", "no-match"):
            raise ValueError(f"unknown speech outcome {self.reason!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFinished:
    """A data-source look-up ended: the record, or None when nothing matched (or the source failed)."""

    lookup_id: int
    record: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFinished:
    """The ACD is done with the call: "answered", "callback", "abandoned" or "failed" (could not queue)."""

    outcome: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFinished:
    """A recording ended; `path` is where the audio was stored (None if nothing was recorded)."""

    record_id: int
    path: str | None
    seconds: float = 0.0


IvrEvent = (PlaybackFinished | DigitReceived | CallerHungUp | SpeechRecognized | SpeechNotRecognized
            | LookupFinished | QueueFinished | RecordingFinished)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompts:
    """Play these prompt files in order; report PlaybackFinished with this id."""

    prompts: tuple[str, ...]
    playback_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPlayback:
    """Stop the current playback at once (barge-in)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartListening:
    """Listen for one of `phrases`; report SpeechRecognized or SpeechNotRecognized with this id."""

    listen_id: int
    phrases: tuple[str, ...]
    timeout_seconds: float
    max_utterance_seconds: float
    min_confidence: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StopListening:
    """Stop listening (a DTMF key answered the speech menu); no result is expected."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LookUp:
    """Look `key` up in `source`; answer with LookupFinished(lookup_id). `masked`: do not log the key."""

    lookup_id: int
    source: str
    key: str
    masked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueCall:
    """Queue the call in the ACD; answer with QueueFinished. `context` is safe to show to agents."""

    queue: str
    priority: int
    skills: dict[str, int] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCall:
    """Blind-transfer the caller to `target` (a number); the flow is over."""

    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRecording:
    """Record the caller's audio (at most `max_seconds`, ended by `silence_seconds` of quiet unless 0);
    answer with RecordingFinished(record_id)."""

    record_id: int
    kind: str
    max_seconds: float
    silence_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRecording:
    """The caller ended the recording (#)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    """End the call, with the reason to log and record; `completed` when the flow ended as designed
    (a hangup step, the flow's last step) rather than failing (no valid choice, queue refused)."""

    reason: str
    completed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuChoiceMade:
    """The caller chose `digit` in menu `step`, going to `next_step`: for logs and records."""

    step: str
    digit: str
    next_step: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitsCollected:
    """A collect step stored `length` digits in `variable`; `value` is None when masked."""

    step: str
    variable: str
    value: str | None
    length: int
    masked: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechChoiceMade:
    """The caller said `phrase` in speech menu `step` (confidence 0..1), going to `next_step`."""

    step: str
    phrase: str
    confidence: float
    next_step: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEntered:
    """The flow entered a step (drop-off reports count these)."""

    flow: str
    step: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowEvent:
    """A step's named `event` was reached (for reports: where callers go and drop out)."""

    name: str
    flow: str
    step: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowEnded:
    """The flow is over; `outcome` says how (completed, caller hung up, menu failure, queued...)."""

    outcome: str


Action = (PlayPrompts | StopPlayback | StartListening | StopListening | LookUp | EnqueueCall | TransferCall
          | StartRecording | StopRecording | HangUp | MenuChoiceMade | DigitsCollected | SpeechChoiceMade
          | StepEntered | FlowEvent | FlowEnded)
