"""The `dtmf:` setting of a trunk (conf/acd.yaml): where the callers' key presses come from.

`auto` (the default): RFC 4733 telephone-events and SIP INFO as they come, and tones detected in the
audio (acd/media/inband_dtmf.py) when the caller's SDP has no telephone-event, until a digit comes by
RFC 4733 or INFO. `rfc4733`, `info`, `inband`: that source only; the others are ignored, so a trunk
that sends both a tone and an event for one press never gives two digits.
"""

from __future__ import annotations

from .checker import Checker
from .yaml_lines import LineDict

__all__ = ["DEFAULT_DTMF_MODE", "DTMF_MODES", "dtmf_mode"]

DTMF_MODES = ("auto", "rfc4733", "info", "inband")
DEFAULT_DTMF_MODE = "auto"


def dtmf_mode(check: Checker, mapping: LineDict, what: str) -> str:
    """The mapping's `dtmf` value (one of DTMF_MODES), or an error at its line and the default."""
    value = mapping.get("dtmf", DEFAULT_DTMF_MODE)
    if value not in DTMF_MODES:
        check.error(mapping.line_of("dtmf"), f"{what} dtmf must be one of {', '.join(DTMF_MODES)} (where callers' "
                                             f"key presses come from; auto takes each as it comes), not {value!r}")
        return DEFAULT_DTMF_MODE
    return value
