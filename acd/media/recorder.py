"""Call recording: two channels (left: the caller; right: what the caller hears — prompts, music,
the agent) placed by arrival time, silenced while masked digits are collected (a PIN must never
be in a recording), written as an 8 kHz 16-bit stereo WAV. Pure: time and audio are passed in.
"""

from __future__ import annotations

import array
import wave
from pathlib import Path

from .g711 import alaw_decode, ulaw_decode

__all__ = ["CallRecording", "SAMPLE_RATE"]

SAMPLE_RATE = 8000
_DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
# Up to this much audio may arrive ahead of the wall clock (jitter, bursts) and still be appended
# in order; beyond it the channel is re-aligned to the clock.
_MAX_AHEAD_SAMPLES = SAMPLE_RATE // 10


class CallRecording:
    """One call's recording, built in memory and written by `close`."""

    def __init__(self, path: Path, *, codec: str, start: float) -> None:
        self.path = Path(path)
        self.start = start
        self._decode = _DECODERS[codec]
        self._channels = (array.array("h"), array.array("h"))
        self.masked_since: float | None = None
        self.masked_segments: list[tuple[float, float]] = []

    def caller_audio(self, payload: bytes, now: float) -> None:
        """A G.711 frame the caller sent."""
        self._add(0, payload, now)

    def other_audio(self, payload: bytes, now: float) -> None:
        """A G.711 frame the caller heard (our prompt or music, or the agent's voice)."""
        self._add(1, payload, now)

    def set_masked(self, masked: bool, now: float) -> None:
        """Start or stop masking: while masked, both channels record silence and the span is kept."""
        if masked and self.masked_since is None:
            self.masked_since = now
        elif not masked and self.masked_since is not None:
            self.masked_segments.append((self.masked_since - self.start, now - self.start))
            self.masked_since = None

    def _add(self, channel: int, payload: bytes, now: float) -> None:
        if self.masked_since is not None:
            return  # silence: the padding at the next real frame fills the gap
        samples = self._channels[channel]
        expected = int((now - self.start) * SAMPLE_RATE)
        if len(samples) < expected:
            samples.extend(array.array("h", bytes(2 * (expected - len(samples)))))
        elif len(samples) > expected + _MAX_AHEAD_SAMPLES:
            del samples[expected:]
        samples.frombytes(self._decode(payload))

    def close(self, now: float) -> tuple[Path, float, list[tuple[float, float]]]:
        """Write the WAV; returns (path, seconds, masked spans in seconds from the start)."""
        if self.masked_since is not None:
            self.set_masked(False, now)
        left, right = self._channels
        length = max(len(left), len(right), int((now - self.start) * SAMPLE_RATE))
        for samples in (left, right):
            samples.extend(array.array("h", bytes(2 * (length - len(samples)))))
        stereo = array.array("h", bytes(4 * length))
        stereo[0::2] = left
        stereo[1::2] = right
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(self.path), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(stereo.tobytes())
        return self.path, length / SAMPLE_RATE, list(self.masked_segments)
