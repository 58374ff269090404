"""The `rtp: symmetric:` setting (conf/acd.yaml): when media legs learn where to send from the
peer's RTP (acd/media/symmetric_rtp.py). YAML's bare on/off/true/false are booleans: true means
"always", false "off"."""

from __future__ import annotations

from ..media.symmetric_rtp import SYMMETRIC_SETTINGS
from .checker import Checker
from .yaml_lines import LineDict

__all__ = ["parse_symmetric_rtp"]


def parse_symmetric_rtp(check: Checker, section: LineDict, default: str) -> str:
    """The section's `symmetric` value (one of SYMMETRIC_SETTINGS), or an error at its line and `default`."""
    value = section.get("symmetric", default)
    if isinstance(value, bool):
        return "always" if value else "off"
    if value not in SYMMETRIC_SETTINGS:
        check.error(section.line_of("symmetric"), f"rtp symmetric must be one of {', '.join(SYMMETRIC_SETTINGS)} "
                                                  f"(auto: learn where to send from the RTP of phones whose SDP "
                                                  f"address is private, i.e. behind NAT), not {value!r}")
        return default
    return value
