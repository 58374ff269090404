"""RTP (RFC 3550 §5.1): golden packets, broken twins and every truncation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.media.rtp import RTP_HEADER_SIZE, RtpPacket, build_rtp_header, is_rtcp

# PCMU, 20 ms of silence: V=2, PT=0, seq 0x1a2b, ts 0x00000e10, SSRC 0x12345678.
PCMU_PACKET = bytes.fromhex("80001a2b00000e1012345678") + b"\xff" * 160
# telephone-event start with marker bit: PT=101, event 5, volume 10, duration 160.
DTMF_START_PACKET = bytes.fromhex("80e51a2c00000e1012345678") + bytes.fromhex("050a00a0")
# P, X and CC=2 all set: two CSRCs, RFC 8285 one-byte extension (0xBEDE, 1 word),
# 2-byte payload, 4 padding octets ending in the count.
FULL_PACKET = (
    bytes.fromhex("b208ffff")  # V=2 P=1 X=1 CC=2, M=0 PT=8, seq 65535
    + bytes.fromhex("fffffff0")  # timestamp
    + bytes.fromhex("deadbeef")  # SSRC
    + bytes.fromhex("0000000100000002")  # CSRCs
    + bytes.fromhex("bede0001" "10ff0000")  # extension header + 1 word
    + b"\xd5\xd5"  # payload
    + bytes.fromhex("00000004")  # padding
)
GOLDEN = [PCMU_PACKET, DTMF_START_PACKET, FULL_PACKET]


def test_pcmu_packet_fields_and_round_trip():
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet == RtpPacket(payload_type=0, sequence_number=0x1A2B, timestamp=0xE10, ssrc=0x12345678, payload=b"\xff" * 160)
    assert not packet.marker and packet.csrc == ()
    assert bytes(packet) == PCMU_PACKET


def test_marker_bit_and_payload_type_are_split():
    packet = RtpPacket.parse(DTMF_START_PACKET)
    assert packet.marker and packet.payload_type == 101
    assert packet.payload == bytes.fromhex("050a00a0")
    assert bytes(packet) == DTMF_START_PACKET


def test_csrc_extension_and_padding_are_parsed_and_kept():
    packet = RtpPacket.parse(FULL_PACKET)
    assert packet.payload_type == 8 and packet.sequence_number == 0xFFFF and packet.timestamp == 0xFFFFFFF0
    assert packet.ssrc == 0xDEADBEEF
    assert packet.csrc == (1, 2)
    assert packet.extension_profile == 0xBEDE and packet.extension == bytes.fromhex("10ff0000")
    assert packet.payload == b"\xd5\xd5"
    assert packet.padding_size == 4
    assert bytes(packet) == FULL_PACKET


def test_empty_extension_round_trips():
    data = bytes.fromhex("900000010000000200000003" "abcd0000")
    packet = RtpPacket.parse(data)
    assert packet.extension_profile == 0xABCD and packet.extension == b"" and packet.payload == b""
    assert bytes(packet) == data


def test_build_rtp_header_matches_packet_serialisation():
    header = build_rtp_header(0, False, 0x1A2B, 0xE10, 0x12345678)
    assert len(header) == RTP_HEADER_SIZE
    assert header + b"\xff" * 160 == PCMU_PACKET
    assert build_rtp_header(101, True, 0x1A2C, 0xE10, 0x12345678) + bytes.fromhex("050a00a0") == DTMF_START_PACKET


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "RTP packet is too short"),
        (PCMU_PACKET[:11], "RTP packet is too short"),
        (b"\x40" + PCMU_PACKET[1:], "RTP version is 1, expected 2"),
        (b"\x00" + PCMU_PACKET[1:12], "RTP version is 0, expected 2"),
        (b"\x82" + PCMU_PACKET[1:12] + b"\x00\x00\x00\x01", "RTP packet has truncated CSRC"),
        (b"\x90" + PCMU_PACKET[1:12] + b"\xbe\xde", "RTP packet has truncated extension header"),
        (b"\x90" + PCMU_PACKET[1:12] + bytes.fromhex("bede0002" "00000000"), "RTP packet has truncated extension"),
        (b"\xa0" + PCMU_PACKET[1:12], "RTP packet has padding bit set but no padding"),
        (b"\xa0" + PCMU_PACKET[1:12] + b"\xff\x00", "RTP padding length is 0"),
        (b"\xa0" + PCMU_PACKET[1:12] + b"\xff\x03", "RTP padding length 3 exceeds the 2 bytes after the header"),
    ],
    ids=[
        "empty", "11-bytes", "version-1", "version-0", "truncated-csrc", "truncated-extension-header",
        "truncated-extension", "padding-without-bytes", "zero-padding", "padding-too-long",
    ],
)
def test_broken_packet_raises_value_error_naming_the_field(data, message):
    with pytest.raises(ValueError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


@pytest.mark.parametrize("golden", GOLDEN, ids=["pcmu", "dtmf", "full"])
def test_every_truncation_parses_or_raises_value_error(golden):
    """Fragments: cutting a packet anywhere never raises anything but ValueError."""
    for cut in range(len(golden)):
        try:
            packet = RtpPacket.parse(golden[:cut])
        except ValueError:
            continue
        assert cut >= RTP_HEADER_SIZE
        assert bytes(packet)[:RTP_HEADER_SIZE] == golden[:RTP_HEADER_SIZE]


@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_value_error(data):
    try:
        packet = RtpPacket.parse(data)
    except ValueError:
        return
    assert RtpPacket.parse(bytes(packet)) == packet


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"payload_type": 128}, "payload type 128"),
        ({"sequence_number": 65536}, "sequence number 65536"),
        ({"timestamp": -1}, "timestamp -1"),
        ({"ssrc": 1 << 32}, "SSRC"),
        ({"csrc": tuple(range(16))}, "16 CSRCs"),
        ({"extension_profile": 1, "extension": b"abc"}, "multiple of 4"),
        ({"extension": b"abcd"}, "needs an extension profile"),
        ({"padding_size": 256}, "padding size 256"),
    ],
)
def test_constructor_rejects_values_that_do_not_fit_the_header(kwargs, message):
    fields = {"payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        RtpPacket(**fields)


@pytest.mark.parametrize("packet_type", [200, 201, 202, 203, 204, 205, 206])
def test_rtcp_packets_are_recognised_on_a_shared_port(packet_type):
    # RFC 5761 §4: RTCP packet types 200-204 look like RTP payload types 72-76 with the marker set.
    receiver_report = bytes([0x81, packet_type]) + bytes.fromhex("0007") + b"\x00" * 28
    assert is_rtcp(receiver_report)


def test_rtp_audio_and_dtmf_are_not_rtcp():
    assert not is_rtcp(PCMU_PACKET)
    assert not is_rtcp(DTMF_START_PACKET)
    assert not is_rtcp(bytes.fromhex("8008"))
    assert not is_rtcp(b"\x80")
    assert not is_rtcp(bytes.fromhex("40c8"))  # version 1
