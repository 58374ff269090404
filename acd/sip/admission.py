"""Admission control: may a new call start now? Decided before anything is allocated. Pure.

Past its capacity a SIP server collapses unless it refuses the excess early and cheaply (RFC 6357
§3, "congestion collapse"): every call it takes on top slows every call, callers retransmit their
INVITEs, and the retransmissions crowd out the calls in progress. So each new call (an INVITE
outside any dialog) meets three limits before any transaction, dialog, RTP port or record exists:

- `MAX_CALLS`: calls in progress at the ceiling. Each holds an RTP port and its share of the media
  work; "auto" is three quarters of the RTP range's legs (a quarter stays for agents' legs), and at
  most what one process was measured to carry (`MEASURED_MAX_CALLS`).
- `RATE`: more new calls a second than the ceiling (a token bucket: a burst of `BURST_SECONDS` of
  calls, then the rate). Setting a call up is the costliest thing the server does (parse, SDP, a
  socket, an IVR, records); "auto" is the measured clean rate (`MEASURED_NEW_CALLS_PER_SECOND`).
- `OVERLOAD`: the event loop runs late (`LoopLag`), whatever the ceilings say: the process cannot
  keep up now (a slower machine, a neighbour taking the CPU, media load).

Priorities: a new call from a source that is not a trunk (an agent's feature code, a stranger) is
refused as `PRIORITY` as soon as the loop is merely busy (half the overload lag), so trunk calls
keep what capacity is left. Requests inside dialogs (ACK, BYE, re-INVITE), CANCEL, REGISTER and
responses never meet admission: the shell passes them on, so calls already taken still complete.

The shell calls `decide` per new call, `tick` from a periodic timer (the lag is how late it runs)
and logs `summary` (at most one a `SUMMARY_SECONDS`) instead of a line per refusal. Time is an
argument (STYLE 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from .rate_limit import UNLIMITED, Budget, TokenBuckets

__all__ = ["Admission", "Ceilings", "LagSample", "LoopLag", "Summary", "auto_max_calls", "MAX_CALLS", "RATE",
           "OVERLOAD", "PRIORITY", "REASONS", "MEASURED_MAX_CALLS", "MEASURED_NEW_CALLS_PER_SECOND", "OVERLOAD_TICKS",
           "TICK_SECONDS"]

# Why a new call was refused (the label of acd_admission_refused_total; call set-up adds "no_rtp_port").
MAX_CALLS, RATE, OVERLOAD, PRIORITY = "max_calls", "rate", "overload", "priority"
REASONS = (MAX_CALLS, RATE, OVERLOAD, PRIORITY)

# What one process was measured to carry on a quiet 2-vCPU machine with SIPp on the same cores
# (scripts/bench/README.md): 500 concurrent calls with media both ways clean (0 lost, mean jitter p99
# 1.0 ms; 1,000 lose 69,000 packets: the media worker is the limit), and the demo IVR clean at 550 new
# calls a second at the INFO log level (700/s: 2 runs of 3). 400/s leaves room for refusing as many
# again: at twice 400 offered, every overload target held (overload_bench.py). Measure your own box
# and set `sip: admission:` when it differs; these are only what "auto" means.
MEASURED_MAX_CALLS = 500
MEASURED_NEW_CALLS_PER_SECOND = 400.0
# The rate ceiling's burst: 50 ms of calls may arrive at once. Half a second (the first choice) let
# 200 calls in at once at 400/s whenever capacity freed up, and at ~1.4 ms of set-up each the last
# waited ~280 ms (overload_bench.py concurrent --max-calls 500: INVITE->200 p99 190 ms with the call
# process at 26 % of a core). Calls over it get 503 with Retry-After and come back.
BURST_SECONDS = 0.05
# The lag timer's period, and how many ticks running must be late (or on time again) to change state:
# one late tick is a GC pause or a descheduled process; three running (~0.15 s and more) is overload.
TICK_SECONDS = 0.05
OVERLOAD_TICKS = 3
# After a refusal for the rate, OPTIONS get 503 for this long (the offered load is over the ceiling).
RATE_REFUSAL_SHOWS_SECONDS = 1.0
# At most one summary line this often.
SUMMARY_SECONDS = 1.0


def auto_max_calls(legs: int) -> int:
    """The ceiling on calls in progress for an RTP range of `legs` call legs: three quarters of them
    (a quarter for agents' legs), at most MEASURED_MAX_CALLS."""
    return max(1, min(legs * 3 // 4, MEASURED_MAX_CALLS))


@dataclass(frozen=True, slots=True)
class Ceilings:
    """The limits in force: calls in progress, new calls a second (0: no limit) and the event-loop lag
    that means overload (0: not watched)."""

    max_calls: int
    new_calls_per_second: float
    overload_loop_lag_seconds: float

    def __post_init__(self) -> None:
        if self.max_calls < 1 or self.new_calls_per_second < 0 or self.overload_loop_lag_seconds < 0:
            raise ValueError(f"bad admission ceilings: {self}")

    @property
    def budget(self) -> Budget:
        """The token bucket of new calls."""
        rate = self.new_calls_per_second
        return Budget(rate, max(1.0, rate * BURST_SECONDS)) if rate > 0 else UNLIMITED


@dataclass(frozen=True, slots=True)
class LagSample:
    """One tick of the lag timer: how late it ran, and whether overload began or ended with it."""

    lag_seconds: float
    overload_began: bool = False
    overload_ended: bool = False


class LoopLag:
    """How late a periodic tick runs (the event loop's lag), and overload with hysteresis: it begins
    after OVERLOAD_TICKS ticks running at least `threshold_seconds` late, and ends after as many
    under half of it. A threshold of 0 watches nothing."""

    def __init__(self, *, threshold_seconds: float, interval_seconds: float = TICK_SECONDS) -> None:
        self.threshold_seconds = threshold_seconds
        self.interval_seconds = interval_seconds
        self.overloaded = False
        self.overloaded_since: float | None = None
        self.last_lag_seconds = 0.0
        self._due: float | None = None
        self._late = self._on_time = 0

    @property
    def busy(self) -> bool:
        """Overloaded, or the last tick ran at least half the threshold late."""
        threshold = self.threshold_seconds
        return self.overloaded or (threshold > 0 and self.last_lag_seconds >= threshold / 2)

    def start(self, now: float) -> None:
        """The timer was armed at `now`: the first tick is due one interval later."""
        self._due = now + self.interval_seconds

    def tick(self, now: float) -> LagSample:
        """The timer ran at `now` (and is armed again for one interval later)."""
        lag = max(0.0, now - self._due) if self._due is not None else 0.0
        self._due = now + self.interval_seconds
        self.last_lag_seconds = lag
        threshold = self.threshold_seconds
        if threshold <= 0:
            ended = self.overloaded
            self.overloaded, self.overloaded_since = False, None
            return LagSample(lag, overload_ended=ended)
        late, on_time = lag >= threshold, lag < threshold / 2
        self._late = self._late + 1 if late else 0
        self._on_time = self._on_time + 1 if on_time else 0
        if not self.overloaded and self._late >= OVERLOAD_TICKS:
            self.overloaded, self.overloaded_since = True, now
            return LagSample(lag, overload_began=True)
        if self.overloaded and self._on_time >= OVERLOAD_TICKS:
            self.overloaded, self.overloaded_since = False, None
            return LagSample(lag, overload_ended=True)
        return LagSample(lag)


@dataclass(frozen=True, slots=True)
class Summary:
    """What admission control did since the last summary."""

    seconds: float
    admitted: int
    refused: tuple[tuple[str, int], ...]  # (reason, count), reasons with a count only
    resent: int  # retransmitted INVITEs of refused calls answered again

    @property
    def refused_total(self) -> int:
        """New calls refused, whatever the reason."""
        return sum(count for _, count in self.refused)


class Admission:
    """Decides about new calls under `ceilings` (replace them with `reconfigure`)."""

    def __init__(self, ceilings: Ceilings, *, now: float) -> None:
        self.ceilings = ceilings
        self.lag = LoopLag(threshold_seconds=ceilings.overload_loop_lag_seconds)
        self._bucket = TokenBuckets(max_tracked=1)
        self._budget = ceilings.budget
        self._last_rate_refusal: float | None = None
        self._summary_at = now - SUMMARY_SECONDS  # the first refusal is reported at once
        self._admitted = self._resent = 0
        self._refused = dict.fromkeys(REASONS, 0)
        self.admitted_total = 0
        self.refused_total = 0

    def reconfigure(self, ceilings: Ceilings) -> None:
        """New ceilings (a reload); the lag history and the bucket's level are kept."""
        self.ceilings = ceilings
        self._budget = ceilings.budget
        self.lag.threshold_seconds = ceilings.overload_loop_lag_seconds

    def decide(self, now: float, *, active_calls: int, trunk: bool) -> str | None:
        """May a new call start? None (admitted, counted against the rate) or why not. `active_calls`:
        calls in progress; `trunk`: it comes from a configured trunk (not an agent or a stranger)."""
        lag = self.lag
        if lag.overloaded:
            reason = OVERLOAD
        elif not trunk and lag.busy:
            reason = PRIORITY
        elif active_calls >= self.ceilings.max_calls:
            reason = MAX_CALLS
        elif not self._bucket.allow("new calls", self._budget, now):
            reason = RATE
            self._last_rate_refusal = now
        else:
            self._admitted += 1
            self.admitted_total += 1
            return None
        self._refused[reason] += 1
        self.refused_total += 1
        return reason

    def refusal_resent(self) -> None:
        """A retransmission of a refused INVITE was answered again (from the refusal cache)."""
        self._resent += 1

    def overloaded(self, now: float, *, active_calls: int) -> bool:
        """True while new calls are being refused for capacity: the loop is overloaded, the calls are
        at their ceiling, or a call was refused for the rate within RATE_REFUSAL_SHOWS_SECONDS. OPTIONS
        then get 503, so a load balancer sends new calls elsewhere."""
        last = self._last_rate_refusal
        return (self.lag.overloaded or active_calls >= self.ceilings.max_calls
                or (last is not None and now - last < RATE_REFUSAL_SHOWS_SECONDS))

    def tick(self, now: float) -> LagSample:
        """The lag timer ran at `now`."""
        return self.lag.tick(now)

    def summary(self, now: float) -> Summary | None:
        """What happened since the last summary, once SUMMARY_SECONDS have passed since it and some
        call was refused (or a refusal resent); otherwise None. Called at each refusal and each tick,
        so the first refusal after a quiet time is reported at once and the rest once a second."""
        if now - self._summary_at < SUMMARY_SECONDS:
            return None
        refused = tuple((reason, count) for reason, count in self._refused.items() if count)
        if not refused and not self._resent:  # a quiet window: slide it, so that a summary covers the
            self._summary_at = now - SUMMARY_SECONDS  # last second or so, not the hours before
            self._admitted = 0
            return None
        summary = Summary(seconds=now - self._summary_at, admitted=self._admitted, refused=refused,
                          resent=self._resent)
        self._summary_at = now
        self._admitted = self._resent = 0
        self._refused = dict.fromkeys(REASONS, 0)
        return summary
