"""Business hours and holiday calendars, per time zone. Pure: the instant is passed in.

`BusinessHours.is_open(now)` answers for a POSIX timestamp: the local date is a holiday → closed;
otherwise open when the local time lies in one of that weekday's ranges (start inclusive, end
exclusive). Ranges may not cross midnight: write `22:00-24:00` and `00:00-06:00` instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

__all__ = ["BusinessHours", "WEEKDAYS", "parse_time_range"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_time_range(text: str) -> tuple[int, int]:
    """'08:30-17:00' → (510, 1020) minutes after midnight; raises ValueError with the reason."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start, end = _minutes(start_text), _minutes(end_text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time range like 08:00-18:00") from None
    if not start < end:
        raise ValueError(f"time range {text!r} ends before it starts (split ranges that cross midnight)")
    return start, end


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not (0 <= int(minutes) < 60 and 0 <= value <= 24 * 60):
        raise ValueError(text)
    return value


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours of one calendar: weekly ranges in a time zone, and closed holidays."""

    name: str
    timezone: str
    weekly: dict[int, tuple[tuple[int, int], ...]]
    holidays: dict[dt.date, str] = field(default_factory=dict)

    def _local(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone))

    def holiday(self, now: float) -> str | None:
        """The holiday's name if the local date at `now` is one."""
        return self.holidays.get(self._local(now).date())

    def is_open(self, now: float) -> bool:
        """True when open at the POSIX time `now`."""
        local = self._local(now)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly.get(local.weekday(), ()))
