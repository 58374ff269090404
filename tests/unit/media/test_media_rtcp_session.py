"""One leg's RTCP, sans I/O (acd.media.rtcp_session): timing, SR or RR, LSR/DLSR, the peer's reports."""

import random

import pytest

from acd.media.rtcp import (Bye, ReceiverReport, ReportBlock, RtcpError, SenderReport, SourceDescription,
                            parse_compound)
from acd.media.rtcp_session import RtcpSession, ntp_timestamp
from acd.media.rtp_stats import ReceiveStatistics

OURS, THEIRS = 0xAAAA0001, 0xBBBB0002
WALL = 1_700_000_000.0  # any Unix time: only differences matter


def session(interval: float = 5.0) -> RtcpSession:
    stats = ReceiveStatistics()
    for n in range(100):
        if n != 50:
            stats.received(n, n * 160, THEIRS, n * 0.02)
    return RtcpSession(ssrc=OURS, cname=b"acd@127.0.0.1", stats=stats, interval_seconds=interval,
                       rng=random.Random(1))


def test_reports_come_about_every_interval_randomised_and_the_first_after_half_of_one():
    rtcp = session()
    rtcp.start(100.0)
    first = rtcp.next_deadline() - 100.0
    assert 2.5 * 0.5 / 1.21828 <= first <= 2.5 * 1.5 / 1.21828
    gaps = []
    for _ in range(200):
        now = rtcp.next_deadline()
        rtcp.report(now, WALL + now, packets_sent=0, octets_sent=0, rtp_timestamp=0)
        gaps.append(rtcp.next_deadline() - now)
    assert min(gaps) >= 5 * 0.5 / 1.21828 and max(gaps) <= 5 * 1.5 / 1.21828
    assert sum(gaps) / len(gaps) == pytest.approx(5 / 1.21828, rel=0.1)


def test_an_sr_while_we_send_and_an_rr_while_we_only_relay():
    rtcp = session()
    sr, sdes = parse_compound(rtcp.report(1.0, WALL, packets_sent=50, octets_sent=8000, rtp_timestamp=1234))
    assert sr == SenderReport(ssrc=OURS, ntp_timestamp=ntp_timestamp(WALL), rtp_timestamp=1234, packet_count=50,
                              octet_count=8000, reports=sr.reports)
    assert sr.reports[0].ssrc == THEIRS and sr.reports[0].cumulative_lost == 1
    assert sdes == SourceDescription(chunks=((OURS, ((1, b"acd@127.0.0.1"),)),))
    rr, _ = parse_compound(rtcp.report(6.0, WALL + 5, packets_sent=50, octets_sent=8000, rtp_timestamp=1234))
    assert isinstance(rr, ReceiverReport) and rr.ssrc == OURS and rr.reports[0].fraction_lost == 0


def test_the_peers_sr_gives_lsr_and_dlsr_and_its_block_gives_loss_jitter_and_round_trip():
    rtcp = session()
    ours = parse_compound(rtcp.report(10.0, WALL, packets_sent=10, octets_sent=1600, rtp_timestamp=0))[0]
    their_ntp = ntp_timestamp(WALL + 0.3)
    block = ReportBlock(ssrc=OURS, fraction_lost=5, cumulative_lost=4, highest_sequence=99, jitter=160,
                        last_sr=(ours.ntp_timestamp >> 16) & 0xFFFFFFFF, delay_since_last_sr=65536 // 10)
    peer = SenderReport(ssrc=THEIRS, ntp_timestamp=their_ntp, rtp_timestamp=0, packet_count=1, octet_count=160,
                        reports=(block,))
    rtcp.receive(bytes(peer), 10.5, WALL + 0.5)  # sent 0.1 s after our SR reached it; 0.5 s after ours left
    assert (rtcp.reported_lost, rtcp.reported_jitter_seconds) == (4, 0.02)
    assert rtcp.round_trip_seconds == pytest.approx(0.4, abs=1e-3)
    answer = parse_compound(rtcp.report(11.5, WALL + 1.5, packets_sent=10, octets_sent=1600, rtp_timestamp=0))[0]
    assert answer.reports[0].last_sr == (their_ntp >> 16) & 0xFFFFFFFF
    assert answer.reports[0].delay_since_last_sr == 65536  # one second since the peer's SR arrived


def test_a_peer_reporting_on_the_relayed_stream_still_counts_as_its_report_of_what_we_send():
    rtcp = session()
    other = ReportBlock(ssrc=0xCCCC0003, fraction_lost=0, cumulative_lost=9, highest_sequence=1, jitter=8)
    rtcp.receive(bytes(ReceiverReport(ssrc=THEIRS, reports=(other,))), 1.0, WALL)
    assert rtcp.reported_lost == 9


def test_a_broken_datagram_raises_and_leaves_the_peers_figures_alone():
    rtcp = session()
    with pytest.raises(RtcpError):
        rtcp.receive(b"\x80\xc9\x00\x05" + bytes(4), 1.0, WALL)
    assert rtcp.reported_lost is None and rtcp.reported_jitter_seconds is None


def test_bye_ends_the_schedule_with_a_last_report():
    rtcp = session()
    rtcp.start(0.0)
    packets = parse_compound(rtcp.bye(3.0, WALL, packets_sent=0, octets_sent=0, rtp_timestamp=0, reason=b"done"))
    assert isinstance(packets[0], ReceiverReport) and packets[-1] == Bye(sources=(OURS,), reason=b"done")
    assert rtcp.next_deadline() is None
