"""Business hours and holiday calendars, per time zone. Pure: the instant is passed in.

`BusinessHours.is_open(now)` answers for a POSIX timestamp: the local date is a holiday → closed;
otherwise open when the local time lies in one of that weekday's ranges (start inclusive, end
exclusive). Ranges may not cross midnight: write `22:00-24:00` and `00:00-06:00` instead.

Holidays are the calendar's explicit dates, then the public holidays of its `holidays_from`
countries (and subdivisions: England and Scotland differ) as the `holidays` package computes them,
substitute days included ("Christmas Day (observed)"). A year's dates are computed the first time
a time in it is asked about (well under a millisecond) and kept: a year's holidays never change
while the server runs, and the cache is bounded.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping
from zoneinfo import ZoneInfo

__all__ = ["BusinessHours", "HolidaySource", "WEEKDAYS", "parse_time_range"]

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
class HolidaySource:
    """The public holidays of `country` (ISO 3166-1 alpha-2, "GB"), or of one of its subdivisions
    ("ENG"), from the `holidays` package. The config loader checks both exist."""

    country: str
    subdivision: str | None = None

    def holidays_in(self, year: int) -> Mapping[dt.date, str]:
        """Date → holiday name for one year."""
        return _public_holidays(self.country, self.subdivision, year)


# Sources x years a server meets in its life: a few calendars, this year and the next.
_HOLIDAY_YEARS_CACHED = 64


@functools.lru_cache(maxsize=_HOLIDAY_YEARS_CACHED)
def _public_holidays(country: str, subdivision: str | None, year: int) -> Mapping[dt.date, str]:
    import holidays  # only calendars that use it pay for the import (~0.2 s)

    return MappingProxyType(dict(holidays.country_holidays(country, subdiv=subdivision, years=year)))


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours of one calendar: weekly ranges in a time zone, and closed holidays (explicit
    dates, then the public holidays of `holidays_from`)."""

    name: str
    timezone: str
    weekly: dict[int, tuple[tuple[int, int], ...]]
    holidays: dict[dt.date, str] = field(default_factory=dict)
    holidays_from: tuple[HolidaySource, ...] = ()

    def _local(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone))

    def holiday(self, now: float) -> str | None:
        """The holiday's name if the local date at `now` is one."""
        return self._holiday_on(self._local(now).date())

    def _holiday_on(self, day: dt.date) -> str | None:
        if day in self.holidays:
            return self.holidays[day]
        for source in self.holidays_from:
            name = source.holidays_in(day.year).get(day)
            if name is not None:
                return name
        return None

    def is_open(self, now: float) -> bool:
        """True when open at the POSIX time `now`."""
        local = self._local(now)
        if self._holiday_on(local.date()) is not None:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly.get(local.weekday(), ()))
