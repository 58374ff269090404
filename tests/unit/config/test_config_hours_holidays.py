"""`holidays_from` in conf/hours.yaml: parsed into holiday sources, and an unknown country or region is a
`file:line` error that says what to write instead."""

from pathlib import Path

import pytest

from acd.config.extras import load_hours
from acd.ivr.hours import HolidaySource

REPO = Path(__file__).resolve().parents[3]

CALENDAR = """\
office:
  timezone: Europe/London
  weekly:
    mon-fri: "08:00-18:00"
  holidays:
    2026-12-24: Christmas Eve
{holidays_from}
"""


def load(tmp_path: Path, holidays_from: str):
    path = tmp_path / "hours.yaml"
    path.write_text(CALENDAR.format(holidays_from=holidays_from))
    errors: list = []
    return load_hours(path, errors, []), [str(error) for error in errors], path


@pytest.mark.parametrize("text, sources", [
    ("  holidays_from: {country: GB, subdivision: ENG}", (HolidaySource("GB", "ENG"),)),
    ("  holidays_from: {country: gb, subdivision: sct}", (HolidaySource("GB", "SCT"),)),
    ("  holidays_from: {country: IT}", (HolidaySource("IT"),)),
    ("  holidays_from: {country: NO}", (HolidaySource("NO"),)),  # YAML 1.1 would read NO as false
    ("  holidays_from:\n    - {country: US, subdivision: CA}\n    - country: GB",
     (HolidaySource("US", "CA"), HolidaySource("GB"))),
])
def test_holidays_from_becomes_the_calendar_s_holiday_sources(tmp_path, text, sources):
    calendars, errors, _ = load(tmp_path, text)
    assert errors == []
    assert calendars["office"].holidays_from == sources
    assert len(calendars["office"].holidays) == 1, "explicit dates are kept beside them"


@pytest.mark.parametrize("text, line, message", [
    ("  holidays_from: {country: XX}", 7, "unknown country 'XX': use an ISO 3166 alpha-2 code"),
    ("  holidays_from:\n    country: GB\n    subdivision: XYZ", 9,
     "country GB has no subdivision 'XYZ' (known: ENG, NIR, SCT, WLS)"),
    ("  holidays_from: {subdivision: ENG}", 7, "holidays_from needs 'country'"),
    ("  holidays_from: {country: GB, region: ENG}", 7, "unknown key 'region' in hours 'office' holidays_from"),
    ("  holidays_from: GB", 7, "holidays_from must be a mapping"),
])
def test_a_bad_holidays_from_is_a_file_line_error(tmp_path, text, line, message):
    calendars, errors, path = load(tmp_path, text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:{line}: ") and message in errors[0], errors[0]


def test_the_shipped_hours_file_loads():
    errors: list = []
    load_hours(REPO / "conf" / "hours.yaml", errors, [])
    assert errors == []
