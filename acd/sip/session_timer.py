# SPDX-License-Identifier: MIT
"""Session timers (RFC 4028) for a dialog we answered: the negotiation and the two deadlines.

A UAC asks for a session timer with `Session-Expires: N;refresher=uac|uas` and `Supported: timer`
in its INVITE (or a later re-INVITE or UPDATE). `negotiate(request, ...)` reads those headers and
says what to do: refuse with 422 and our Min-SE (§9: the interval is below our minimum), run
no timer (the UAC asked for none), or run one with an interval and a refresher, and which headers
go into our 2xx. `SessionTimer` then keeps two deadlines, as transactions keep theirs (STYLE 2):

- when we are the refresher, a refresh (re-INVITE or UPDATE) is due at half the interval (§10);
- whoever refreshes, the session expires when no refresh succeeded by the interval minus
  min(32 s, interval/3) (§10: "the session is considered terminated ... BYE").

Pure: time is an argument, the shell arms one timer at `next_deadline()` and asks `due(now)`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import RemoteProtocolError
from .headers import parse_params
from .message import Request

__all__ = ["DEFAULT_INTERVAL_SECONDS", "MIN_SE_SECONDS", "SessionTimer", "TimerAction", "TimerTerms",
           "expiry_margin", "negotiate", "peer_allows_update"]

# RFC 4028 §4: "the minimum allowed value ... is 90 seconds"; Min-SE defaults to it (§5).
MIN_SE_SECONDS = 90
# RFC 4028 §4 recommends 1800 s (30 min) when the UAC does not say; what most trunks send too.
DEFAULT_INTERVAL_SECONDS = 1800
# §10: the refresher-independent margin before the interval ends: min(32 s, interval/3).
MAX_EXPIRY_MARGIN_SECONDS = 32


class TimerAction(enum.Enum):
    """What a due session timer asks of the shell."""

    REFRESH = "refresh"  # we are the refresher: send a re-INVITE or UPDATE now
    EXPIRE = "expire"    # no refresh succeeded in time: BYE, the session is over


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerTerms:
    """The session timer agreed for a dialog: `interval_seconds` (Session-Expires), who refreshes
    ("uac" or "uas"; we are the UAS) and whether the UAC supports the extension (then our 2xx says
    `Require: timer`, §9)."""

    interval_seconds: int
    refresher: str
    uac_supports: bool

    def __post_init__(self) -> None:
        if self.refresher not in ("uac", "uas"):
            raise ValueError(f"refresher must be 'uac' or 'uas', not {self.refresher!r}")
        if self.interval_seconds < 1:
            raise ValueError(f"interval_seconds must be at least 1, not {self.interval_seconds}")

    @property
    def we_refresh(self) -> bool:
        """True when we (the UAS) send the refreshes."""
        return self.refresher == "uas"

    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """Session-Expires (and Require: timer when the UAC supports it) for our 2xx (§9)."""
        headers = [("Session-Expires", f"{self.interval_seconds};refresher={self.refresher}")]
        if self.uac_supports:
            headers.append(("Require", "timer"))
        headers.append(("Supported", "timer"))
        return tuple(headers)

    def refresh_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers of a refresh we send as the UAS refresher (§7.4: we stay the refresher)."""
        return (("Session-Expires", f"{self.interval_seconds};refresher=uas"), ("Supported", "timer"))


def _delta_seconds(text: str, header: str) -> int:
    """`delta-seconds` (RFC 3261 §25.1: 1*DIGIT) at the start of a header value; 400 otherwise."""
    value = text.split(";", 1)[0].strip()
    if not value.isdigit():
        raise RemoteProtocolError(f"{header} {text!r} is not a number of seconds", 400)
    return int(value)


def negotiate(request: Request, *, min_seconds: int, default_seconds: int) -> TimerTerms | None:
    """The session timer a UAS answers `request` (an INVITE, re-INVITE or UPDATE) with (§9).

    None when the UAC asks for none (neither Session-Expires nor `timer` in Supported). Raises
    `RemoteProtocolError` 422 with our `Min-SE` when the interval asked is below `min_seconds`
    (§9: "the UAS MUST reject it with a 422"), 400 on a malformed header. Without Session-Expires
    (but `Supported: timer`) the interval is `default_seconds`. The refresher is the one the UAC
    named; else the UAC when it supports the extension, and us when it does not (§9).
    """
    supported = any(tag.strip().lower() == "timer" for tag in request.headers.get_all("Supported"))
    expires = request.headers.get("Session-Expires")
    if expires is None and not supported:
        return None
    min_se = request.headers.get("Min-SE")
    floor = max(min_seconds, _delta_seconds(min_se, "Min-SE") if min_se is not None else 0)
    if expires is None:
        return TimerTerms(interval_seconds=max(default_seconds, floor), refresher="uac", uac_supports=True)
    interval = _delta_seconds(expires, "Session-Expires")
    if interval < min_seconds:
        raise RemoteProtocolError(f"Session-Expires {interval} s is below our minimum of {min_seconds} s", 422,
                                  headers=(("Min-SE", str(min_seconds)),))
    asked = parse_params(expires.partition(";")[2]).get("refresher")
    asked = asked.strip().lower() if asked else None
    if asked not in ("uac", "uas") or not supported:
        asked = "uac" if supported else "uas"  # §9: a UAC without the extension cannot refresh for it
    return TimerTerms(interval_seconds=max(interval, floor), refresher=asked, uac_supports=supported)


def peer_allows_update(request: Request) -> bool:
    """True when the peer's INVITE lists UPDATE in Allow (RFC 3311): our refresh can be an UPDATE
    without a body (RFC 4028 §7.4 prefers it), not a re-INVITE with an offer."""
    return any(method.strip().upper() == "UPDATE" for method in request.headers.get_all("Allow"))


def expiry_margin(interval_seconds: float) -> float:
    """§10: how long before the interval ends the session counts as expired: min(32, interval/3)."""
    return min(MAX_EXPIRY_MARGIN_SECONDS, interval_seconds / 3)


class SessionTimer:
    """The deadlines of one dialog's session timer (§10). `start(terms, now)` at the 2xx that agreed
    it and at every successful refresh; `due(now)` says what is due at `now`."""

    def __init__(self, terms: TimerTerms, now: float) -> None:
        self.terms = terms
        self.refresh_at: float | None = None
        self.expires_at = now
        self.start(terms, now)

    def start(self, terms: TimerTerms, now: float) -> None:
        """(Re)start at `now` under `terms` (a refresh may change the interval or the refresher)."""
        self.terms = terms
        interval = terms.interval_seconds
        self.refresh_at = now + interval / 2 if terms.we_refresh else None
        self.expires_at = now + interval - expiry_margin(interval)

    def next_deadline(self) -> float:
        """When `due` must next be asked."""
        return self.expires_at if self.refresh_at is None else min(self.refresh_at, self.expires_at)

    def due(self, now: float) -> TimerAction | None:
        """What is due at `now`: expiry first, then our refresh (asked once per start)."""
        if now >= self.expires_at:
            return TimerAction.EXPIRE
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_at = None  # in flight: its 2xx restarts the timer
            return TimerAction.REFRESH
        return None
