"""Audio for in-band DTMF tests: key tones made in Python, and golden audio made at test time with
sox (a DTMF sequence) and espeak-ng (a minute of speech), as 8 kHz mu-law (PCMU payload bytes).

The golden files are generated into the test's tmp_path, not committed: they are large, and the
tools that make them are the point (an independent source of tones and of speech).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

from acd.media.inband_dtmf import HIGH_FREQUENCIES_HZ, KEYPAD, LOW_FREQUENCIES_HZ

DBM0_PEAK = 8031 * 4  # a 0 dBm0 sine's peak on the 16-bit scale (acd.media.inband_dtmf)
FRAME = 160           # samples (and PCMU bytes) per 20 ms RTP packet

# Words an IVR caller or a call-center recording says, numbers included, to be read for a minute.
SPEECH_TEXT = (
    "Thank you for calling the customer service line. For billing press one, for technical support "
    "press two. Your call is important to us, please hold while we connect you to the next available "
    "agent. The quick brown fox jumps over the lazy dog: nine eight seven six five four three two one "
    "zero. Hello, hello, can you hear me? Yes, I would like to speak to someone about my account, number "
    "four five six seven. Do re mi fa so la ti do. Beep beep, ring ring, whistle and hum. "
)


def frequencies(digit: str) -> tuple[float, float]:
    """The (low, high) Q.23 frequencies of a key."""
    for row, keys in enumerate(KEYPAD):
        if digit in keys:
            return LOW_FREQUENCIES_HZ[row], HIGH_FREQUENCIES_HZ[keys.index(digit)]
    raise ValueError(f"{digit!r} is not a DTMF key")


def tone(digit: str, milliseconds: float, *, dbm0: float = -10.0, twist_db: float = 0.0,
         low_hz: float | None = None, high_hz: float | None = None) -> list[int]:
    """A key's dual tone: each tone at `dbm0`, the high one `twist_db` louder (negative: weaker)."""
    low, high = frequencies(digit)
    low, high = low_hz or low, high_hz or high
    amplitude = DBM0_PEAK * 10 ** (dbm0 / 20)
    high_amplitude = amplitude * 10 ** (twist_db / 20)
    return [round(amplitude * math.sin(2 * math.pi * low * n / 8000)
                  + high_amplitude * math.sin(2 * math.pi * high * n / 8000 + 1.0))
            for n in range(round(milliseconds * 8))]


def silence(milliseconds: float) -> list[int]:
    """Digital silence."""
    return [0] * round(milliseconds * 8)


def tools_available() -> bool:
    """True when sox and espeak-ng are installed (scripts/setup installs both)."""
    return shutil.which("sox") is not None and shutil.which("espeak-ng") is not None


def sox_dtmf(path: Path, digits: str, *, tone_ms: int = 100, gap_ms: int = 100, lead_ms: int = 0,
             gain_db: float = -10.0) -> bytes:
    """`digits` as key tones made by sox (`synth sine ... sine mix ...`), `gap_ms` of silence after
    each and `lead_ms` before the first, as raw 8 kHz mu-law written to `path`; returns the bytes."""
    parts = []
    for index, digit in enumerate(digits):
        low, high = frequencies(digit)
        part = path.with_name(f"{path.stem}-{index}.ul")
        _sox("-n", "-r", "8000", "-c", "1", "-t", "ul", str(part), "synth", f"{tone_ms / 1000}", "sine", f"{low}",
             "sine", "mix", f"{high}", "gain", f"{gain_db}", "pad", f"{lead_ms / 1000 if index == 0 else 0}",
             f"{gap_ms / 1000}")
        parts.append(part)
    _sox(*(arg for part in parts for arg in ("-t", "ul", "-r", "8000", "-c", "1", str(part))),
         "-t", "ul", str(path))
    for part in parts:
        part.unlink()
    return path.read_bytes()


def espeak_speech(path: Path, seconds: float = 60.0) -> bytes:
    """`seconds` of espeak-ng reading SPEECH_TEXT (voices and speeds varied), as raw 8 kHz mu-law
    at a caller's level, written to `path`; returns the bytes."""
    pieces = []
    for index, (voice, speed) in enumerate((("en", 160), ("en-us+f3", 175), ("en+m7", 150), ("en+f4", 190))):
        wav = path.with_name(f"{path.stem}-{index}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), SPEECH_TEXT * 2],
                       check=True, capture_output=True, timeout=60)
        pieces.append(wav)
    _sox(*(str(piece) for piece in pieces), "-r", "8000", "-c", "1", "-t", "ul", str(path), "norm", "-3",
         "trim", "0", f"{seconds}")
    for piece in pieces:
        piece.unlink()
    return path.read_bytes()


def _sox(*args: str) -> None:
    subprocess.run(["sox", "-q", *args], check=True, capture_output=True, timeout=60)
