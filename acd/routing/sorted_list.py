"""SortedList: a plain list kept in order with `bisect` (standard library only), the building block
of the routing index and of the agents' reservation lists."""

from __future__ import annotations

from bisect import bisect_left, insort

__all__ = ["SortedList"]


class SortedList(list):
    """A list kept sorted; entries are unique tuples. Iteration and len stay C-speed."""

    __slots__ = ()

    def add(self, entry: tuple) -> None:
        """Insert `entry` at its sorted place."""
        insort(self, entry)

    def remove(self, entry: tuple) -> None:  # type: ignore[override]
        """Remove `entry`, which must be present (binary search, not list.remove's scan)."""
        index = bisect_left(self, entry)
        if index == len(self) or self[index] != entry:
            raise KeyError(entry)
        del self[index]

    def rank(self, entry: tuple) -> int:
        """How many entries sort before `entry`."""
        return bisect_left(self, entry)
