"""The RTP leg with SRTP: what it sends is protected, what it receives is checked first; failures
are dropped, counted and logged at most every 10 seconds; re-keying one direction keeps the other."""

from __future__ import annotations

import importlib.util
import logging
import random
from pathlib import Path

import pylibsrtp

from acd.calls.rtp_leg import RtpLeg
from acd.media.rfc4733 import dtmf_event_payloads
from acd.media.rtp import build_rtp_header

BENCH = Path(__file__).resolve().parents[3] / "scripts" / "bench" / "srtp_packet.py"

OUR_KEY, THEIR_KEY = bytes(range(30)), bytes(range(30, 60))


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes, addr) -> None:
        self.sent.append(data)


def srtp_leg(now: list[float], failures: list[int], digits: list[str]) -> RtpLeg:
    leg = RtpLeg(call_id="c1", codec="PCMU", payload_type=0, remote=("127.0.0.1", 4000), telephone_event_pt=101,
                 on_digit=digits.append, on_playback_finished=lambda playback: None, rng=random.Random(1),
                 clock=lambda: now[0], on_srtp_failure=lambda: failures.append(1))
    leg.transport = FakeTransport()
    leg.use_srtp(OUR_KEY, THEIR_KEY)
    return leg


def session(key: bytes, ssrc_type: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc_type))


def test_sent_frames_are_srtp_under_our_key():
    leg = srtp_leg([0.0], [], [])
    leg.play(b"\x10" * 320, playback_id=1)
    leg._send_frame()
    leg._send_frame()
    peer = session(OUR_KEY, pylibsrtp.Policy.SSRC_ANY_INBOUND)
    assert [len(p) for p in leg.transport.sent] == [12 + 160 + 10] * 2
    assert [peer.unprotect(p)[12:] for p in leg.transport.sent] == [b"\x10" * 160] * 2


def test_encrypted_dtmf_is_read_and_forged_packets_are_counted_and_logged_every_10_seconds(caplog):
    now, failures, digits = [100.0], [], []
    leg = srtp_leg(now, failures, digits)
    peer = session(THEIR_KEY, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    forger = session(OUR_KEY, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    for seq, (payload, marker, _) in enumerate(dtmf_event_payloads("7", 60)):
        packet = build_rtp_header(101, marker, seq, 8000, 42) + payload
        leg.datagramReceived(peer.protect(packet), ("127.0.0.1", 4000))
    assert digits == ["7"]
    caplog.set_level(logging.INFO, logger="acd.media")
    forged = [forger.protect(build_rtp_header(101, False, 100 + n, 9000, 42) + b"\x01\x0a\x00\xa0") for n in range(4)]
    for at, packet in zip((100.0, 101.0, 109.0, 110.5), forged):
        now[0] = at
        leg.datagramReceived(packet, ("198.51.100.9", 7078))
    assert digits == ["7"] and len(failures) == leg.srtp_failures == 4
    lines = [r.getMessage() for r in caplog.records if "SRTP" in r.getMessage()]
    assert lines == [
        "call=c1 SRTP: dropped 1 packet(s) from 198.51.100.9:7078 failing authentication (authentication failure); "
        "1 on this leg so far",
        "call=c1 SRTP: dropped 3 packet(s) from 198.51.100.9:7078 failing authentication (authentication failure); "
        "4 on this leg so far"]


def test_oversized_and_rtcp_datagrams_are_dropped_without_raising():
    failures = []
    leg = srtp_leg([0.0], failures, [])
    leg.datagramReceived(b"\x80\x00" + bytes(3000), ("127.0.0.1", 4000))  # longer than libsrtp's buffer
    leg.datagramReceived(b"\x80\xc8" + bytes(40), ("127.0.0.1", 4000))    # an SRTCP sender report (mux)
    assert len(failures) == 1 and leg.packets_received == 2


def test_a_new_peer_key_keeps_our_outbound_stream_and_plain_turns_srtp_off():
    leg = srtp_leg([0.0], [], [])
    protect, unprotect = leg.protect, leg.unprotect
    leg.use_srtp(OUR_KEY, THEIR_KEY)
    assert (leg.protect, leg.unprotect) == (protect, unprotect)
    leg.use_srtp(OUR_KEY, bytes(30))
    assert leg.protect is protect and leg.unprotect is not unprotect
    leg.use_srtp(None, None)
    assert not leg.srtp and leg.unprotect is None


def test_the_micro_benchmark_runs_and_relays_every_packet():
    """scripts/bench/srtp_packet.py (its own assertion checks every packet crossed the bridge)."""
    spec = importlib.util.spec_from_file_location("srtp_packet", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.one_run(200)
    assert set(results) == {"protect", "unprotect", "send plain", "send srtp", "relay plain", "relay srtp"}
