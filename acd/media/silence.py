"""Silence detection for recordings: when did the caller last make a sound? Pure: frames and the
time are passed in.

A frame is sound when its mean absolute amplitude (16-bit linear PCM) exceeds `SOUND_LEVEL`,
about -36 dBFS: above a line's hiss and comfort noise, below quiet speech. A caller who sends no
RTP at all (silence suppression) makes no sound either: the quiet time runs from the last loud
frame, not from the last frame.
"""

from __future__ import annotations

import array

__all__ = ["QuietTimer", "SOUND_LEVEL"]

SOUND_LEVEL = 500


class QuietTimer:
    """How long the caller has been quiet, from `start` or the last frame louder than `level`."""

    def __init__(self, start: float, *, level: int = SOUND_LEVEL) -> None:
        self.last_sound = start
        self.level = level

    def frame(self, pcm: bytes, now: float) -> None:
        """One frame of 16-bit linear PCM (native byte order) heard at `now`."""
        samples = array.array("h", pcm[: len(pcm) & ~1])
        if samples and sum(map(abs, samples)) > self.level * len(samples):
            self.last_sound = now

    def quiet_for(self, now: float) -> float:
        """Seconds since the last sound (or the start)."""
        return max(0.0, now - self.last_sound)
