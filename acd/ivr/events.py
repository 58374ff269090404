"""What the interpreter is told (events) and what it asks for (actions); frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PlaybackFinished", "DigitReceived", "CallerHungUp", "PlayPrompts", "StopPlayback",
           "HangUp", "MenuChoiceMade", "StepEntered", "FlowEnded", "Action", "IvrEvent"]

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


IvrEvent = PlaybackFinished | DigitReceived | CallerHungUp


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompts:
    """Play these prompts in order; report PlaybackFinished with this id."""

    prompts: tuple[str, ...]
    playback_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPlayback:
    """Stop the current playback at once (barge-in)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    """End the call, with the reason to log and record."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuChoiceMade:
    """The caller chose `digit` in menu `step`, going to `next_step`: for logs and records."""

    step: str
    digit: str
    next_step: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEntered:
    """The flow entered a step (drop-off reports count these)."""

    flow: str
    step: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowEnded:
    """The flow is over; `outcome` says how (hangup step, caller hung up, menu failure)."""

    outcome: str


Action = PlayPrompts | StopPlayback | HangUp | MenuChoiceMade | StepEntered | FlowEnded
