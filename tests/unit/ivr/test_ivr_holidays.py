"""Public holidays from the `holidays` package close a calendar like its explicit dates, per country and region.

Instants are literal POSIX timestamps with their UTC and local readings beside them; never today's date.
"""

import datetime as dt

from acd.ivr.hours import BusinessHours, HolidaySource

MON_31_AUG_2026_1000_LONDON = 1788166800.0  # 09:00 UTC, 10:00 BST: England's Late Summer Bank Holiday
MON_03_AUG_2026_1000_LONDON = 1785747600.0  # 09:00 UTC, 10:00 BST: Scotland's Summer Bank Holiday
MON_28_DEC_2026_1000_LONDON = 1798452000.0  # 10:00 UTC and GMT: Boxing Day (observed), the 26th is a Saturday
TUE_29_DEC_2026_1000_LONDON = 1798538400.0  # 10:00 UTC and GMT: an ordinary Tuesday
FRI_26_MAR_2027_1000_LONDON = 1806055200.0  # 10:00 UTC and GMT: Good Friday 2027 (another year)

WEEKDAYS_9_TO_5 = {day: ((9 * 60, 17 * 60),) for day in range(5)}


def office(*sources: HolidaySource, holidays: dict | None = None) -> BusinessHours:
    return BusinessHours(name="office", timezone="Europe/London", weekly=WEEKDAYS_9_TO_5,
                         holidays=holidays or {}, holidays_from=sources)


def test_a_regions_bank_holiday_closes_that_region_only():
    england, scotland = office(HolidaySource("GB", "ENG")), office(HolidaySource("GB", "SCT"))
    assert not england.is_open(MON_31_AUG_2026_1000_LONDON)
    assert england.holiday(MON_31_AUG_2026_1000_LONDON) == "Late Summer Bank Holiday"
    assert scotland.is_open(MON_31_AUG_2026_1000_LONDON)
    assert not scotland.is_open(MON_03_AUG_2026_1000_LONDON)
    assert england.is_open(MON_03_AUG_2026_1000_LONDON)


def test_substitute_days_close_too_and_ordinary_days_stay_open():
    england = office(HolidaySource("GB", "ENG"))
    assert england.holiday(MON_28_DEC_2026_1000_LONDON) == "Boxing Day (observed)"
    assert england.is_open(TUE_29_DEC_2026_1000_LONDON) and england.holiday(TUE_29_DEC_2026_1000_LONDON) is None


def test_each_year_is_computed_when_asked_about():
    assert office(HolidaySource("GB")).holiday(FRI_26_MAR_2027_1000_LONDON) == "Good Friday"


def test_explicit_dates_come_first_and_add_to_the_package_s():
    calendar = office(HolidaySource("GB", "ENG"), holidays={dt.date(2026, 8, 31): "Company away day",
                                                            dt.date(2026, 12, 29): "Stocktake"})
    assert calendar.holiday(MON_31_AUG_2026_1000_LONDON) == "Company away day"
    assert not calendar.is_open(TUE_29_DEC_2026_1000_LONDON)


def test_without_holidays_from_only_the_explicit_dates_count():
    assert office().is_open(MON_31_AUG_2026_1000_LONDON)
