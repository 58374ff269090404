"""Digest authentication for REGISTER (RFC 3261 §22, RFC 7616, RFC 8760 for SHA-256): pure, time passed in.

Rules of this file:
- Passwords are never kept: the store holds HA1 = H(username ":" realm ":" password) once per
  algorithm (`compute_ha1`), and `verify` asks for it through `lookup_ha1(username, algorithm)`.
- Nonces carry their own proof: base64(issue time, serial, HMAC(secret, realm + issue time + serial)).
  One whose MAC does not verify is "forged" (or made with another secret, e.g. before a restart with
  a fresh secret: the shell keeps the secret across restarts). The serial makes each nonce unique
  even when two challenges share a clock reading.
- Nonces live `nonce_lifetime_seconds` (30 s by default) and their uses are tracked (`NonceUses`):
  with qop=auth each use needs a greater nc than the last, without qop a nonce serves once, and a
  nonce that served a wrong password or an unknown user serves nothing more.
- A correct response over a nonce we no longer accept (expired, replayed nc, burnt, or forgotten) is
  "stale": the next challenge says stale=true so the phone retries with the same password, silently
  (RFC 7616 §3.3: the server "SHOULD only set stale to true if it receives a request for which the
  nonce is invalid"; RFC 2617 §3.2.1: "... but with a valid digest for that nonce"). A wrong response
  is a failure whatever the nonce: the password is checked first, so no guess escapes the limiter.
  Replays matter because qop=auth covers method and URI, not Contact: a sniffed Authorization could
  register another Contact while its nonce lives.
- `AuthResult.reason` is a stable token for logs and the failed-auth limiter (`wrong-password`,
  `unknown-user`, `stale-nonce`, ...). Never send it to the peer: the shell answers unknown users and
  wrong passwords alike, so extensions cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Any, Callable

from . import _abnf
from .errors import RemoteProtocolError
from .nonce_uses import NonceUses

__all__ = [
    "AuthResult", "DigestAuthenticator", "compute_ha1", "compute_response", "parse_digest_params",
    "client_authorization", "ALGORITHMS", "MAX_AUTHORIZATION_LENGTH",
]

# RFC 7616 §3.2 / RFC 8760 §2.1: the hash behind each algorithm token we accept. SHA-512-256 and the
# -sess variants exist too; we never offer them, so a client choosing them breaks §3.4 and is refused.
ALGORITHMS: dict[str, Callable[..., Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_ALGORITHM_BY_UPPER = {name.upper(): name for name in ALGORITHMS}

# Limits on peer input (STYLE 7). A real Authorization from a softphone is 250-400 characters; SHA-256
# doubles the response and nonce lengths. 4 KiB leaves room for long URIs and usernames while keeping
# a hostile value from costing more than one small regex pass.
MAX_AUTHORIZATION_LENGTH = 4096

# Nonce layout: 8-byte big-endian IEEE double (issue time), 8-byte serial, first 16 bytes of
# HMAC-SHA-256 over both. RFC 2104 §5 allows truncating an HMAC to no less than half its length.
_STAMP = struct.Struct(">dQ")
_MAC_LENGTH = 16
_NONCE_BYTES = _STAMP.size + _MAC_LENGTH

# auth-param = auth-param-name EQUAL ( token / quoted-string )                     (RFC 3261 §25.1)
# EQUAL = SWS "=" SWS; COMMA = SWS "," SWS. RFC 3261 says which digest params are quoted (username,
# realm, nonce, uri, response, cnonce, opaque) and which are tokens (algorithm, qop, nc); phones get
# this wrong both ways (qop="auth", algorithm="MD5"), so we accept either form for every parameter.
_QUOTED_STRING = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_abnf.TOKEN})\s*=\s*({_QUOTED_STRING}|{_abnf.TOKEN})\s*(?:,|\Z)", re.DOTALL)
_SCHEME = re.compile(rf"\s*({_abnf.TOKEN})(?:\s+|\Z)")
# nonce-count = "nc" EQUAL nc-value; nc-value = 8LHEX                              (RFC 3261 §25.1)
_NC = re.compile(r"^[0-9A-Fa-f]{8}$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_REQUIRED = ("username", "realm", "nonce", "uri", "response")


def _hash(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode("utf-8")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 = H(username ":" realm ":" password) in lower-case hex (RFC 7616 §3.4.2); store this, not the password."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"digest algorithm {algorithm!r} is not one of {sorted(ALGORITHMS)}")
    return _hash(algorithm, f"{username}:{realm}:{password}")


def compute_response(ha1: str, method: str, uri: str, nonce: str, *, algorithm: str = "MD5",
                     qop: str | None = None, nc: str | None = None, cnonce: str | None = None) -> str:
    """The request-digest a client sends (RFC 3261 §22.4 with RFC 2617 §3.2.2.1; RFC 7616 §3.4.1).

    With qop=auth: H(HA1:nonce:nc:cnonce:qop:HA2); without qop (RFC 2069 form): H(HA1:nonce:HA2),
    where HA2 = H(method:uri).
    """
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)  # quoted-pair (§25.1)
    return value


def parse_digest_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `Digest a="x, y", B=tok` into ('Digest', {'a': 'x, y', 'b': 'tok'}).

    Names are lower-cased, quotes and quoted-pairs removed. Raises RemoteProtocolError (400) for a
    value that is too long, has no scheme, repeats a parameter or is not a comma-separated list of
    name=value pairs. Used for Authorization (server side) and WWW-Authenticate (client side).
    """
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise RemoteProtocolError(f"credentials of {len(value)} characters exceed {MAX_AUTHORIZATION_LENGTH}")
    match = _SCHEME.match(value)
    if match is None:
        raise RemoteProtocolError(f"credentials have no scheme: {value[:60]!r}")
    scheme, position, params = match.group(1), match.end(), {}
    while position < len(value):
        match = _PARAM.match(value, position)
        if match is None or match.end() == position:
            raise RemoteProtocolError(f"malformed credentials parameter at {value[position:position + 40]!r}")
        name = match.group(1).lower()
        if name in params:
            raise RemoteProtocolError(f"credentials repeat the {name!r} parameter")
        params[name] = _unquote(match.group(2))
        position = match.end()
    return scheme, params


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResult:
    """What `DigestAuthenticator.verify` decided. `reason` is for logs only (see the module docstring)."""

    ok: bool
    username: str | None
    stale: bool
    reason: str

    def __post_init__(self) -> None:
        if self.ok and (self.stale or self.username is None or self.reason != "ok"):
            raise ValueError("a successful AuthResult has a username, reason 'ok' and no stale flag")
        if not self.ok and self.reason == "ok":
            raise ValueError("a failed AuthResult needs a reason other than 'ok'")

    @property
    def counts_as_failure(self) -> bool:
        """True when the failed-auth limiter should count it: failed, and not merely a stale nonce."""
        return not self.ok and not self.stale


class DigestAuthenticator:
    """Issues Digest challenges and checks Authorization headers for one realm.

    `nonce_lifetime_seconds` defaults to 30: a nonce has to outlive one challenge round trip (under a
    second; a REGISTER's retransmissions are absorbed by its transaction), and a short life bounds
    how long a sniffed nonce is worth anything. OpenSIPS's auth module defaults to 30 s too ("this
    value has to be of few tens of seconds"); Kamailio's 300 s dates from before its nonce-count
    tracking. Phones that reuse a cached nonce for their next requests just meet one stale 401.
    `max_tracked_nonces` bounds the replay memory (`NonceUses`): one entry per nonce used within its
    lifetime, about 250 bytes each, so 32,768 (~8 MB) covers ~1,000 authentications a second; past
    that the oldest are forgotten, and refused as stale, first.
    """

    def __init__(self, realm: str, secret: bytes, *, nonce_lifetime_seconds: float = 30,
                 max_tracked_nonces: int = 32_768,
                 algorithms: tuple[str, ...] = ("SHA-256", "MD5")) -> None:
        if not secret:
            raise ValueError("the nonce secret must not be empty")
        if nonce_lifetime_seconds <= 0 or max_tracked_nonces <= 0:
            raise ValueError("nonce lifetime and replay memory must be positive")
        if not algorithms or any(a not in ("SHA-256", "MD5") for a in algorithms):
            raise ValueError(f"challenge algorithms must be SHA-256 and/or MD5, not {algorithms!r}")
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self._secret = secret
        self.nonce_lifetime_seconds = nonce_lifetime_seconds
        self.nonce_uses = NonceUses(lifetime_seconds=nonce_lifetime_seconds, max_tracked=max_tracked_nonces)
        self._serial = 0

    def _mac(self, stamp: bytes) -> bytes:
        message = self.realm.encode("utf-8") + b"\0" + stamp
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_LENGTH]

    def make_nonce(self, now: float) -> str:
        """A fresh nonce that carries its own issue time and proof that we issued it."""
        self.nonce_uses.start(now)
        self._serial += 1
        stamp = _STAMP.pack(now, self._serial)
        return base64.urlsafe_b64encode(stamp + self._mac(stamp)).decode("ascii")

    def _nonce_issue_time(self, nonce: str) -> float | None:
        """The issue time of a nonce we made, or None when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
        if len(raw) != _NONCE_BYTES:
            return None
        stamp, mac = raw[:_STAMP.size], raw[_STAMP.size:]
        if not hmac.compare_digest(mac, self._mac(stamp)):
            return None
        return _STAMP.unpack(stamp)[0]

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate values for a 401, one per algorithm in `algorithms` (SHA-256, then MD5).

        RFC 8760 (UAS behaviour): one header field per algorithm, the most preferred at the top; phones
        that know only MD5 (RFC 3261) should skip the SHA-256 one. Some do not (SIPp 3.6 takes the
        first and gives up on SHA-256): for those, configure MD5 first.

        Both carry the same nonce. No opaque: the nonce already carries all the state we need.
        """
        nonce = self.make_nonce(now)
        stale_param = ", stale=true" if stale else ""
        return [
            f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"{stale_param}'
            for algorithm in self.algorithms
        ]

    def verify(self, method: str, authorization: str, lookup_ha1: Callable[[str, str], str | None],
               now: float) -> AuthResult:
        """Check one Authorization value against the request method, and record the nonce's use.

        Raises RemoteProtocolError (400) when the header is malformed or lacks a required parameter
        (RFC 3261 §22.4, RFC 7616 §3.4). `lookup_ha1(username, algorithm)` returns the stored HA1 hex
        or None for an unknown user. Does not compare `uri` with the Request-URI: a REGISTER is for
        this registrar whatever its URI, and the digest already binds the response to `uri`.
        """
        self.nonce_uses.start(now)
        scheme, params = parse_digest_params(authorization)
        if scheme.lower() != "digest":
            return _failure("unsupported-scheme")
        missing = [name for name in _REQUIRED if name not in params]
        if missing:
            raise RemoteProtocolError(f"Digest credentials lack {', '.join(missing)}")
        qop = params.get("qop")
        if qop is not None:
            qop = qop.lower()
            # RFC 2617 §3.2.2: with qop, cnonce and nc MUST be present; nc is 8LHEX (RFC 3261 §25.1).
            if "cnonce" not in params or "nc" not in params:
                raise RemoteProtocolError("Digest credentials with qop lack cnonce or nc")
            if not _NC.match(params["nc"]):
                raise RemoteProtocolError(f"Digest nc {params['nc'][:20]!r} is not 8 hex digits")
        if not _HEX.match(params["response"]):
            raise RemoteProtocolError("Digest response is not hexadecimal")
        username = params["username"]
        if params["realm"] != self.realm:
            return _failure("realm-mismatch", username)
        # RFC 7616 §3.4: "If the algorithm parameter is not present, it is assumed to be 'MD5'".
        algorithm = _ALGORITHM_BY_UPPER.get(params.get("algorithm", "MD5").upper())
        if algorithm is None:
            return _failure("unsupported-algorithm", username)
        if qop not in (None, "auth"):
            return _failure("unsupported-qop", username)  # auth-int: we only offer qop="auth"
        nonce = params["nonce"]
        issued = self._nonce_issue_time(nonce)
        if issued is None:
            return _failure("forged-nonce", username)
        # A nonce from the future means our clock stepped back: ask for a fresh one, as for an old one.
        fresh = 0 <= now - issued <= self.nonce_lifetime_seconds
        ha1 = lookup_ha1(username, algorithm)
        expected = None if ha1 is None else compute_response(
            ha1, method, params["uri"], nonce, algorithm=algorithm, qop=qop, nc=params.get("nc"),
            cnonce=params.get("cnonce"))
        if expected is None or not hmac.compare_digest(expected, params["response"].lower()):
            if fresh:
                self.nonce_uses.burn(nonce, issued, now)
            return _failure("unknown-user" if ha1 is None else "wrong-password", username)
        if not fresh:
            return _failure("stale-nonce", username, stale=True)
        nc = int(params["nc"], 16) if qop is not None else None
        if not self.nonce_uses.use(nonce, issued, nc, now):
            return _failure("replayed-nonce", username, stale=True)
        return AuthResult(ok=True, username=username, stale=False, reason="ok")


def _failure(reason: str, username: str | None = None, *, stale: bool = False) -> AuthResult:
    return AuthResult(ok=False, username=username, stale=stale, reason=reason)


def client_authorization(challenge: str, *, method: str, uri: str, username: str, password: str | None = None,
                         cnonce: str, nc: int = 1, ha1: str | None = None) -> str:
    """The Authorization (or Proxy-Authorization) value answering `challenge` (one WWW-Authenticate or
    Proxy-Authenticate value): RFC 7616 §3.4, qop=auth when offered, else the RFC 2069 form; opaque
    echoed. Give `password`, or `ha1` computed for the challenge's realm and algorithm.

    Phones in tests use it; so does our own client side (acd/sip/digest_client.py).
    """
    _scheme, params = parse_digest_params(challenge)
    algorithm = _ALGORITHM_BY_UPPER[params.get("algorithm", "MD5").upper()]
    realm, nonce = params["realm"], params["nonce"]
    offered_qops = [q.strip().lower() for q in params.get("qop", "").split(",")]
    qop = "auth" if "auth" in offered_qops else None
    nc_text = f"{nc:08x}"
    if ha1 is None:
        if password is None:
            raise ValueError("client_authorization needs a password or an HA1")
        ha1 = compute_ha1(username, realm, password, algorithm)
    response = compute_response(ha1, method, uri, nonce, algorithm=algorithm, qop=qop, nc=nc_text, cnonce=cnonce)
    value = (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
             f'response="{response}", algorithm={algorithm}')
    if qop is not None:
        value += f', qop={qop}, nc={nc_text}, cnonce="{cnonce}"'
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return value
