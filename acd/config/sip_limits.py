"""`sip: limits:` and `sip: timer_t1_seconds` of conf/acd.yaml: the flood limits and RFC 3261's T1.

Parsed apart from the rest of `sip:` so that the limits stay one readable block; every bad value is
a `file:line` error naming the setting and its bounds.
"""

from __future__ import annotations

from .checker import Checker
from .model import SipLimits
from .yaml_lines import LineDict

__all__ = ["parse_sip_limits", "parse_timer_t1"]

# RFC 3261 §17.1.1.1: T1 defaults to 500 ms; smaller values only on closed networks (NOT RECOMMENDED
# elsewhere), larger ones on slow links. It must stay at or below T2 (4 s), which it is capped by.
T1_MIN_SECONDS = 0.05
T1_MAX_SECONDS = 4.0
# Far above anything a SIP server of this size meets; a bound keeps typos (an extra zero) visible.
MAX_CALLS = 1_000_000
MAX_REQUESTS = 1_000_000  # a second, or in a burst


def parse_timer_t1(check: Checker, section: LineDict, default: float) -> float:
    """`timer_t1_seconds`, within RFC 3261's sensible range."""
    return float(check.number(section, "timer_t1_seconds", default, "sip", minimum=T1_MIN_SECONDS,
                              maximum=T1_MAX_SECONDS))


def parse_sip_limits(check: Checker, value: object, line: int) -> SipLimits:
    """`sip: limits:` (every key optional; defaults from `SipLimits`)."""
    defaults = SipLimits()
    section = check.mapping(value, line, "sip limits")
    if section is None:
        return defaults
    names = {name for name in SipLimits.__dataclass_fields__}
    check.unknown_keys(section, names, "sip limits")
    values: dict[str, object] = {}
    for name in ("max_unconfirmed_calls_per_source", "max_unconfirmed_calls"):
        value = section.get(name, "auto")
        values[name] = None  # auto: a share of the RTP range (SipLimits.unconfirmed_caps)
        if value == "auto":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CALLS:
            check.error(section.line_of(name), f"sip limits {name} must be auto or a number of calls "
                                               f"(1-{MAX_CALLS}), not {value!r}")
            continue
        values[name] = value
    for name in sorted(names - set(values)):
        values[name] = check.number(section, name, getattr(defaults, name), "sip limits", minimum=0,
                                    maximum=MAX_REQUESTS, integer=name.endswith("_burst"))
    for kind in ("unknown_source", "agent", "trunk"):
        rate, burst = f"{kind}_requests_per_second", f"{kind}_request_burst"
        if values[rate] > 0 and values[burst] < 1:
            check.error(section.line_of(burst if burst in section else rate),
                        f"sip limits {burst} must be at least 1 when {rate} is not 0 (0 requests/s is no limit)")
            values[burst] = getattr(defaults, burst) or 1
    return SipLimits(**values)
