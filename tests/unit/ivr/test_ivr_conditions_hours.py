"""Branch conditions and business-hours calendars: pure functions of the context and a POSIX time.

Instants are written as literal POSIX timestamps with their UTC and local readings beside them, so
a time-zone mistake in the code cannot hide behind the same mistake in the test.
"""

import datetime as dt

import pytest

from acd.ivr.conditions import AllOf, AnyOf, Compare, IsOpen, Not, evaluate
from acd.ivr.context import CallContext
from acd.ivr.hours import BusinessHours, parse_time_range

CONTEXT = CallContext({"tier": "gold", "balance": "120.5", "count": 3, "empty": "", "caller_id": "+442071234567",
                       "customer": {"status": "active", "age": 40}})

MON_0800_LONDON = 1780297200.0   # 2026-06-01 07:00 UTC = Mon 08:00 BST = Mon 03:00 New York
MON_1759_LONDON = 1780333140.0   # 2026-06-01 16:59 UTC = Mon 17:59 BST
MON_1800_LONDON = 1780333200.0   # 2026-06-01 17:00 UTC = Mon 18:00 BST
SAT_1300_LONDON = 1780747200.0   # 2026-06-06 12:00 UTC = Sat 13:00 BST
FRI_XMAS_NOON = 1798200000.0     # 2026-12-25 12:00 UTC = Fri 12:00 GMT (a holiday)
THU_XMAS_EVE_NOON = 1798113600.0  # 2026-12-24 12:00 UTC = Thu 12:00 GMT
MON_0759_WINTER = 1767599940.0   # 2026-01-05 07:59 UTC = Mon 07:59 GMT

OFFICE = BusinessHours(name="office", timezone="Europe/London",
                       weekly={**{day: ((8 * 60, 18 * 60),) for day in range(5)},
                               5: ((9 * 60, 12 * 60), (13 * 60, 14 * 60))},
                       holidays={dt.date(2026, 12, 25): "Christmas Day"})
CALENDARS = {"office": OFFICE}


def holds(condition, now: float = MON_0800_LONDON) -> bool:
    return evaluate(condition, CONTEXT, now, CALENDARS)


@pytest.mark.parametrize("variable, operator, value, expected", [
    ("tier", "equals", "gold", True),
    ("tier", "equals", "Gold", False),
    ("count", "equals", 3, True),            # numbers compare as text
    ("customer.status", "equals", "active", True),
    ("missing", "equals", "gold", False),
    ("tier", "not_equals", "silver", True),
    ("tier", "not_equals", "gold", False),
    ("missing", "not_equals", "gold", True),  # an unknown variable differs from everything
    ("tier", "in", ["silver", "gold"], True),
    ("count", "in", [1, 2, 3], True),
    ("tier", "in", ["silver"], False),
    ("missing", "in", ["gold"], False),
    ("caller_id", "matches", r"\+44[0-9]+", True),
    ("caller_id", "matches", r"\+44", False),  # a full match, not a search
    ("missing", "matches", ".*", False),
    ("caller_id", "starts_with", "+4420", True),
    ("caller_id", "starts_with", "+33", False),
    ("balance", "greater_than", 100, True),
    ("balance", "greater_than", 120.5, False),
    ("customer.age", "greater_than", "39", True),
    ("tier", "greater_than", 1, False),        # not a number: never true
    ("balance", "less_than", "200", True),
    ("balance", "less_than", 120.5, False),
    ("tier", "less_than", 1, False),
    ("missing", "less_than", 1, False),
    ("tier", "exists", True, True),
    ("tier", "exists", None, True),            # `exists:` with no value means true
    ("empty", "exists", True, False),          # an empty value does not count
    ("missing", "exists", True, False),
    ("missing", "exists", False, True),
    ("tier", "exists", False, False),
])
def test_each_comparison(variable, operator, value, expected):
    assert holds(Compare(variable, operator, value)) is expected


def test_an_unknown_comparison_or_bad_regex_is_refused_when_built():
    with pytest.raises(ValueError, match="unknown comparison"):
        Compare("tier", "contains", "g")
    with pytest.raises(Exception):
        Compare("tier", "matches", "([")


def test_all_any_not_combine_conditions():
    gold, silver = Compare("tier", "equals", "gold"), Compare("tier", "equals", "silver")
    assert holds(AllOf((gold, Compare("count", "greater_than", 2))))
    assert not holds(AllOf((gold, silver)))
    assert holds(AllOf(()))  # nothing to fail
    assert holds(AnyOf((silver, gold)))
    assert not holds(AnyOf((silver, Compare("missing", "exists", True))))
    assert not holds(AnyOf(()))
    assert holds(Not(silver)) and not holds(Not(gold))
    assert holds(AllOf((Not(silver), AnyOf((silver, IsOpen("office"))))))


@pytest.mark.parametrize("now, is_open", [
    (MON_0800_LONDON, True),     # opening minute: start inclusive
    (MON_1759_LONDON, True),
    (MON_1800_LONDON, False),    # closing minute: end exclusive
    (MON_0759_WINTER, False),    # 07:59 GMT in January
    (SAT_1300_LONDON, True),     # second Saturday range
    (SAT_1300_LONDON - 1, False),  # 12:59:59, the lunch gap
    (FRI_XMAS_NOON, False),      # a weekday, but a holiday
    (THU_XMAS_EVE_NOON, True),
    (SAT_1300_LONDON + 86400, False),  # Sunday: no ranges at all
])
def test_open_follows_the_calendar_in_its_own_time_zone(now, is_open):
    assert OFFICE.is_open(now) is is_open
    assert holds(IsOpen("office"), now) is is_open


def test_the_same_instant_reads_differently_in_another_time_zone():
    new_york = BusinessHours(name="ny", timezone="America/New_York", weekly=OFFICE.weekly)
    assert OFFICE.is_open(MON_0800_LONDON)
    assert not new_york.is_open(MON_0800_LONDON)  # 03:00 in New York
    assert new_york.is_open(MON_0800_LONDON + 5 * 3600)  # 08:00 in New York


def test_holiday_names_the_holiday_by_local_date():
    assert OFFICE.holiday(FRI_XMAS_NOON) == "Christmas Day"
    assert OFFICE.holiday(THU_XMAS_EVE_NOON) is None
    # 2026-12-24 16:00 UTC is still the 24th in London but already 01:00 on the 25th in Tokyo.
    tokyo = BusinessHours(name="jp", timezone="Asia/Tokyo", weekly={4: ((0, 1440),)},
                          holidays={dt.date(2026, 12, 25): "Christmas Day"})
    four_pm_utc = THU_XMAS_EVE_NOON + 4 * 3600
    assert OFFICE.holiday(four_pm_utc) is None and OFFICE.is_open(four_pm_utc)
    assert tokyo.holiday(four_pm_utc) == "Christmas Day"
    assert not tokyo.is_open(four_pm_utc)  # a Friday in Tokyo, open all day, but the holiday wins


def test_an_unknown_calendar_is_closed():
    assert not holds(IsOpen("nowhere"))


@pytest.mark.parametrize("text, minutes", [
    ("08:30-17:00", (510, 1020)),
    (" 8:00 - 12:00 ", (480, 720)),
    ("00:00-24:00", (0, 1440)),
    ("22:00-24:00", (1320, 1440)),
])
def test_time_ranges_parse_to_minutes(text, minutes):
    assert parse_time_range(text) == minutes


@pytest.mark.parametrize("text, problem", [
    ("18:00-08:00", "ends before it starts"),
    ("08:00-08:00", "ends before it starts"),
    ("8-17", "is not a time range"),
    ("08:00", "is not a time range"),
    ("08:00-17:60", "is not a time range"),
    ("08:00-24:30", "is not a time range"),
    ("25:00-26:00", "is not a time range"),
    ("08:00-12:00-13:00", "is not a time range"),
    ("nine-five", "is not a time range"),
])
def test_bad_time_ranges_are_refused_with_the_reason(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_time_range(text)
