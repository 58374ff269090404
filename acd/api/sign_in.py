"""Web sign-in for agents and supervisors: the password is checked against the digest HA1 in
conf/agents.yaml, guessing is throttled, and a good sign-in opens a session. Pure (time is an argument).

- The password is never stored: HA1 = H(user ":" realm ":" password) is computed for each
  algorithm the account has (MD5, SHA-256) and compared in constant time with the stored one, so
  the SIP password and the web password are the same secret. An unknown user costs the same
  hashing as a known one, and both get the same answer.
- Throttling reuses the SIP registrar's limiter and thresholds (acd/registrar/limiter.py,
  acd/calls/registrar_service.py): one account from one address is blocked after 5 failures a
  minute, an address failing for many accounts after 20, and an account guessed at from anywhere
  is locked for 5 minutes after 30. A blocked attempt is not even checked.
- Each failure is logged as the registrar's `auth failure:` line (transport=HTTP method=LOGIN), so
  the fail2ban filter in conf/fail2ban/ reads web guessing too.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Callable

from ..registrar import FailedAuthLimiter
from ..registrar.auth_log import failure_line
from ..sip.digest import compute_ha1
from .web_sessions import SessionTable, WebSession

__all__ = ["Account", "SignIn", "SignInOutcome", "find_account", "password_matches"]

log = logging.getLogger("acd.registrar")  # the authentication log fail2ban reads (auth_log.py)

# Compared against when the user is unknown, so that an unknown user takes as long as a known one.
_DUMMY_HA1 = {"MD5": "0" * 32, "SHA-256": "0" * 64}


@dataclass(frozen=True, slots=True)
class Account:
    """Who may sign in: an agent or a supervisor, with their HA1s."""

    user: str
    role: str  # "agent" or "supervisor"
    name: str
    ha1: dict[str, str]


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """What a sign-in attempt gave: `result` is "signed-in" (with `session`), "wrong-password"
    (also for unknown users) or "blocked" (too many failures; `retry_after_seconds` says how long)."""

    result: str
    session: WebSession | None = None
    retry_after_seconds: float = 0.0


def find_account(agents_config, user: str) -> Account | None:
    """The account of agent `user` in an AgentsConfig, a supervisor when its role says so (None: no such agent)."""
    if agents_config is None:
        return None
    agent = agents_config.agents.get(user)
    if agent is None:
        return None
    return Account(user=user, role="supervisor" if agent.role == "supervisor" else "agent", name=agent.name,
                   ha1=dict(agent.ha1))


def password_matches(ha1: dict[str, str], user: str, realm: str, password: str) -> bool:
    """True when every stored HA1 (at least one) is H(user:realm:password); constant-time compares."""
    matches = [hmac.compare_digest(compute_ha1(user, realm, password, algorithm).encode(), stored.encode())
               for algorithm, stored in ha1.items()]
    return bool(matches) and all(matches)


class SignIn:
    """Checks passwords and opens sessions. `accounts()` returns the AgentsConfig in force (a reload
    changes who may sign in at once)."""

    def __init__(self, *, sessions: SessionTable, accounts: Callable[[], object]) -> None:
        self.sessions = sessions
        self.accounts = accounts
        self.user_limiter = FailedAuthLimiter(max_failures=5)
        self.limiter = FailedAuthLimiter(max_failures=20)
        self.account_limiter = FailedAuthLimiter(max_failures=30, window_seconds=60, block_seconds=300)
        self.failures = 0

    def sign_in(self, user: str, password: str, *, source: tuple[str, int], now: float) -> SignInOutcome:
        """Check `user`'s password from `source` (address, port) at `now`; open a session if right."""
        ip, user_key = source[0], f"{source[0]} {user}"
        if self.limiter.is_blocked(ip, now) or self.user_limiter.is_blocked(user_key, now):
            self._failed(source, "source-blocked", user)
            return SignInOutcome("blocked", retry_after_seconds=self.user_limiter.block_seconds)
        if self.account_limiter.is_blocked(user, now):
            self._failed(source, "locked", user)
            return SignInOutcome("blocked", retry_after_seconds=self.account_limiter.block_seconds)
        config = self.accounts()
        account = find_account(config, user)
        realm = getattr(config, "realm", "acd")
        good = password_matches(account.ha1 if account else _DUMMY_HA1, user, realm, password) and account is not None
        if not good:
            self.failures += 1
            for limiter, key in ((self.limiter, ip), (self.user_limiter, user_key), (self.account_limiter, user)):
                limiter.record_failure(key, now)
            self._failed(source, "wrong-password" if account is not None else "unknown-user", user)
            return SignInOutcome("wrong-password")
        self.user_limiter.record_success(user_key, now)
        session = self.sessions.open(user=account.user, role=account.role, name=account.name, now=now)
        log.info("web sign-in: user=%s role=%s source=%s", account.user, account.role, ip)
        return SignInOutcome("signed-in", session=session)

    def unlock(self, user: str) -> bool:
        """Clear `user`'s web lock and per-address failures (with the SIP unlock); True if any."""
        found = self.account_limiter.forget(user)
        for key in [key for key in self.user_limiter.keys() if key.endswith(f" {user}")]:
            found = self.user_limiter.forget(key) or found
        return found

    @staticmethod
    def _failed(source: tuple[str, int], reason: str, user: str) -> None:
        log.warning("%s", failure_line(source=source, transport="HTTP", method="LOGIN", reason=reason, user=user))
