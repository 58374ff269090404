"""The `srtp:` setting of a trunk (conf/acd.yaml) or an agent (conf/agents.yaml).

`required`: plain RTP is refused (488) and agents are offered RTP/SAVP; `optional` (the default):
SRTP when the peer offers or answers a crypto line, plain RTP otherwise; `off`: RTP/SAVP is refused.
YAML 1.1 reads a bare `off` as false, so false means off too.
"""

from __future__ import annotations

from ..media.sdes import SRTP_POLICIES
from .checker import Checker
from .yaml_lines import LineDict

__all__ = ["DEFAULT_SRTP_POLICY", "srtp_policy"]

DEFAULT_SRTP_POLICY = "optional"


def srtp_policy(check: Checker, mapping: LineDict, what: str) -> str:
    """The mapping's `srtp` value (one of SRTP_POLICIES), or an error at its line and the default."""
    value = mapping.get("srtp", DEFAULT_SRTP_POLICY)
    if value is False:
        return "off"
    if value not in SRTP_POLICIES:
        check.error(mapping.line_of("srtp"), f"{what} srtp must be one of {', '.join(SRTP_POLICIES)} "
                                             f"(SDES-SRTP media encryption), not {value!r}")
        return DEFAULT_SRTP_POLICY
    return value
