#!/usr/bin/env python3
"""Micro-benchmark: what SRTP adds to the media hot path, in µs of CPU per 20 ms G.711 packet.

    PYTHONPATH=. .venv/bin/python scripts/bench/srtp_packet.py [--packets 50000] [--runs 5] [--out srtp.json]

Measured in process, without sockets (a transport that only counts), on the server's own code:
- `protect` / `unprotect`: one libsrtp call through pylibsrtp (AES_CM_128_HMAC_SHA1_80), 172-byte packet;
- `send`: `RtpLeg._send_frame` (header, payload slice, write), plain RTP and SRTP;
- `relay`: `RtpLeg.datagramReceived` of a bridged leg (the other leg sends it on), plain → plain and
  SRTP → SRTP (unprotect with one leg's key, protect with the other's).
The best of `--runs` runs is printed as a table and written as JSON with `--out`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time

from acd.calls.rtp_leg import RtpLeg
from acd.media.rtp import build_rtp_header
from acd.media.srtp import SrtpStream

PAYLOAD = b"\xff" * 160


class CountingTransport:
    """Twisted's transport.write, minus the socket."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes, addr) -> None:
        self.writes += 1


def make_leg(call_id: str) -> RtpLeg:
    leg = RtpLeg(call_id=call_id, codec="PCMU", payload_type=0, remote=("127.0.0.1", 4000), telephone_event_pt=101,
                 on_digit=lambda digit: None, on_playback_finished=lambda playback: None, rng=random.Random(1))
    leg.transport = CountingTransport()
    return leg


def plain_packets(count: int) -> list[bytes]:
    return [build_rtp_header(0, False, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, 0x1234ABCD) + PAYLOAD
            for n in range(count)]


def per_packet_us(function, count: int) -> float:
    start = time.process_time()
    function()
    return (time.process_time() - start) / count * 1e6


def one_run(count: int) -> dict[str, float]:
    keys = [os.urandom(30) for _ in range(3)]
    packets = plain_packets(count)
    results = {}
    protect = SrtpStream.outbound(keys[0]).process
    results["protect"] = per_packet_us(lambda: [protect(p) for p in packets], count)
    protected = [SrtpStream.outbound(keys[0]).process(p) for p in packets]
    unprotect = SrtpStream.inbound(keys[0]).process
    results["unprotect"] = per_packet_us(lambda: [unprotect(p) for p in protected], count)

    for name, srtp in (("send plain", False), ("send srtp", True)):
        leg = make_leg(name)
        if srtp:
            leg.use_srtp(keys[0], keys[1])
        send = leg._send_frame
        results[name] = per_packet_us(lambda: [send() for _ in range(count)], count)

    for name, srtp in (("relay plain", False), ("relay srtp", True)):
        caller, agent = make_leg("caller"), make_leg("agent")
        caller.relay_to, agent.relay_to = agent, caller
        incoming = packets
        if srtp:
            caller.use_srtp(keys[0], keys[1])
            agent.use_srtp(keys[2], keys[0])
            incoming = [SrtpStream.outbound(keys[1]).process(p) for p in packets]
        receive = caller.datagramReceived
        address = ("127.0.0.1", 5000)
        results[name] = per_packet_us(lambda: [receive(p, address) for p in incoming], count)
        assert agent.packets_relayed == count, f"{name}: {agent.packets_relayed} of {count} relayed"
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=50_000, help="packets per measurement")
    parser.add_argument("--runs", type=int, default=5, help="runs; the best is reported")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    runs = [one_run(args.packets) for _ in range(args.runs)]
    best = {name: min(run[name] for run in runs) for name in runs[0]}
    print(f"{'per 172-byte G.711 packet':<28}{'µs CPU (best of ' + str(args.runs) + ')':>22}")
    for name, value in best.items():
        print(f"{name:<28}{value:>22.2f}")
    print(f"{'SRTP cost, send':<28}{best['send srtp'] - best['send plain']:>22.2f}")
    print(f"{'SRTP cost, relay':<28}{best['relay srtp'] - best['relay plain']:>22.2f}")
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"packets": args.packets, "runs": args.runs, "python": sys.version.split()[0],
                       "machine": platform.machine(), "best_us_per_packet": best}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
