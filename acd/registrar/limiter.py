"""Failed-authentication limiter, fail2ban-like: too many failed REGISTERs from one source -> blocked. Pure.

The shell asks `is_blocked` before checking credentials (and drops or answers 403 without digesting),
calls `record_failure` for an `AuthResult` whose `counts_as_failure` is true (a missing Authorization
or a stale nonce is not a failure: every phone meets those on a normal REGISTER), and `record_success`
after a good one. Time is an argument (STYLE 2).

Defaults: 5 failures within 60 s, blocked for 300 s. A phone with a mistyped password fails once
per retry (softphones back off to one attempt every 30-60 s), so it takes minutes to reach 5 in a
minute; a password-guessing script reaches it in under a second and is then held to 5 guesses per
6 minutes. fail2ban's own defaults are maxretry=5, findtime and bantime 10 minutes; the shorter block
here is because agents of one office share a NAT address, and one bad phone must not keep the whole
room out for long.

Memory is bounded: a source is forgotten once it is neither blocked nor has a failure in the window,
and at most `max_tracked_sources` are tracked (10,000 x ~200 bytes = ~2 MB); past that, the least
recently active source is forgotten first. A flood from more addresses than that (IPv6 makes it
cheap) can therefore evict older blocks: the limiter slows guessing, it is not a firewall.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["FailedAuthLimiter"]


@dataclass(slots=True)
class _Source:
    failures: deque[float] = field(default_factory=deque)  # times within the window, oldest first
    blocked_until: float | None = None


class FailedAuthLimiter:
    """Counts authentication failures per source address and blocks the noisy ones for a while."""

    def __init__(self, *, max_failures: int = 5, window_seconds: float = 60, block_seconds: float = 300,
                 max_tracked_sources: int = 10_000) -> None:
        if max_failures < 1 or window_seconds <= 0 or block_seconds <= 0 or max_tracked_sources < 1:
            raise ValueError("limiter settings must be positive")
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.block_seconds = block_seconds
        self.max_tracked_sources = max_tracked_sources
        # Ordered by last activity, least recent first: the front is what `_forget_idle` looks at.
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def record_failure(self, source_ip: str, now: float) -> None:
        """Count one failed authentication; the `max_failures`-th within the window starts a block."""
        self._forget_idle(now)
        source = self._sources.get(source_ip)
        if source is None:
            source = self._sources[source_ip] = _Source()
        self._sources.move_to_end(source_ip)
        if self._blocked(source, now):
            return  # already blocked: the block is not extended by what it keeps out
        self._drop_old_failures(source, now)
        source.failures.append(now)
        if len(source.failures) >= self.max_failures:
            source.failures.clear()
            source.blocked_until = now + self.block_seconds
        while len(self._sources) > self.max_tracked_sources:
            self._sources.popitem(last=False)

    def record_success(self, source_ip: str, now: float) -> None:
        """A good authentication forgets the source's failures (not a running block)."""
        source = self._sources.get(source_ip)
        if source is not None and not self._blocked(source, now):
            del self._sources[source_ip]

    def forget(self, key: str) -> bool:
        """Drop a key's failures and block (an operator's unlock); True if it was tracked."""
        return self._sources.pop(key, None) is not None

    def is_blocked(self, source_ip: str, now: float) -> bool:
        """True while the source's block lasts."""
        source = self._sources.get(source_ip)
        return source is not None and self._blocked(source, now)

    def blocked_count(self, now: float) -> int:
        """How many sources are blocked at `now` (a gauge for the metrics)."""
        return sum(1 for source in self._sources.values() if self._blocked(source, now))

    def keys(self) -> list[str]:
        """The tracked keys (sources, or "source user" pairs)."""
        return list(self._sources)

    def __len__(self) -> int:
        """How many sources are tracked (blocked, or with recent failures)."""
        return len(self._sources)

    @staticmethod
    def _blocked(source: _Source, now: float) -> bool:
        return source.blocked_until is not None and now < source.blocked_until

    def _drop_old_failures(self, source: _Source, now: float) -> None:
        while source.failures and source.failures[0] <= now - self.window_seconds:
            source.failures.popleft()

    def _forget_idle(self, now: float) -> None:
        while self._sources:
            source_ip, source = next(iter(self._sources.items()))
            self._drop_old_failures(source, now)
            if source.failures or self._blocked(source, now):
                return
            del self._sources[source_ip]
