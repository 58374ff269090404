# SPDX-License-Identifier: MIT
"""In-band DTMF: key presses found in the audio itself (ITU-T Q.23 tones), for callers whose trunk
sends neither RFC 4733 telephone-events nor SIP INFO.

Pure: 8 kHz samples (or G.711 payloads) in, `InbandDigit` events out, each stamped with the stream
position where the tone began. No clock, no I/O; one `InbandDtmfDetector` per received stream.

How (the checks of ITU-T Q.24 and of the usual telephony detectors, spandsp's `dtmf.c` among them):

- **Spectrum**: the power at the 8 DTMF frequencies over a 160-sample (20 ms) window: one Goertzel
  bin each, the eight recursions unrolled in one pass over the samples (`half_window_spectrum`).
  Windows hop by 80 samples (10 ms): the Goertzel terms are kept per half window and the two halves
  joined by one phase rotation, so the overlap costs nothing extra. 20 ms resolves the low group
  (697/770/852/941 Hz are 73-89 Hz apart, more than one 50 Hz bin). Half windows below the noise
  floor skip the recursion: a silent caller costs a table look-up per sample.
  Cost per 20 ms frame (Python 3.11, `scripts/bench/inband_dtmf_frame.py`): ~80-110 µs of sound,
  ~5 µs of silence.
- **Level**: each tone at least `MIN_TONE_DBM0` (Q.24 asks to accept -25 dBm0 per tone).
- **Twist**: the high tone at most `NORMAL_TWIST_DB` weaker than the low one, at most
  `REVERSE_TWIST_DB` stronger.
- **One tone per group**: the second strongest of each group `RELATIVE_PEAK_DB` below the strongest.
- **Purity**: the two tones carry at least `TONE_TO_TOTAL` of the window's energy. Speech and music
  spread their energy over many frequencies (a voice's harmonics); a dual tone puts nearly all of it
  in two bins. This (the total-energy check, instead of a 2nd-harmonic one that would need eight
  more bins) is what keeps speech from triggering digits.
- **Duration and gaps**: a digit is reported once, after `MIN_HITS` consecutive windows agree
  (~40 ms of tone; a 20 ms burst is never enough), and the next press needs `MIN_GAP_WINDOWS`
  windows (~30 ms) without that digit first: one event per key press, however long it is held.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from .g711 import alaw_decode, ulaw_decode

__all__ = ["InbandDigit", "InbandDtmfDetector", "LOW_FREQUENCIES_HZ", "HIGH_FREQUENCIES_HZ", "KEYPAD",
           "SAMPLE_RATE_HZ"]

SAMPLE_RATE_HZ = 8000
LOW_FREQUENCIES_HZ = (697.0, 770.0, 852.0, 941.0)    # Q.23 rows
HIGH_FREQUENCIES_HZ = (1209.0, 1336.0, 1477.0, 1633.0)  # Q.23 columns
KEYPAD = ("123A", "456B", "789C", "*0#D")  # KEYPAD[row][column]

HALF_WINDOW = 80           # samples: the hop (10 ms); a window is two halves (160 samples, 20 ms)
WINDOW = 2 * HALF_WINDOW
# 0 dBm0 on the 16-bit scale the G.711 tables decode to: the digital milliwatt of G.711 peaks at
# 8031 on the 14-bit mu-law scale, x4 on ours (G.711 Table 5/6).
DBM0_PEAK = 8031 * 4
MIN_TONE_DBM0 = -30.0      # Q.24 accepts -25 dBm0 per tone; 5 dB of margin for lossy lines
NORMAL_TWIST_DB = 8.0      # high tone weaker than the low one by up to this (Q.24, North America: 8)
REVERSE_TWIST_DB = 4.0     # high tone stronger than the low one by up to this (Q.24: 4)
RELATIVE_PEAK_DB = 8.0     # the runner-up in each group is at least this far below the winner
# Share of the window's energy the two tones must carry (a pure dual tone: ~1.0). Measured on 17
# minutes of espeak-ng speech in 5 voices: at most 0.64 in any window; tones off by 2%: >= 0.8.
TONE_TO_TOTAL = 0.75
MIN_HITS = 3               # consecutive 10 ms-hop windows: a tone of >= ~40 ms (Q.24: accept 40 ms)
MIN_GAP_WINDOWS = 3        # windows without the digit before the same or another key counts again


@dataclass(frozen=True, slots=True)
class InbandDigit:
    """A key press heard in the audio: the digit, and where its tone began (seconds of stream)."""

    digit: str
    start_seconds: float

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in "0123456789*#ABCD":
            raise ValueError(f"in-band DTMF digit must be one of 0-9 * # A-D, not {self.digit!r}")
        if self.start_seconds < 0:
            raise ValueError(f"in-band DTMF start must be >= 0 seconds, not {self.start_seconds}")


def _constants(frequency: float) -> tuple[float, complex, complex, complex]:
    """Goertzel's coefficient at a frequency, the factors turning its last two states into the DFT
    term of one half window, and the phase turn of one half window (the second half's offset)."""
    omega = 2.0 * math.pi * frequency / SAMPLE_RATE_HZ
    # After N samples of s[n] = x[n] + 2cos(w) s[n-1] - s[n-2]:
    #   sum x[n] e^(-jwn) = e^(-jw(N-1)) (s[N-1] - e^(-jw) s[N-2]).
    return (2.0 * math.cos(omega), cmath.exp(-1j * omega * (HALF_WINDOW - 1)), cmath.exp(-1j * omega),
            cmath.exp(-1j * omega * HALF_WINDOW))


_FREQUENCIES = LOW_FREQUENCIES_HZ + HIGH_FREQUENCIES_HZ
_CONSTANTS = tuple(_constants(f) for f in _FREQUENCIES)
_COEFFICIENTS = tuple(c[0] for c in _CONSTANTS)
_OUTPUT_FACTORS = tuple((c[1], c[1] * c[2]) for c in _CONSTANTS)
_TURNS = tuple(c[3] for c in _CONSTANTS)
_DB = lambda db: 10.0 ** (db / 10.0)  # noqa: E731 - a power ratio from decibels
# Thresholds on the window's mean power scale: a sine of peak A has mean power A^2 / 2.
_MIN_TONE_POWER = (DBM0_PEAK * 10.0 ** (MIN_TONE_DBM0 / 20.0)) ** 2 / 2.0
_NORMAL_TWIST = _DB(NORMAL_TWIST_DB)
_REVERSE_TWIST = _DB(REVERSE_TWIST_DB)
_RELATIVE_PEAK = _DB(RELATIVE_PEAK_DB)
# |X|^2 of a sine of peak A over WINDOW samples is (A * WINDOW / 2)^2; times this it is A^2 / 2.
_POWER_SCALE = 2.0 / (WINDOW * WINDOW)
# Below this energy in a window no pair of tones could pass the level check: no classification.
_MIN_WINDOW_ENERGY = 2.0 * _MIN_TONE_POWER * WINDOW
# A half window quieter than -50 dBm0 (line noise, comfort noise, digital silence) has its spectrum
# taken as zero: what it could add to a tone is below every threshold, and silence costs nothing.
NOISE_FLOOR_DBM0 = -50.0
_MIN_HALF_ENERGY = (DBM0_PEAK * 10.0 ** (NOISE_FLOOR_DBM0 / 20.0)) ** 2 / 2.0 * HALF_WINDOW
_ZERO_SPECTRUM = (0j,) * 8
# G.711 code -> sample as a float, -> its square (the energy of a payload without decoding it), and
# -> its magnitude / 8 capped at 255 for `bytes.translate`: a half window whose samples all stay
# under _QUIET_MAGNITUDE has less energy than _MIN_HALF_ENERGY, found in C without a Python loop.
_DECODED = {codec: tuple(float(s) for s in memoryview(decode(bytes(range(256)))).cast("h"))
            for codec, decode in (("PCMU", ulaw_decode), ("PCMA", alaw_decode))}
_SQUARES = {codec: tuple(s * s for s in table) for codec, table in _DECODED.items()}
_MAGNITUDES = {codec: bytes(min(255, int(abs(s)) // 8) for s in table) for codec, table in _DECODED.items()}
_QUIET_MAGNITUDE = 8  # x8: |sample| < 64, so a half window's energy < 80 * 64^2, under _MIN_HALF_ENERGY


def half_window_spectrum(samples: Iterable[float]) -> tuple[complex, ...]:
    """The DFT terms sum x[n] e^(-jwn) at the eight DTMF frequencies of one half window (Goertzel,
    the eight recursions unrolled in one pass over the samples: in the detector, 10-15% less CPU
    than a loop per frequency, measured A/B in one process)."""
    c0, c1, c2, c3, c4, c5, c6, c7 = _COEFFICIENTS
    a0 = b0 = a1 = b1 = a2 = b2 = a3 = b3 = a4 = b4 = a5 = b5 = a6 = b6 = a7 = b7 = 0.0
    # Two samples a turn, the states swapping roles (a: s[n-1], b: s[n-2], then the other way):
    # no tuple packing per step (~12% faster than `a, b = x + c * a - b, a`).
    pairs = iter(samples)
    for x, y in zip(pairs, pairs):
        b0 = x + c0 * a0 - b0
        b1 = x + c1 * a1 - b1
        b2 = x + c2 * a2 - b2
        b3 = x + c3 * a3 - b3
        b4 = x + c4 * a4 - b4
        b5 = x + c5 * a5 - b5
        b6 = x + c6 * a6 - b6
        b7 = x + c7 * a7 - b7
        a0 = y + c0 * b0 - a0
        a1 = y + c1 * b1 - a1
        a2 = y + c2 * b2 - a2
        a3 = y + c3 * b3 - a3
        a4 = y + c4 * b4 - a4
        a5 = y + c5 * b5 - a5
        a6 = y + c6 * b6 - a6
        a7 = y + c7 * b7 - a7
    # After an even number of samples, a holds s[N-1] and b holds s[N-2].
    return tuple(last * f - before * g for last, before, (f, g) in
                 zip((a0, a1, a2, a3, a4, a5, a6, a7), (b0, b1, b2, b3, b4, b5, b6, b7), _OUTPUT_FACTORS))


class InbandDtmfDetector:
    """Finds DTMF key presses in one 8 kHz stream fed in order, in pieces of any length."""

    def __init__(self) -> None:
        self._pending: list[float] = []      # samples short of a half window
        self._previous = (0.0, _ZERO_SPECTRUM)       # (energy, spectrum) of the last half window
        self._position = 0                   # samples fed so far that went into half windows
        self._candidate: str | None = None   # the digit the last windows agreed on
        self._candidate_hits = 0
        self._candidate_start = 0
        self._down: str | None = None        # the digit reported and still held
        self._misses = 0                     # windows since the held digit was last seen

    def feed_payload(self, payload: bytes, codec: str) -> list[InbandDigit]:
        """Take one G.711 RTP payload ("PCMU" or "PCMA"); return the key presses it completes."""
        if self._pending or len(payload) % HALF_WINDOW:
            return self.feed(memoryview(ulaw_decode(payload) if codec == "PCMU" else alaw_decode(payload)).cast("h"))
        decoded, squares = _DECODED[codec].__getitem__, _SQUARES[codec].__getitem__
        magnitudes = _MAGNITUDES[codec]
        events: list[InbandDigit] = []
        for offset in range(0, len(payload), HALF_WINDOW):
            half = payload[offset:offset + HALF_WINDOW]
            quiet = max(half.translate(magnitudes)) < _QUIET_MAGNITUDE
            event = self._half_window(half, decoded, 0.0 if quiet else float(sum(map(squares, half))))
            if event is not None:
                events.append(event)
        return events

    def feed(self, samples: Sequence[int]) -> list[InbandDigit]:
        """Take signed 16-bit samples at 8 kHz; return the key presses they complete, in order."""
        samples = self._pending + list(map(float, samples))
        events: list[InbandDigit] = []
        usable = len(samples) - len(samples) % HALF_WINDOW
        for offset in range(0, usable, HALF_WINDOW):
            half = samples[offset:offset + HALF_WINDOW]
            event = self._half_window(half, None, sum(x * x for x in half))
            if event is not None:
                events.append(event)
        self._pending = samples[usable:]
        return events

    def _half_window(self, half: Sequence, decoded, energy: float) -> InbandDigit | None:
        """Add one half window (G.711 codes read through `decoded`, or samples when it is None);
        return the key press the window it completes ends, if any."""
        previous_energy, previous = self._previous
        if energy < _MIN_HALF_ENERGY:
            current = _ZERO_SPECTRUM
        else:
            current = half_window_spectrum(half if decoded is None else map(decoded, half))
        self._previous = (energy, current)
        self._position += HALF_WINDOW
        total = previous_energy + energy
        return self._track(classify(previous, current, total / WINDOW) if total >= _MIN_WINDOW_ENERGY else None)

    def _track(self, digit: str | None) -> InbandDigit | None:
        """Debounce window results into one event per key press (MIN_HITS on, MIN_GAP_WINDOWS off)."""
        if digit is not None and digit == self._candidate:
            self._candidate_hits += 1
        else:
            self._candidate = digit
            self._candidate_hits = 1
            # The window ending here began one window ago.
            self._candidate_start = max(0, self._position - WINDOW)
        if self._down is not None:
            if digit == self._down:
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < MIN_GAP_WINDOWS:
                return None
            self._down = None
        if digit is None or self._candidate_hits < MIN_HITS:
            return None
        self._down = digit
        self._misses = 0
        return InbandDigit(digit=digit, start_seconds=self._candidate_start / SAMPLE_RATE_HZ)


def classify(previous: Sequence[complex], current: Sequence[complex], mean_power: float) -> str | None:
    """The key one window holds, or None. `previous`, `current`: the Goertzel terms of its two half
    windows at the eight DTMF frequencies (low group first, `half_window_spectrum`); `mean_power`:
    the window's mean power over all frequencies."""
    powers = [abs(a + turn * b) ** 2 * _POWER_SCALE for a, b, turn in zip(previous, current, _TURNS)]
    low = max(range(4), key=powers.__getitem__)
    high = 4 + max(range(4), key=lambda i: powers[4 + i])
    low_power, high_power = powers[low], powers[high]
    if low_power < _MIN_TONE_POWER or high_power < _MIN_TONE_POWER:
        return None
    if low_power > high_power * _NORMAL_TWIST or high_power > low_power * _REVERSE_TWIST:
        return None
    for index in range(4):
        if index != low and powers[index] * _RELATIVE_PEAK > low_power:
            return None
        if 4 + index != high and powers[4 + index] * _RELATIVE_PEAK > high_power:
            return None
    # Purity, measured on each half window's own terms added without their phases: a tone off its
    # nominal frequency by 1.5% (Q.24) drifts in phase between the halves and loses up to half its
    # coherent power at 1633 Hz, but its energy is still all there; speech's is not.
    tones = ((abs(previous[low]) + abs(current[low])) ** 2 + (abs(previous[high]) + abs(current[high])) ** 2)
    if tones * _POWER_SCALE < TONE_TO_TOTAL * mean_power:
        return None
    return KEYPAD[low][high - 4]
