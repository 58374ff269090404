"""Our side of Digest authentication: answering a carrier's 401 or 407 (RFC 3261 §22.2-§22.3, RFC 7616,
RFC 8760). The server side (challenges, checks) is acd/sip/digest.py; the arithmetic is shared with it.

Rules of this file:
- Pure: no clock, no randomness of its own. The caller passes the cnonce (RFC 7616 §3.4: chosen by
  the client, fresh per challenge) and the nonce count.
- A 401 carries WWW-Authenticate and is answered with Authorization; a 407 (a proxy) carries
  Proxy-Authenticate and is answered with Proxy-Authorization (§22.3).
- Which challenge (RFC 8760 §2.4): a response may carry one per algorithm, the server's preferred on
  top; we answer the first one we can, SHA-256 or MD5, qop "auth" or none. A challenge we cannot
  read is skipped, not fatal: the next one may do.
- Credentials are a password, or an HA1 = H(user:realm:password) kept instead of it. An HA1 is
  bound to one realm and one algorithm: a 32-digit one is MD5, a 64-digit one SHA-256, and only a
  challenge with that algorithm (and the configured realm, when one is set) can be answered with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .digest import _ALGORITHM_BY_UPPER, client_authorization, parse_digest_params
from .errors import RemoteProtocolError
from .message import Headers

__all__ = ["Challenge", "DigestCredentials", "CHALLENGE_HEADERS", "choose_challenge", "answer_challenge"]

# status → (the header carrying the challenge, the header carrying our answer)      (RFC 3261 §22.2, §22.3)
CHALLENGE_HEADERS = {401: ("WWW-Authenticate", "Authorization"), 407: ("Proxy-Authenticate", "Proxy-Authorization")}

_HA1_ALGORITHM = {32: "MD5", 64: "SHA-256"}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCredentials:
    """Our account at a carrier: a username and a password, or an HA1 (see the module docstring).
    `realm`, when set, restricts the answers to challenges of that realm (never give a password to a
    realm it is not for)."""

    username: str
    password: str | None = None
    ha1: str | None = None
    realm: str | None = None

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("digest credentials need a username")
        if (self.password is None) == (self.ha1 is None):
            raise ValueError("digest credentials need a password or an HA1, not both")
        if self.ha1 is not None and (len(self.ha1) not in _HA1_ALGORITHM or not _HEX.match(self.ha1)):
            raise ValueError("an HA1 is 32 hex digits (MD5) or 64 (SHA-256)")

    def can_answer(self, realm: str, algorithm: str) -> bool:
        """True when these credentials can answer a challenge of `realm` with `algorithm`."""
        if self.realm is not None and realm != self.realm:
            return False
        return self.ha1 is None or _HA1_ALGORITHM[len(self.ha1)] == algorithm


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """One challenge we chose to answer: the header our answer goes in and the challenge's value."""

    answer_header: str
    value: str
    realm: str
    algorithm: str
    stale: bool


def choose_challenge(status: int, headers: Headers, credentials: DigestCredentials) -> Challenge | None:
    """The first challenge of a 401/407 these credentials can answer, or None (no usable challenge)."""
    if status not in CHALLENGE_HEADERS:
        return None
    challenge_header, answer_header = CHALLENGE_HEADERS[status]
    for value in headers.get_all(challenge_header):
        try:
            scheme, params = parse_digest_params(value)
        except RemoteProtocolError:
            continue
        algorithm = _ALGORITHM_BY_UPPER.get(params.get("algorithm", "MD5").upper())
        qops = {q.strip().lower() for q in params["qop"].split(",")} if "qop" in params else None
        if (scheme.lower() != "digest" or algorithm is None or "realm" not in params or "nonce" not in params
                or (qops is not None and "auth" not in qops)):
            continue  # another scheme, an algorithm we lack (SHA-512-256, -sess), or auth-int only
        if not credentials.can_answer(params["realm"], algorithm):
            continue
        return Challenge(answer_header=answer_header, value=value, realm=params["realm"], algorithm=algorithm,
                         stale=params.get("stale", "").lower() == "true")
    return None


def answer_challenge(challenge: Challenge, credentials: DigestCredentials, *, method: str, uri: str,
                     cnonce: str, nc: int = 1) -> tuple[str, str]:
    """(header name, value) answering `challenge` for a request `method uri` (RFC 7616 §3.4)."""
    value = client_authorization(challenge.value, method=method, uri=uri, username=credentials.username,
                                 password=credentials.password, ha1=credentials.ha1, cnonce=cnonce, nc=nc)
    return challenge.answer_header, value
