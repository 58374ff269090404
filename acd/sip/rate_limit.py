"""Per-source request budgets (token buckets) and a once-per-interval report throttle. Pure.

`TokenBuckets.allow(key, budget, now)` spends one token of `key`'s bucket: a bucket holds at most
`budget.burst` tokens and refills `budget.per_second` tokens a second, so a source may send a burst
and then its sustained rate, and is refused beyond it. The budget is passed at each call, so one
table serves sources of different kinds (trunks, agents' phones, strangers); a source whose budget
changes (a phone that just registered) starts afresh under the new one, with a full bucket. A budget
of 0 per second is no limit: nothing is tracked for it.

`ReportThrottle.report(key, now)` says when to write a log line for a repeated event: the first of a
key, then at most one per interval, carrying how many events it stands for. A flood is then a few
log lines, not one per packet (which would be a second flood, onto the disk).

Time is an argument (STYLE 2). Memory is bounded: an entry is forgotten once it holds nothing a fresh
one would not (a full bucket; a report interval over with nothing pending), and at most `max_tracked`
keys are kept, the least recently used going first. A flood from more addresses than that (IPv6
makes it cheap) can therefore reset some buckets: the limiter bounds what one source costs, it is
not a firewall.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Budget", "ReportThrottle", "TokenBuckets", "UNLIMITED"]

# 10,000 sources x ~150 bytes = ~1.5 MB, the same bound as the registrar's FailedAuthLimiter.
DEFAULT_MAX_TRACKED = 10_000
# Clock arithmetic in floats: a request exactly one interval after the last must find its token.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Budget:
    """A token bucket's shape: `per_second` tokens a second, at most `burst` saved up; 0/s is no limit."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_second < 0 or self.burst < 0:
            raise ValueError(f"a budget cannot be negative ({self.per_second}/s, burst {self.burst})")
        if self.per_second > 0 and self.burst < 1:
            raise ValueError(f"a limited budget needs a burst of at least 1 request, not {self.burst}")

    @property
    def unlimited(self) -> bool:
        """True when nothing is counted."""
        return self.per_second == 0


UNLIMITED = Budget(per_second=0, burst=0)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float
    budget: Budget

    def refill(self, now: float) -> float:
        return min(self.budget.burst, self.tokens + max(0.0, now - self.updated_at) * self.budget.per_second)


class TokenBuckets:
    """One token bucket per key (a source address)."""

    def __init__(self, *, max_tracked: int = DEFAULT_MAX_TRACKED) -> None:
        if max_tracked < 1:
            raise ValueError("max_tracked must be at least 1")
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def allow(self, key: str, budget: Budget, now: float) -> bool:
        """Spend one token of `key` under `budget`; False (nothing spent) when its bucket is empty."""
        if budget.unlimited:
            self._buckets.pop(key, None)
            return True
        self._forget_full(now)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.budget != budget:  # new, or its kind changed: a full bucket
            self._buckets.pop(key, None)
            bucket = self._buckets[key] = _Bucket(tokens=budget.burst, updated_at=now, budget=budget)
        else:
            bucket.tokens = bucket.refill(now)
            bucket.updated_at = now
            self._buckets.move_to_end(key)
        allowed = bucket.tokens >= 1 - _EPSILON
        if allowed:
            bucket.tokens = max(0.0, bucket.tokens - 1)
        while len(self._buckets) > self.max_tracked:
            self._buckets.popitem(last=False)
        return allowed

    def tokens(self, key: str, now: float) -> float | None:
        """The tokens `key` has at `now` (None: untracked, i.e. a full bucket)."""
        bucket = self._buckets.get(key)
        return bucket.refill(now) if bucket is not None else None

    def __len__(self) -> int:
        """How many keys are tracked."""
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        while self._buckets:
            key, bucket = next(iter(self._buckets.items()))
            if bucket.refill(now) < bucket.budget.burst:
                return
            del self._buckets[key]


@dataclass(slots=True)
class _Reported:
    at: float
    pending: int = 0


class ReportThrottle:
    """When to log a repeated event of a key: the first, then at most one per `interval_seconds`."""

    def __init__(self, *, interval_seconds: float = 10.0, max_tracked: int = DEFAULT_MAX_TRACKED) -> None:
        if interval_seconds <= 0 or max_tracked < 1:
            raise ValueError("interval_seconds and max_tracked must be positive")
        self.interval_seconds = interval_seconds
        self.max_tracked = max_tracked
        self._keys: OrderedDict[str, _Reported] = OrderedDict()  # by last report, oldest first

    def report(self, key: str, now: float) -> int | None:
        """Count one event of `key`. When a line is due, return how many events it stands for (this
        one and those not reported since the last line); otherwise None."""
        while self._keys:
            oldest, entry = next(iter(self._keys.items()))
            if now - entry.at < self.interval_seconds or entry.pending:
                break
            del self._keys[oldest]
        entry = self._keys.get(key)
        if entry is not None and now - entry.at < self.interval_seconds:
            entry.pending += 1
            return None
        count = 1 + (entry.pending if entry is not None else 0)
        self._keys[key] = _Reported(at=now)
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_tracked:
            self._keys.popitem(last=False)
        return count

    def __len__(self) -> int:
        """How many keys are tracked."""
        return len(self._keys)
