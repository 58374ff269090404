"""SIP messages: parsing a datagram into a Request or Response, and serialising one back.

Header names are case-insensitive and have compact forms (RFC 3261 §7.3.3); we store every header
under its canonical long name, in arrival order, so a message serialises back with the same order.
Comma-separated values of list headers (Via, Route, Contact...) are split on demand by `get_all`.
Folded header lines (§7.3.1) are unfolded. Content-Length decides where the body ends (§18.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from . import _abnf
from .errors import RemoteProtocolError

__all__ = ["Headers", "Request", "Response", "parse_message", "split_list_value", "MAX_MESSAGE_SIZE"]

# Limits on peer input (STYLE 7).
# A SIP datagram over UDP should stay under the path MTU (RFC 3261 §18.1.1 says 1300 bytes before
# switching to TCP); UDP itself caps at 65,535. Real INVITEs with big SDP reach 4-6 KiB. 64 KiB.
MAX_MESSAGE_SIZE = 65_535
# Kamailio's default limit is 64 headers per parse pass of interest; real INVITEs carry 15-30.
MAX_HEADERS = 256

COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
    "o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events", "x": "Session-Expires",
    "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        "Call-ID", "CSeq", "WWW-Authenticate", "Proxy-Authenticate", "Proxy-Authorization",
        "Authorization", "Max-Forwards", "Record-Route", "Route", "Via", "From", "To", "Contact",
        "Content-Length", "Content-Type", "Content-Encoding", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "User-Agent", "Server", "Expires", "Accept", "Event",
        "Subject", "Refer-To", "Referred-By", "Allow-Events", "Session-Expires", "Min-Expires",
        "Retry-After", "Reason", "Accept-Contact", "Reject-Contact", "Request-Disposition",
        "Identity", "Timestamp", "Warning", "Date", "Organization", "Priority", "P-Asserted-Identity",
        "Path",
        # Spellings the capitalise-each-part rule below would get wrong (RFC 4028, 3262, 3261, 3903).
        "Min-SE", "RSeq", "RAck", "MIME-Version", "SIP-ETag", "SIP-If-Match",
    )
}
# Names that `canonical_name` gives for every spelling of them (so stored headers carry exactly these).
_KNOWN_NAMES = frozenset(_CANONICAL.values()) | frozenset(COMPACT_FORMS.values())
# Headers whose value is a comma-separated list (RFC 3261 §7.3.1 allows combining them).
LIST_HEADERS = frozenset(
    {"Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require", "Proxy-Require",
     "Unsupported", "Accept", "Allow-Events", "Path"}
)


def _canonical_name(name: str) -> str:
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


# Spellings seen → canonical name: every header of every message and every lookup asks (a dict hit
# instead of lower() and two look-ups). Bounded: peers choose header names, so past the bound the
# name is worked out each time instead of remembered.
_CANONICAL_BY_SPELLING: dict[str, str] = {}
MAX_REMEMBERED_SPELLINGS = 2048


# Field names parse_message found to be tokens → their canonical names (bounded like the above).
_FIELD_NAMES: dict[str, str] = {}


def canonical_name(name: str) -> str:
    """The canonical long form of a known header name (compact forms expanded, case fixed); other
    names keep the spelling they were written with (lookups ignore case anyway)."""
    canonical = _CANONICAL_BY_SPELLING.get(name)
    if canonical is None:
        canonical = _canonical_name(name)
        if len(_CANONICAL_BY_SPELLING) < MAX_REMEMBERED_SPELLINGS:
            _CANONICAL_BY_SPELLING[name] = canonical
    return canonical


def split_list_value(value: str) -> list[str]:
    """Split a header value on commas that are outside quotes and angle brackets."""
    if "," not in value:
        value = value.strip()
        return [value] if value else []  # an empty list header (e.g. "Supported:") has no elements
    parts: list[str] = []
    depth_angle = 0
    in_quotes = False
    start = 0
    i = 0
    while i < len(value):
        ch = value[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            depth_angle += 1
        elif ch == ">":
            depth_angle = max(0, depth_angle - 1)
        elif ch == "," and depth_angle == 0:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


class Headers:
    """An ordered, case-insensitive multimap of SIP headers."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of a header, or `default`."""
        name = canonical_name(name)
        for n, v in self._items:
            if n == name:
                return v
        if name not in _KNOWN_NAMES:  # a known name is stored under its canonical spelling only
            wanted = name.lower()
            for n, v in self._items:
                if n.lower() == wanted:
                    return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, list headers split into their elements."""
        name = canonical_name(name)
        values: list[str] = []
        if name in _KNOWN_NAMES:  # stored under its canonical spelling only
            for n, v in self._items:
                if n == name:
                    if name in LIST_HEADERS:
                        values.extend(split_list_value(v))
                    else:
                        values.append(v)
            return values
        wanted = name.lower()
        for n, v in self._items:
            if n == name or n.lower() == wanted:
                if name in LIST_HEADERS:
                    values.extend(split_list_value(v))
                else:
                    values.append(v)
        return values

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        """Append a header at the end."""
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a header before all others (used for Via on forwarded requests)."""
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of a header by one value, keeping the first one's position."""
        name = canonical_name(name)
        wanted = name.lower()
        for index, (n, _) in enumerate(self._items):
            if n.lower() == wanted:
                self._items[index] = (name, value)
                self._items = [item for j, item in enumerate(self._items)
                               if j <= index or item[0].lower() != wanted]
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        """Remove every value of a header."""
        wanted = canonical_name(name).lower()
        self._items = [item for item in self._items if item[0].lower() != wanted]

    def copy(self) -> "Headers":
        """A shallow copy."""
        clone = Headers()
        clone._items = list(self._items)
        return clone

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(slots=True)
class Request:
    """A SIP request."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        """The Call-ID header value ('' if absent)."""
        return self.headers.get("Call-ID", "") or ""

    def __bytes__(self) -> bytes:
        return _serialise(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass(slots=True)
class Response:
    """A SIP response."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        """The Call-ID header value ('' if absent)."""
        return self.headers.get("Call-ID", "") or ""

    def __bytes__(self) -> bytes:
        return _serialise(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


def _serialise(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    for name, value in headers:
        if name != "Content-Length":
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def parse_message(data: bytes) -> Request | Response:
    """Parse one complete SIP message (a UDP datagram, or one framed from a stream).

    Raises `RemoteProtocolError` (status 400, or 513 when too large) naming what is wrong.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise RemoteProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}", 513)
    # RFC 3261 §7.5: implementations SHOULD ignore CRLFs before the start-line.
    data = data.lstrip(b"\r\n")
    head_end = data.find(b"\r\n\r\n")
    separator_length = 4
    if head_end < 0:
        # Tolerate bare-LF senders (seen from broken test tools); RFC 3261 requires CRLF.
        head_end = data.find(b"\n\n")
        separator_length = 2
        if head_end < 0:
            raise RemoteProtocolError("message has no empty line ending the headers")
    try:
        head = data[:head_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"headers are not valid UTF-8 at byte {exc.start}") from None
    lines = head.replace("\r\n", "\n").split("\n")
    start_line = lines[0].strip()
    headers = Headers()
    items = headers._items
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            # §7.3.1: a line starting with whitespace continues the previous header value.
            if not items:
                raise RemoteProtocolError("message starts its headers with a continuation line")
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        # message-header = field-name HCOLON field-value (`_abnf.HEADER_NAME`), without a regex per
        # line: the name is what comes before the first colon, less trailing SP/HTAB, if a token.
        spelled, colon, value = line.partition(":")
        spelled = spelled.rstrip(" \t")
        name = _FIELD_NAMES.get(spelled)
        if name is None:
            if not colon or _abnf.TOKEN_ONLY.fullmatch(spelled) is None:
                raise RemoteProtocolError(f"malformed header line {line[:60]!r}")
            name = canonical_name(spelled)
            if len(_FIELD_NAMES) < MAX_REMEMBERED_SPELLINGS:
                _FIELD_NAMES[spelled] = name
        elif not colon:
            raise RemoteProtocolError(f"malformed header line {line[:60]!r}")
        items.append((name, value.strip()))
        if len(items) > MAX_HEADERS:
            raise RemoteProtocolError(f"more than {MAX_HEADERS} headers")
    body = data[head_end + separator_length:]
    length_value = headers.get("Content-Length")
    if len(set(headers.get_all("Content-Length"))) > 1:
        # RFC 4475 §3.1.2.19: which length is meant cannot be known; a request gets 400.
        raise RemoteProtocolError("several Content-Length headers with different values")
    if length_value is not None:
        # §20.14: 1*DIGIT, ASCII only (str.isdigit also accepts '²', which int() refuses).
        if not (length_value.isascii() and length_value.isdigit()):
            raise RemoteProtocolError(f"Content-Length {length_value!r} is not a number")
        length = int(length_value)
        if length > len(body):
            # §18.3: a datagram that ends before the body does is an error; requests get 400.
            raise RemoteProtocolError(f"Content-Length {length} exceeds the {len(body)} body bytes received")
        body = body[:length]  # §18.3: bytes beyond Content-Length are discarded.
    match = _abnf.REQUEST_LINE.match(start_line)
    if match is not None:
        method, uri, version = match.groups()
        if version != "2.0":
            raise RemoteProtocolError(f"SIP version {version} is not supported", 505)
        return Request(method=method, uri=uri, headers=headers, body=body)
    match = _abnf.STATUS_LINE.match(start_line)
    if match is not None:
        version, status, reason = match.groups()
        if version != "2.0":
            raise RemoteProtocolError(f"SIP version {version} is not supported", 505)
        if not 100 <= int(status) <= 699:
            # §7.2: status codes are 100-699; a 0xx would be taken for a provisional response.
            raise RemoteProtocolError(f"status code {status} is outside 100-699")
        return Response(status=int(status), reason=reason or "", headers=headers, body=body)
    raise RemoteProtocolError(f"malformed start line {start_line[:60]!r}")
