"""TrunkAuthenticator: a trunk that proves itself by Digest instead of its source address (a PBX on
a dynamic address, a carrier that will not give its ranges). An INVITE from an address no trunk
lists is challenged with 407 when some trunk has `auth:` (conf/acd.yaml); the answer's username
names the trunk (RFC 3261 §22.3, proxy-style: the 407 leaves the INVITE's Request-URI alone).

Guessing is bounded like the agents' registrar: failures per source address are counted, and a
source past the limit gets 403 for a while (acd/registrar/limiter.py). Nonces come from a fresh
secret per run: a challenge answered across a restart is stale and simply asked again.
`reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from ..registrar.limiter import FailedAuthLimiter
from ..sip.build import new_tag
from ..sip.digest import DigestAuthenticator, compute_ha1, parse_digest_params
from ..sip.digest_client import DigestCredentials
from ..sip.events import RequestReceived
from .ports import Signalling

if TYPE_CHECKING:
    from ..config.model import Trunk

__all__ = ["TrunkAuthenticator"]

log = logging.getLogger("acd.trunks")


class TrunkAuthenticator:
    """Challenges and checks INVITEs that claim to come from a trunk with `auth:`."""

    def __init__(self, *, signalling: Signalling, reactor) -> None:
        self.signalling = signalling
        self.reactor = reactor
        self._secret = secrets.token_bytes(32)
        self._authenticators: dict[str, DigestAuthenticator] = {}
        self.limiter = FailedAuthLimiter(max_failures=20)
        self.failures = 0

    def _authenticator(self, realm: str) -> DigestAuthenticator:
        if realm not in self._authenticators:
            self._authenticators[realm] = DigestAuthenticator(realm, self._secret)
        return self._authenticators[realm]

    def identify(self, event: RequestReceived, trunks: tuple["Trunk", ...]) -> "Trunk | None":
        """The trunk whose credentials the INVITE carries; else None, after answering 407 or 403.
        A malformed Proxy-Authorization raises RemoteProtocolError (the SIP server answers 400)."""
        with_auth = [trunk for trunk in trunks if trunk.auth is not None]
        request, source, now = event.request, event.source, self.reactor.seconds()
        if self.limiter.is_blocked(source[0], now):
            self.signalling.respond(event.transaction_id, 403, to_tag=new_tag(), stateless=True)
            return None
        answer = request.headers.get("Proxy-Authorization")
        if answer is not None:
            _scheme, params = parse_digest_params(answer)
            claimed = params.get("username", "")
            trunk = next((t for t in with_auth if t.auth.username == claimed), None)
            result = None if trunk is None else self._authenticator(trunk.auth.realm).verify(
                "INVITE", answer, lambda user, algorithm: _ha1(trunk.auth, user, algorithm), now)
            if result is not None and result.ok:
                return trunk
            if result is None or result.counts_as_failure:
                self.failures += 1
                self.limiter.record_failure(source[0], now)
                log.warning("call=%s trunk auth failure from %s:%s: %s user=%r", request.call_id, source[0],
                            source[1], "unknown-user" if result is None else result.reason, claimed[:40])
        realms = dict.fromkeys(trunk.auth.realm for trunk in with_auth)
        self.signalling.respond(event.transaction_id, 407, to_tag=new_tag(), headers=tuple(
            ("Proxy-Authenticate", value) for realm in realms for value in self._authenticator(realm).challenge(now)))
        return None


def _ha1(credentials: DigestCredentials, user: str, algorithm: str) -> str | None:
    """The HA1 a trunk's `auth:` gives for `algorithm` (an HA1 serves only its own algorithm)."""
    if user != credentials.username:
        return None
    if credentials.password is not None:
        return compute_ha1(user, credentials.realm, credentials.password, algorithm)
    return credentials.ha1 if credentials.can_answer(credentials.realm, algorithm) else None
