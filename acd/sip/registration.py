"""Registering at a carrier (RFC 3261 §10.2): the client side of REGISTER for one trunk, pure.

The shell (acd/calls/trunk_registrations.py) sends what `requests_to_send()` hands out, gives back
each final response (`receive_response`) or the transaction's timeout (`transaction_timed_out`),
and calls `handle_timers(now)` at `next_deadline()` (STYLE 2). What happened comes out as events
(`next_event()`) for logs and metrics.

Rules of this file:
- One REGISTER in flight at a time. All of them share one Call-ID and From tag, CSeq goes up by one
  each (§10.2.4 SHOULD, so the registrar sees one client refreshing, not many).
- Refresh: at `refresh_fraction` (85 %) of the interval the registrar granted (its Contact's expires
  parameter for our Contact, else Expires, §10.2.4), so a lost first try still has time for
  retransmissions before the binding lapses.
- Challenges (401/407, §22.2): answered once with our credentials, in a new REGISTER with CSeq+1.
  The last challenge is kept and the next refresh answers it ahead of time with nc+1 (RFC 7616
  §3.4.5); a registrar that no longer accepts that nonce challenges again and is answered again. A
  challenge to a request that already answered a fresh challenge is a wrong password (unless it
  says stale=true): a failure, not a loop.
- 423 Interval Too Brief (§10.3 step 7): ask again at once with the registrar's Min-Expires.
- Failures: no answer (the transaction's Timer F) or 5xx move to the next proxy (failover). Each
  round tries every proxy, one after the other at once; between rounds the retry waits an exponential
  back-off, `retry_min_seconds` doubling up to `retry_max_seconds` (a 503's Retry-After is honoured
  when longer). Other refusals (403, 404, a wrong password) retry the same proxy after the back-off:
  a config reload or a carrier fix may end them.
- No jitter in the back-off: one server registers a handful of trunks, not a fleet of phones.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .build import new_call_id, new_tag
from .digest_client import Challenge, DigestCredentials, answer_challenge, choose_challenge
from .errors import LocalProtocolError, RemoteProtocolError
from .headers import NameAddr, SipUri
from .message import Headers, Request, Response

__all__ = ["RegistrationClient", "RegistrationSettings", "RegistrationState", "RegistrationStep", "TRANSITIONS",
           "OutgoingRegister",
           "RegistrationDidSucceed", "RegistrationDidFail", "RegistrationDidLapse", "RegistrationEvent"]

Address = tuple[str, int]


class RegistrationState(enum.Enum):
    """Where the client is: nothing sent yet, a REGISTER in flight, bound, or waiting to retry."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


class RegistrationStep(enum.Enum):
    """What moves a client: a REGISTER sent, the registrar's 2xx, a failure (refusal, timeout)."""

    SENT = "sent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_S, _E = RegistrationState, RegistrationStep
# The legal moves. A refresh keeps REGISTERED while it is in flight (the binding is still in force);
# the first REGISTER, and every retry after a failure, is REGISTERING.
TRANSITIONS: dict[RegistrationState, dict[RegistrationStep, RegistrationState]] = {
    _S.UNREGISTERED: {_E.SENT: _S.REGISTERING},
    _S.REGISTERING: {_E.SENT: _S.REGISTERING, _E.SUCCEEDED: _S.REGISTERED, _E.FAILED: _S.FAILED},
    _S.REGISTERED: {_E.SENT: _S.REGISTERED, _E.SUCCEEDED: _S.REGISTERED, _E.FAILED: _S.FAILED},
    _S.FAILED: {_E.SENT: _S.REGISTERING},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationSettings:
    """What to register: `user`@`domain` bound to `contact`, at `proxies` (the first, then backups).

    `retry_min_seconds` 2 and `retry_max_seconds` 300: a carrier that is down for a minute is found
    again within seconds of coming back, one down for hours is asked every 5 minutes (Asterisk's
    res_pjsip_outbound_registration retries every 60 s by default, linphone backs off to ~5 min).
    """

    user: str
    domain: str
    proxies: tuple[Address, ...]
    contact: str
    credentials: DigestCredentials | None = None
    expires_seconds: int = 600
    refresh_fraction: float = 0.85
    retry_min_seconds: float = 2.0
    retry_max_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.proxies:
            raise ValueError("registration needs at least one proxy")
        if self.expires_seconds <= 0:
            raise ValueError("registration expires_seconds must be positive")
        if not 0.1 <= self.refresh_fraction < 1:
            raise ValueError("refresh_fraction must be in [0.1, 1)")
        if not 0 < self.retry_min_seconds <= self.retry_max_seconds:
            raise ValueError("retry back-off needs 0 < retry_min_seconds <= retry_max_seconds")


@dataclass(frozen=True, slots=True)
class OutgoingRegister:
    """A REGISTER to send to `destination` (the shell adds Via and runs the transaction)."""

    request: Request
    destination: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationDidSucceed:
    """The registrar bound our Contact for `expires_seconds`; the next refresh is at `refresh_at`."""

    proxy: Address
    expires_seconds: int
    refresh_at: float
    round_trip_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationDidFail:
    """A REGISTER failed: `reason` is a stable token (timeout, server-error, auth-rejected,
    no-credentials, rejected, bad-response); `status` the SIP status (None: no answer)."""

    proxy: Address
    reason: str
    status: int | None
    retry_at: float
    next_proxy: Address

    def __post_init__(self) -> None:
        if self.reason not in FAILURE_REASONS:
            raise ValueError(f"unknown registration failure reason {self.reason!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationDidLapse:
    """The binding's expiry passed without a successful refresh: calls to us no longer reach us."""

    proxy: Address


RegistrationEvent = RegistrationDidSucceed | RegistrationDidFail | RegistrationDidLapse
FAILURE_REASONS = frozenset({"timeout", "server-error", "auth-rejected", "no-credentials", "rejected",
                             "bad-response"})


@dataclass(slots=True)
class _Cached:
    """The last challenge answered, reused on refreshes with a rising nonce count."""

    challenge: Challenge
    nc: int = 1


@dataclass(slots=True)
class _InFlight:
    cseq: int
    sent_at: float
    answered_fresh_challenge: bool
    retried_interval: bool = False
    expires_asked: int = 0


class RegistrationClient:
    """Keeps one trunk registered. `cnonce_factory` gives a fresh client nonce per challenge
    (tests pass a fixed one); `call_id`/`from_tag` default to fresh random ones."""

    def __init__(self, settings: RegistrationSettings, *, cnonce_factory: Callable[[], str] = new_tag,
                 call_id: str | None = None, from_tag: str | None = None) -> None:
        self.settings = settings
        self.state = RegistrationState.UNREGISTERED
        self.proxy_index = 0
        self.call_id = call_id or new_call_id(settings.domain)
        self.from_tag = from_tag or new_tag()
        self.expires_at: float | None = None  # when our binding lapses (None: not bound)
        self.granted_seconds: int | None = None
        self.last_status: int | None = None
        self.last_reason: str = ""
        self.failures = 0  # consecutive, since the last success
        self._new_cnonce = cnonce_factory
        self._cseq = 0
        self._expires_asked = settings.expires_seconds
        self._cached: _Cached | None = None
        self._in_flight: _InFlight | None = None
        self._send_at: float | None = None  # when the next REGISTER goes (refresh or retry)
        self._outbox: list[OutgoingRegister] = []
        self._events: deque[RegistrationEvent] = deque()

    # ---- what the shell reads ----------------------------------------------------------------
    @property
    def proxy(self) -> Address:
        """The proxy we register at now."""
        return self.settings.proxies[self.proxy_index]

    def registered(self, now: float) -> bool:
        """True while a binding the registrar granted is in force."""
        return self.expires_at is not None and now < self.expires_at

    def next_deadline(self) -> float | None:
        """When `handle_timers` must run next: the refresh or retry, or the binding's expiry."""
        deadlines = [t for t in (self._send_at, self.expires_at) if t is not None]
        return min(deadlines) if deadlines else None

    def requests_to_send(self) -> list[OutgoingRegister]:
        """Every REGISTER queued since the last call."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> RegistrationEvent | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None

    # ---- inputs ------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Send the first REGISTER."""
        if self._in_flight is None:
            self._send(now)

    def handle_timers(self, now: float) -> None:
        """Lapse an expired binding; send the refresh or retry that is due."""
        if self.expires_at is not None and now >= self.expires_at:
            self.expires_at = None
            self._events.append(RegistrationDidLapse(proxy=self.proxy))
        if self._send_at is not None and now >= self._send_at and self._in_flight is None:
            self._send_at = None
            self._send(now)

    def receive_response(self, response: Response, now: float) -> None:
        """A final response to our REGISTER (provisional ones are the transaction's business)."""
        in_flight = self._in_flight
        status = response.status
        if in_flight is None or status < 200 or _cseq_number(response) != in_flight.cseq:
            return
        self._in_flight = None
        self.last_status = status
        if 200 <= status < 300:
            self._succeeded(response, in_flight, now)
        elif status in (401, 407):
            self._challenged(response, in_flight, now)
        elif status == 423 and not in_flight.retried_interval:
            self._interval_too_brief(response, in_flight, now)
        elif 500 <= status < 600:
            retry_after = _retry_after_seconds(response)
            self._fail("server-error", status, now, failover=True, at_least=retry_after)
        else:
            self._fail("rejected", status, now, failover=False)

    def transaction_timed_out(self, now: float) -> None:
        """No final response to our REGISTER at all (Timer F)."""
        if self._in_flight is None:
            return
        self._in_flight = None
        self.last_status = None
        self._fail("timeout", None, now, failover=True)

    # ---- the steps ---------------------------------------------------------------------------
    def _move(self, step: RegistrationStep) -> None:
        following = TRANSITIONS[self.state].get(step)
        if following is None:
            raise LocalProtocolError(f"registration of {self.settings.user}@{self.settings.domain}: "
                                     f"{step.value} is not possible in state {self.state.value}")
        self.state = following

    def _send(self, now: float, *, challenge: Challenge | None = None, retried_interval: bool = False) -> None:
        settings = self.settings
        self._cseq += 1
        uri = f"sip:{settings.domain}"
        address = f"<sip:{settings.user}@{settings.domain}>"
        headers = Headers()
        headers.add("From", f"{address};tag={self.from_tag}")
        headers.add("To", address)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self._cseq} REGISTER")
        headers.add("Contact", settings.contact)
        headers.add("Expires", str(self._expires_asked))
        answered_fresh = False
        credentials = settings.credentials
        if credentials is not None:
            if challenge is not None:
                self._cached = _Cached(challenge)
                answered_fresh = True
            elif self._cached is not None:
                self._cached.nc += 1
            if self._cached is not None:
                name, value = answer_challenge(self._cached.challenge, credentials, method="REGISTER", uri=uri,
                                               cnonce=self._new_cnonce(), nc=self._cached.nc)
                headers.add(name, value)
        self._in_flight = _InFlight(cseq=self._cseq, sent_at=now, answered_fresh_challenge=answered_fresh,
                                    retried_interval=retried_interval, expires_asked=self._expires_asked)
        self._move(RegistrationStep.SENT)
        self._outbox.append(OutgoingRegister(Request(method="REGISTER", uri=uri, headers=headers), self.proxy))

    def _succeeded(self, response: Response, in_flight: _InFlight, now: float) -> None:
        granted = _granted_seconds(response, self.settings.contact, in_flight.expires_asked)
        if granted is None or granted <= 0:
            self._fail("bad-response", response.status, now, failover=False)
            return
        self._move(RegistrationStep.SUCCEEDED)
        self.failures = 0
        self.last_reason = ""
        self.granted_seconds = granted
        self.expires_at = now + granted
        self._send_at = now + granted * self.settings.refresh_fraction
        self._events.append(RegistrationDidSucceed(proxy=self.proxy, expires_seconds=granted,
                                                   refresh_at=self._send_at, round_trip_seconds=now - in_flight.sent_at))

    def _challenged(self, response: Response, in_flight: _InFlight, now: float) -> None:
        credentials = self.settings.credentials
        if credentials is None:
            self._fail("no-credentials", response.status, now, failover=False)
            return
        challenge = choose_challenge(response.status, response.headers, credentials)
        if challenge is None:
            self._cached = None
            self._fail("no-credentials", response.status, now, failover=False)
            return
        if in_flight.answered_fresh_challenge and not challenge.stale:
            self._cached = None
            self._fail("auth-rejected", response.status, now, failover=False)
            return
        self._send(now, challenge=challenge)

    def _interval_too_brief(self, response: Response, in_flight: _InFlight, now: float) -> None:
        try:
            minimum = int(response.headers.get("Min-Expires", "") or "")
        except ValueError:
            self._fail("bad-response", response.status, now, failover=False)
            return
        self._expires_asked = max(minimum, 1)
        self._send(now, retried_interval=True)

    def _fail(self, reason: str, status: int | None, now: float, *, failover: bool,
              at_least: float | None = None) -> None:
        failed_proxy = self.proxy
        self.failures += 1
        self.last_reason = reason
        self._move(RegistrationStep.FAILED)
        proxies = len(self.settings.proxies)
        if failover and proxies > 1:
            self.proxy_index = (self.proxy_index + 1) % proxies
        if failover and self.failures % proxies:
            delay = 0.0  # a proxy of this round is untried: try it at once
        else:
            rounds = self.failures // proxies if failover else self.failures
            delay = min(self.settings.retry_min_seconds * 2 ** max(rounds - 1, 0), self.settings.retry_max_seconds)
        if at_least is not None:
            delay = max(delay, min(at_least, self.settings.retry_max_seconds))
        self._send_at = now + delay
        self._events.append(RegistrationDidFail(proxy=failed_proxy, reason=reason, status=status,
                                                retry_at=self._send_at, next_proxy=self.proxy))


def _cseq_number(response: Response) -> int | None:
    try:
        return int((response.headers.get("CSeq", "") or "").split()[0])
    except (ValueError, IndexError):
        return None


def _retry_after_seconds(response: Response) -> float | None:
    """Retry-After's delta-seconds (§20.33), comments and parameters ignored."""
    value = (response.headers.get("Retry-After", "") or "").split(";")[0].split("(")[0].strip()
    return float(value) if value.isdigit() else None


def _granted_seconds(response: Response, contact: str, asked: int) -> int | None:
    """The interval the registrar granted our Contact (§10.2.4): the expires parameter of our Contact
    in the 200, else its Expires header, else what we asked for (a registrar that says nothing)."""
    try:
        ours = SipUri.parse(NameAddr.parse(contact).uri)
    except RemoteProtocolError:
        ours = None
    for value in response.headers.get_all("Contact"):
        try:
            binding = NameAddr.parse(value)
            uri = SipUri.parse(binding.uri)
        except RemoteProtocolError:
            continue
        if ours is not None and (uri.user, uri.host.lower(), uri.port) == (ours.user, ours.host.lower(), ours.port):
            expires = binding.params.get("expires")
            if expires is not None and expires.isdigit():
                return int(expires)
    expires_header = (response.headers.get("Expires", "") or "").strip()
    if expires_header.isdigit():
        return int(expires_header)
    return asked

