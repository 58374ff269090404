"""RTCP compound packets (RFC 3550 §6): golden datagrams, broken twins and every truncation."""

from pathlib import Path

import pytest

from acd.media.rtcp import (Bye, ReceiverReport, ReportBlock, RtcpError, RtcpOtherPacket, SenderReport,
                            SourceDescription, build_compound, parse_compound)

# SR from SSRC 0x11223344: NTP 0xe3a1b2c3.80000000, RTP ts 0x0000fa00, 250 packets, 40000 octets, one
# report block about SSRC 0x55667788: 2/256 lost, 7 cumulative, highest 0x00012345, jitter 40, LSR
# 0xb2c38000, DLSR 0x00010000 (1 s); then SDES CNAME "pjsua@127.0.0.1".
SR_SDES = bytes.fromhex(
    "81c8000c" "11223344" "e3a1b2c3" "80000000" "0000fa00" "000000fa" "00009c40"
    "55667788" "02000007" "00012345" "00000028" "b2c38000" "00010000"
    "81ca0006" "11223344" "010f" + b"pjsua@127.0.0.1".hex() + "000000")
# RR from SSRC 0x55667788 with no report block (nothing received yet), SDES, and a BYE with reason "end".
RR_SDES_BYE = bytes.fromhex(
    "80c90001" "55667788"
    "81ca0003" "55667788" "0103616364" "000000"
    "81cb0002" "55667788" "03656e64")
# RR with a block whose cumulative lost is negative (-2: duplicates), and an APP packet kept whole.
RR_NEGATIVE_APP = bytes.fromhex(
    "81c90007" "55667788"
    "11223344" "00fffffe" "0000ffff" "00000000" "00000000" "00000000"
    "80cc0002" "55667788" "6e616d65")
# The RR with RFC 3550 padding (4 octets, last one the count) on the last packet.
RR_PADDED = bytes.fromhex("a0c90002" "55667788" "00000004")

# Captured from PJSUA2 2.15 (tests/e2e softphone calls, plain RTP): an SR + SDES sent mid-call, and
# the RR + SDES + BYE it sent when it hung up; next to them, broken twins cut short.
DATA = Path(__file__).resolve().parents[2] / "data" / "rtcp"
PJSUA_SR = (DATA / "pjsua_sr_sdes.bin").read_bytes()
PJSUA_BYE = (DATA / "pjsua_rr_sdes_bye.bin").read_bytes()

GOLDEN = [SR_SDES, RR_SDES_BYE, RR_NEGATIVE_APP, RR_PADDED, PJSUA_SR, PJSUA_BYE]


def test_pjsua_sender_report_reads_as_pjsua_wrote_it():
    sr, sdes = parse_compound(PJSUA_SR)
    assert (sr.ssrc, sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (0x793F450A, 267, 40848, 42824)
    (block,) = sr.reports
    assert (block.ssrc, block.cumulative_lost, block.jitter, block.highest_sequence) == (0x0386E726, 0, 2, 33965)
    assert block.last_sr == 0xB1B9DECA and block.delay_since_last_sr == 214741  # 3.28 s since our SR
    assert sdes.cname(sr.ssrc) == b"5d4188ce56a3a620"
    assert build_compound([sr, sdes]) == PJSUA_SR


def test_pjsua_hang_up_report_ends_with_a_bye():
    rr, sdes, bye = parse_compound(PJSUA_BYE)
    assert isinstance(rr, ReceiverReport) and bye == Bye(sources=(rr.ssrc,))
    assert build_compound([rr, sdes, bye]) == PJSUA_BYE


@pytest.mark.parametrize("name", ["pjsua_sr_sdes_invalid_truncated_block.bin", "pjsua_rr_sdes_bye_invalid_length.bin"])
def test_pjsua_broken_twins_are_refused(name):
    with pytest.raises(RtcpError, match="runs past"):
        parse_compound((DATA / name).read_bytes())


def test_sender_report_fields_and_round_trip():
    sr, sdes = parse_compound(SR_SDES)
    assert sr == SenderReport(ssrc=0x11223344, ntp_timestamp=0xE3A1B2C380000000, rtp_timestamp=0xFA00,
                              packet_count=250, octet_count=40000,
                              reports=(ReportBlock(ssrc=0x55667788, fraction_lost=2, cumulative_lost=7,
                                                   highest_sequence=0x12345, jitter=40, last_sr=0xB2C38000,
                                                   delay_since_last_sr=0x10000),))
    assert sdes.cname() == b"pjsua@127.0.0.1" and sdes.cname(0x11223344) == b"pjsua@127.0.0.1"
    assert build_compound([sr, sdes]) == SR_SDES


def test_receiver_report_sdes_and_bye_round_trip():
    rr, sdes, bye = parse_compound(RR_SDES_BYE)
    assert rr == ReceiverReport(ssrc=0x55667788)
    assert sdes.chunks == ((0x55667788, ((1, b"acd"),)),)
    assert bye == Bye(sources=(0x55667788,), reason=b"end")
    assert build_compound([rr, sdes, bye]) == RR_SDES_BYE


def test_negative_cumulative_loss_and_unknown_packets_are_kept():
    rr, app = parse_compound(RR_NEGATIVE_APP)
    assert rr.reports[0].cumulative_lost == -2 and rr.reports[0].highest_sequence == 0xFFFF
    assert app == RtcpOtherPacket(packet_type=204, count=0, payload=bytes.fromhex("556677886e616d65"))
    assert build_compound([rr, app]) == RR_NEGATIVE_APP


def test_padding_on_the_last_packet_is_read_and_written():
    (rr,) = parse_compound(RR_PADDED)
    assert rr == ReceiverReport(ssrc=0x55667788, padding_size=4)
    assert bytes(rr) == RR_PADDED


@pytest.mark.parametrize("data", GOLDEN)
def test_every_truncation_of_a_golden_datagram_is_refused_or_a_shorter_compound(data):
    # A cut at a packet boundary is a valid shorter compound; anywhere else it must be an RtcpError.
    for cut in range(len(data)):
        try:
            packets = parse_compound(data[:cut])
        except RtcpError:
            continue
        assert build_compound(packets) == data[:cut]


BROKEN = {
    "empty": (b"", "empty"),
    "version 1": (bytes.fromhex("40c90001" "55667788"), "version is 1"),
    "length past the end": (bytes.fromhex("80c90002" "55667788"), "runs past"),
    "sdes first": (bytes.fromhex("81ca0003" "55667788" "0103616364" "000000"), "not an SR or RR"),
    "padding not last": (bytes.fromhex("a0c90002" "55667788" "00000004" "80c90001" "55667788"),
                         "not the last"),
    "padding count zero": (bytes.fromhex("a0c90002" "55667788" "00000000"), "padding length 0"),
    "padding past the packet": (bytes.fromhex("a0c90001" "00000008"), "padding length 8"),
    "sr without its blocks": (bytes.fromhex("81c80006" "11223344" "e3a1b2c3" "80000000" "0000fa00" "000000fa"
                                            "00009c40"), "SR is truncated"),
    "rr block count too high": (bytes.fromhex("82c90007" "55667788") + bytes(24), "RR is truncated"),
    "sdes item past the packet": (bytes.fromhex("80c90001" "55667788" "81ca0002" "55667788" "01106163"),
                                  "item type 1 is truncated"),
    "sdes without end": (bytes.fromhex("80c90001" "55667788" "81ca0002" "55667788" "01026162"), "no END"),
    "bye reason past the packet": (bytes.fromhex("80c90001" "55667788" "81cb0002" "55667788" "09656e64"),
                                   "reason of 9 bytes"),
    "bye count past the packet": (bytes.fromhex("80c90001" "55667788" "82cb0001" "55667788"), "BYE is truncated"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_twins_raise_an_rtcp_error_naming_the_field(name):
    data, words = BROKEN[name]
    with pytest.raises(RtcpError, match=words):
        parse_compound(data)


def test_rtcp_error_is_a_value_error_for_callers_that_drop_any_bad_media():
    assert issubclass(RtcpError, ValueError)


@pytest.mark.parametrize("make", [
    lambda: ReportBlock(ssrc=1, fraction_lost=256, cumulative_lost=0, highest_sequence=0, jitter=0),
    lambda: ReportBlock(ssrc=1, fraction_lost=0, cumulative_lost=1 << 23, highest_sequence=0, jitter=0),
    lambda: ReceiverReport(ssrc=1, reports=(ReportBlock(ssrc=1, fraction_lost=0, cumulative_lost=0,
                                                        highest_sequence=0, jitter=0),) * 32),
    lambda: SourceDescription(chunks=((1, ((1, b"x" * 256),)),)),
    lambda: Bye(sources=(1,), reason=b"x" * 256),
    lambda: SenderReport(ssrc=1 << 32, ntp_timestamp=0, rtp_timestamp=0, packet_count=0, octet_count=0),
])
def test_values_that_do_not_fit_their_fields_are_refused_when_built(make):
    with pytest.raises(RtcpError):
        make()


def test_built_sdes_and_bye_pad_to_32_bits():
    for packet in (SourceDescription(chunks=((7, ((1, b"ab"),)), (8, ((1, b"abcd"),)))),
                   Bye(sources=(7, 8), reason=b"bye now"), Bye(sources=())):
        data = bytes(packet)
        assert len(data) % 4 == 0
        assert parse_compound(bytes(ReceiverReport(ssrc=1)) + data)[1] == packet
