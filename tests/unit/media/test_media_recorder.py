"""CallRecording: channels placed by time, masked spans silent, a stereo WAV out."""

from __future__ import annotations

import array
import wave

from acd.media.g711 import ulaw_encode
from acd.media.recorder import CallRecording

LOUD = ulaw_encode(array.array("h", [12000, -12000] * 80).tobytes())  # one 20 ms frame


def channel_rms(path, channel: int, start: float, end: float) -> float:
    with wave.open(str(path), "rb") as recording:
        assert recording.getnchannels() == 2 and recording.getframerate() == 8000
        frames = array.array("h", recording.readframes(recording.getnframes()))
    samples = frames[channel::2][int(start * 8000):int(end * 8000)]
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def test_frames_land_at_their_time_and_masked_spans_are_silent(tmp_path):
    """Caller audio for 3 s with a masked second in the middle: loud, silent, loud; masked span reported."""
    recording = CallRecording(tmp_path / "call.wav", codec="PCMU", start=100.0)
    now = 100.0
    for frame in range(150):
        now = 100.0 + frame * 0.02
        if frame == 50:
            recording.set_masked(True, now)
        if frame == 100:
            recording.set_masked(False, now)
        recording.caller_audio(LOUD, now)
        recording.other_audio(LOUD, now)
    path, seconds, masked = recording.close(now + 0.02)
    assert abs(seconds - 3.0) < 0.05
    assert masked == [(1.0, 2.0)]
    assert channel_rms(path, 0, 0.1, 0.9) > 5000 and channel_rms(path, 1, 0.1, 0.9) > 5000
    assert channel_rms(path, 0, 1.05, 1.95) == 0 and channel_rms(path, 1, 1.05, 1.95) == 0
    assert channel_rms(path, 0, 2.1, 2.9) > 5000


def test_gaps_become_silence_and_a_masked_end_is_closed(tmp_path):
    """Nothing received for a second is silence; masking still on at hang-up ends at the end."""
    recording = CallRecording(tmp_path / "gap.wav", codec="PCMU", start=0.0)
    recording.caller_audio(LOUD, 0.0)
    recording.caller_audio(LOUD, 1.0)
    recording.set_masked(True, 1.5)
    path, seconds, masked = recording.close(2.0)
    assert masked == [(1.5, 2.0)] and abs(seconds - 2.0) < 0.01
    assert channel_rms(path, 0, 0.1, 0.9) == 0 and channel_rms(path, 0, 1.0, 1.02) > 5000
