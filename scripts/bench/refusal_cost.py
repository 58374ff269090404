"""CPU cost of a refusal by admission control (issue 21), in process, no sockets.

    PYTHONPATH=. .venv/bin/python scripts/bench/refusal_cost.py --count 50000 --runs 5 --out refusal.json

The real AdmissionGate (shipped config, the call ceiling full) is fed demo-sized INVITEs; µs of CPU
per datagram, best of `--runs`, for: a new INVITE refused (peek, decision, 503 built, cached, counted,
handed to a sender that keeps it), a retransmission answered from the refusal cache, and an admitted
INVITE's toll (peek and decision before it goes on to the SIP server, here a stub).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import timeit
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from twisted.internet.task import Clock  # noqa: E402

from acd.calls.admission_gate import AdmissionGate  # noqa: E402
from acd.calls.call_table import CallTable  # noqa: E402
from acd.calls.live_config import LiveConfig  # noqa: E402
from acd.config.loader import load_config  # noqa: E402
from acd.metrics import Metrics  # noqa: E402

SOURCE = ("127.0.0.1", 5061)


class StubServer:
    """Takes what the gate passes on, and does nothing with it."""

    def datagram_received(self, data: bytes, source: tuple[str, int], transport: str) -> None:
        pass

    def set_sender(self, transport: str, send) -> None:
        pass


def invite(n: int) -> bytes:
    """A SIPp-shaped INVITE with SDP (the benchmark's rate_call.xml)."""
    sdp = ("v=0\r\no=bench 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
           "a=fmtp:101 0-15\r\na=sendrecv\r\n")
    return (f"INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-1-0\r\n"
            f"From: \"Bench\" <sip:5550000@127.0.0.1:5061>;tag=1SIPpTag00{n}\r\nTo: <sip:1000@127.0.0.1:5060>\r\n"
            f"Call-ID: {n}-1234@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:5550000@127.0.0.1:5061>\r\n"
            f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def gate(full: bool) -> AdmissionGate:
    config = load_config(REPO)
    calls = CallTable()
    ceiling = config.sip.admission.ceilings(config.rtp).max_calls
    for n in range(ceiling if full else 0):
        calls.sessions[f"up-{n}"] = object()
    clock = Clock()
    clock.advance(1000)
    live = LiveConfig(config)
    if not full:  # admitted every time: no rate ceiling
        admission = replace(config.sip.admission, max_new_calls_per_second=0)
        live = LiveConfig(replace(config, sip=replace(config.sip, admission=admission)))
    built = AdmissionGate(server=StubServer(), config=live, calls=calls, metrics=Metrics(), reactor=clock)
    built.set_sender("UDP", lambda datagram: None)
    return built


def best_us(function, count: int, runs: int) -> float:
    return round(min(timeit.repeat(function, number=count, repeat=runs)) / count * 1e6, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    logging.getLogger("acd").setLevel(logging.ERROR)  # the summary line is not what is measured
    refusing = gate(full=True)
    fresh = iter([invite(n) for n in range(args.count * args.runs)])
    results = {"refused_us": best_us(lambda: refusing.datagram_received(next(fresh), SOURCE, "UDP"),
                                     args.count, args.runs)}
    again = invite(0)
    results["retransmission_from_cache_us"] = best_us(lambda: refusing.datagram_received(again, SOURCE, "UDP"),
                                                      args.count, args.runs)
    admitting = gate(full=False)
    results["admitted_toll_us"] = best_us(lambda: admitting.datagram_received(again, SOURCE, "UDP"),
                                          args.count, args.runs)
    print("per INVITE (µs of CPU, best of runs): " + ", ".join(f"{k[:-3]} {v}" for k, v in results.items()))
    if args.out:
        args.out.write_text(json.dumps({"count": args.count, "runs": args.runs, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
