"""QuietTimer: how long the caller has been quiet, from PCM frames and the time given."""

from __future__ import annotations

import array
import math

from acd.media.silence import QuietTimer


def _tone(amplitude: int) -> bytes:
    return array.array("h", (int(amplitude * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(160))).tobytes()


def test_quiet_time_runs_from_the_start_until_a_loud_frame_and_again_after_it():
    timer = QuietTimer(start=100.0)
    assert timer.quiet_for(101.5) == 1.5
    timer.frame(_tone(8000), 102.0)
    assert timer.quiet_for(102.0) == 0.0
    timer.frame(_tone(100), 103.0)  # line hiss: not a sound
    timer.frame(bytes(320), 104.0)
    assert timer.quiet_for(105.0) == 3.0


def test_no_frames_at_all_is_quiet_and_odd_or_empty_payloads_are_harmless():
    timer = QuietTimer(start=0.0)
    timer.frame(b"", 1.0)
    timer.frame(b"\x01", 1.0)
    assert timer.quiet_for(4.0) == 4.0
