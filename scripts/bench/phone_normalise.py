#!/usr/bin/env python3
"""Caller-ID normalisation micro-benchmark: µs per `normalise_e164` call, by the form the number has.

`normalise_e164` runs for every call's caller ID (`CustomerDirectory.find_by_phone`, in the thread
pool) and for every phone of every customer loaded (`Customer` checks its phones are canonical).
"cached" is a repeat caller (the plan reading is remembered), "first" a number not seen before.

    .venv/bin/python scripts/bench/phone_normalise.py [--country 44] [--out /tmp/phone.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from acd.context import phone  # noqa: E402

FORMS = [
    ("canonical E.164", "+442079460018"),
    ("national", "020 7946 0018"),
    ("international, spaced", "+44 20 7946 0018"),
    ("short test caller", "5551234"),
    ("anonymous", "anonymous"),
]


def _per_call_us(raw: str, country: str, *, fresh: bool, number: int) -> float:
    def once() -> None:
        if fresh:
            phone._parsed.cache_clear()
        try:
            phone.normalise_e164(raw, country)
        except ValueError:
            pass

    once()
    return min(timeit.repeat(once, number=number, repeat=5)) / number * 1e6


def main() -> int:
    """Print the table (and write JSON with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--country", default="44", help="default country calling code (default 44)")
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing (default 20000)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    rows = []
    print(f"{'form':24} {'raw':20} {'cached µs':>10} {'first µs':>10}")
    for label, raw in FORMS:
        cached = _per_call_us(raw, args.country, fresh=False, number=args.number)
        first = _per_call_us(raw, args.country, fresh=True, number=args.number)
        rows.append({"form": label, "raw": raw, "cached_us": round(cached, 2), "first_us": round(first, 2)})
        print(f"{label:24} {raw:20} {cached:10.2f} {first:10.2f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
