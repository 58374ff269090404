"""RTCP on each leg's RTP port + 1 (acd.calls.rtcp_port), and the loss and jitter figures of a leg
at its end in the metrics; run on both media planes (test_shell_on_media_workers)."""

from __future__ import annotations

from acd.media.rtcp import Bye, ReceiverReport, ReportBlock, SenderReport, SourceDescription, parse_compound
from acd.media.rtcp_session import ntp_timestamp

from .harness import FRAME


class _Capture:
    """A peer's RTCP port on the fake network: keeps every datagram."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []

    def deliver(self, data: bytes, source: tuple[str, int]) -> None:
        self.datagrams.append((data, source))


def _rtcp_port_of_the_caller(harness, caller) -> _Capture:
    capture = _Capture()
    harness.reactor.network.bind((caller.rtp_address[0], caller.rtp_address[1] + 1), capture)
    return capture


def test_a_caller_gets_sender_reports_with_its_loss_and_the_peers_reports_reach_the_metrics(make_harness):
    """A caller in the IVR sends audio with 3 sequence numbers skipped: the server's RTCP, from its
    RTP port + 1 to the caller's RTP port + 1, is an SR (the IVR's prompts are our stream) whose report
    block counts those 3 lost, with SDES CNAME. The caller's own RR (5 of our packets lost, jitter 80
    units) reaches the server's RTCP port. At hang-up a last report with BYE goes out, both ports
    close, and the metrics hold 3 lost received, 5 reported, and both jitter figures."""
    harness = make_harness()
    caller, call = harness.answered_call()
    capture = _rtcp_port_of_the_caller(harness, caller)
    server_rtp = call.server_rtp
    assert harness.bound_rtcp_ports() == [server_rtp[1] + 1]
    for n in range(150):
        if n in (40, 41, 90):
            call.rtp.sequence += 1  # lost on the way: the server never sees it
            call.rtp.timestamp += 160
        else:
            call.send_audio()
        harness.advance(FRAME)
    capture.datagrams.clear()  # reports sent while the audio still came in
    harness.advance_until(lambda: capture.datagrams, timeout=8.0, what="an RTCP report")
    data, source = capture.datagrams[-1]
    assert source == (server_rtp[0], server_rtp[1] + 1)
    report, sdes = parse_compound(data)
    ours = {seen.ssrc for seen in call.rtp_received()}
    assert isinstance(report, SenderReport) and {report.ssrc} == ours and report.packet_count > 0
    (block,) = report.reports
    assert block.ssrc == call.rtp.ssrc and block.cumulative_lost == 3
    assert block.highest_sequence == call.rtp.sequence - 1
    assert isinstance(sdes, SourceDescription) and sdes.cname(report.ssrc) == f"acd@{server_rtp[0]}".encode()

    their_report = ReceiverReport(ssrc=call.rtp.ssrc, reports=(ReportBlock(
        ssrc=report.ssrc, fraction_lost=10, cumulative_lost=5, highest_sequence=1000, jitter=80,
        last_sr=(report.ntp_timestamp >> 16) & 0xFFFFFFFF, delay_since_last_sr=0),))
    caller.network.send((caller.rtp_address[0], caller.rtp_address[1] + 1), (server_rtp[0], server_rtp[1] + 1),
                        bytes(their_report) + bytes(SourceDescription(chunks=((call.rtp.ssrc, ((1, b"caller"),)),))))
    harness.advance(FRAME)
    call.bye()
    harness.advance(1.0)
    *_, last = parse_compound(capture.datagrams[-1][0])
    assert last == Bye(sources=(report.ssrc,))
    assert harness.bound_rtp_ports() == [] and harness.bound_rtcp_ports() == []
    assert harness.metric("acd_rtp_packets_lost_total", direction="received") == 3
    assert harness.metric("acd_rtp_packets_lost_total", direction="reported") == 5
    assert harness.metric("acd_rtp_jitter_seconds_count", direction="received") == 1
    assert harness.metric("acd_rtp_jitter_seconds_count", direction="reported") == 1
    assert harness.metric("acd_rtp_jitter_seconds_sum", direction="reported") == 80 / 8000


def test_a_broken_rtcp_datagram_is_dropped_and_the_call_goes_on(make_harness, caplog):
    """Garbage and a truncated report on the RTCP port are dropped; the leg keeps reporting, and
    one line at its end says how many were dropped, with the first one's bytes."""
    harness = make_harness()
    caller, call = harness.answered_call()
    capture = _rtcp_port_of_the_caller(harness, caller)
    server_rtcp = (call.server_rtp[0], call.server_rtp[1] + 1)
    for data in (b"\x00" * 3, bytes.fromhex("81c90007") + bytes(8), b"\x80\xc9\x00\x01"):
        caller.network.send((caller.rtp_address[0], caller.rtp_address[1] + 1), server_rtcp, data)
    call.send_audio(3)
    harness.advance_until(lambda: capture.datagrams, timeout=8.0, what="an RTCP report")
    assert isinstance(parse_compound(capture.datagrams[-1][0])[0], SenderReport)
    call.bye()
    harness.advance(1.0)
    assert harness.bound_rtcp_ports() == []
    assert "dropped 3 broken RTCP datagram(s), the first from 127.0.0.1:" in caplog.text
    assert "(3 bytes, 000000...): RTCP packet has a truncated header" in caplog.text


def test_ntp_timestamps_count_from_1900():
    assert ntp_timestamp(0.0) == 2208988800 << 32
    assert ntp_timestamp(1.5) == ((2208988801 << 32) | (1 << 31))
