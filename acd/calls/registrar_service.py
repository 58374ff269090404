"""RegistrarService: REGISTER handling and agent authentication, around the pure registrar parts.

Agents authenticate with Digest (MD5 or SHA-256, HA1s from conf/agents.yaml); bindings live in the
BindingTable and are written to SQLite on every change, so they survive a restart. Sources that
keep failing are blocked for a while (FailedAuthLimiter) and counted. Whoever must know when an
agent's phone comes or goes (the ACD: reachability) is told through `watch_bindings`.
A REGISTER that came through a proxy (Kamailio in front of a cluster) carries a Path (RFC 3327):
it is stored with the binding, echoed in the 200 when the phone supports it, and requests to that
phone go to the first Path hop with the Path as their Route set (`contacts`).
`reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..registrar import BindingTable, FailedAuthLimiter, parse_contact_values
from ..registrar.auth_log import failure_line, retry_line
from ..registrar.path import AgentContact, binding_contact, parse_path_values, supports_path
from ..sip.build import new_tag
from ..sip.digest import DigestAuthenticator, parse_digest_params
from ..sip.errors import RemoteProtocolError
from ..sip.events import RequestReceived
from ..sip.headers import CSeq, NameAddr, SipUri
from ..store.backends import open_binding_store
from ..store.location import bindings_location
from .ports import ConfigSource, Signalling

if TYPE_CHECKING:
    from ..config.model import Config

__all__ = ["RegistrarService", "load_or_create_secret"]

log = logging.getLogger("acd.registrar")


def _claimed_user(authorization: str | None) -> str:
    """The username an Authorization header claims (unverified), for per-extension failure counts."""
    if not authorization:
        return ""
    try:
        return parse_digest_params(authorization)[1].get("username", "")
    except RemoteProtocolError:
        return ""


def _to_user(request) -> str:
    try:
        return SipUri.parse(NameAddr.parse(request.headers.get("To", "")).uri).user or ""
    except RemoteProtocolError:
        return ""


def load_or_create_secret(path: Path) -> bytes:
    """The nonce secret, kept across restarts so phones' nonces stay valid (no spurious 401s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and len(path.read_bytes()) >= 32:
        return path.read_bytes()
    secret = secrets.token_bytes(32)
    path.write_bytes(secret)
    path.chmod(0o600)
    return secret


class RegistrarService:
    """Answers REGISTER, authenticates agent INVITEs, and tells where an agent's phone is."""

    def __init__(self, *, signalling: Signalling, config: ConfigSource, reactor) -> None:
        """Reads agents and HA1s from `config` at each authentication, so a reload applies at once."""
        self.signalling = signalling
        self.live = config
        self.reactor = reactor
        config = config.config
        data = config.data_dir
        self._nonce_secret = load_or_create_secret(data / "nonce.secret")
        self.authenticator = self._authenticator(config)
        self.table = BindingTable()
        # Two limits (fail2ban-like): one extension failing from one address is blocked after 5
        # failures a minute, without locking out the other phones of an office behind the same NAT;
        # an address failing for many extensions (a scanner) is blocked whole after 20.
        self.user_limiter = FailedAuthLimiter(max_failures=5)
        self.limiter = FailedAuthLimiter(max_failures=20)
        # Guessing spread over many addresses: 30 failures a minute for one account, from anywhere, lock
        # it for 5 minutes. While locked, guesses are not even checked and are answered as a wrong
        # password is (a fresh challenge), so no guess can be confirmed; the phones the account has a
        # live registration from keep working, so an attacker cannot lock a working agent out.
        self.account_limiter = FailedAuthLimiter(max_failures=30, window_seconds=60, block_seconds=300)
        self.store = open_binding_store(bindings_location(config.store, data))
        self.auth_failures = 0
        self.blocked_requests = 0
        now = reactor.seconds()
        expired = self.table.restore(self.store.load_all(), now)
        if expired:
            self.store.save_changes(deleted=expired)
        log.info("registrar: realm %r, %d bindings restored, %d expired while down", config.agents.realm,
                 sum(len(self.table.lookup(a, now)) for a in config.agents.agents), len(expired))
        self._timer = None
        self._watcher: Callable[[str, str], None] = lambda agent_id, why: None
        self._rearm()

    def watch_bindings(self, watcher: Callable[[str, str], None]) -> None:
        """Call `watcher(agent_id, why)` after a REGISTER added or refreshed ("registered") or
        removed ("unregistered") a binding, and after one expired ("registration expired")."""
        self._watcher = watcher

    @property
    def config(self) -> "Config":
        """The config in force now."""
        return self.live.config

    @staticmethod
    def digest_settings(config: "Config") -> tuple:
        """What the authenticator is built from: a reload that changes it calls `reconfigure`."""
        agents = config.agents
        return agents.realm, agents.digest_algorithms, agents.digest_nonce_lifetime_seconds

    def _authenticator(self, config: "Config") -> DigestAuthenticator:
        agents = config.agents
        return DigestAuthenticator(agents.realm, self._nonce_secret, algorithms=agents.digest_algorithms,
                                   nonce_lifetime_seconds=agents.digest_nonce_lifetime_seconds)

    def reconfigure(self) -> None:
        """A reload changed the realm, the digest algorithms or the nonce lifetime: challenge with the new
        ones from now on (passwords and agents are read from the config at each authentication anyway;
        nonces issued before are answered stale=true, so phones just retry)."""
        agents = self.config.agents
        self.authenticator = self._authenticator(self.config)
        log.info("registrar: realm %r, digest algorithms %s, nonce lifetime %.0f s", agents.realm,
                 ", ".join(agents.digest_algorithms), agents.digest_nonce_lifetime_seconds)

    def _ha1(self, username: str, algorithm: str) -> str | None:
        agent = self.config.agents.agents.get(username)
        return agent.ha1.get(algorithm) if agent else None

    def authenticate(self, event: RequestReceived, what: str) -> str | None:
        """The agent id if the request carries valid credentials; else answers 401/403 and returns None.

        Every refused attempt is logged as one `auth failure:` line (format in `acd.registrar.auth_log`,
        read by the shipped fail2ban filter); a right password over a nonce we no longer take is an
        `auth retry:` line and a 401 with stale=true. A malformed Authorization raises
        RemoteProtocolError (the caller answers 400) after its failure line."""
        request, source_ip, now = event.request, event.source[0], self.reactor.seconds()
        claimed = _claimed_user(request.headers.get("Authorization")) or _to_user(request)
        user_key = f"{source_ip} {claimed}"
        if self.limiter.is_blocked(source_ip, now) or self.user_limiter.is_blocked(user_key, now):
            self.blocked_requests += 1
            self._log_failure(event, "source-blocked", claimed)
            self.signalling.respond(event.transaction_id, 403, to_tag=new_tag())
            return None
        authorization = request.headers.get("Authorization")
        if authorization is None:
            self._challenge(event, stale=False)
            return None
        if self.account_limiter.is_blocked(claimed, now) and not self._trusted_source(claimed, event.source, now):
            self.blocked_requests += 1
            self._log_failure(event, "locked", claimed)
            self._challenge(event, stale=False)
            return None
        try:
            result = self.authenticator.verify(request.method, authorization, self._ha1, now)
        except RemoteProtocolError:
            self._log_failure(event, "bad-request", claimed)
            raise
        if result.ok:
            self.user_limiter.record_success(user_key, now)
            return result.username
        if not result.counts_as_failure:
            log.info("%s", retry_line(source=event.source, transport=event.transport, method=request.method,
                                      reason=result.reason, user=result.username or claimed))
        else:
            self.auth_failures += 1
            self.limiter.record_failure(source_ip, now)
            self.user_limiter.record_failure(user_key, now)
            was_locked = self.account_limiter.is_blocked(claimed, now)
            self.account_limiter.record_failure(claimed, now)
            self._log_failure(event, result.reason, result.username or claimed)
            if not was_locked and self.account_limiter.is_blocked(claimed, now):
                log.warning("account %r locked for %.0f s after %d failed authentications within %.0f s from "
                            "any address; its registered phones keep working", claimed,
                            self.account_limiter.block_seconds, self.account_limiter.max_failures,
                            self.account_limiter.window_seconds)
            if self.limiter.is_blocked(source_ip, now) or self.user_limiter.is_blocked(user_key, now):
                log.warning("blocking %s (user %r) for repeated authentication failures (%s)", source_ip, claimed,
                            what)
                self.signalling.respond(event.transaction_id, 403, to_tag=new_tag())
                return None
        self._challenge(event, stale=result.stale)
        return None

    def _log_failure(self, event: RequestReceived, reason: str, user: str) -> None:
        log.warning("%s", failure_line(source=event.source, transport=event.transport, method=event.request.method,
                                       reason=reason, user=user))

    def unlock(self, user: str) -> bool:
        """Clear a user's account lock and per-address failure counts (`acd agent-unlock`, the API);
        True if anything was locked or counted."""
        found = self.account_limiter.forget(user)
        for key in [key for key in self.user_limiter.keys() if key.endswith(f" {user}")]:
            found = self.user_limiter.forget(key) or found
        log.warning("account %r unlocked by an operator", user)
        return found

    def _trusted_source(self, user: str, source: tuple[str, int], now: float) -> bool:
        """True when `user` has a live registration from `source`'s address (it authenticated there)."""
        return any(binding.source[0] == source[0] for binding in self.table.lookup(user, now))

    def _challenge(self, event: RequestReceived, *, stale: bool) -> None:
        values = self.authenticator.challenge(self.reactor.seconds(), stale=stale)
        self.signalling.respond(event.transaction_id, 401, to_tag=new_tag(),
                            headers=tuple(("WWW-Authenticate", value) for value in values))

    def on_register(self, event: RequestReceived) -> None:
        """RFC 3261 §10.3: authenticate, then add, refresh or remove bindings; answer with them all."""
        request = event.request
        username = self.authenticate(event, "REGISTER")
        if username is None:
            return
        aor_user = SipUri.parse(NameAddr.parse(request.headers.get("To", "")).uri).user
        if aor_user != username:
            log.warning("REGISTER: user %r may not register %r", username, aor_user)
            self.signalling.respond(event.transaction_id, 403, to_tag=new_tag())
            return
        contacts = parse_contact_values(request.headers.get_all("Contact"))
        path = parse_path_values(request.headers.get_all("Path"))
        expires_value = request.headers.get("Expires")
        if expires_value is not None and not expires_value.strip().isdigit():
            raise RemoteProtocolError(f"Expires {expires_value!r} is not a number")
        now = self.reactor.seconds()
        outcome = self.table.apply(username, contacts if contacts or contacts == "*" else [],
                                   int(expires_value) if expires_value is not None else None,
                                   request.call_id, CSeq.parse(request.headers.get("CSeq", "")).number,
                                   event.source, event.transport, request.headers.get("User-Agent", "") or "", now,
                                   path=path)
        headers: list[tuple[str, str]] = []
        if outcome.status == 423:
            headers.append(("Min-Expires", str(outcome.min_expires)))
        if outcome.status == 200:
            self.store.save_changes(saved=outcome.added + outcome.refreshed, deleted=outcome.removed)
            headers += [("Contact", value) for value in outcome.contact_header_values(now)]
            if path and supports_path(request.headers.get_all("Supported")):
                # RFC 3327 §5.3: the stored Path, in the order received, tells the phone its way in.
                headers += [("Path", value) for value in path] + [("Supported", "path")]
            for binding in outcome.added:
                log.info("agent=%s registered contact=%s from %s:%s expires=%ds", username, binding.contact,
                         binding.source[0], binding.source[1], binding.expires_in(now))
            for binding in outcome.removed:
                log.info("agent=%s unregistered contact=%s", username, binding.contact)
        self.signalling.respond(event.transaction_id, outcome.status, to_tag=new_tag(), headers=tuple(headers))
        self._rearm()
        if outcome.status == 200 and (outcome.added or outcome.refreshed or outcome.removed):
            self._watcher(username, "registered" if outcome.added or outcome.refreshed else "unregistered")

    def contacts(self, agent_id: str, now: float) -> list[AgentContact]:
        """(contact URI, address to send to, transport, route set) for each live binding, best first
        (the rule: `acd.registrar.path.binding_contact`)."""
        found = []
        for binding in self.table.lookup(agent_id, now):
            found.append(binding_contact(binding.contact, binding.source, binding.transport, binding.path))
        return found

    def is_agent_address(self, address: tuple[str, int]) -> bool:
        """True when a live binding of a configured agent is reached at `address`."""
        now = self.reactor.seconds()
        agents = self.config.agents
        return any(contact.destination == address for agent_id in (agents.agents if agents else ())
                   for contact in self.contacts(agent_id, now))

    def _rearm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.table.next_deadline()
        if deadline is not None:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()) + 0.01, self._expire)

    def _expire(self) -> None:
        self._timer = None
        removed = self.table.expire(self.reactor.seconds())
        if removed:
            self.store.save_changes(deleted=removed)
            for binding in removed:
                log.info("agent=%s binding expired contact=%s", binding.aor, binding.contact)
        self._rearm()
        for agent_id in dict.fromkeys(binding.aor for binding in removed):
            self._watcher(agent_id, "registration expired")
