"""The `sip: session_timer:` block of conf/acd.yaml (RFC 4028 session timers on calls we answer)."""

from __future__ import annotations

from .checker import Checker
from .model import SessionTimerSettings
from .yaml_lines import LineDict

__all__ = ["parse_session_timer"]

WHAT = "sip session_timer"
# RFC 4028 §4 forbids intervals under 90 s; 1 s is allowed here only so that tests can watch a session
# expire in seconds. A day is far above any trunk's Session-Expires (1800 s is usual).
LOWEST_SECONDS, HIGHEST_SECONDS = 1, 86400


def parse_session_timer(check: Checker, sip: LineDict) -> SessionTimerSettings:
    """`sip: session_timer:` → SessionTimerSettings (defaults for what is absent; errors at a bad value's line)."""
    default = SessionTimerSettings()
    if "session_timer" not in sip:
        return default
    section = check.mapping(sip["session_timer"], sip.line_of("session_timer"), WHAT)
    if section is None:
        return default
    check.unknown_keys(section, {"default_seconds", "min_seconds"}, WHAT)
    minimum = int(check.number(section, "min_seconds", default.min_seconds, WHAT, minimum=LOWEST_SECONDS,
                               maximum=HIGHEST_SECONDS, integer=True))
    interval = int(check.number(section, "default_seconds", max(default.default_seconds, minimum), WHAT,
                                minimum=LOWEST_SECONDS, maximum=HIGHEST_SECONDS, integer=True))
    if interval < minimum:
        check.error(section.line_of("default_seconds"), f"{WHAT} default_seconds ({interval}) must be at least "
                                                        f"min_seconds ({minimum}): raise it or lower min_seconds")
        interval = minimum
    return SessionTimerSettings(default_seconds=interval, min_seconds=minimum)
