"""The IVR interpreter: walks one call through one flow. Pure: events in, actions out, `now` passed in.

The shell plays what `PlayPrompts` asks, reports `PlaybackFinished` with the same id, forwards
DTMF as `DigitReceived`, and calls `handle_timers(now)` at `next_deadline()`. A playback id that
is not the current one is stale (it was stopped by barge-in) and is ignored.
"""

from __future__ import annotations

from .events import (Action, CallerHungUp, DigitReceived, FlowEnded, HangUp, IvrEvent, MenuChoiceMade,
                     PlaybackFinished, PlayPrompts, StepEntered, StopPlayback)
from .flow import Flow, HangupStep, MenuStep, PlayStep

__all__ = ["FlowRun"]


class FlowRun:
    """One call's walk through a flow."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.step_name: str | None = None
        self.finished = False
        self.path: list[str] = []
        self._phase = "idle"  # idle | playing | prompting | waiting
        self._playback_id = 0
        self._tries = 0
        self._deadline: float | None = None

    def start(self, now: float) -> list[Action]:
        """Enter the flow's start step (once: after the flow started or ended, nothing happens)."""
        if self.finished or self.path:
            return []
        return self._enter(self.flow.start, now)

    def handle(self, event: IvrEvent, now: float) -> list[Action]:
        """Apply one event; returns the actions the shell must carry out, in order."""
        if self.finished:
            return []
        if isinstance(event, CallerHungUp):
            self._finish()
            return [FlowEnded(outcome=f"caller hung up at {self.step_name}")]
        step = self.flow.steps[self.step_name] if self.step_name else None
        if isinstance(event, PlaybackFinished):
            if event.playback_id != self._playback_id or self._phase not in ("playing", "prompting"):
                return []
            if isinstance(step, PlayStep):
                return self._enter(step.next, now)
            if isinstance(step, MenuStep):
                self._phase = "waiting"
                self._deadline = now + step.timeout_seconds
            return []
        if isinstance(event, DigitReceived):
            if isinstance(step, MenuStep) and self._phase in ("prompting", "waiting"):
                return self._menu_digit(step, event.digit, now)
            return []
        raise TypeError(f"unknown IVR event {event!r}")

    def next_deadline(self) -> float | None:
        """When `handle_timers` must be called (a menu's input timeout), or None."""
        return self._deadline

    def handle_timers(self, now: float) -> list[Action]:
        """Fire the menu timeout if it is due."""
        if self._deadline is None or now < self._deadline or self.finished:
            return []
        self._deadline = None
        step = self.flow.steps[self.step_name] if self.step_name else None
        if not isinstance(step, MenuStep):
            return []
        return self._menu_retry(step, step.timeout_prompts, "timeout", now)

    def _menu_digit(self, step: MenuStep, digit: str, now: float) -> list[Action]:
        actions: list[Action] = []
        if self._phase == "prompting":
            actions.append(StopPlayback())  # barge-in
        self._deadline = None
        target = step.choices.get(digit)
        if target is None:
            return actions + self._menu_retry(step, step.invalid_prompts, "invalid", now)
        actions.append(MenuChoiceMade(step=step.name, digit=digit, next_step=target))
        return actions + self._enter(target, now)

    def _menu_retry(self, step: MenuStep, feedback: tuple[str, ...], why: str, now: float) -> list[Action]:
        self._tries += 1
        if self._tries >= step.retries:
            if step.on_failure is None:
                self._finish()
                return [HangUp(reason=f"menu {step.name}: no valid choice after {self._tries} tries ({why})"),
                        FlowEnded(outcome=f"menu-failure at {step.name}")]
            return self._enter(step.on_failure, now)
        return [self._play(feedback + step.prompts, "prompting")]

    def _enter(self, name: str | None, now: float) -> list[Action]:
        self._deadline = None
        self._tries = 0
        if name is None:
            self._finish()
            return [HangUp(reason=f"flow {self.flow.name} ended after {self.step_name}"),
                    FlowEnded(outcome="completed")]
        step = self.flow.steps[name]
        self.step_name = name
        self.path.append(name)
        actions: list[Action] = [StepEntered(flow=self.flow.name, step=name)]
        if isinstance(step, PlayStep):
            actions.append(self._play(step.prompts, "playing"))
        elif isinstance(step, MenuStep):
            actions.append(self._play(step.prompts, "prompting"))
        elif isinstance(step, HangupStep):
            self._finish()
            actions += [HangUp(reason=f"hangup step {name}"), FlowEnded(outcome="completed")]
        return actions

    def _play(self, prompts: tuple[str, ...], phase: str) -> PlayPrompts:
        self._playback_id += 1
        self._phase = phase
        return PlayPrompts(prompts=prompts, playback_id=self._playback_id)

    def _finish(self) -> None:
        self.finished = True
        self._phase = "idle"
        self._deadline = None
