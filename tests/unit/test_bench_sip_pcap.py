"""scripts/bench/sip_pcap.py: the benchmarks' SIP read-back, on hand-built pcap and pcapng files."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))
from sip_pcap import SipDatagram, sip_datagrams  # noqa: E402

INVITE = (b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061\r\n"
          b"Call-ID: 1-42@127.0.0.1\r\nCSeq: 1 INVITE\r\n\r\n")
OK = b"SIP/2.0 200 OK\r\ni: 1-42@127.0.0.1\r\ncseq:  1   INVITE\r\nContent-Length: 0\r\n\r\n"
RTP = b"\x80\x00" + bytes(170)


def ethernet_udp(payload: bytes, source: int, destination: int) -> bytes:
    udp = struct.pack("!HHHH", source, destination, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
    return bytes(12) + b"\x08\x00" + ip


FRAMES = [(1796602689.865852, ethernet_udp(INVITE, 5061, 5060)),
          (1796602689.866001, ethernet_udp(RTP, 20000, 30000)),
          (1796602689.867503, ethernet_udp(OK, 5060, 5061))]
EXPECTED = [SipDatagram(1796602689.865852, "1-42@127.0.0.1", "INVITE", None, "INVITE"),
            SipDatagram(1796602689.867503, "1-42@127.0.0.1", "", 200, "INVITE")]


def classic(frames) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for at, frame in frames:
        seconds = int(at)
        out += struct.pack("<IIII", seconds, round((at - seconds) * 1e6), len(frame), len(frame)) + frame
    return out


def block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def pcapng(frames) -> bytes:
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 65535) + struct.pack("<HHB3x", 9, 1, 6) + struct.pack("<HH", 0, 0))
    for at, frame in frames:
        stamp = round(at * 1e6)
        out += block(6, struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    return out


@pytest.mark.parametrize("build", [classic, pcapng])
def test_sip_messages_on_the_port_are_read_with_their_capture_time(tmp_path, build):
    capture = tmp_path / "sip.pcap"
    capture.write_bytes(build(FRAMES))
    assert list(sip_datagrams(capture, 5060)) == EXPECTED


def test_other_ports_and_non_sip_payloads_are_skipped(tmp_path):
    capture = tmp_path / "sip.pcap"
    capture.write_bytes(classic(FRAMES + [(1796602690.0, ethernet_udp(b"garbage\r\n", 5061, 5060))]))
    assert list(sip_datagrams(capture, 30000)) == []
    assert list(sip_datagrams(capture, 5060)) == EXPECTED


def test_a_file_that_is_not_a_capture_is_refused(tmp_path):
    capture = tmp_path / "sip.pcap"
    capture.write_bytes(b"not a capture at all")
    with pytest.raises(ValueError, match="not a pcap"):
        list(sip_datagrams(capture, 5060))
