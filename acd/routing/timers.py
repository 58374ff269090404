"""Deadlines the routing core reports to the shell (one timer armed at a time).

Entries are never cancelled: each one names its target record and the deadline the record
held when it was scheduled, and the engine checks on expiry that the record still exists and
still holds that deadline (lazy deletion, as `heapq` suggests). Stale heads are dropped when
the next deadline is asked for, so the shell never arms a timer for nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

__all__ = ["TimerQueue"]


class TimerQueue:
    """A heap of (deadline, sequence, kind, target, detail)."""

    __slots__ = ("_heap", "_sequence")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Any, Any]] = []
        self._sequence = 0

    def schedule(self, deadline: float, kind: str, target: Any, detail: Any = None) -> None:
        """Remember that `kind` is due for `target` at `deadline`."""
        self._sequence += 1
        heapq.heappush(self._heap, (deadline, self._sequence, kind, target, detail))

    def next_deadline(self, is_live: Callable[[str, Any, Any, float], bool]) -> float | None:
        """The earliest live deadline, dropping stale heads."""
        heap = self._heap
        while heap:
            deadline, _seq, kind, target, detail = heap[0]
            if is_live(kind, target, detail, deadline):
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> tuple[float, str, Any, Any] | None:
        """Remove and return the earliest entry due at or before `now`, if any."""
        heap = self._heap
        if heap and heap[0][0] <= now:
            deadline, _seq, kind, target, detail = heapq.heappop(heap)
            return deadline, kind, target, detail
        return None

    def __len__(self) -> int:
        return len(self._heap)
