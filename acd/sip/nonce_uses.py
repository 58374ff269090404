"""Which of our Digest nonces were used, and with which nonce-count: replay protection. Pure, time passed in.

Rules of this file (RFC 7616 §3.3 and §5.12, RFC 2617 §3.2.2, the Kamailio auth module's
`nonce_count`, Asterisk chan_sip's fresh nonce after every failure):
- With qop=auth a nonce may be reused, but each use must carry a nonce-count strictly greater than
  every earlier one for that nonce (phones reuse a cached nonce with nc+1 for their next requests);
  an equal or smaller nc is a replay.
- Without qop (RFC 2069 form) there is no nc: the nonce serves once.
- A nonce that served a failed attempt (wrong password, unknown user) serves nothing more: the 401
  carries a fresh nonce for the next attempt, so one challenge cannot feed a stream of guesses.
- Memory is bounded: a nonce is tracked from its first use until its lifetime ends, and at most
  `max_tracked` at once (oldest first use forgotten first). Every nonce we forget, and every nonce
  issued before this table started (a restart, a reload), is refused from then on as "history
  unknown": issue times at or below a watermark are refused unless still tracked. A genuine phone
  only sees a 401 with stale=true and retries with a fresh nonce, so forgetting never opens a replay.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["NonceUses", "MAX_NONCE_COUNT"]

# nc-value = 8LHEX (RFC 3261 §25.1): the largest count a client can send. A use without qop records
# it, and a burnt nonce one more, so no nc can follow either.
MAX_NONCE_COUNT = 0xFFFF_FFFF
_BURNT = MAX_NONCE_COUNT + 1
_UNUSED = -1  # below every nc, even a (non-standard) 00000000


class NonceUses:
    """The nonce-counts seen per nonce within its lifetime; decides whether a use is new."""

    def __init__(self, *, lifetime_seconds: float, max_tracked: int) -> None:
        if lifetime_seconds <= 0 or max_tracked < 1:
            raise ValueError("nonce lifetime and the tracked-nonce bound must be positive")
        self.lifetime_seconds = lifetime_seconds
        self.max_tracked = max_tracked
        # nonce -> (issue time, highest nc used); ordered by first use, oldest first.
        self._uses: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._started: float | None = None  # nonces issued before this have an unknown history
        self._forgotten_through = float("-inf")  # ... and so have those issued at or before this

    def start(self, now: float) -> None:
        """Note when tracking began (the first challenge or verification); later calls do nothing."""
        if self._started is None:
            self._started = now

    def use(self, nonce: str, issued: float, nc: int | None, now: float) -> bool:
        """Record a use with nonce-count `nc` (None: no qop); False when it replays an earlier one."""
        self.start(now)
        self._prune(now)
        known = self._uses.get(nonce)
        if known is None:
            if self._history_unknown(issued):
                return False
            self._track(nonce, issued, _UNUSED)
            known = self._uses[nonce]
        highest = known[1]
        if nc is None:
            if highest != _UNUSED:
                return False
            nc = MAX_NONCE_COUNT
        elif nc <= highest:
            return False
        self._uses[nonce] = (issued, nc)
        return True

    def burn(self, nonce: str, issued: float, now: float) -> None:
        """The nonce served a failed attempt: refuse every later use of it."""
        self.start(now)
        self._prune(now)
        if nonce in self._uses:
            self._uses[nonce] = (issued, _BURNT)
        elif not self._history_unknown(issued):
            self._track(nonce, issued, _BURNT)

    def __len__(self) -> int:
        """How many nonces are tracked now."""
        return len(self._uses)

    def _history_unknown(self, issued: float) -> bool:
        return (self._started is not None and issued < self._started) or issued <= self._forgotten_through

    def _track(self, nonce: str, issued: float, highest: int) -> None:
        self._uses[nonce] = (issued, highest)
        while len(self._uses) > self.max_tracked:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        _nonce, (issued, _highest) = self._uses.popitem(last=False)
        self._forgotten_through = max(self._forgotten_through, issued)

    def _prune(self, now: float) -> None:
        """Forget nonces past their lifetime (they are refused as stale before reaching this table).
        First uses come in roughly issue order, so looking at the front is enough to stay bounded."""
        while self._uses:
            issued, _highest = next(iter(self._uses.values()))
            if issued + self.lifetime_seconds >= now:
                return
            self._forget_oldest()
