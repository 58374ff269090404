"""IVR flows as frozen data: what the YAML in `ivr_flows/` becomes once checked.

A flow is a set of named steps and a start step. Each step says where to go next. The step kinds
today are `play`, `menu` and `hangup`; each is one dataclass here and one handler in the
interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PlayStep", "MenuStep", "HangupStep", "Step", "Flow", "DEFAULT_MENU_TIMEOUT_SECONDS",
           "DEFAULT_MENU_RETRIES"]

# A caller needs 3-5 s to decide after a menu prompt ends (common IVR guidance; Asterisk's
# Background()+WaitExten default is 5 s). Three tries, then the failure step.
DEFAULT_MENU_TIMEOUT_SECONDS = 5.0
DEFAULT_MENU_RETRIES = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayStep:
    """Play prompts in order, then go to `next` (None: hang up)."""

    name: str
    prompts: tuple[str, ...]
    next: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuStep:
    """Play a prompt and wait for one DTMF digit naming a choice.

    A digit pressed during the prompt interrupts it (barge-in). No digit within `timeout_seconds`
    after the prompt plays `timeout_prompts`, a digit not in `choices` plays `invalid_prompts`;
    either counts as one try, and after `retries` tries the call goes to `on_failure`.
    """

    name: str
    prompts: tuple[str, ...]
    choices: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = DEFAULT_MENU_TIMEOUT_SECONDS
    retries: int = DEFAULT_MENU_RETRIES
    timeout_prompts: tuple[str, ...] = ()
    invalid_prompts: tuple[str, ...] = ()
    on_failure: str | None = None
    line: int = 0

    def __post_init__(self) -> None:
        if self.retries < 1:
            raise ValueError("a menu needs at least 1 try")
        if self.timeout_seconds <= 0:
            raise ValueError("a menu timeout must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupStep:
    """End the call."""

    name: str
    line: int = 0


Step = PlayStep | MenuStep | HangupStep


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A named IVR flow: its steps by name and the step it starts at."""

    name: str
    start: str
    steps: dict[str, Step]
    source: str = ""

    def __post_init__(self) -> None:
        if self.start not in self.steps:
            raise ValueError(f"flow {self.name!r} starts at unknown step {self.start!r}")

    def prompts_used(self) -> set[str]:
        """Every prompt name any step may play."""
        used: set[str] = set()
        for step in self.steps.values():
            if isinstance(step, PlayStep):
                used.update(step.prompts)
            elif isinstance(step, MenuStep):
                used.update(step.prompts + step.timeout_prompts + step.invalid_prompts)
        return used
