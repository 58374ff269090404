"""`supervisors:` and `dispositions:` in conf/agents.yaml: who may sign in to the web besides the
agents, and the wrap-up codes the agent desktop offers.

    supervisors:
      "9001": {name: Sam, password_ha1: {md5: ..., sha256: ...}}   # acd agent-password --user 9001
    dispositions: [sale, no-sale, resolved, call-back-later]

A supervisor has the fields of an agent that sign-in needs (name, digest HA1s for the realm; made
with `acd agent-password` like an agent's), and no queues. Ids must not clash with agents'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .checker import Checker
from .yaml_lines import LineDict

__all__ = ["SupervisorConfig", "parse_dispositions", "parse_ha1", "parse_supervisors"]

# A disposition code is short, printable and safe in a CSV export: letters, digits, - _ . and spaces.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}")


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """A supervisor's web account: id (their user name), display name, digest HA1s for the realm."""

    supervisor_id: str
    name: str
    ha1: dict[str, str] = field(default_factory=dict)


def parse_ha1(check: Checker, item: LineDict, where: str) -> dict[str, str]:
    """`password_ha1: {md5: 32 hex, sha256: 64 hex}` as {"MD5": ..., "SHA-256": ...}."""
    ha1 = check.mapping(item.get("password_ha1"), item.line_of("password_ha1"), f"{where} password_ha1")
    hashes: dict[str, str] = {}
    for algorithm, value in (ha1 or {}).items():
        size = {"md5": 32, "sha256": 64}.get(str(algorithm))
        if size is None or not re.fullmatch(rf"[0-9a-f]{{{size}}}", str(value)):
            check.error(ha1.line_of(algorithm), f"{where}: password_ha1 takes md5 (32 hex) and sha256 (64 hex) "
                                                "values made by `acd agent-password`")
        else:
            hashes["MD5" if algorithm == "md5" else "SHA-256"] = str(value)
    return hashes


def parse_supervisors(check: Checker, top: LineDict, agent_ids: set[str]) -> dict[str, SupervisorConfig]:
    """The `supervisors:` section (optional)."""
    if "supervisors" not in top:
        return {}
    section = check.mapping(top["supervisors"], top.line_of("supervisors"), "supervisors")
    supervisors: dict[str, SupervisorConfig] = {}
    for supervisor_id, body in (section or {}).items():
        where = f"supervisor {supervisor_id!r}"
        item = check.mapping(body, section.line_of(supervisor_id), where)
        if item is None:
            continue
        check.unknown_keys(item, {"name", "password_ha1"}, where)
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(supervisor_id)):
            check.error(section.line_of(supervisor_id), f"{where}: the id is the sign-in name: letters, digits, _ . -")
        if str(supervisor_id) in agent_ids:
            check.error(section.line_of(supervisor_id), f"{where}: {supervisor_id} is also an agent; give the "
                                                        "supervisor account an id of its own")
        supervisors[str(supervisor_id)] = SupervisorConfig(supervisor_id=str(supervisor_id),
                                                           name=str(item.get("name", supervisor_id)),
                                                           ha1=parse_ha1(check, item, where))
    return supervisors


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
