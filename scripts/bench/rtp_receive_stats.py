#!/usr/bin/env python3
"""Micro-benchmark: what the receive statistics (loss, jitter: acd.media.rtp_stats) add per RTP packet.

    PYTHONPATH=. .venv/bin/python scripts/bench/rtp_receive_stats.py [--packets 200000] [--runs 5] [--out stats.json]

Measured in process, µs of CPU per packet (best of `--runs`):
- `stats-update`: what RtpLeg.datagramReceived added: unpack seq/timestamp/SSRC and
  `ReceiveStatistics.received` (A.1 sequence tracking, A.8 jitter), with 1 % loss and random delay;
- `leg-receive`: a whole `RtpLeg.datagramReceived` of a relayed PCMU packet (the bridged path, the
  commonest), statistics included, for scale; `leg-receive-without-stats` the same with the
  statistics step reduced to a no-op call (its unpack and clock read stay).
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import struct
import sys
import time

from acd.calls.rtp_leg import RtpLeg
from acd.media.rtp import build_rtp_header
from acd.media.rtp_stats import ReceiveStatistics

_HEADER = struct.Struct("!HII")


def _packets(count: int) -> list[tuple[bytes, float]]:
    rng = random.Random(7)
    out = []
    for n in range(count):
        if rng.random() < 0.01:
            continue
        data = build_rtp_header(0, False, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, 0x1234) + b"\xff" * 160
        out.append((data, n * 0.02 + rng.uniform(0, 0.01)))
    return out


def _stats_update(packets: list[tuple[bytes, float]]) -> float:
    stats = ReceiveStatistics()
    unpack = _HEADER.unpack_from
    received = stats.received
    start = time.process_time()
    for data, arrival in packets:
        seq, timestamp, ssrc = unpack(data, 2)
        received(seq, timestamp, ssrc, arrival, True)
    return time.process_time() - start


class _NoStats:
    def received(self, *args) -> None:
        return None


class _Sink:
    def sendto(self, data, addr):
        return len(data)


class _Port:
    socket = _Sink()

    def write(self, data, addr):
        return None


def _leg(stats: bool) -> tuple[RtpLeg, RtpLeg]:
    def leg() -> RtpLeg:
        made = RtpLeg(call_id="bench", codec="PCMU", payload_type=0, remote=("127.0.0.1", 4000), telephone_event_pt=101,
                      on_digit=lambda *a: None, on_playback_finished=lambda n: None, clock=time.monotonic)
        made.makeConnection(_Port())
        return made
    caller, agent = leg(), leg()
    caller.relay_to = agent
    if not stats:
        caller.stats = _NoStats()
    return caller, agent


def _leg_receive(packets: list[tuple[bytes, float]], stats: bool) -> float:
    caller, _ = _leg(stats)
    receive = caller.datagramReceived
    addr = ("127.0.0.1", 4000)
    start = time.process_time()
    for data, _arrival in packets:
        receive(data, addr)
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print a table (and JSON with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    packets = _packets(args.packets)
    cases = {"stats-update": lambda: _stats_update(packets),
             "leg-receive": lambda: _leg_receive(packets, True),
             "leg-receive-without-stats": lambda: _leg_receive(packets, False)}
    results = {name: min(run() for _ in range(args.runs)) / len(packets) * 1e6 for name, run in cases.items()}
    print(f"{'case':<28}{'µs/packet':>10}")
    for name, micros in results.items():
        print(f"{name:<28}{micros:>10.2f}")
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"python": sys.version.split()[0], "machine": platform.machine(), "packets": len(packets),
                       "microseconds_per_packet": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
