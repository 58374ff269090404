"""The optional config files beside `conf/acd.yaml`: business hours, queues, look-up tables.

- `conf/hours.yaml`: `{name: {timezone: Europe/London, weekly: {mon-fri: "08:00-18:00", sat: [..]},
  holidays: {2026-12-25: Christmas}, holidays_from: {country: GB, subdivision: ENG}}}`
  (`holidays_from` may also be a list of such mappings; the `holidays` package knows the dates).
- `conf/lookups/<source>.yaml`: `records: {"123": {status: shipped, ...}}` (and an optional `description`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..ivr.hours import WEEKDAYS, BusinessHours, HolidaySource, parse_time_range
from .checker import Checker
from .yaml_lines import ConfigError, LineDict, LineList, load_yaml_with_lines

__all__ = ["load_hours", "load_lookups", "load_incidents", "Incident"]


def _optional(path: Path, errors: list[ConfigError], files: list[str]) -> Any:
    if not path.exists():
        return None
    files.append(str(path))
    try:
        return load_yaml_with_lines(path)
    except ConfigError as error:
        errors.append(error)
        return None


def load_hours(path: Path, errors: list[ConfigError], files: list[str]) -> dict[str, BusinessHours]:
    """Business-hours calendars by name."""
    document = _optional(path, errors, files)
    if document is None:
        return {}
    check = Checker(path, errors)
    top = check.mapping(document, 1, "hours.yaml")
    calendars: dict[str, BusinessHours] = {}
    for name, body in (top or {}).items():
        item = check.mapping(body, top.line_of(name), f"hours {name!r}")
        if item is None:
            continue
        check.unknown_keys(item, {"timezone", "weekly", "holidays", "holidays_from"}, f"hours {name!r}")
        timezone = str(item.get("timezone", "UTC"))
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" names a directory
            check.error(item.line_of("timezone"), f"hours {name!r}: unknown time zone {timezone!r} (e.g. Europe/London)")
            continue
        weekly: dict[int, list[tuple[int, int]]] = {}
        days_doc = check.mapping(item.get("weekly"), item.line_of("weekly"), f"hours {name!r} weekly")
        for days, ranges in (days_doc or {}).items():
            line = days_doc.line_of(days)
            indexes = _days(str(days))
            if indexes is None:
                check.error(line, f"hours {name!r}: {days!r} is not a day or day range like mon-fri")
                continue
            for text in (ranges if isinstance(ranges, LineList) else [ranges]):
                try:
                    span = parse_time_range(str(text))
                except ValueError as exc:
                    check.error(line, f"hours {name!r}: {exc}")
                    continue
                for index in indexes:
                    weekly.setdefault(index, []).append(span)
        holidays: dict[dt.date, str] = {}
        holidays_doc = item.get("holidays")
        if holidays_doc is not None and (mapping := check.mapping(holidays_doc, item.line_of("holidays"), f"hours {name!r} holidays")):
            for day, label in mapping.items():
                try:
                    date = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
                except ValueError:
                    check.error(mapping.line_of(day), f"hours {name!r}: holiday {day!r} is not a date like 2026-12-25")
                    continue
                holidays[date] = str(label)
        sources = _holiday_sources(check, item, f"hours {name!r}") if "holidays_from" in item else ()
        calendars[str(name)] = BusinessHours(name=str(name), timezone=timezone,
                                             weekly={k: tuple(sorted(v)) for k, v in weekly.items()}, holidays=holidays,
                                             holidays_from=sources)
    return calendars


def _holiday_sources(check: Checker, item: LineDict, what: str) -> tuple[HolidaySource, ...]:
    """`holidays_from`: {country: GB, subdivision: ENG} or a list of them, each checked with the `holidays` package."""
    value = item["holidays_from"]
    entries = list(zip(value, value.lines)) if isinstance(value, LineList) else [(value, item.line_of("holidays_from"))]
    sources = []
    for entry, line in entries:
        mapping = check.mapping(entry, line, f"{what} holidays_from")
        if mapping is None:
            continue
        check.unknown_keys(mapping, {"country", "subdivision"}, f"{what} holidays_from")
        country, subdivision = (_code(mapping, key) for key in ("country", "subdivision"))
        if country is None:
            check.error(mapping.line_of("country"), f"{what} holidays_from needs 'country': a code such as GB, US or IT")
            continue
        try:
            sources.append(_holiday_source(country, subdivision))
        except KeyError as error:
            key, message = error.args
            check.error(mapping.line_of(key), f"{what} holidays_from: {message}")
    return tuple(sources)


def _code(mapping: LineDict, key: str) -> str | None:
    """A code as written: YAML 1.1 reads a bare NO (Norway) as false and ON as true, so take the source text."""
    if key in mapping.texts:
        return mapping.texts[key].strip() or None
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


def _holiday_source(country: str, subdivision: str | None) -> HolidaySource:
    """A source the `holidays` package can compute; KeyError(key, message) naming what it does not know."""
    import holidays  # imported only by configs that use holidays_from (~0.2 s)

    supported = holidays.list_supported_countries()
    code = country.upper()
    if code not in supported:
        raise KeyError("country", f"unknown country {country!r}: use an ISO 3166 alpha-2 code the holidays "
                                  "package knows, such as GB, US, IT or DE")
    for candidate in dict.fromkeys((subdivision, subdivision.upper()) if subdivision else (None,)):
        try:
            holidays.country_holidays(code, subdiv=candidate)  # also loads the country's rules now, not mid-call
        except NotImplementedError:
            continue
        return HolidaySource(country=code, subdivision=candidate)
    known = ", ".join(supported[code]) or "none"
    raise KeyError("subdivision", f"country {code} has no subdivision {subdivision!r} (known: {known})")


def _days(text: str) -> list[int] | None:
    text = text.strip().lower()
    if "-" in text:
        first, _, last = text.partition("-")
        if first in WEEKDAYS and last in WEEKDAYS and WEEKDAYS.index(first) <= WEEKDAYS.index(last):
            return list(range(WEEKDAYS.index(first), WEEKDAYS.index(last) + 1))
        return None
    return [WEEKDAYS.index(text)] if text in WEEKDAYS else None


def load_lookups(folder: Path, errors: list[ConfigError], files: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Look-up tables by source name (the file's stem): key → record."""
    sources: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        document = _optional(path, errors, files)
        check = Checker(path, errors)
        top = check.mapping(document, 1, "a look-up table") if document is not None else None
        if top is None:
            continue
        check.unknown_keys(top, {"records", "description"}, "look-up table")
        records = check.mapping(top.get("records"), top.line_of("records"), "records")
        table: dict[str, dict[str, Any]] = {}
        for key, record in (records or {}).items():
            if check.mapping(record, records.line_of(key), f"record {key!r}") is not None:
                table[str(key)] = _plain(record)
        sources[path.stem] = table
    return sources


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class Incident:
    """An operator's banner: prompts played at the start of a call to callers matching `when`."""

    name: str
    prompts: tuple[str, ...]
    when: object  # an acd.ivr.conditions.Condition


def load_incidents(path: Path, errors: list[ConfigError], files: list[str],
                   prompt_uses: list, references: list) -> tuple[Incident, ...]:
    """`conf/incidents.yaml`: {name: {prompt: x | [x, y], when: condition}} (optional file)."""
    from .flows import _StepParser

    document = _optional(path, errors, files)
    if document is None:
        return ()
    check = Checker(path, errors)
    top = check.mapping(document, 1, "incidents.yaml")
    incidents = []
    for name, body in (top or {}).items():
        item = check.mapping(body, top.line_of(name), f"incident {name!r}")
        if item is None:
            continue
        check.unknown_keys(item, {"prompt", "when", "description"}, f"incident {name!r}")
        parser = _StepParser(check, f"incident {name}", item, item.line, prompt_uses, references)
        parser.body = item
        prompts = parser._prompts("prompt", required=True)
        if "when" not in item:
            check.error(item.line, f"incident {name!r} needs 'when': the callers it is for (e.g. {{var: customer.region, equals: north}})")
            continue
        condition = parser._condition(item["when"], item.line_of("when"))
        if condition is not None and prompts:
            incidents.append(Incident(name=str(name), prompts=tuple(p for p in prompts if isinstance(p, str)), when=condition))
    return tuple(incidents)
