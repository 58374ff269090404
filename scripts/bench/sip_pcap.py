"""Read SIP over UDP out of a loopback capture, fast: the benchmarks' read-back of setup latency.

`tshark -T fields` dissects every datagram (it took 8+ minutes for 60 s at 1,400 calls/s); a SIP
benchmark only needs, per datagram on one port: when, Call-ID, request method or status code, and the
CSeq method. This reads classic pcap and pcapng (what `tshark -w` writes), on the link types a
loopback capture has (Ethernet, Linux cooked v1/v2, raw IP, BSD null), IPv4 and IPv6, unfragmented UDP.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_CSEQ = re.compile(rb"^cseq[ \t]*:[ \t]*\d+[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class SipDatagram:
    """One SIP message seen in a capture: `method` for a request, `status` for a response."""

    at: float
    call_id: str
    method: str
    status: int | None
    cseq_method: str


def sip_datagrams(pcap: Path, port: int) -> Iterator[SipDatagram]:
    """Every SIP message to or from UDP `port` in `pcap`, in capture order."""
    for at, payload in _udp_payloads(pcap, port):
        message = _sip_message(at, payload)
        if message is not None:
            yield message


def _sip_message(at: float, payload: bytes) -> SipDatagram | None:
    end = payload.find(b"\r\n")
    if end <= 0:
        return None
    first = payload[:end].split(b" ", 2)
    call_id = _CALL_ID.search(payload)
    cseq = _CSEQ.search(payload)
    if len(first) < 2 or call_id is None or cseq is None:
        return None
    if first[0].startswith(b"SIP/2.0"):
        if not first[1].isdigit():
            return None
        method, status = "", int(first[1])
    else:
        method, status = first[0].decode("ascii", "replace"), None
    return SipDatagram(at, call_id.group(1).decode("ascii", "replace"), method, status,
                       cseq.group(1).decode("ascii", "replace"))


def _udp_payloads(pcap: Path, port: int) -> Iterator[tuple[float, bytes]]:
    data = pcap.read_bytes()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        frames = _pcapng_frames(data)
    elif magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        frames = _pcap_frames(data)
    else:
        raise ValueError(f"{pcap}: not a pcap or pcapng file (magic {magic.hex()})")
    for at, link, frame in frames:
        ip = _ip_packet(link, frame)
        if ip is None:
            continue
        udp = _udp(ip)
        if udp is not None and port in (udp[0], udp[1]):
            yield at, udp[2]


def _pcap_frames(data: bytes) -> Iterator[tuple[float, int, bytes]]:
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
    record = struct.Struct(order + "IIII")
    offset, size = 24, len(data)
    units = 1e9 if nano else 1e6
    while offset + 16 <= size:
        seconds, fraction, captured, _ = record.unpack_from(data, offset)
        offset += 16
        yield seconds + fraction / units, link, data[offset:offset + captured]
        offset += captured


def _pcapng_frames(data: bytes) -> Iterator[tuple[float, int, bytes]]:
    offset, size = 0, len(data)
    order = "<"
    links: list[tuple[int, float]] = []  # (link type, timestamp units per second)
    while offset + 12 <= size:
        block_type = struct.unpack_from(order + "I", data, offset)[0]
        if block_type == 0x0A0D0D0A:
            order = "<" if data[offset + 8:offset + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        length = struct.unpack_from(order + "I", data, offset + 4)[0]
        if length < 12:
            raise ValueError(f"pcapng block at byte {offset} has length {length}")
        body = offset + 8
        if block_type == 1:
            links.append((struct.unpack_from(order + "H", data, body)[0], _pcapng_resolution(data, order, body + 8,
                                                                                           offset + length - 4)))
        elif block_type == 6:
            interface, high, low, captured = struct.unpack_from(order + "IIII", data, body)
            link, units = links[interface]
            yield ((high << 32) | low) / units, link, data[body + 20:body + 20 + captured]
        offset += length


def _pcapng_resolution(data: bytes, order: str, start: int, end: int) -> float:
    """Timestamp units per second of an interface description block (option if_tsresol, default µs)."""
    while start + 4 <= end:
        code, length = struct.unpack_from(order + "HH", data, start)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = data[start + 4]
            return 2.0 ** (value & 0x7F) if value & 0x80 else 10.0 ** value
        start += 4 + (length + 3) // 4 * 4
    return 1e6


def _ip_packet(link: int, frame: bytes) -> bytes | None:
    if link == 1:  # Ethernet (what `tshark -i lo` records)
        ethertype, start = struct.unpack_from("!H", frame, 12)[0], 14
        if ethertype == 0x8100:
            ethertype, start = struct.unpack_from("!H", frame, 16)[0], 18
        return frame[start:] if ethertype in (0x0800, 0x86DD) else None
    if link == 113:  # Linux cooked v1
        return frame[16:]
    if link == 276:  # Linux cooked v2
        return frame[20:]
    if link in (0, 108):  # BSD null/loop
        return frame[4:]
    if link in (101, 12, 228, 229):  # raw IP
        return frame
    return None


def _udp(ip: bytes) -> tuple[int, int, bytes] | None:
    if len(ip) < 20:
        return None
    version = ip[0] >> 4
    if version == 4:
        if ip[9] != 17 or struct.unpack_from("!H", ip, 6)[0] & 0x3FFF:  # not UDP, or a fragment
            return None
        start = (ip[0] & 0x0F) * 4
    elif version == 6:
        if ip[6] != 17:
            return None
        start = 40
    else:
        return None
    source, destination, length = struct.unpack_from("!HHH", ip, start)
    return source, destination, ip[start + 8:start + length]
