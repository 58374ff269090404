# SPDX-License-Identifier: MIT
"""SDP (RFC 4566) parsing and serialising, and the RFC 3264 offer/answer we need.

``SessionDescription.parse`` in, ``bytes(sdp)``/``str(sdp)`` out; every error is
an ``SdpError`` (a ``ValueError``) naming the line or field, which the SIP
shell answers with 488 Not Acceptable Here.

What is kept: the structured fields below, plus every attribute we do not
interpret (in order), bandwidth lines and the i/u/e/p lines.  Serialising
writes lines in RFC 4566 §5 order and, inside a media section, the ``rtpmap``
lines (in the order received), then ``fmtp``, ``ptime``, the other attributes, and
the direction (always written, explicit is safer with hold/resume, except
``sendrecv`` on a disabled port-0 stream).  SDP that
is already in that order round-trips byte for byte; any SDP round-trips to
an equal ``SessionDescription``.  Dropped: ``k=`` (obsolete, RFC 8866 §5.12)
and a session-level direction attribute, which is copied into each media
section that has none (RFC 4566 §6).

Tolerated, because real user agents send it (RFC 4566 §5 asks parsers to be
tolerant of line endings): bare LF line ends, a missing ``s=`` or ``t=``
line, and ``a=ptime`` with a fraction.

SRTP (SDES, RFC 4568) is negotiated here with the crypto rules of ``sdes.py``, under a policy of
the trunk or agent: ``required`` (plain RTP refused), ``optional`` (SRTP when the peer offers or
answers a usable crypto line, plain RTP otherwise) or ``off`` (RTP/SAVP refused, crypto lines
ignored).  Like PJSIP and Asterisk we also honour "best effort" SRTP: an RTP/AVP stream with a
crypto line is answered with one, and both sides then encrypt.
"""

import functools
import ipaddress
from dataclasses import dataclass, field

from .sdes import KEY_SALT_BYTES, SECURE_PROFILES, SRTP_POLICIES, answered_key, choose_offered_key, crypto_value

__all__ = [
    "ANSWER_DIRECTION", "DIRECTIONS", "MediaDescription", "NegotiatedAudio", "Origin", "SdpError",
    "SessionDescription", "answer_offer", "build_offer", "rejected_stream", "srtp_key_of_answer",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3264 §6.1: the answerer's direction mirrors the offerer's.
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}

#: RFC 3551 §6 Table 4: static audio payload types we can name without rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 18: ("G729", 8000)}
_CODEC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
# RTP profiles we can answer: plain AVP and AVPF (RFC 4585); their SRTP twins under an SRTP policy.
_RTP_PROTOCOLS = ("RTP/AVP", "RTP/AVPF")
#: The tag of the one crypto line we offer.
OFFER_CRYPTO_TAG = 1
TELEPHONE_EVENT = "telephone-event"
#: RFC 4733 §3.3 default: the 16 DTMF events; we also accept flash (16).
TELEPHONE_EVENT_FMTP = "0-16"


class SdpError(ValueError):
    """SDP that cannot be parsed or negotiated; the SIP shell answers 488."""


@dataclass(slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> IN <addrtype> <unicast-address>`` (RFC 4566 §5.2)."""

    username: str
    sess_id: int
    sess_version: int
    address: str

    def __str__(self) -> str:
        return f"{self.username} {self.sess_id} {self.sess_version} IN {_address_type(self.address)} {self.address}"


@dataclass(slots=True)
class MediaDescription:
    """One ``m=`` section (RFC 4566 §5.14).

    ``formats`` are ints for RTP profiles and strings otherwise (e.g. ``t38``).
    ``connection_address`` is the media-level ``c=`` only; see
    ``SessionDescription.address_for``.  ``rtpmap`` maps a payload type to
    ``(encoding, clock_rate)``; encoding parameters such as audio channels are
    in ``encoding_parameters``.
    """

    media: str
    port: int
    proto: str
    formats: list = field(default_factory=list)
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int | None = None
    connection_address: str | None = None
    number_of_ports: int | None = None
    encoding_parameters: dict[int, str] = field(default_factory=dict)
    bandwidths: list[str] = field(default_factory=list)
    information: str | None = None
    #: Other attributes in order, as ``(name, value or None)``.
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise SdpError(f"SDP media direction {self.direction!r} is not one of {', '.join(DIRECTIONS)}")
        if not 0 <= self.port <= 0xFFFF:
            raise SdpError(f"SDP media port {self.port} is outside 0..65535")

    def codec_name(self, payload_type: int) -> tuple[str, int] | None:
        """``(encoding, clock_rate)`` of a format from rtpmap or the static table."""
        return self.rtpmap.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)

    def lines(self) -> list[str]:
        port = str(self.port) if self.number_of_ports is None else f"{self.port}/{self.number_of_ports}"
        out = [f"m={self.media} {port} {self.proto} {' '.join(map(str, self.formats))}".rstrip()]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection_address is not None:
            out.append(f"c=IN {_address_type(self.connection_address)} {self.connection_address}")
        out.extend(f"b={b}" for b in self.bandwidths)
        for pt, (encoding, clock_rate) in self.rtpmap.items():
            params = self.encoding_parameters.get(pt)
            out.append(f"a=rtpmap:{pt} {encoding}/{clock_rate}" + (f"/{params}" if params else ""))
        out.extend(f"a=fmtp:{pt} {params}" for pt, params in self.fmtp.items())
        if self.ptime is not None:
            out.append(f"a=ptime:{self.ptime}")
        out.extend(_attribute_line(name, value) for name, value in self.attributes)
        if self.port != 0 or self.direction != "sendrecv":
            out.append(f"a={self.direction}")
        return out


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body. Build with ``parse``, ``build_offer`` or ``answer_offer``."""

    origin: Origin
    session_name: str = "-"
    connection_address: str | None = None
    media: list[MediaDescription] = field(default_factory=list)
    #: ``t=``, ``r=`` and ``z=`` lines in order, as ``(type, value)``.
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])
    bandwidths: list[str] = field(default_factory=list)
    #: ``i=``, ``u=``, ``e=``, ``p=`` lines in order, as ``(type, value)``.
    information: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def address_for(self, media: MediaDescription) -> str | None:
        """The connection address of a media section (its own ``c=``, else the session's)."""
        return media.connection_address or self.connection_address

    @classmethod
    def parse(cls, text: str | bytes) -> "SessionDescription":
        if isinstance(text, (bytes, bytearray, memoryview)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError(f"SDP is not UTF-8 text: {exc}") from None
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
        if not lines:
            raise SdpError("SDP is empty")
        parsed = []
        for number, line in enumerate(lines, 1):
            if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
                raise SdpError(f"SDP line {number} is not <type>=<value>: {line[:80]!r}")
            parsed.append((line[0], line[2:].strip()))
        if parsed[0] != ("v", "0"):
            raise SdpError(f"SDP must start with version line v=0, got {lines[0][:80]!r}")

        origin = None
        session = {"session_name": "-", "connection_address": None}
        timing: list[tuple[str, str]] = []
        bandwidths: list[str] = []
        information: list[tuple[str, str]] = []
        attributes: list[tuple[str, str | None]] = []
        media: list[_MediaBuilder] = []
        session_direction = None
        for kind, value in parsed[1:]:
            if kind == "m":
                media.append(_MediaBuilder(value))
            elif media:
                media[-1].add(kind, value)
            elif kind == "o":
                origin = _parse_origin(value)
            elif kind == "s":
                session["session_name"] = value
            elif kind == "c":
                session["connection_address"] = _parse_connection(value)
            elif kind in "trz":
                timing.append((kind, value))
            elif kind == "b":
                bandwidths.append(value)
            elif kind in "iuep":
                information.append((kind, value))
            elif kind == "a":
                name, attr_value = _split_attribute(value)
                if name in DIRECTIONS:
                    session_direction = name
                else:
                    attributes.append((name, attr_value))
            elif kind == "v":
                raise SdpError("SDP has a second version line (v=)")
            # k= (encryption key) and unknown types are dropped (RFC 4566 §5: ignore unknown).
        if origin is None:
            raise SdpError("SDP has no origin line (o=)")
        return cls(
            origin=origin,
            media=[builder.build(session_direction) for builder in media],
            timing=timing or [("t", "0 0")],
            bandwidths=bandwidths,
            information=information,
            attributes=attributes,
            **session,
        )

    def __str__(self) -> str:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        lines.extend(f"{kind}={value}" for kind, value in self.information)
        if self.connection_address is not None:
            lines.append(f"c=IN {_address_type(self.connection_address)} {self.connection_address}")
        lines.extend(f"b={b}" for b in self.bandwidths)
        lines.extend(f"{kind}={value}" for kind, value in self.timing)
        lines.extend(_attribute_line(name, value) for name, value in self.attributes)
        for media in self.media:
            lines.extend(media.lines())
        return "\r\n".join(lines) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


def _address_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _attribute_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _split_attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    return (name, rest) if sep else (name, None)


def _parse_int(value: str, what: str, maximum: int) -> int:
    if not value.isdigit() or not value.isascii():
        raise SdpError(f"SDP {what} is not a number: {value[:40]!r}")
    number = int(value)
    if number > maximum:
        raise SdpError(f"SDP {what} {number} is larger than {maximum}")
    return number


def _parse_origin(value: str) -> Origin:
    # o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
    fields = value.split()
    if len(fields) != 6:
        raise SdpError(f"SDP origin line (o=) has {len(fields)} fields, expected 6")
    username, sess_id, sess_version, nettype, _addrtype, address = fields
    if nettype != "IN":
        raise SdpError(f"SDP origin network type is {nettype!r}, expected 'IN'")
    # sess-id is 1*DIGIT; NTP-based ids need 64 bits, some UAs send more: allow any.
    return Origin(
        username=username,
        sess_id=_parse_int(sess_id, "origin session id", 10**40),
        sess_version=_parse_int(sess_version, "origin session version", 10**40),
        address=address,
    )


def _parse_connection(value: str) -> str:
    # c=<nettype> <addrtype> <connection-address>
    fields = value.split()
    if len(fields) != 3:
        raise SdpError(f"SDP connection line (c=) has {len(fields)} fields, expected 3")
    nettype, addrtype, address = fields
    if nettype != "IN" or addrtype not in ("IP4", "IP6"):
        raise SdpError(f"SDP connection line (c=) has unsupported type {nettype} {addrtype}")
    problem = _connection_address_problem(address, addrtype)
    if problem:
        raise SdpError(problem)
    return address


@functools.lru_cache(maxsize=1024)
def _connection_address_problem(address: str, addrtype: str) -> str:
    """Why `address` cannot be a c= address of `addrtype` ("" when it can). Remembered: a trunk sends
    the same few media addresses in every offer, and ipaddress takes ~3 µs to read one."""
    # Media is sent to this address as given (RtpLeg sends on the raw socket): a literal address of
    # the declared family, never a host name to resolve on the call path, nor a multicast group.
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return (f"SDP connection address {address!r} is not an IP address (host names are not "
                "resolved; multicast is not supported)")
    if (parsed.version == 4) != (addrtype == "IP4") or parsed.is_multicast:
        return f"SDP connection address {address!r} is not a unicast {addrtype} address"
    return ""


class _MediaBuilder:
    """Collects the lines of one m= section, then builds a MediaDescription."""

    def __init__(self, value: str) -> None:
        # m=<media> <port>[/<number of ports>] <proto> <fmt> ...
        fields = value.split()
        if len(fields) < 3:
            raise SdpError(f"SDP media line (m=) has {len(fields)} fields, expected at least 3")
        self.media, port, self.proto = fields[:3]
        port, slash, count = port.partition("/")
        self.port = _parse_int(port, "media port", 0xFFFF)
        self.number_of_ports = _parse_int(count, "media number of ports", 0xFFFF) if slash else None
        self.is_rtp = self.proto.upper().startswith("RTP/")
        self.formats = [_parse_int(f, "media format", 127) for f in fields[3:]] if self.is_rtp else fields[3:]
        self.connection_address = None
        self.information = None
        self.bandwidths: list[str] = []
        self.rtpmap: dict[int, tuple[str, int]] = {}
        self.encoding_parameters: dict[int, str] = {}
        self.fmtp: dict[int, str] = {}
        self.ptime = None
        self.direction = None
        self.attributes: list[tuple[str, str | None]] = []

    def add(self, kind: str, value: str) -> None:
        if kind == "c":
            self.connection_address = _parse_connection(value)
        elif kind == "i":
            self.information = value
        elif kind == "b":
            self.bandwidths.append(value)
        elif kind == "a":
            self._add_attribute(*_split_attribute(value))
        elif kind in "vost":
            raise SdpError(f"SDP {kind}= line appears inside media section {self.media!r}")

    def _add_attribute(self, name: str, value: str | None) -> None:
        if name in DIRECTIONS and value is None:
            self.direction = name
        elif name == "rtpmap" and self.is_rtp:
            # a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]
            pt, _, mapping = (value or "").partition(" ")
            pt = _parse_int(pt, "rtpmap payload type", 127)
            parts = mapping.strip().split("/")
            if len(parts) not in (2, 3) or not parts[0]:
                raise SdpError(f"SDP rtpmap for payload type {pt} is not <encoding>/<clock rate>: {mapping[:40]!r}")
            self.rtpmap[pt] = (parts[0], _parse_int(parts[1], f"rtpmap clock rate for payload type {pt}", 10**9))
            if len(parts) == 3:
                self.encoding_parameters[pt] = parts[2]
        elif name == "fmtp" and self.is_rtp:
            pt, _, params = (value or "").partition(" ")
            self.fmtp[_parse_int(pt, "fmtp payload type", 127)] = params.strip()
        elif name == "ptime":
            try:
                self.ptime = round(float(value or ""))
            except ValueError:
                raise SdpError(f"SDP ptime is not a number: {(value or '')[:40]!r}") from None
        else:
            self.attributes.append((name, value))

    def build(self, session_direction: str | None) -> MediaDescription:
        return MediaDescription(
            media=self.media,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            rtpmap=self.rtpmap,
            fmtp=self.fmtp,
            direction=self.direction or session_direction or "sendrecv",
            ptime=self.ptime,
            connection_address=self.connection_address,
            number_of_ports=self.number_of_ports,
            encoding_parameters=self.encoding_parameters,
            bandwidths=self.bandwidths,
            information=self.information,
            attributes=self.attributes,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiatedAudio:
    """What the call shell needs to run the RTP session after offer/answer.

    ``direction`` is ours, as written in the answer: ``recvonly`` means do not send.
    ``remote_address`` may be ``0.0.0.0`` (RFC 3264 §8.4 legacy hold): send nothing.
    ``remote_ptime`` is the packet time the offerer asked to receive, if any.
    ``srtp_local_key``/``srtp_remote_key`` (master key||salt, both or neither) protect what we
    send and check what we receive; None for plain RTP.
    """

    remote_address: str
    remote_port: int
    payload_type: int
    codec: str
    telephone_event_pt: int | None
    direction: str
    remote_ptime: int | None = None
    srtp_local_key: bytes | None = field(default=None, repr=False)
    srtp_remote_key: bytes | None = field(default=None, repr=False)

    @property
    def srtp(self) -> bool:
        """True when the media is SRTP."""
        return self.srtp_local_key is not None

    def __post_init__(self) -> None:
        if self.codec not in _CODEC_PAYLOAD_TYPES:
            raise ValueError(f"negotiated codec {self.codec!r} is not PCMU or PCMA")
        if not 0 < self.remote_port <= 0xFFFF:
            raise ValueError(f"negotiated remote port {self.remote_port} is outside 1..65535")
        for name, pt in (("payload type", self.payload_type), ("telephone-event payload type", self.telephone_event_pt)):
            if pt is not None and not 0 <= pt <= 127:
                raise ValueError(f"negotiated {name} {pt} is outside 0..127")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"negotiated direction {self.direction!r} is not one of {', '.join(DIRECTIONS)}")
        keys = (self.srtp_local_key, self.srtp_remote_key)
        if (keys[0] is None) != (keys[1] is None) or any(k is not None and len(k) != KEY_SALT_BYTES for k in keys):
            raise ValueError(f"negotiated SRTP needs both keys, {KEY_SALT_BYTES} bytes each")


def _origin(local_address: str, session_id: int, session_version: int | None) -> Origin:
    return Origin("-", session_id, session_id if session_version is None else session_version, local_address)


def answer_offer(
    offer: SessionDescription,
    *,
    local_address: str,
    local_port: int,
    session_id: int,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
    session_version: int | None = None,
    ptime: int = 20,
    srtp: str = "off",
    srtp_key: bytes | None = None,
) -> tuple[SessionDescription, NegotiatedAudio]:
    """RFC 3264 §6 answer accepting the first usable audio stream with one codec.

    The codec is the first offered format we support (the offerer's
    preference order, §6.1).  telephone-event at 8000 Hz is accepted with the
    offerer's payload type and fmtp.  Every other stream gets port 0 (§6:
    the answer has as many m= lines as the offer, in the same order).
    ``srtp`` is the policy of the trunk or agent (module docstring); unless it
    is ``off``, ``srtp_key`` is our fresh key||salt for the answer's crypto line.
    Raises ``SdpError`` when no audio stream, no common codec or no stream
    the SRTP policy allows exists.
    ``session_version`` defaults to ``session_id``; bump it for re-answers.
    """
    _check_srtp_arguments(srtp, srtp_key)
    supported_upper = [name.upper() for name in supported]
    answer_media: list[MediaDescription] = []
    negotiated = None
    saw_audio = False
    srtp_refusals: list[str] = []
    for offered in offer.media:
        accepted = None
        if offered.media == "audio" and offered.port != 0 and negotiated is None:
            saw_audio = True
            proto = offered.proto.upper()
            if proto in _RTP_PROTOCOLS or proto in SECURE_PROFILES:
                try:
                    crypto = _offered_crypto(offered, srtp)
                except SdpError as refusal:
                    srtp_refusals.append(str(refusal))
                else:
                    accepted = _answer_audio(offer, offered, supported_upper, local_address, local_port, ptime,
                                             crypto, srtp_key)
        if accepted is None:
            answer_media.append(rejected_stream(offered))
        else:
            media, negotiated = accepted
            answer_media.append(media)
    if negotiated is None:
        if not saw_audio:
            raise SdpError("SDP offer has no audio stream")
        if srtp_refusals:
            raise SdpError(f"SDP offer refused: {'; '.join(srtp_refusals)}")
        offered_codecs = sorted(
            {"/".join(map(str, m.codec_name(pt) or (pt,))) for m in offer.media if m.media == "audio" for pt in m.formats}
        )
        raise SdpError(
            f"SDP offer has no common audio codec: offered {', '.join(offered_codecs) or 'none'}, "
            f"supported {', '.join(supported)} over {' or '.join(_RTP_PROTOCOLS)}"
        )
    answer = SessionDescription(
        origin=_origin(local_address, session_id, session_version),
        connection_address=local_address,
        media=answer_media,
    )
    return answer, negotiated


def _check_srtp_arguments(srtp: str, srtp_key: bytes | None) -> None:
    if srtp not in SRTP_POLICIES:
        raise ValueError(f"SRTP policy {srtp!r} is not one of {', '.join(SRTP_POLICIES)}")
    if srtp != "off" and (srtp_key is None or len(srtp_key) != KEY_SALT_BYTES):
        raise ValueError(f"SRTP policy {srtp!r} needs our {KEY_SALT_BYTES}-byte key||salt")


def _offered_crypto(offered: MediaDescription, srtp: str) -> tuple[int, bytes] | None:
    """``(tag, their key)`` to answer an offered stream with SRTP, None for plain RTP; ``SdpError``
    when the policy refuses the stream."""
    secure = offered.proto.upper() in SECURE_PROFILES
    if srtp == "off":
        if secure:
            raise SdpError(f"{offered.proto} (SRTP) is offered but SRTP is off here")
        return None  # crypto lines on RTP/AVP ("best effort") are ignored: the answer has none
    try:
        return choose_offered_key(offered.attributes)
    except ValueError as error:
        if secure:
            raise SdpError(f"{offered.proto} offered with no usable crypto line ({error})") from None
        if srtp == "required":
            raise SdpError(f"{offered.proto} offered but SRTP is required here ({error})") from None
        return None


def rejected_stream(offered: MediaDescription) -> MediaDescription:
    """The answer's m= line refusing an offered stream."""
    # RFC 3264 §6: a rejected stream keeps its media, proto and at least one format, port 0.
    return MediaDescription(media=offered.media, port=0, proto=offered.proto, formats=list(offered.formats[:1]) or ["0"])


def _answer_audio(offer, offered, supported_upper, local_address, local_port, ptime, crypto, srtp_key):
    codec_pt = codec = None
    telephone_event_pt = None
    for pt in offered.formats:
        name = offered.codec_name(pt)
        if name is None:
            continue
        encoding, clock_rate = name[0].upper(), name[1]
        if codec is None and encoding in supported_upper and encoding in _CODEC_PAYLOAD_TYPES and clock_rate == 8000:
            codec_pt, codec = pt, encoding
        elif telephone_event_pt is None and encoding == TELEPHONE_EVENT.upper() and clock_rate == 8000:
            telephone_event_pt = pt
    if codec is None:
        return None
    remote_address = offer.address_for(offered)
    if remote_address is None:
        raise SdpError("SDP offer has no connection address (c=) for the audio stream")
    direction = ANSWER_DIRECTION[offered.direction]
    formats = [codec_pt]
    rtpmap = {codec_pt: (codec, 8000)}
    fmtp = {}
    if telephone_event_pt is not None:
        formats.append(telephone_event_pt)
        rtpmap[telephone_event_pt] = (TELEPHONE_EVENT, 8000)
        if telephone_event_pt in offered.fmtp:
            fmtp[telephone_event_pt] = offered.fmtp[telephone_event_pt]
    # RFC 4568 §7.1.2: the answer's one crypto line carries the chosen offered tag and our key.
    attributes = [("crypto", crypto_value(crypto[0], srtp_key))] if crypto is not None else []
    media = MediaDescription(
        media="audio", port=local_port, proto=offered.proto, formats=formats,
        rtpmap=rtpmap, fmtp=fmtp, direction=direction, ptime=ptime, attributes=attributes,
    )
    negotiated = NegotiatedAudio(
        remote_address=remote_address,
        remote_port=offered.port,
        payload_type=codec_pt,
        codec=codec,
        telephone_event_pt=telephone_event_pt,
        direction=direction,
        remote_ptime=offered.ptime,
        srtp_local_key=srtp_key if crypto is not None else None,
        srtp_remote_key=crypto[1] if crypto is not None else None,
    )
    return media, negotiated


def build_offer(
    local_address: str,
    local_port: int,
    session_id: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    telephone_event_pt: int | None = 101,
    *,
    session_version: int | None = None,
    ptime: int = 20,
    srtp: str = "off",
    srtp_key: bytes | None = None,
) -> SessionDescription:
    """An RFC 3264 §5 audio offer with static PCMU/PCMA and telephone-event 0-16.

    SRTP by policy: ``off`` offers RTP/AVP; ``optional`` offers RTP/AVP with our crypto line
    ("best effort": SRTP if the answer carries a crypto line, plain RTP if not); ``required``
    offers RTP/SAVP with it.  ``srtp_key`` is our key||salt unless ``srtp`` is ``off``.
    """
    _check_srtp_arguments(srtp, srtp_key)
    formats = []
    rtpmap = {}
    for codec in codecs:
        pt = _CODEC_PAYLOAD_TYPES.get(codec.upper())
        if pt is None:
            raise SdpError(f"cannot offer codec {codec!r}: only PCMU and PCMA are supported")
        formats.append(pt)
        rtpmap[pt] = (codec.upper(), 8000)
    fmtp = {}
    if telephone_event_pt is not None:
        formats.append(telephone_event_pt)
        rtpmap[telephone_event_pt] = (TELEPHONE_EVENT, 8000)
        fmtp[telephone_event_pt] = TELEPHONE_EVENT_FMTP
    attributes = [("crypto", crypto_value(OFFER_CRYPTO_TAG, srtp_key))] if srtp != "off" else []
    media = MediaDescription(
        media="audio", port=local_port, proto="RTP/SAVP" if srtp == "required" else "RTP/AVP", formats=formats,
        rtpmap=rtpmap, fmtp=fmtp, ptime=ptime, attributes=attributes,
    )
    return SessionDescription(
        origin=_origin(local_address, session_id, session_version),
        connection_address=local_address,
        media=[media],
    )


def srtp_key_of_answer(media: MediaDescription, *, srtp: str) -> bytes | None:
    """The answerer's SRTP key for the stream we offered with ``build_offer(srtp=...)``, or None
    for plain RTP; ``SdpError`` when the answer does not fit the offer or the policy."""
    has_crypto = any(name == "crypto" for name, _ in media.attributes)
    secure = media.proto.upper() in SECURE_PROFILES
    if srtp == "off":
        if secure:
            raise SdpError(f"the answer is {media.proto} (SRTP) but we offered plain RTP")
        return None
    if not has_crypto and not secure:
        if srtp == "required":
            raise SdpError(f"the answer is plain {media.proto} but SRTP is required")
        return None
    try:
        return answered_key(media.attributes, OFFER_CRYPTO_TAG)
    except ValueError as error:
        raise SdpError(f"the answer's SRTP crypto is unusable: {error}") from None
