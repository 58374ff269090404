"""Parsed forms of the headers the core acts on: Via, CSeq, SIP URIs and name-addr (From/To/Contact).

Each type has a `parse()` classmethod raising `RemoteProtocolError` (400) with the header's name in
the message, and `__str__` giving the wire form back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _abnf
from .errors import RemoteProtocolError

__all__ = ["Via", "CSeq", "SipUri", "NameAddr", "parse_params", "format_params", "BRANCH_MAGIC_COOKIE"]

# RFC 3261 §8.1.1.7: branches of RFC 3261 transactions start with this cookie.
BRANCH_MAGIC_COOKIE = "z9hG4bK"


def parse_params(text: str) -> dict[str, str | None]:
    """Parse `;a=1;b;c="x;y"` into {'a': '1', 'b': None, 'c': '"x;y"'}; names are lower-cased."""
    params: dict[str, str | None] = {}
    for part in _split_semicolons(text):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        params[name.strip().lower()] = value.strip() if sep else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """The inverse of `parse_params`."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _find_unquoted(text: str, char: str) -> int:
    """Index of the first `char` outside a quoted-string (a display name may hold '<'), or -1."""
    if '"' not in text:
        return text.find(char)
    in_quotes, index = False, 0
    while index < len(text):
        ch = text[index]
        if in_quotes and ch == "\\":
            index += 1  # quoted-pair (§25.1): the next character is literal
        elif ch == '"':
            in_quotes = not in_quotes
        elif ch == char and not in_quotes:
            return index
        index += 1
    return -1


def _split_semicolons(text: str) -> list[str]:
    if '"' not in text:
        return text.split(";")
    parts, current, in_quotes = [], [], False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        if ch == ";" and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@dataclass(slots=True)
class Via:
    """One Via element: `SIP/2.0/UDP host:port;branch=...;rport` (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "Via":
        """Parse one Via element (split list values first)."""
        match = _abnf.VIA.match(value.strip())
        if match is None:
            raise RemoteProtocolError(f"malformed Via {value[:80]!r}")
        _version, transport, host, port, params = match.groups()
        return cls(transport=transport.upper(), host=host, port=int(port) if port else None,
                   params=parse_params(params))

    @property
    def branch(self) -> str | None:
        """The branch parameter, or None."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        """host[:port] as sent; part of the transaction key (§17.2.3)."""
        return f"{self.host}:{self.port}" if self.port else self.host

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class CSeq:
    """`CSeq: 314159 INVITE` (RFC 3261 §20.16)."""

    number: int
    method: str

    @classmethod
    def parse(cls, value: str) -> "CSeq":
        """Parse a CSeq value; the number must fit in 32 bits (§8.1.1.5)."""
        match = _abnf.CSEQ.match(value.strip())
        if match is None:
            raise RemoteProtocolError(f"malformed CSeq {value[:40]!r}")
        number = int(match.group(1))
        if number >= 2**31:
            raise RemoteProtocolError(f"CSeq number {number} is not below 2**31")
        return cls(number, match.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@dataclass(slots=True)
class SipUri:
    """A sip:, sips: or tel: URI (RFC 3261 §19.1)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""

    @classmethod
    def parse(cls, value: str) -> "SipUri":
        """Parse a URI; raises RemoteProtocolError (416 Unsupported URI Scheme for other schemes)."""
        value = value.strip()
        match = _abnf.SIP_URI.match(value)
        if match is None:
            scheme = value.split(":", 1)[0]
            if scheme and scheme.isalpha() and ":" in value:
                raise RemoteProtocolError(f"URI scheme {scheme!r} is not supported", 416)
            raise RemoteProtocolError(f"malformed URI {value[:80]!r}")
        scheme, userinfo, host, port, params, headers = match.groups()
        user = userinfo.split(":", 1)[0] if userinfo is not None else None
        if scheme.lower() == "tel":
            user, host = host, ""
        elif not host:
            raise RemoteProtocolError(f"URI {value[:80]!r} has no host")
        return cls(scheme=scheme.lower(), user=user, host=host, port=int(port) if port else None,
                   params=parse_params(params), headers=headers or "")

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        user = f"{self.user}@" if self.user is not None else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(self.params)}{self.headers}"


@dataclass(slots=True)
class NameAddr:
    """From, To, Contact, Route values: `"Name" <uri>;tag=x` or a bare `uri;tag=x` (§20.10)."""

    uri: str
    display_name: str = ""
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "NameAddr":
        """Parse a name-addr or addr-spec with header parameters."""
        value = value.strip()
        start = _find_unquoted(value, "<")
        if start >= 0:
            end = value.find(">", start)
            if end < 0:
                raise RemoteProtocolError(f"unterminated '<' in {value[:80]!r}")
            display = value[:start].strip()
            if display.startswith('"') and display.endswith('"') and len(display) >= 2:
                display = display[1:-1]
            return cls(uri=value[start + 1:end].strip(), display_name=display,
                       params=parse_params(value[end + 1:]))
        # addr-spec without brackets: header params follow the URI (§20.10 note).
        uri, _, rest = value.partition(";")
        if not uri or ":" not in uri or '"' in uri or "<" in uri:  # RFC 4475 §3.1.2.13 "quotbal"
            raise RemoteProtocolError(f"malformed address {value[:80]!r}")
        return cls(uri=uri.strip(), params=parse_params(rest))

    @property
    def tag(self) -> str | None:
        """The tag parameter (dialog identifier half), or None."""
        return self.params.get("tag")

    def __str__(self) -> str:
        display = f'"{self.display_name}" ' if self.display_name else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"
