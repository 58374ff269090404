"""Conditions a `branch` step tests, as data, and their pure evaluation.

YAML forms (one key each): `{var: tier, equals: VIP}` (also not_equals, in, matches, starts_with,
greater_than, less_than, exists), `{open: support_hours}`, `{all: [...]}`, `{any: [...]}`, `{not: {...}}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .context import CallContext
from .hours import BusinessHours

__all__ = ["Compare", "AllOf", "AnyOf", "Not", "IsOpen", "Condition", "evaluate", "COMPARISONS"]

COMPARISONS = ("equals", "not_equals", "in", "matches", "starts_with", "greater_than", "less_than", "exists")


@dataclass(frozen=True, slots=True)
class Compare:
    """Compare a context variable with a value."""

    variable: str
    operator: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.operator not in COMPARISONS:
            raise ValueError(f"unknown comparison {self.operator!r}")
        if self.operator == "matches":
            re.compile(str(self.value))


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every condition holds."""

    conditions: tuple["Condition", ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when at least one condition holds."""

    conditions: tuple["Condition", ...]


@dataclass(frozen=True, slots=True)
class Not:
    """True when the condition does not hold."""

    condition: "Condition"


@dataclass(frozen=True, slots=True)
class IsOpen:
    """True when the named business-hours calendar is open now."""

    hours: str


Condition = Compare | AllOf | AnyOf | Not | IsOpen


def evaluate(condition: Condition, context: CallContext, now: float,
             calendars: Mapping[str, BusinessHours]) -> bool:
    """Evaluate a condition against the context at the POSIX time `now`."""
    if isinstance(condition, AllOf):
        return all(evaluate(c, context, now, calendars) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, context, now, calendars) for c in condition.conditions)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, context, now, calendars)
    if isinstance(condition, IsOpen):
        calendar = calendars.get(condition.hours)
        return calendar is not None and calendar.is_open(now)
    actual = context.get(condition.variable)
    operator, expected = condition.operator, condition.value
    if operator == "exists":
        return (actual is not None and actual != "") == bool(expected if expected is not None else True)
    if actual is None:
        return operator == "not_equals"
    if operator == "equals":
        return str(actual) == str(expected)
    if operator == "not_equals":
        return str(actual) != str(expected)
    if operator == "in":
        return str(actual) in {str(v) for v in (expected or ())}
    if operator == "matches":
        return re.fullmatch(str(expected), str(actual)) is not None
    if operator == "starts_with":
        return str(actual).startswith(str(expected))
    try:
        number, limit = float(actual), float(expected)
    except (TypeError, ValueError):
        return False
    return number > limit if operator == "greater_than" else number < limit
