"""IVR flows as frozen data: what the YAML in `ivr_flows/` becomes once checked.

A flow is a set of named steps and a start step; each step says where to go next. One dataclass
per step kind, one handler per kind in the interpreter. Every step may name an `event` that is
reported when the step is entered, so reports can show where callers drop out.

Prompt lists mix file prompts (`"welcome"`) with spoken values built from digit and number prompts
(`SayDigits("{account}")`, `SayNumber("{order_total}")`), resolved from the call context at play time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .conditions import Condition

__all__ = [
    "SayDigits", "SayNumber", "PromptItem", "PlayStep", "MenuStep", "CollectStep", "SpeechMenuStep", "SetStep",
    "BranchStep", "LookupStep", "GotoFlowStep", "QueueStep", "TransferStep", "RecordStep", "HangupStep", "Step",
    "Flow", "INPUT_STEPS", "DEFAULT_MENU_TIMEOUT_SECONDS", "DEFAULT_MENU_RETRIES",
]

# A caller needs 3-5 s to decide after a menu prompt ends (common IVR guidance; Asterisk's
# Background()+WaitExten default is 5 s). Three tries, then the failure step.
DEFAULT_MENU_TIMEOUT_SECONDS = 5.0
DEFAULT_MENU_RETRIES = 3
# Between two digits of an account number or PIN people pause up to ~3 s (Asterisk Read() uses
# the same timeout for every digit; FreeSWITCH play_and_get_digits defaults digit_timeout to 3 s).
DEFAULT_INTER_DIGIT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class SayDigits:
    """Speak a context value digit by digit ("1 2 3") with the `digits/N` prompts."""

    template: str


@dataclass(frozen=True, slots=True)
class SayNumber:
    """Speak a context value as a number ("one hundred twenty three") with `digits/` and `numbers/` prompts."""

    template: str


PromptItem = str | SayDigits | SayNumber


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayStep:
    """Play prompts in order, then go to `next` (None: hang up). `barge_in`: a digit skips the rest."""

    name: str
    prompts: tuple[PromptItem, ...]
    next: str | None = None
    barge_in: bool = False
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuStep:
    """Play a prompt and wait for one DTMF digit naming a choice.

    A digit pressed during the prompt interrupts it when `barge_in` (the default). No digit within
    `timeout_seconds` after the prompt plays `timeout_prompts`, a digit not in `choices` plays
    `invalid_prompts`; either counts as one try, and after `retries` tries the call goes to `on_failure`.
    """

    name: str
    prompts: tuple[PromptItem, ...]
    choices: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = DEFAULT_MENU_TIMEOUT_SECONDS
    retries: int = DEFAULT_MENU_RETRIES
    timeout_prompts: tuple[PromptItem, ...] = ()
    invalid_prompts: tuple[PromptItem, ...] = ()
    on_failure: str | None = None
    barge_in: bool = True
    event: str | None = None
    line: int = 0

    def __post_init__(self) -> None:
        if self.retries < 1:
            raise ValueError("a menu needs at least 1 try")
        if self.timeout_seconds <= 0:
            raise ValueError("a menu timeout must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectStep:
    """Collect digits (account number, PIN) into the context variable `into`.

    Input ends at `terminator` (not stored), at `max_length` digits, or `inter_digit_timeout_seconds`
    after the last digit. Fewer than `min_length` digits or no `pattern` full match is invalid input.
    `mask`: the value never reaches logs, records or recordings (actions carry only its length).
    """

    name: str
    prompts: tuple[PromptItem, ...]
    into: str
    min_length: int = 1
    max_length: int = 16
    terminator: str | None = "#"
    timeout_seconds: float = DEFAULT_MENU_TIMEOUT_SECONDS
    inter_digit_timeout_seconds: float = DEFAULT_INTER_DIGIT_TIMEOUT_SECONDS
    retries: int = DEFAULT_MENU_RETRIES
    pattern: str | None = None
    mask: bool = False
    timeout_prompts: tuple[PromptItem, ...] = ()
    invalid_prompts: tuple[PromptItem, ...] = ()
    next: str | None = None
    on_failure: str | None = None
    barge_in: bool = True
    event: str | None = None
    line: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("collect needs 1 <= min_length <= max_length")
        if self.retries < 1:
            raise ValueError("collect needs at least 1 try")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechMenuStep:
    """Play a prompt, then listen for one of `phrases` (spoken) or a DTMF key in `choices`.

    Recognition below `min_confidence` is a no-match. No-match and no-input each count as one try
    and play their own prompt before the menu prompt again.
    """

    name: str
    prompts: tuple[PromptItem, ...]
    phrases: dict[str, str]
    choices: dict[str, str] = field(default_factory=dict)
    min_confidence: float = 0.5
    timeout_seconds: float = DEFAULT_MENU_TIMEOUT_SECONDS
    max_utterance_seconds: float = 4.0
    retries: int = DEFAULT_MENU_RETRIES
    no_input_prompts: tuple[PromptItem, ...] = ()
    no_match_prompts: tuple[PromptItem, ...] = ()
    on_failure: str | None = None
    barge_in: bool = True
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStep:
    """Set context variables from templates (`"{caller_id}"`, `"VIP"`), then go to `next`."""

    name: str
    values: dict[str, str]
    next: str | None = None
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchStep:
    """Go to the first `(condition, step)` whose condition holds, else to `otherwise`."""

    name: str
    cases: tuple[tuple[Condition, str], ...]
    otherwise: str | None = None
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupStep:
    """Look `key` (a template) up in data source `source`; the record lands in context `into`."""

    name: str
    source: str
    key: str
    into: str
    found: str | None = None
    not_found: str | None = None
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GotoFlowStep:
    """Continue in another flow (a sub-flow shared by several entry flows); the context goes along."""

    name: str
    flow: str
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStep:
    """Hand the call to the ACD: queue, priority, required skills. `on_failure` if it cannot queue."""

    name: str
    queue: str
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    on_failure: str | None = None
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferStep:
    """Blind-transfer the caller to another number (a template)."""

    name: str
    target: str
    event: str | None = None
    line: int = 0


# A voicemail ends after this much quiet, as Asterisk's Record(silence=) and most mail systems do.
DEFAULT_RECORD_SILENCE_SECONDS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordStep:
    """Record the caller (voicemail, callback request) after `prompts`; `#`, `max_seconds` or
    `silence_seconds` of quiet (0: never) ends it."""

    name: str
    prompts: tuple[PromptItem, ...]
    into: str
    kind: str = "voicemail"
    max_seconds: float = 60.0
    silence_seconds: float = DEFAULT_RECORD_SILENCE_SECONDS
    next: str | None = None
    event: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupStep:
    """End the call."""

    name: str
    event: str | None = None
    line: int = 0


Step = (PlayStep | MenuStep | CollectStep | SpeechMenuStep | SetStep | BranchStep | LookupStep | GotoFlowStep
        | QueueStep | TransferStep | RecordStep | HangupStep)
INPUT_STEPS = (MenuStep, CollectStep, SpeechMenuStep, RecordStep)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A named IVR flow: its steps by name and the step it starts at. `announce_before_answer`: file
    prompts a call routed to this flow hears before it is answered, as early media (183 Session
    Progress with SDP, RFC 3262 reliable when the caller supports it), e.g. "calls may be recorded"."""

    name: str
    start: str
    steps: dict[str, Step]
    source: str = ""
    announce_before_answer: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.start not in self.steps:
            raise ValueError(f"flow {self.name!r} starts at unknown step {self.start!r}")

    def prompts_used(self) -> set[str]:
        """Every file prompt any step may play (spoken values excluded)."""
        used: set[str] = set(self.announce_before_answer)
        for step in self.steps.values():
            for attribute in ("prompts", "timeout_prompts", "invalid_prompts", "no_input_prompts", "no_match_prompts"):
                used.update(p for p in getattr(step, attribute, ()) if isinstance(p, str))
        return used


def step_targets(step: Step) -> list[str | None]:
    """Every step name a step may go to (None: the call ends there)."""
    if isinstance(step, (PlayStep, SetStep, RecordStep)):
        return [step.next]
    if isinstance(step, MenuStep):
        return [*step.choices.values(), step.on_failure]
    if isinstance(step, CollectStep):
        return [step.next, step.on_failure]
    if isinstance(step, SpeechMenuStep):
        return [*step.phrases.values(), *step.choices.values(), step.on_failure]
    if isinstance(step, BranchStep):
        return [target for _, target in step.cases] + [step.otherwise]
    if isinstance(step, LookupStep):
        return [step.found, step.not_found]
    if isinstance(step, QueueStep):
        return [step.on_failure]
    return []
