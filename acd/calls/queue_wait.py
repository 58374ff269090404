"""QueueWait: what a queued caller hears. Music on hold, and every so often their position and
estimated wait ("you are number 3 in line; your wait is about 2 minutes") from digit and word
prompts. Leaves the queue after the queue's maximum wait. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..ivr.spoken import number_prompts
from ..routing import RoutingError

if TYPE_CHECKING:
    from ..config.agents import QueueSettings
    from .acd_service import AcdService
    from .session import CallSession

__all__ = ["QueueWait", "announcement_prompts", "MUSIC_PLAYBACK", "ANNOUNCEMENT_PLAYBACK", "CALLBACK_PLAYBACK"]

log = logging.getLogger("acd.queue")

# Playback ids below zero belong to the queue, not to the IVR (whose ids count up from 1).
MUSIC_PLAYBACK = -1
ANNOUNCEMENT_PLAYBACK = -2
CALLBACK_PLAYBACK = -3


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

    def __init__(self, session: "CallSession", acd: "AcdService", settings: "QueueSettings | None", *, reactor) -> None:
        self.session = session
        self.acd = acd
        self.reactor = reactor
        self.music = settings.music if settings else "moh"
        self.announce_every = settings.announce_every_seconds if settings else 30.0
        self.max_wait = settings.max_wait_seconds if settings else 600.0
        self.callback_key = settings.callback_key if settings else None
        self.position: int | None = None
        self.estimated_wait: float | None = None
        self.announced: list[tuple[int, float | None]] = []
        self.first_estimate: float | None = None
        self._announce_timer = None
        self._max_timer = None
        self._stopped = False

    def start(self) -> None:
        """Announce at once (callers want to know where they stand), then music, repeating."""
        self.session.queue_wait = self
        self._max_timer = self.reactor.callLater(self.max_wait, self._give_up)
        self._announce()

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
        if self.acd.request_callback(self.session):
            self.session.play(("callback_confirm",), CALLBACK_PLAYBACK)
            self.session.callback_requested = True

    def stop(self) -> None:
        """The caller leaves the queue (connected, gone or refused)."""
        self._stopped = True
        for timer in (self._announce_timer, self._max_timer):
            if timer is not None and timer.active():
                timer.cancel()
        if self.session.queue_wait is self:
            self.session.queue_wait = None
        self.session.leg.stop()

    def _announce(self) -> None:
        self._announce_timer = None
        if self._stopped or not self.session.active:
            return
        try:
            status = self.acd.engine.waiting_status(self.session.call_id, self.reactor.seconds())
            self.update(status.position, status.estimated_wait_seconds)
        except RoutingError:
            pass  # being offered right now: keep the last known position
        if self.position is not None:
            self.announced.append((self.position, self.estimated_wait))
            if self.first_estimate is None and self.estimated_wait is not None:
                self.first_estimate = self.estimated_wait
            log.info("call=%s announce position=%d estimated_wait=%s", self.session.call_id, self.position,
                     "unknown" if self.estimated_wait is None else f"{self.estimated_wait:.0f}s")
            prompts = announcement_prompts(self.position, self.estimated_wait)
            if self.callback_key == "*" and self._callback_possible():
                prompts.append("queue/press_star_callback")
            self.session.play(tuple(prompts), ANNOUNCEMENT_PLAYBACK)
        else:
            self._play_music()
        self._announce_timer = self.reactor.callLater(self.announce_every, self._announce)

    def _callback_possible(self) -> bool:
        trunk = next((t for t in self.session.server.config.trunks if t.name == self.session.trunk), None)
        return trunk is not None and trunk.outbound is not None

    def _play_music(self) -> None:
        if self.session.active:
            self.session.play((self.music,), MUSIC_PLAYBACK)

    def _give_up(self) -> None:
        self._max_timer = None
        if not self._stopped:
            self.stop()
            self.acd.queue_timed_out(self.session)
