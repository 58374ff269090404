"""What differs between two loaded configs: the changes a reload applies, and those it cannot.

Pure functions of two `Config`s, for the reload log line, the API's answer and the refusal
message. Listener settings (SIP, RTP, HTTP), the data directory and turning agents on or off
(the registrar is built at start) need a restart; everything else applies live, `sip: limits:` and
`sip: session_timer:` (read at each new call) too.
"""

from __future__ import annotations

from dataclasses import fields

from ..store.location import describe
from .model import Config

__all__ = ["restart_required", "describe_changes"]


def _settings(name: str, old, new) -> list[str]:
    return [f"{name}.{field.name} {getattr(old, field.name)!r} -> {getattr(new, field.name)!r}"
            for field in fields(old) if getattr(old, field.name) != getattr(new, field.name)]


def restart_required(old: Config, new: Config) -> list[str]:
    """The changes only a restart can apply, one line each (empty: the reload can go live)."""
    changes = [line for line in _settings("sip", old.sip, new.sip)
               if not line.startswith(("sip.limits ", "sip.admission ", "sip.session_timer "))]
    changes += _settings("rtp", old.rtp, new.rtp) + _settings("http", old.http, new.http)
    if old.data_dir != new.data_dir:
        changes.append(f"data_dir {str(old.data_dir)!r} -> {str(new.data_dir)!r}")
    if old.store != new.store:
        changes.append(f"store {describe(old.store or 'SQLite')!r} -> {describe(new.store or 'SQLite')!r}")
    if old.cluster != new.cluster:
        changes.append(f"cluster {old.cluster!r} -> {new.cluster!r}")
    if (old.agents is None) != (new.agents is None):
        changes.append("conf/agents.yaml " + ("added" if new.agents is not None else "removed")
                       + " (the registrar starts with the server)")
    return changes


def _named(kind: str, old: dict, new: dict, describe) -> list[str]:
    changes = [f"{kind} {name} added" for name in new if name not in old]
    changes += [f"{kind} {name} removed" for name in old if name not in new]
    for name in new:
        if name in old and old[name] != new[name]:
            changes.append(f"{kind} {name}: {describe(old[name], new[name])}")
    return changes


def _queue_change(old, new) -> str:
    parts = _settings("", old.routing, new.routing)
    parts += [f".{field.name} {getattr(old, field.name)!r} -> {getattr(new, field.name)!r}"
              for field in fields(old) if field.name != "routing" and getattr(old, field.name) != getattr(new, field.name)]
    return ", ".join(part.lstrip(".") for part in parts) or "changed"


def _agent_change(old, new) -> str:
    parts = []
    if old.queues != new.queues:
        parts.append(f"queues {old.queues} -> {new.queues}")
    if old.skills != new.skills:
        parts.append(f"skills {old.skills} -> {new.skills}")
    if old.ha1 != new.ha1:
        parts.append("password changed")
    if old.name != new.name:
        parts.append(f"name {old.name!r} -> {new.name!r}")
    if old.srtp != new.srtp:
        parts.append(f"srtp {old.srtp} -> {new.srtp}")
    if old.role != new.role:
        parts.append(f"role {old.role} -> {new.role}")
    return ", ".join(parts) or "changed"


def describe_changes(old: Config, new: Config) -> list[str]:
    """What a reload from `old` to `new` changes, one short line each (empty: nothing)."""
    changes: list[str] = []
    old_agents, new_agents = old.agents, new.agents
    if old_agents is not None and new_agents is not None:
        changes += _named("queue", old_agents.queues, new_agents.queues, _queue_change)
        changes += _named("agent", old_agents.agents, new_agents.agents, _agent_change)
        for name in ("pause_reasons", "language_skills", "feature_codes", "monitor_codes", "realm", "digest_algorithms",
                     "digest_nonce_lifetime_seconds", "tier_priority"):
            if getattr(old_agents, name) != getattr(new_agents, name):
                changes.append(f"agents.{name} changed")
        if old_agents.priority_aging_seconds != new_agents.priority_aging_seconds:
            changes.append(f"agents.priority_aging_seconds {old_agents.priority_aging_seconds!r} -> "
                           f"{new_agents.priority_aging_seconds!r}")
    changes += _settings("sip.limits", old.sip.limits, new.sip.limits)  # read at each use: live
    changes += _settings("sip.admission", old.sip.admission, new.sip.admission)  # the gate follows reloads
    changes += _settings("sip.session_timer", old.sip.session_timer, new.sip.session_timer)  # new calls: live
    changes += _named("flow", old.flows, new.flows, lambda a, b: "changed")
    if old.routes != new.routes:
        changes.append(f"routes: {len(old.routes)} -> {len(new.routes)}"
                       if len(old.routes) != len(new.routes) else "routes changed")
    changes += _named("trunk", {t.name: t for t in old.trunks}, {t.name: t for t in new.trunks},
                      lambda a, b: ", ".join(part.lstrip(".") for part in _settings("", a, b)))
    if old.prompts != new.prompts:
        changes.append(f"prompts: {len(old.prompts)} -> {len(new.prompts)}")
    for name in ("crm_lookup_url", "crm_webhook_url", "crm_timeout_seconds", "country_code"):
        if getattr(old, name) != getattr(new, name):
            changes.append(f"{name} {getattr(old, name)!r} -> {getattr(new, name)!r}")
    for name in ("calendars", "incidents", "lookups"):
        if getattr(old, name) != getattr(new, name):
            changes.append(f"{name} changed")
    return changes
