#!/usr/bin/env python3
"""Micro-benchmark: what in-band DTMF detection costs per 20 ms G.711 frame, in µs of CPU.

    PYTHONPATH=. .venv/bin/python scripts/bench/inband_dtmf_frame.py [--frames 2000] [--runs 5] [--out dtmf.json]

Measured in process on the server's own detector (acd.media.inband_dtmf), one PCMU payload of 160
bytes per call of `feed_payload` (decode included), for three kinds of audio:
- `silence`: digital silence (the spectrum is skipped below the noise floor);
- `speech-like`: noise shaped like speech, loud enough that every window is analysed;
- `tone`: a held DTMF key (every window analysed and classified).
For comparison, `goertzel-loop` is the textbook Goertzel: one loop per frequency over the frame's 160
decoded int samples (no overlapping windows, no skipping of silence, no classification).
The best of `--runs` runs is printed as a table and written as JSON with `--out`.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time

from acd.media.g711 import ulaw_decode, ulaw_encode
from acd.media.inband_dtmf import HIGH_FREQUENCIES_HZ, LOW_FREQUENCIES_HZ, InbandDtmfDetector

FRAME = 160


def _pcmu(samples: list[int]) -> bytes:
    clipped = [max(-32768, min(32767, int(s))) for s in samples]
    return ulaw_encode(b"".join(s.to_bytes(2, "little", signed=True) for s in clipped))


def payloads(kind: str, frames: int) -> list[bytes]:
    """`frames` PCMU payloads of one kind of audio."""
    rng = random.Random(7)
    total = frames * FRAME
    if kind == "silence":
        samples = [0] * total
    elif kind == "tone":
        samples = [8000 * math.sin(2 * math.pi * 770 * n / 8000) + 8000 * math.sin(2 * math.pi * 1336 * n / 8000)
                   for n in range(total)]
    else:
        level, samples = 0.0, []
        for _ in range(total):  # a one-pole low-passed noise: energy spread like voiced speech
            level = 0.9 * level + rng.gauss(0, 2500)
            samples.append(level)
    data = _pcmu(samples)
    return [data[i:i + FRAME] for i in range(0, len(data), FRAME)]


def detector_run(frames: list[bytes]) -> float:
    """Seconds of CPU for the detector over the frames."""
    detector = InbandDtmfDetector()
    feed = detector.feed_payload
    start = time.process_time()
    for payload in frames:
        feed(payload, "PCMU")
    return time.process_time() - start


def goertzel_loop_run(frames: list[bytes]) -> float:
    """Seconds of CPU for a per-sample Goertzel recursion (8 bins, 160 samples) over the frames."""
    coefficients = [2 * math.cos(2 * math.pi * f / 8000) for f in LOW_FREQUENCIES_HZ + HIGH_FREQUENCIES_HZ]
    start = time.process_time()
    for payload in frames:
        samples = memoryview(ulaw_decode(payload)).cast("h")
        powers = []
        for coefficient in coefficients:
            s1 = s2 = 0.0
            for x in samples:
                s1, s2 = x + coefficient * s1 - s2, s1
            powers.append(s1 * s1 + s2 * s2 - coefficient * s1 * s2)
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    results = {}
    for kind in ("silence", "speech-like", "tone"):
        frames = payloads(kind, args.frames)
        results[kind] = min(detector_run(frames) for _ in range(args.runs)) / args.frames * 1e6
    frames = payloads("speech-like", args.frames)
    results["goertzel-loop"] = min(goertzel_loop_run(frames) for _ in range(args.runs)) / args.frames * 1e6
    print(f"in-band DTMF detection, µs of CPU per 20 ms PCMU frame (best of {args.runs} x {args.frames} frames), "
          f"Python {platform.python_version()}")
    for kind, micros in results.items():
        print(f"  {kind:<14} {micros:8.1f} µs   ({micros * 50 / 1e4:.2f}% of a core per stream)")
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"python": platform.python_version(), "us_per_frame": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
