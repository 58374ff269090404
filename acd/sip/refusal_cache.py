"""The answers sent to refused INVITEs, kept a while for their retransmissions. Pure.

A refusal from admission control is stateless (no transaction), but over UDP the caller
retransmits its INVITE until an answer reaches it (RFC 3261 §17.1.1.2, Timer A), and under load
our answer is often still in our own send path or its INVITE in our receive queue when the
retransmission arrives. Each retransmission gets the very same bytes again (the same To tag, so
the caller sees one answer, §17.2.1) for a dictionary look-up; the caller's ACK for it is matched
and dropped the same way (§17.1.1.3: same branch and CSeq number).

Bounded in count (the oldest forgotten first) and in age: a caller gives up retransmitting after
Timer B = 64*T1 (§17.1.1.2), so nothing older is ever asked for. A retransmission whose entry was
forgotten is decided afresh, which only costs what the first decision cost.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

__all__ = ["RefusalCache", "DEFAULT_MAX_ENTRIES"]

# 8,192 answers of ~400 bytes plus keys: ~5 MB. At 1,000 refusals a second that covers the last 8 s:
# the retransmissions a late answer meets come T1, 3*T1 and 7*T1 after the INVITE (0.5, 1.5, 3.5 s).
DEFAULT_MAX_ENTRIES = 8192


class RefusalCache:
    """Refusals by request key (`RequestPeek.key`), with when they were made."""

    def __init__(self, *, lifetime_seconds: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if lifetime_seconds <= 0 or max_entries < 1:
            raise ValueError("lifetime_seconds and max_entries must be positive")
        self.lifetime_seconds = lifetime_seconds
        self.max_entries = max_entries
        self._answers: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()  # oldest first

    def put(self, key: Hashable, answer: bytes, now: float) -> None:
        """Keep the answer sent to the request `key`."""
        self._expire(now)
        self._answers[key] = (now, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)

    def get(self, key: Hashable, now: float) -> bytes | None:
        """The answer sent to `key`, or None (never refused, or forgotten)."""
        entry = self._answers.get(key)
        if entry is None:
            return None
        if now - entry[0] >= self.lifetime_seconds:
            self._expire(now)
            return None
        return entry[1]

    def __len__(self) -> int:
        """How many answers are kept."""
        return len(self._answers)

    def _expire(self, now: float) -> None:
        answers = self._answers
        while answers:
            at, _ = next(iter(answers.values()))
            if now - at < self.lifetime_seconds:
                return
            answers.popitem(last=False)
