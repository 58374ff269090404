"""QueueWait: what a queued caller hears. Music on hold, and every `announce_every` seconds
something new: their position and estimated wait ("you are number 3 in line; your wait is about
2 minutes", from digit and word prompts) when that changed since it was last said (the queue's
`announce_position`), otherwise the next of the queue's hold messages, in turn. Leaves the queue
after the queue's maximum wait. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Callable

from ..config.agents import DEFAULT_HOLD_MESSAGES
from ..ivr.spoken import number_prompts

if TYPE_CHECKING:
    from ..config.agents import QueueSettings
    from .session import CallSession

__all__ = ["QueueWait", "announcement_prompts", "MUSIC_PLAYBACK", "ANNOUNCEMENT_PLAYBACK"]

log = logging.getLogger("acd.queue")

# Playback ids below zero belong to the queue, not to the IVR (whose ids count up from 1).
MUSIC_PLAYBACK = -1
ANNOUNCEMENT_PLAYBACK = -2  # a position announcement or a hold message


def announcement_prompts(position: int, estimated_wait_seconds: float | None) -> list[str]:
    """The prompts that say a position and, when known, a wait rounded up to whole minutes."""
    prompts = ["queue/you_are_number", *number_prompts(str(position)), "queue/in_line"]
    if estimated_wait_seconds is not None:
        if estimated_wait_seconds < 60:
            prompts.append("queue/wait_less_than_a_minute")
        else:
            minutes = math.ceil(estimated_wait_seconds / 60)
            prompts += ["queue/wait_about", *number_prompts(str(minutes)),
                        "queue/minute" if minutes == 1 else "queue/minutes"]
    return prompts


class QueueWait:
    """Music and announcements for one queued caller."""

    def __init__(self, session: "CallSession", settings: "QueueSettings | None", *, reactor,
                 status: Callable[[], tuple[int, float | None] | None], callback_possible: bool,
                 request_callback: Callable[[], bool], on_max_wait: Callable[[], None]) -> None:
        """`status` gives the caller's (position, estimated wait) now, or None while being offered;
        `request_callback` keeps their place for a callback (False if impossible); `on_max_wait`
        takes them out of the queue when the queue's maximum wait is reached."""
        self.session = session
        self.reactor = reactor
        self.status = status
        self.callback_possible = callback_possible
        self.request_callback = request_callback
        self.on_max_wait = on_max_wait
        self.music = settings.music if settings else "moh"
        self.announce_every = settings.announce_every_seconds if settings else 30.0
        self.announce_position = settings.announce_position if settings else "on_change"
        self.hold_messages = settings.hold_messages if settings else DEFAULT_HOLD_MESSAGES
        self.max_wait = settings.max_wait_seconds if settings else 600.0
        self.callback_key = settings.callback_key if settings else None
        self.position: int | None = None
        self.estimated_wait: float | None = None
        self.announced: list[tuple[int, float | None]] = []
        self.first_estimate: float | None = None
        self._last_said: list[str] | None = None  # the last position announcement's prompts
        self._hold_turn = 0
        self._announce_timer = None
        self._max_timer = None
        self._stopped = False

    def start(self) -> None:
        """Announce at once (callers want to know where they stand), then music, repeating."""
        self._max_timer = self.reactor.callLater(self.max_wait, self._give_up)
        self._announce(first=True)

    def update(self, position: int, estimated_wait_seconds: float | None) -> None:
        """The engine's latest position and wait for this caller."""
        self.position = position
        self.estimated_wait = estimated_wait_seconds

    def on_playback_finished(self, playback_id: int) -> None:
        """Music loops; after an announcement the music resumes."""
        if not self._stopped:
            self._play_music()

    def on_digit(self, digit: str) -> None:
        """The caller's keys while waiting: the callback key asks to be called back."""
        if digit != self.callback_key or self._stopped:
            return
        if self.request_callback():
            self.session.confirm_callback()

    def stop(self) -> None:
        """The caller leaves the queue (connected, gone or refused)."""
        self._stopped = True
        for timer in (self._announce_timer, self._max_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self.session.leg.stop()

    def _announce(self, first: bool = False) -> None:
        """Say the position if there is something new to say, else the next hold message (none on
        arrival: music), then again in `announce_every` seconds."""
        self._announce_timer = None
        if self._stopped or not self.session.active:
            return
        status = self.status()
        if status is not None:  # None while being offered right now: keep the last known position
            self.update(*status)
        prompts = self._position_to_say()
        if prompts is not None:
            self._say_position(prompts)
        elif self.hold_messages and not first:
            message = self.hold_messages[self._hold_turn % len(self.hold_messages)]
            self._hold_turn += 1
            log.info("call=%s hold message %s", self.session.call_id, message)
            self.session.play((message,), ANNOUNCEMENT_PLAYBACK)
        elif first:
            self._play_music()
        self._announce_timer = self.reactor.callLater(self.announce_every, self._announce)

    def _position_to_say(self) -> list[str] | None:
        """The position announcement due now, or None: none known, or (on_change) nothing new to say."""
        if self.position is None or self.announce_position == "never":
            return None
        prompts = announcement_prompts(self.position, self.estimated_wait)
        if self.announce_position == "on_change" and prompts == self._last_said:
            return None
        return prompts

    def _say_position(self, prompts: list[str]) -> None:
        self._last_said = prompts
        self.announced.append((self.position, self.estimated_wait))
        if self.first_estimate is None and self.estimated_wait is not None:
            self.first_estimate = self.estimated_wait
        log.info("call=%s announce position=%d estimated_wait=%s", self.session.call_id, self.position,
                 "unknown" if self.estimated_wait is None else f"{self.estimated_wait:.0f}s")
        if self.callback_key == "*" and self.callback_possible:
            prompts = [*prompts, "queue/press_star_callback"]
        self.session.play(tuple(prompts), ANNOUNCEMENT_PLAYBACK)

    def _play_music(self) -> None:
        if self.session.active:
            self.session.play((self.music,), MUSIC_PLAYBACK)

    def _give_up(self) -> None:
        self._max_timer = None
        if not self._stopped:
            self.stop()
            self.on_max_wait()
