# SPDX-License-Identifier: MIT
"""RTCP compound packets (RFC 3550 §6): ``parse_compound`` in, ``build_compound`` out.

The packets a voice leg needs are parsed into fields: sender reports (SR, §6.4.1), receiver
reports (RR, §6.4.2) with their report blocks, source descriptions (SDES, §6.5, CNAME and the other
items kept as type and text) and BYE (§6.6). Any other packet type (APP, RFC 4585 feedback, RFC 3611
XR) is kept whole as ``RtcpOtherPacket`` so a compound carrying one still parses and serialises.

A compound is checked as RFC 3550 Appendix A.2 says a receiver should: every packet version 2, the
lengths adding up to the datagram, the first packet an SR or RR, padding only in the last one.
Anything else raises ``RtcpError`` (a ``ValueError``) naming the field, so the shell logs and drops
the datagram. Every length is checked before it is read. ``bytes(packet)`` of a parsed packet gives
the bytes it was parsed from (padding octets other than the count are written as zeros).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["RtcpError", "ReportBlock", "SenderReport", "ReceiverReport", "SourceDescription", "Bye",
           "RtcpOtherPacket", "RtcpPacket", "parse_compound", "build_compound", "SDES_CNAME",
           "RTCP_SR", "RTCP_RR", "RTCP_SDES", "RTCP_BYE", "MAX_REPORT_BLOCKS"]

RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE = 200, 201, 202, 203
SDES_CNAME = 1  # RFC 3550 §6.5.1
MAX_REPORT_BLOCKS = 31  # the 5-bit RC field
_VERSION = 2

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IIIII")  # NTP msw, NTP lsw, RTP timestamp, packet count, octet count
_REPORT_BLOCK = struct.Struct("!IIIIII")


class RtcpError(ValueError):
    """An RTCP datagram that is not a valid compound packet; the message names the broken field."""


def _check_bits(what: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise RtcpError(f"RTCP {what} {value} does not fit in {bits} bits")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """RFC 3550 §6.4.1: what the reporter received from `ssrc`."""

    ssrc: int
    fraction_lost: int            # lost / expected since the last report, in 1/256ths
    cumulative_lost: int          # 24-bit signed: duplicates can make it negative
    highest_sequence: int         # extended highest sequence number received (cycles << 16 | seq)
    jitter: int                   # interarrival jitter in RTP timestamp units (§6.4.1, A.8)
    last_sr: int = 0              # LSR: middle 32 bits of the NTP timestamp of the last SR received
    delay_since_last_sr: int = 0  # DLSR: in 1/65536 s

    def __post_init__(self) -> None:
        _check_bits("report block SSRC", self.ssrc, 32)
        _check_bits("fraction lost", self.fraction_lost, 8)
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise RtcpError(f"RTCP cumulative lost {self.cumulative_lost} does not fit in 24 signed bits")
        for what in ("highest_sequence", "jitter", "last_sr", "delay_since_last_sr"):
            _check_bits(what.replace("_", " "), getattr(self, what), 32)

    @classmethod
    def parse(cls, data: bytes, offset: int) -> "ReportBlock":
        """The block at `offset` (24 bytes, length checked by the caller)."""
        ssrc, lost, highest, jitter, last_sr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc=ssrc, fraction_lost=lost >> 24, cumulative_lost=cumulative, highest_sequence=highest,
                   jitter=jitter, last_sr=last_sr, delay_since_last_sr=dlsr)

    def __bytes__(self) -> bytes:
        lost = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(self.ssrc, lost, self.highest_sequence, self.jitter, self.last_sr,
                                  self.delay_since_last_sr)


def _check_blocks(blocks: tuple) -> None:
    if len(blocks) > MAX_REPORT_BLOCKS:
        raise RtcpError(f"RTCP report has {len(blocks)} report blocks, at most {MAX_REPORT_BLOCKS} fit")


@dataclass(frozen=True, slots=True)
class SenderReport:
    """RFC 3550 §6.4.1 SR: the sender's clock pair and counts, then its report blocks."""

    ssrc: int
    ntp_timestamp: int   # 64-bit NTP time (seconds since 1900 << 32 | fraction)
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific extension (§6.4.1), a multiple of 4 bytes
    padding_size: int = 0

    def __post_init__(self) -> None:
        _check_bits("SR SSRC", self.ssrc, 32)
        _check_bits("NTP timestamp", self.ntp_timestamp, 64)
        for what in ("rtp_timestamp", "packet_count", "octet_count"):
            _check_bits(what.replace("_", " "), getattr(self, what), 32)
        _check_blocks(self.reports)

    def body(self) -> tuple[int, bytes]:
        """(count field, bytes after the common header)."""
        info = _SENDER_INFO.pack(self.ntp_timestamp >> 32, self.ntp_timestamp & 0xFFFFFFFF, self.rtp_timestamp,
                                 self.packet_count, self.octet_count)
        return len(self.reports), _SSRC.pack(self.ssrc) + info + b"".join(map(bytes, self.reports)) + self.extension

    def __bytes__(self) -> bytes:
        return _pack(RTCP_SR, *self.body(), self.padding_size)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RFC 3550 §6.4.2 RR: report blocks from a participant that sent no RTP lately."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding_size: int = 0

    def __post_init__(self) -> None:
        _check_bits("RR SSRC", self.ssrc, 32)
        _check_blocks(self.reports)

    def body(self) -> tuple[int, bytes]:
        """(count field, bytes after the common header)."""
        return len(self.reports), _SSRC.pack(self.ssrc) + b"".join(map(bytes, self.reports)) + self.extension

    def __bytes__(self) -> bytes:
        return _pack(RTCP_RR, *self.body(), self.padding_size)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """RFC 3550 §6.5 SDES: per source, its items as (type, text) pairs; `cname()` finds CNAME."""

    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]
    padding_size: int = 0

    def __post_init__(self) -> None:
        if len(self.chunks) > MAX_REPORT_BLOCKS:
            raise RtcpError(f"RTCP SDES has {len(self.chunks)} chunks, at most {MAX_REPORT_BLOCKS} fit")
        for ssrc, items in self.chunks:
            _check_bits("SDES SSRC", ssrc, 32)
            for kind, text in items:
                if not 1 <= kind <= 255:
                    raise RtcpError(f"RTCP SDES item type {kind} is not 1-255")
                if len(text) > 255:
                    raise RtcpError(f"RTCP SDES item of {len(text)} bytes, at most 255 fit")

    def cname(self, ssrc: int | None = None) -> bytes | None:
        """The CNAME of `ssrc` (or of the first chunk that has one)."""
        for chunk_ssrc, items in self.chunks:
            if ssrc is None or chunk_ssrc == ssrc:
                for kind, text in items:
                    if kind == SDES_CNAME:
                        return text
        return None

    def body(self) -> tuple[int, bytes]:
        """(count field, bytes after the common header)."""
        out = bytearray()
        for ssrc, items in self.chunks:
            chunk = bytearray(_SSRC.pack(ssrc))
            for kind, text in items:
                chunk += bytes((kind, len(text))) + text
            chunk += b"\x00" * (4 - (len(chunk) % 4))  # the END item, then null octets to a 32-bit boundary
            out += chunk
        return len(self.chunks), bytes(out)

    def __bytes__(self) -> bytes:
        return _pack(RTCP_SDES, *self.body(), self.padding_size)


@dataclass(frozen=True, slots=True)
class Bye:
    """RFC 3550 §6.6 BYE: the sources leaving, and an optional reason."""

    sources: tuple[int, ...]
    reason: bytes = b""
    padding_size: int = 0

    def __post_init__(self) -> None:
        if len(self.sources) > MAX_REPORT_BLOCKS:
            raise RtcpError(f"RTCP BYE names {len(self.sources)} sources, at most {MAX_REPORT_BLOCKS} fit")
        for ssrc in self.sources:
            _check_bits("BYE SSRC", ssrc, 32)
        if len(self.reason) > 255:
            raise RtcpError(f"RTCP BYE reason of {len(self.reason)} bytes, at most 255 fit")

    def body(self) -> tuple[int, bytes]:
        """(count field, bytes after the common header)."""
        out = b"".join(_SSRC.pack(ssrc) for ssrc in self.sources)
        if self.reason:
            reason = bytes((len(self.reason),)) + self.reason
            out += reason + b"\x00" * (-len(reason) % 4)
        return len(self.sources), out

    def __bytes__(self) -> bytes:
        return _pack(RTCP_BYE, *self.body(), self.padding_size)


@dataclass(frozen=True, slots=True)
class RtcpOtherPacket:
    """A packet type this module does not read (APP, feedback, XR): kept as its fields and body."""

    packet_type: int
    count: int
    payload: bytes = b""
    padding_size: int = 0

    def __post_init__(self) -> None:
        _check_bits("count", self.count, 5)
        _check_bits("packet type", self.packet_type, 8)
        if len(self.payload) % 4:
            raise RtcpError("RTCP packet body is not a multiple of 4 bytes")

    def body(self) -> tuple[int, bytes]:
        """(count field, bytes after the common header)."""
        return self.count, self.payload

    def __bytes__(self) -> bytes:
        return _pack(self.packet_type, *self.body(), self.padding_size)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpOtherPacket


def _pack(packet_type: int, count: int, body: bytes, padding_size: int) -> bytes:
    if not 0 <= padding_size <= 255 or padding_size % 4:
        raise RtcpError(f"RTCP padding of {padding_size} octets is not a multiple of 4 up to 252")
    first = (_VERSION << 6) | count | (0x20 if padding_size else 0)
    padding = bytes(padding_size - 1) + bytes((padding_size,)) if padding_size else b""
    length = (len(body) + len(padding)) // 4  # in 32-bit words, minus one (the header's own word)
    return _HEADER.pack(first, packet_type, length) + body + padding


def build_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """The datagram of `packets` (RFC 3550 §6.1: start with an SR or RR, include an SDES CNAME)."""
    return b"".join(bytes(packet) for packet in packets)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Every packet of one RTCP datagram, validated as RFC 3550 A.2 says; raise RtcpError if broken."""
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            raise RtcpError("RTCP packet has a truncated header")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != _VERSION:
            raise RtcpError(f"RTCP version is {first >> 6}, expected {_VERSION}")
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RtcpError(f"RTCP packet type {packet_type} length {words} runs past the datagram's "
                            f"{len(data) - offset} bytes")
        padding_size = 0
        body_end = end
        if first & 0x20:
            if end != len(data):
                raise RtcpError("RTCP padding in a packet that is not the last of the compound")
            padding_size = data[end - 1]
            if padding_size == 0 or padding_size % 4 or padding_size > 4 * words:
                raise RtcpError(f"RTCP padding length {padding_size} is not a multiple of 4 within the packet")
            body_end -= padding_size
        if not packets and packet_type not in (RTCP_SR, RTCP_RR):
            raise RtcpError(f"RTCP compound starts with packet type {packet_type}, not an SR or RR")
        packets.append(_parse_one(packet_type, first & 0x1F, data[offset + 4:body_end], padding_size))
        offset = end
    if not packets:
        raise RtcpError("RTCP datagram is empty")
    return packets


def _parse_one(packet_type: int, count: int, body: bytes, padding_size: int) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < 4 + _SENDER_INFO.size + 24 * count:
            raise RtcpError(f"RTCP SR is truncated: {len(body)} bytes for sender info and {count} report blocks")
        msw, lsw, rtp_timestamp, packets, octets = _SENDER_INFO.unpack_from(body, 4)
        start = 4 + _SENDER_INFO.size
        blocks = tuple(ReportBlock.parse(body, start + 24 * i) for i in range(count))
        return SenderReport(ssrc=_SSRC.unpack_from(body)[0], ntp_timestamp=(msw << 32) | lsw,
                            rtp_timestamp=rtp_timestamp, packet_count=packets, octet_count=octets, reports=blocks,
                            extension=bytes(body[start + 24 * count:]), padding_size=padding_size)
    if packet_type == RTCP_RR:
        if len(body) < 4 + 24 * count:
            raise RtcpError(f"RTCP RR is truncated: {len(body)} bytes for {count} report blocks")
        blocks = tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count))
        return ReceiverReport(ssrc=_SSRC.unpack_from(body)[0], reports=blocks, extension=bytes(body[4 + 24 * count:]),
                              padding_size=padding_size)
    if packet_type == RTCP_SDES:
        return SourceDescription(chunks=_parse_sdes_chunks(body, count), padding_size=padding_size)
    if packet_type == RTCP_BYE:
        if len(body) < 4 * count:
            raise RtcpError(f"RTCP BYE is truncated: {len(body)} bytes for {count} sources")
        sources = struct.unpack_from(f"!{count}I", body)
        reason = b""
        if len(body) > 4 * count:
            length = body[4 * count]
            if 4 * count + 1 + length > len(body):
                raise RtcpError(f"RTCP BYE reason of {length} bytes runs past the packet")
            reason = bytes(body[4 * count + 1:4 * count + 1 + length])
        return Bye(sources=sources, reason=reason, padding_size=padding_size)
    return RtcpOtherPacket(packet_type=packet_type, count=count, payload=bytes(body), padding_size=padding_size)


def _parse_sdes_chunks(body: bytes, count: int) -> tuple:
    chunks = []
    offset = 0
    for _ in range(count):
        if len(body) - offset < 4:
            raise RtcpError("RTCP SDES chunk has a truncated SSRC")
        (ssrc,) = _SSRC.unpack_from(body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtcpError("RTCP SDES chunk has no END item")
            kind = body[offset]
            if kind == 0:  # END, then null octets up to the next 32-bit boundary (§6.5)
                offset += 4 - (offset % 4)
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpError(f"RTCP SDES item type {kind} is truncated")
            length = body[offset + 1]
            items.append((kind, bytes(body[offset + 2:offset + 2 + length])))
            offset += 2 + length
        chunks.append((ssrc, tuple(items)))
    if offset > len(body):
        raise RtcpError("RTCP SDES chunk padding runs past the packet")
    return tuple(chunks)

