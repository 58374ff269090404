# SPDX-License-Identifier: MIT
"""RTP packets (RFC 3550 §5.1): ``RtpPacket.parse`` in, ``bytes(packet)`` out.

Every length is checked before it is read, and each ``ValueError`` names the
field that is missing or wrong, so the shell can log and drop the datagram.
The header extension (§5.3.1) and padding (§5.1 P bit) are kept so that a
parsed packet serialises back to the same bytes (padding octets other than
the count are written as zeros, as RFC 3550 senders do).

The send path does not build ``RtpPacket`` objects: ``build_rtp_header``
packs the fixed 12-byte header with a precompiled ``struct.Struct``.
"""

import struct
from dataclasses import dataclass

__all__ = ["RTP_HEADER_SIZE", "RTP_VERSION", "RtpPacket", "build_rtp_header", "is_rtcp"]

RTP_HEADER_SIZE = 12
RTP_VERSION = 2

_FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


def build_rtp_header(payload_type: int, marker: bool, seq: int, ts: int, ssrc: int) -> bytes:
    """Pack a version-2 RTP header without padding, extension or CSRCs.

    Arguments are not range-checked (hot path): callers keep ``seq`` in 16 bits
    and ``ts``/``ssrc`` in 32 bits with ``acd.media.seqnum``.
    """
    return _FIXED_HEADER.pack(0x80, (payload_type | 0x80) if marker else payload_type, seq, ts, ssrc)


def is_rtcp(data: bytes) -> bool:
    """Tell an RTCP packet from RTP on a shared port (RFC 5761 §4).

    RTCP packet types 192-223 land where RTP payload types 64-95 (marker bit
    set) would be, and RFC 5761 forbids those payload types on multiplexed
    ports; that range covers SR/RR/SDES/BYE/APP (200-204, i.e. 72-76) and the
    RFC 4585 feedback types (205, 206).
    """
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


def _check_range(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"RTP {name} {value} does not fit in {bits} bits")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``bytes(packet)`` gives the wire form."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    payload: bytes = b""
    csrc: tuple = ()
    #: RFC 3550 §5.3.1 header extension: profile-defined 16 bits, or None.
    extension_profile: int | None = None
    #: Extension data, a multiple of 4 bytes (without its 4-byte header).
    extension: bytes = b""
    #: Number of padding octets at the end, including the count octet (0 = none).
    padding_size: int = 0

    def __post_init__(self) -> None:
        _check_range("payload type", self.payload_type, 7)
        _check_range("sequence number", self.sequence_number, 16)
        _check_range("timestamp", self.timestamp, 32)
        _check_range("SSRC", self.ssrc, 32)
        if len(self.csrc) > 15:
            raise ValueError(f"RTP packet has {len(self.csrc)} CSRCs, at most 15 fit")
        for csrc in self.csrc:
            _check_range("CSRC", csrc, 32)
        if self.extension_profile is not None:
            _check_range("extension profile", self.extension_profile, 16)
        if len(self.extension) % 4:
            raise ValueError("RTP header extension length is not a multiple of 4 bytes")
        if self.extension and self.extension_profile is None:
            raise ValueError("RTP header extension data needs an extension profile")
        if len(self.extension) // 4 > 0xFFFF:
            raise ValueError("RTP header extension is too long")
        if not 0 <= self.padding_size <= 255:
            raise ValueError(f"RTP padding size {self.padding_size} does not fit in one octet")

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket":
        """Parse one datagram; raise ``ValueError`` naming the broken field."""
        if len(data) < RTP_HEADER_SIZE:
            raise ValueError("RTP packet is too short")
        first, second, sequence_number, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version is {version}, expected {RTP_VERSION}")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F

        pos = RTP_HEADER_SIZE
        end = pos + 4 * csrc_count
        if len(data) < end:
            raise ValueError("RTP packet has truncated CSRC")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, pos) if csrc_count else ()
        pos = end

        extension_profile = None
        extension = b""
        if has_extension:
            if len(data) < pos + _EXTENSION_HEADER.size:
                raise ValueError("RTP packet has truncated extension header")
            extension_profile, extension_words = _EXTENSION_HEADER.unpack_from(data, pos)
            pos += _EXTENSION_HEADER.size
            end = pos + 4 * extension_words
            if len(data) < end:
                raise ValueError("RTP packet has truncated extension")
            extension = bytes(data[pos:end])
            pos = end

        padding_size = 0
        payload_end = len(data)
        if has_padding:
            if payload_end == pos:
                raise ValueError("RTP packet has padding bit set but no padding")
            padding_size = data[-1]
            if padding_size == 0:
                raise ValueError("RTP padding length is 0")
            if padding_size > payload_end - pos:
                raise ValueError(
                    f"RTP padding length {padding_size} exceeds the {payload_end - pos} bytes after the header"
                )
            payload_end -= padding_size

        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=bool(second & 0x80),
            payload=bytes(data[pos:payload_end]),
            csrc=tuple(csrc),
            extension_profile=extension_profile,
            extension=extension,
            padding_size=padding_size,
        )

    def __bytes__(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        parts = [
            _FIXED_HEADER.pack(
                first,
                self.payload_type | (0x80 if self.marker else 0),
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_EXTENSION_HEADER.pack(self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes((self.padding_size,)))
        return b"".join(parts)
