# SPDX-License-Identifier: MIT
"""Energy-based voice activity and utterance endpointing for 8 kHz call audio.

Rules of this file:

* Pure and synchronous.  The shell feeds decoded G.711 frames (20 ms, 160
  signed 16-bit little-endian samples) as they arrive; time is *audio time*,
  counted in frames, never a clock, so tests drive it with synthetic frames.
* ``SpeechEndpointer.feed(frame)`` returns at most one event per frame:
  ``SpeechDidStart``, ``SpeechDidEnd`` (carrying the utterance audio to hand to
  ``PhraseRecognizer.recognize``) or ``NoInputDidTimeOut``.  After an end or a
  timeout the endpointer is finished and ignores further frames; make a new one
  for the next prompt.
* Speech is a frame whose RMS level is at or above a fixed threshold in
  dBFS (decibels relative to 32768, 16-bit full scale).  An
  utterance starts after ``speech_start_ms`` of consecutive speech frames, so a
  click or one burst of line noise does not start one.
"""

import math
from dataclasses import dataclass

from acd.media.g711 import rms_pcm16

__all__ = [
    "FRAME_BYTES", "FRAME_MS", "NoInputDidTimeOut", "SpeechDidEnd", "SpeechDidStart",
    "SpeechEndpointer", "frame_level_dbfs", "is_speech",
]

#: Frame duration fed to the endpointer: one 20 ms RTP packet of G.711 (RFC 3551 §4.5.14 default ptime).
FRAME_MS = 20
#: 160 samples at 8000 Hz, 2 bytes each.
FRAME_BYTES = 8000 * FRAME_MS // 1000 * 2

#: Default speech threshold.  Active telephone speech is typically -20..-30 dBFS
#: (ITU-T P.56 active speech level around -26 dBov) and an idle line far below
#: -50 dBFS; -45 dBFS sits between them with margin on both sides.
DEFAULT_THRESHOLD_DBFS = -45.0

_FULL_SCALE = 32768.0
_SILENCE_DBFS = -120.0


def frame_level_dbfs(frame: bytes) -> float:
    """RMS level of signed 16-bit little-endian PCM in dBFS; -120.0 for digital silence."""
    rms = rms_pcm16(frame)
    if rms <= 0.0:
        return _SILENCE_DBFS
    return max(_SILENCE_DBFS, 20.0 * math.log10(rms / _FULL_SCALE))


def is_speech(frame: bytes, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS) -> bool:
    """True when the frame's RMS level is at or above ``threshold_dbfs``."""
    return frame_level_dbfs(frame) >= threshold_dbfs


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechDidStart:
    """Speech began; ``start_ms`` is the audio time of its first speech frame."""

    start_ms: int

    def __post_init__(self) -> None:
        if self.start_ms < 0:
            raise ValueError(f"speech start {self.start_ms} ms is negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechDidEnd:
    """The utterance is over.

    ``reason`` is ``"silence"`` (``silence_end_ms`` of silence after speech) or
    ``"max-length"`` (the utterance hit ``max_utterance_ms``).  ``pcm`` is the
    audio from ``pre_roll_ms`` before the start up to the end, ready for
    ``PhraseRecognizer.recognize``.
    """

    start_ms: int
    end_ms: int
    reason: str
    pcm: bytes

    def __post_init__(self) -> None:
        if self.reason not in ("silence", "max-length"):
            raise ValueError(f"speech end reason {self.reason!r} is not 'silence' or 'max-length'")
        if not 0 <= self.start_ms <= self.end_ms:
            raise ValueError(f"speech end {self.end_ms} ms is before its start {self.start_ms} ms")


@dataclass(frozen=True, slots=True, kw_only=True)
class NoInputDidTimeOut:
    """No speech started within ``no_input_timeout_ms``; ``after_ms`` is the audio time waited."""

    after_ms: int


_WAITING = "waiting"
_SPEAKING = "speaking"
_FINISHED = "finished"


class SpeechEndpointer:
    """Finds one utterance in a stream of 20 ms frames.

    Limits, all in milliseconds of audio and all multiples of ``FRAME_MS``:

    ``speech_start_ms`` (60)
        Consecutive speech needed to start an utterance: shorter than any
        syllable, longer than a line click.
    ``silence_end_ms`` (800)
        Silence that ends an utterance.  Long enough for a hesitation inside
        "technical ... support"; the same role as VoiceXML 2.0's
        ``incompletetimeout`` property.
    ``max_utterance_ms`` (10000)
        Hard cap so a caller on a noisy line cannot keep the recogniser
        waiting; menu phrases are a few words (VoiceXML 2.0
        ``maxspeechtimeout``).
    ``no_input_timeout_ms`` (5000)
        Time to wait for speech before giving up (VoiceXML 2.0 ``timeout``).
    ``pre_roll_ms`` (200)
        Audio kept from before the detected start, so the recogniser sees the
        soft onset of the first phone and some leading silence.
    """

    def __init__(
        self,
        *,
        threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS,
        speech_start_ms: int = 60,
        silence_end_ms: int = 800,
        max_utterance_ms: int = 10_000,
        no_input_timeout_ms: int = 5_000,
        pre_roll_ms: int = 200,
    ) -> None:
        for name, value in (
            ("speech_start_ms", speech_start_ms), ("silence_end_ms", silence_end_ms),
            ("max_utterance_ms", max_utterance_ms), ("no_input_timeout_ms", no_input_timeout_ms),
        ):
            if value <= 0 or value % FRAME_MS:
                raise ValueError(f"{name} must be a positive multiple of {FRAME_MS} ms, got {value}")
        if pre_roll_ms < 0 or pre_roll_ms % FRAME_MS:
            raise ValueError(f"pre_roll_ms must be a non-negative multiple of {FRAME_MS} ms, got {pre_roll_ms}")
        if max_utterance_ms < speech_start_ms:
            raise ValueError("max_utterance_ms must be at least speech_start_ms")
        self.threshold_dbfs = threshold_dbfs
        self._start_frames = speech_start_ms // FRAME_MS
        self._silence_frames = silence_end_ms // FRAME_MS
        self._max_frames = max_utterance_ms // FRAME_MS
        self._timeout_frames = no_input_timeout_ms // FRAME_MS
        self._pre_roll_frames = pre_roll_ms // FRAME_MS
        self._state = _WAITING
        self._frame_index = 0
        self._run = 0                       # consecutive speech frames while waiting
        self._silent_run = 0                # consecutive non-speech frames while speaking
        self._start_index = 0
        self._frames: list[bytes] = []      # pre-roll while waiting, the utterance while speaking

    @property
    def state(self) -> str:
        """``"waiting"``, ``"speaking"`` or ``"finished"``."""
        return self._state

    @property
    def elapsed_ms(self) -> int:
        """Audio time fed so far."""
        return self._frame_index * FRAME_MS

    def feed(self, frame: bytes) -> SpeechDidStart | SpeechDidEnd | NoInputDidTimeOut | None:
        """Take one 20 ms frame; return the event it caused, if any."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"endpointer frame has {len(frame)} bytes, expected {FRAME_BYTES} (20 ms at 8 kHz)")
        if self._state == _FINISHED:
            return None
        index = self._frame_index
        self._frame_index += 1
        speech = is_speech(frame, self.threshold_dbfs)
        self._frames.append(frame)
        if self._state == _WAITING:
            return self._feed_waiting(index, speech)
        return self._feed_speaking(index, speech)

    def _feed_waiting(self, index: int, speech: bool) -> SpeechDidStart | NoInputDidTimeOut | None:
        self._run = self._run + 1 if speech else 0
        if self._run >= self._start_frames:
            self._state = _SPEAKING
            self._start_index = index - self._run + 1
            first = max(0, len(self._frames) - self._run - self._pre_roll_frames)
            self._frames = self._frames[first:]
            return SpeechDidStart(start_ms=self._start_index * FRAME_MS)
        if index + 1 >= self._timeout_frames:
            self._state = _FINISHED
            self._frames = []
            return NoInputDidTimeOut(after_ms=(index + 1) * FRAME_MS)
        # Keep only what pre-roll and a pending start could need.
        keep = self._pre_roll_frames + self._start_frames
        if len(self._frames) > keep:
            del self._frames[: len(self._frames) - keep]
        return None

    def _feed_speaking(self, index: int, speech: bool) -> SpeechDidEnd | None:
        self._silent_run = 0 if speech else self._silent_run + 1
        if self._silent_run >= self._silence_frames:
            return self._finish(index + 1 - self._silent_run, "silence")
        if index + 1 - self._start_index >= self._max_frames:
            return self._finish(index + 1, "max-length")
        return None

    def _finish(self, end_index: int, reason: str) -> SpeechDidEnd:
        self._state = _FINISHED
        pcm = b"".join(self._frames)
        self._frames = []
        return SpeechDidEnd(
            start_ms=self._start_index * FRAME_MS, end_ms=end_index * FRAME_MS, reason=reason, pcm=pcm,
        )
