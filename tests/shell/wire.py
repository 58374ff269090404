"""What the scripted peers put on the wire: SIP text, SDP, RTP and RFC 4733 packets, Digest answers.

Built here by hand, independently of the server's own builders (a bug shared by both sides would
otherwise cancel out). Parsing of what the server sends uses `acd.sip.message.parse_message`.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field
from itertools import count

from acd.sip.message import Request

__all__ = ["build_request", "build_response", "offer_sdp", "Sdp", "RtpSender", "RtpSeen", "telephone_event",
           "digest_authorization", "header_param", "tag_of", "uri_of"]

_ids = count(1)


def unique(prefix: str) -> str:
    """A short id unique within the test process (tags, branches, Call-IDs)."""
    return f"{prefix}{next(_ids):06d}"


def build_request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A request as a SIP phone writes it; Content-Length is added."""
    lines = [f"{method} {uri} SIP/2.0", *(f"{name}: {value}" for name, value in headers),
             f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_response(request: Request, status: int, reason: str = "", *, to_tag: str | None = None,
                   headers: list[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    """A response echoing Via, From, To (plus our tag), Call-ID and CSeq (RFC 3261 §8.2.6.2)."""
    to_value = request.headers.get("To", "")
    if to_tag and tag_of(to_value) is None:
        to_value = f"{to_value};tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason or _REASONS.get(status, 'Whatever')}",
             *(f"Via: {via}" for via in request.headers.get_all("Via")),
             f"From: {request.headers.get('From')}", f"To: {to_value}",
             f"Call-ID: {request.call_id}", f"CSeq: {request.headers.get('CSeq')}",
             *(f"{name}: {value}" for name, value in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 481: "Call Does Not Exist",
            486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 603: "Decline"}


def tag_of(name_addr: str) -> str | None:
    """The tag parameter of a From/To value."""
    match = re.search(r";\s*tag=([^;>\s]+)", name_addr.rpartition(">")[2] if ">" in name_addr else name_addr)
    return match.group(1) if match else None


def uri_of(name_addr: str) -> str:
    """The URI inside <...> (or the value itself)."""
    match = re.search(r"<([^>]*)>", name_addr)
    return match.group(1) if match else name_addr.split(";")[0].strip()


def header_param(value: str, name: str) -> str | None:
    """A `name=value` parameter anywhere in a header value."""
    match = re.search(rf"(?:^|[;,\s]){re.escape(name)}=\"?([^\";,\s]+)", value)
    return match.group(1) if match else None


# ---- SDP -------------------------------------------------------------------------------------------
def offer_sdp(address: tuple[str, int], *, codecs: tuple[int, ...] = (0,), telephone_event: int | None = 101,
              direction: str = "sendrecv", connection: str | None = None, version: int = 1) -> bytes:
    """An audio offer as softphones send it (PCMU and RFC 4733 events by default)."""
    names = {0: "PCMU/8000", 8: "PCMA/8000", 18: "G729/8000", 9: "G722/8000"}
    formats = [*codecs, *([telephone_event] if telephone_event is not None else [])]
    lines = ["v=0", f"o=peer 4242 {version} IN IP4 {address[0]}", "s=-", f"c=IN IP4 {connection or address[0]}",
             "t=0 0", f"m=audio {address[1]} RTP/AVP {' '.join(map(str, formats))}",
             *(f"a=rtpmap:{pt} {names[pt]}" for pt in codecs if pt in names)]
    if telephone_event is not None:
        lines += [f"a=rtpmap:{telephone_event} telephone-event/8000", f"a=fmtp:{telephone_event} 0-16"]
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Sdp:
    """The parts of a session description the tests look at."""

    address: str
    port: int
    formats: list[int]
    rtpmap: dict[int, str]
    direction: str

    @classmethod
    def parse(cls, body: bytes) -> "Sdp":
        address, port, formats, rtpmap, direction = "", 0, [], {}, "sendrecv"
        for line in body.decode().splitlines():
            if line.startswith("c=") and not address:
                address = line.split()[-1]
            elif line.startswith("m=audio"):
                parts = line.split()
                port, formats = int(parts[1]), [int(p) for p in parts[3:]]
            elif line.startswith("a=rtpmap:"):
                pt, _, name = line[9:].partition(" ")
                rtpmap[int(pt)] = name
            elif line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
                direction = line[2:]
        assert port, f"no audio stream in SDP:\n{body.decode()}"
        return cls(address, port, formats, rtpmap, direction)

    @property
    def rtp_address(self) -> tuple[str, int]:
        return (self.address, self.port)


# ---- RTP -------------------------------------------------------------------------------------------
@dataclass
class RtpSender:
    """One RTP stream we send: sequence and timestamp advance per packet."""

    ssrc: int = 0x1234ABCD
    sequence: int = 1000
    timestamp: int = 160_000
    sent: int = 0

    def packet(self, payload: bytes, payload_type: int = 0, *, marker: bool = False,
               timestamp: int | None = None, advance: bool = True) -> bytes:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, self.sequence & 0xFFFF,
                             (self.timestamp if timestamp is None else timestamp) & 0xFFFFFFFF, self.ssrc)
        self.sequence += 1
        if advance:
            self.timestamp += 160
        self.sent += 1
        return header + payload


def telephone_event(digit: str, *, end: bool, duration: int, volume: int = 10) -> bytes:
    """An RFC 4733 §2.3 payload: event, E|R|volume, duration (timestamp units)."""
    event = "0123456789*#ABCD".index(digit.upper())
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


@dataclass
class RtpSeen:
    """An RTP packet a peer received."""

    source: tuple[str, int]
    data: bytes
    at: float
    payload_type: int = field(init=False)
    ssrc: int = field(init=False)
    sequence: int = field(init=False)
    payload: bytes = field(init=False)

    def __post_init__(self) -> None:
        assert len(self.data) >= 12 and self.data[0] >> 6 == 2, f"not RTP: {self.data[:16]!r}"
        self.payload_type = self.data[1] & 0x7F
        self.sequence, _, self.ssrc = struct.unpack_from("!HII", self.data, 2)
        self.payload = self.data[12 + 4 * (self.data[0] & 0x0F):]


# ---- Digest (RFC 7616 / RFC 2617, computed here, not by the server's code) ----------------------
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def digest_authorization(challenge: str, *, method: str, uri: str, username: str, password: str,
                         cnonce: str = "0a4f113b", nc: int = 1) -> str:
    """The Authorization value a phone answers one WWW-Authenticate value with."""
    params = {name.lower(): value.strip('"') for name, value in
              re.findall(r'(\w+)\s*=\s*("[^"]*"|[^,\s]+)', challenge.partition(" ")[2])}
    algorithm = params.get("algorithm", "MD5").upper()
    algorithm = "SHA-256" if algorithm in ("SHA-256", "SHA256") else algorithm

    def h(text: str) -> str:
        return _HASHES[algorithm](text.encode()).hexdigest()

    realm, nonce = params["realm"], params["nonce"]
    ha1, ha2 = h(f"{username}:{realm}:{password}"), h(f"{method}:{uri}")
    nc_text = f"{nc:08x}"
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        response = h(f"{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}")
        qop = f', qop=auth, nc={nc_text}, cnonce="{cnonce}"'
    else:
        response, qop = h(f"{ha1}:{nonce}:{ha2}"), ""
    return (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm={algorithm}{qop}')
