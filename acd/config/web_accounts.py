"""`dispositions:` in conf/agents.yaml: the wrap-up codes the agent desktop offers.

    dispositions: [sale, no-sale, resolved, call-back-later]

Who may sign in to the web is the `agents:` section itself: every agent with their SIP password,
and an agent with `role: supervisor` as a supervisor (acd.api.sign_in).
"""

from __future__ import annotations

import re

from .checker import Checker
from .yaml_lines import LineDict

__all__ = ["parse_dispositions"]

# A disposition code is short, printable and safe in a CSV export: letters, digits, - _ . and spaces.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}")


def parse_dispositions(check: Checker, top: LineDict) -> tuple[str, ...]:
    """The `dispositions:` list (optional; empty: the desktop takes any code)."""
    if "dispositions" not in top:
        return ()
    codes = top["dispositions"]
    if not isinstance(codes, list) or not all(isinstance(c, str) and _CODE.fullmatch(c) for c in codes) \
            or len(set(codes)) != len(codes):
        check.error(top.line_of("dispositions"), "dispositions lists distinct wrap-up codes (1-64 letters, digits, "
                                                 "- _ . or spaces), e.g. [sale, no-sale, resolved]")
        return ()
    return tuple(codes)
