"""`conf/agents.yaml`: queues, agents (skills, queue memberships, digest HA1s), feature codes.

Passwords are never stored: each agent has `password_ha1: {md5: ..., sha256: ...}` for the realm,
made with `acd agent-password`. Queue options split into the routing core's `QueueConfig` and the
shell's own (announcements, music, maximum wait). Top-level `priority_aging_seconds` and
`tier_priority` say how caller priority works (RoutingConfig and `caller_priority`). A queue's
`overflow:` steps are parsed in `queue_overflow.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..context.routing_hints import MAX_PRIORITY, TIER_PRIORITY_BONUS
from ..routing.config import QueueConfig
from ..routing.errors import InvalidConfig
from .checker import Checker
from .queue_overflow import check_overflow_targets, parse_overflow
from .srtp_policy import srtp_policy
from .web_accounts import parse_dispositions
from .yaml_lines import ConfigError, LineDict, LineList, load_yaml_with_lines

__all__ = ["AgentConfig", "QueueSettings", "AgentsConfig", "load_agents", "DEFAULT_FEATURE_CODES", "DEFAULT_MONITOR_CODES",
           "ANNOUNCE_POSITION_MODES", "DEFAULT_HOLD_MESSAGES", "DEFAULT_PRIORITY_AGING_SECONDS"]

# Asterisk's app_queue habit (*45 toggles queue membership) extended to a small set.
DEFAULT_FEATURE_CODES = {"login": "*45", "logout": "*46", "pause": "*47", "unpause": "*48"}
# A supervisor dials these followed by an agent's extension (*601001): ChanSpy's habit, in a free range.
DEFAULT_MONITOR_CODES = {"listen": "*60", "whisper": "*61", "barge": "*62"}
ROLES = ("agent", "supervisor")
DEFAULT_REALM = "acd"
DEFAULT_NONCE_LIFETIME_SECONDS = 30.0
# One priority level is worth a minute of waiting: a VIP (+5) goes ahead of standard callers who
# waited less than five minutes, and nobody waits behind newer high-tier calls for ever.
DEFAULT_PRIORITY_AGING_SECONDS = 60.0
# When a waiting caller hears their position and wait: "on_change" only when it would say
# something new (so a caller at the head of an unstaffed queue is not told "number 1" every time),
# "always" at every `announce_every`, "never" (hold messages only).
ANNOUNCE_POSITION_MODES = ("on_change", "always", "never")
# Played in turn at the announcement times when there is no new position to say (sounds/queue/).
DEFAULT_HOLD_MESSAGES = ("queue/please_hold", "queue/thanks_for_holding")

_ROUTING_KEYS = {
    "strategy": "strategy", "ring_timeout": "ring_timeout_seconds", "wrap_up": "wrap_up_seconds",
    "max_waiting": "max_waiting", "when_no_agents": "when_no_agents", "max_missed_offers": "max_missed_offers",
    "service_level": "service_level_seconds", "sticky_seconds": "sticky_seconds",
}


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue: the routing core's config plus what the call shell does while callers wait."""

    routing: QueueConfig
    description: str = ""
    # Position/wait announcements every 30 s: often enough to reassure, rare enough not to nag
    # (Asterisk's announce-frequency examples use 30-90 s).
    announce_every_seconds: float = 30.0
    announce_position: str = "on_change"
    hold_messages: tuple[str, ...] = DEFAULT_HOLD_MESSAGES
    # How long a caller may wait before the queue step fails over (`on_failure` in the flow).
    max_wait_seconds: float = 600.0
    music: str = "moh"
    # The key a waiting caller presses to be called back instead (None: no callbacks in this queue).
    callback_key: str | None = "*"
    # Record the calls of this queue from the moment they join it (both sides, stereo WAV).
    record: bool = False
    # The flow a caller goes to when the agent hangs up first (a post-call survey); None: hang up.
    survey_flow: str | None = None
    # Tell the agent who is coming ("V I P. Billing. Verified.") before the caller is connected.
    whisper: bool = False


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """An agent: extension, name, digest HA1s, skills and queue memberships (queue → penalty)."""

    agent_id: str
    name: str
    ha1: dict[str, str]
    skills: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    # SDES-SRTP media with this agent's phone: "required", "optional" or "off" (srtp_policy.py).
    srtp: str = "optional"
    # "agent", or "supervisor": may also listen to, whisper on and barge into calls (acd.calls.monitoring).
    role: str = "agent"


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    """Everything in conf/agents.yaml."""

    realm: str = DEFAULT_REALM
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    # How long a Digest nonce is accepted (acd.sip.digest.DigestAuthenticator explains the 30 s).
    digest_nonce_lifetime_seconds: float = DEFAULT_NONCE_LIFETIME_SECONDS
    pause_reasons: dict[str, str] = field(default_factory=dict)
    language_skills: dict[str, str] = field(default_factory=dict)
    feature_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FEATURE_CODES))
    # mode ("listen", "whisper", "barge") -> the code a supervisor dials before the agent's extension.
    monitor_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MONITOR_CODES))
    # None: strict priority tiers (see RoutingConfig.priority_aging_seconds).
    priority_aging_seconds: float | None = DEFAULT_PRIORITY_AGING_SECONDS
    tier_priority: dict[str, int] = field(default_factory=lambda: dict(TIER_PRIORITY_BONUS))
    queues: dict[str, QueueSettings] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    # Wrap-up codes the agent desktop offers (web_accounts.py); empty: free text.
    dispositions: tuple[str, ...] = ()


def load_agents(path: Path, errors: list[ConfigError], files: list[str],
                prompt_uses: list | None = None) -> AgentsConfig:
    """Parse conf/agents.yaml (optional: no file means no queues and no agents). The queues' hold
    messages go to `prompt_uses` (file, line, what, prompt) for the loader's prompt check."""
    if not path.exists():
        return AgentsConfig()
    files.append(str(path))
    try:
        document = load_yaml_with_lines(path)
    except ConfigError as error:
        errors.append(error)
        return AgentsConfig()
    check = Checker(path, errors)
    top = check.mapping(document, 1, "agents.yaml")
    if top is None:
        return AgentsConfig()
    check.unknown_keys(top, {"realm", "digest_algorithms", "digest_nonce_lifetime_seconds", "feature_codes",
                             "pause_reasons", "language_skills", "priority_aging_seconds", "tier_priority", "queues",
                             "agents", "monitor_codes", "dispositions"}, "agents.yaml")
    language_skills: dict[str, str] = {}
    if "language_skills" in top and (section := check.mapping(top["language_skills"], top.line_of("language_skills"),
                                                              "language_skills")):
        language_skills = {str(k): str(v) for k, v in section.items()}
    reasons: dict[str, str] = {}
    if "pause_reasons" in top and (section := check.mapping(top["pause_reasons"], top.line_of("pause_reasons"),
                                                            "pause_reasons")):
        for digit, reason in section.items():
            if not re.fullmatch(r"[0-9]{1,2}", str(digit)) or not isinstance(reason, str) or not reason:
                check.error(section.line_of(digit), "pause_reasons maps 1-2 digit codes to reason names, "
                                                    f"e.g. \"1\": lunch (not {digit!r}: {reason!r})")
            else:
                reasons[str(digit)] = reason
    realm = check.text(top, "realm", "agents.yaml") or DEFAULT_REALM
    algorithms = top.get("digest_algorithms", ["SHA-256", "MD5"])
    if (not isinstance(algorithms, list) or not algorithms or len(set(algorithms)) != len(algorithms)
            or any(a not in ("SHA-256", "MD5") for a in algorithms)):
        check.error(top.line_of("digest_algorithms"), "digest_algorithms must list SHA-256 and/or MD5, most "
                                                      "preferred first (phones that only know MD5 need MD5 first)")
        algorithms = ["SHA-256", "MD5"]
    # At least 5 s: a nonce must outlive the challenge round trip, even over a slow TCP or TLS link.
    nonce_lifetime = float(check.number(top, "digest_nonce_lifetime_seconds", DEFAULT_NONCE_LIFETIME_SECONDS,
                                        "agents.yaml", minimum=5, maximum=3600))
    codes = dict(DEFAULT_FEATURE_CODES)
    if "feature_codes" in top and (section := check.mapping(top["feature_codes"], top.line_of("feature_codes"), "feature_codes")):
        check.unknown_keys(section, set(DEFAULT_FEATURE_CODES), "feature_codes")
        for name, code in section.items():
            if not re.fullmatch(r"[*#0-9]{2,8}", str(code)):
                check.error(section.line_of(name), f"feature code {name} must be 2-8 of * # 0-9, not {code!r}")
            else:
                codes[str(name)] = str(code)
    monitor_codes = _monitor_codes(check, top, codes)
    queues: dict[str, QueueSettings] = {}
    overflow: dict[str, tuple] = {}  # queue -> its overflow steps, to check the queues they add
    section = check.mapping(top.get("queues", LineDict()), top.line_of("queues"), "queues")
    for name, body in (section or {}).items():
        item = check.mapping(body if body is not None else LineDict(), section.line_of(name), f"queue {name!r}")
        if item is None:
            queues[str(name)] = QueueSettings(routing=QueueConfig(name=str(name)))  # error listed; name stays known
            continue
        check.unknown_keys(item, set(_ROUTING_KEYS) | {"description", "announce_every", "announce_position",
                                                       "hold_messages", "max_wait", "music", "callback_key",
                                                       "record", "survey_flow", "whisper", "overflow"},
                           f"queue {name!r}")
        callback_key = item.get("callback_key", "*")
        if callback_key is not None and str(callback_key) not in set("0123456789*#"):
            check.error(item.line_of("callback_key"), f"queue {name!r}: callback_key must be one DTMF key or null")
            callback_key = None
        options = {field_name: item[key] for key, field_name in _ROUTING_KEYS.items() if key in item}
        overflow[str(name)] = options["overflow"] = parse_overflow(check, item, str(name))
        try:
            routing = QueueConfig(name=str(name), **options)
        except (InvalidConfig, TypeError) as error:
            check.error(item.line, f"queue {name!r}: {error}")
            continue
        queues[str(name)] = QueueSettings(
            routing=routing, description=str(item.get("description", "")),
            announce_every_seconds=float(check.number(item, "announce_every", 30.0, f"queue {name!r}", minimum=5)),
            announce_position=_announce_position(check, item, str(name)),
            hold_messages=_hold_messages(check, item, str(name), str(path), prompt_uses),
            max_wait_seconds=float(check.number(item, "max_wait", 600.0, f"queue {name!r}", minimum=5)),
            music=str(item.get("music", "moh")), callback_key=None if callback_key is None else str(callback_key),
            record=check.boolean(item, "record", False, f"queue {name!r}"),
            survey_flow=check.text(item, "survey_flow", f"queue {name!r}"),
            whisper=check.boolean(item, "whisper", False, f"queue {name!r}"))
    if section:
        check_overflow_targets(check, section, {name: overflow.get(name, ()) for name in queues})
    agents: dict[str, AgentConfig] = {}
    section = check.mapping(top.get("agents", LineDict()), top.line_of("agents"), "agents")
    for agent_id, body in (section or {}).items():
        item = check.mapping(body, section.line_of(agent_id), f"agent {agent_id!r}")
        if item is None:
            continue
        where = f"agent {agent_id!r}"
        check.unknown_keys(item, {"name", "password_ha1", "skills", "queues", "srtp", "role"}, where)
        role = str(item.get("role", "agent"))
        if role not in ROLES:
            check.error(item.line_of("role"), f"{where}: role must be agent or supervisor, not {role!r}")
            role = "agent"
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(agent_id)):
            check.error(section.line_of(agent_id), f"{where}: the id is the SIP user name: letters, digits, _ . -")
        ha1 = check.mapping(item.get("password_ha1"), item.line_of("password_ha1"), f"{where} password_ha1")
        hashes: dict[str, str] = {}
        for algorithm, value in (ha1 or {}).items():
            size = {"md5": 32, "sha256": 64}.get(str(algorithm))
            if size is None or not re.fullmatch(rf"[0-9a-f]{{{size}}}", str(value)):
                check.error(ha1.line_of(algorithm), f"{where}: password_ha1 takes md5 (32 hex) and sha256 (64 hex) "
                                                    "values made by `acd agent-password`")
            else:
                hashes["MD5" if algorithm == "md5" else "SHA-256"] = str(value)
        skills = _levels(check, item, "skills", where)
        memberships = _levels(check, item, "queues", where, low=0, high=100)
        for queue, _ in memberships.items():
            if queue not in queues:
                check.error(item.line_of("queues"), f"{where}: unknown queue {queue!r} (known: {', '.join(queues) or 'none'})")
        agents[str(agent_id)] = AgentConfig(agent_id=str(agent_id), name=str(item.get("name", agent_id)), ha1=hashes,
                                            skills=skills, queues=memberships, srtp=srtp_policy(check, item, where),
                                            role=role)
    return AgentsConfig(realm=realm, digest_algorithms=tuple(algorithms), digest_nonce_lifetime_seconds=nonce_lifetime,
                        pause_reasons=reasons, feature_codes=codes, monitor_codes=monitor_codes,
                        queues=queues, agents=agents, language_skills=language_skills,
                        priority_aging_seconds=_priority_aging(check, top), tier_priority=_tier_priority(check, top),
                        dispositions=parse_dispositions(check, top))


def _monitor_codes(check: Checker, top: LineDict, feature_codes: dict[str, str]) -> dict[str, str]:
    """`monitor_codes`: {listen, whisper, barge} -> a code of 2-8 of * # 0-9 that is no prefix of (nor
    prefixed by) another code: the agent's extension follows it."""
    codes = dict(DEFAULT_MONITOR_CODES)
    if "monitor_codes" in top and (section := check.mapping(top["monitor_codes"], top.line_of("monitor_codes"),
                                                            "monitor_codes")):
        check.unknown_keys(section, set(DEFAULT_MONITOR_CODES), "monitor_codes")
        for name, code in section.items():
            if not re.fullmatch(r"[*#0-9]{2,8}", str(code)):
                check.error(section.line_of(name), f"monitor code {name} must be 2-8 of * # 0-9, not {code!r}")
            else:
                codes[str(name)] = str(code)
    others = list(feature_codes.values())
    for name, code in codes.items():
        clash = [other for other in others + [c for n, c in codes.items() if n != name]
                 if other.startswith(code) or code.startswith(other)]
        if clash:
            check.error(top.line_of("monitor_codes") if "monitor_codes" in top else top.line,
                        f"monitor code {name} {code!r} overlaps {clash[0]!r}: a code and what follows it must "
                        "read one way only; pick codes that are no prefix of another")
    return codes


def _priority_aging(check: Checker, top: LineDict) -> float | None:
    """`priority_aging_seconds`: seconds > 0, or none/null for strict priority tiers."""
    if "priority_aging_seconds" not in top:
        return DEFAULT_PRIORITY_AGING_SECONDS
    value = top["priority_aging_seconds"]
    if value is None or value == "none":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        check.error(top.line_of("priority_aging_seconds"),
                    "priority_aging_seconds must be the seconds of waiting one priority level is worth (> 0), "
                    f"or none for strict priority tiers, not {value!r}")
        return DEFAULT_PRIORITY_AGING_SECONDS
    return float(value)


def _tier_priority(check: Checker, top: LineDict) -> dict[str, int]:
    """`tier_priority`: customer tier → priority bonus 0-9; replaces the defaults (unlisted tiers get 0)."""
    if "tier_priority" not in top:
        return dict(TIER_PRIORITY_BONUS)
    section = check.mapping(top["tier_priority"], top.line_of("tier_priority"), "tier_priority")
    tiers: dict[str, int] = {}
    for tier, bonus in (section or {}).items():
        if isinstance(bonus, bool) or not isinstance(bonus, int) or not 0 <= bonus <= MAX_PRIORITY:
            check.error(section.line_of(tier), f"tier_priority maps customer tiers to a priority bonus 0-{MAX_PRIORITY}, "
                                               f"e.g. vip: 5 (not {tier}: {bonus!r})")
        else:
            tiers[str(tier)] = bonus
    return tiers if section is not None else dict(TIER_PRIORITY_BONUS)


def _announce_position(check: Checker, item: LineDict, queue: str) -> str:
    value = item.get("announce_position", "on_change")
    if value not in ANNOUNCE_POSITION_MODES:
        check.error(item.line_of("announce_position"), f"queue {queue!r}: announce_position must be one of "
                                                       f"{', '.join(ANNOUNCE_POSITION_MODES)}, not {value!r}")
        return "on_change"
    return value


def _hold_messages(check: Checker, item: LineDict, queue: str, path: str,
                   prompt_uses: list | None) -> tuple[str, ...]:
    """The queue's hold messages (prompt names, played in turn); [] or null for none."""
    if "hold_messages" not in item:
        return DEFAULT_HOLD_MESSAGES
    value = item["hold_messages"]
    if value is None:
        return ()
    line = item.line_of("hold_messages")
    if not isinstance(value, list) or any(isinstance(p, bool) or not isinstance(p, str) or not p for p in value):
        check.error(line, f"queue {queue!r}: hold_messages must be a list of prompt names, "
                          "e.g. [queue/please_hold, queue/thanks_for_holding], or []")
        return DEFAULT_HOLD_MESSAGES
    if prompt_uses is not None:
        lines = value.lines if isinstance(value, LineList) else [line] * len(value)
        prompt_uses.extend((path, at, f"queue {queue} hold_messages", prompt) for at, prompt in zip(lines, value))
    return tuple(value)


def _levels(check: Checker, item: LineDict, key: str, where: str, *, low: int = 1, high: int = 10) -> dict[str, int]:
    value = item.get(key)
    if value is None:
        return {}
    mapping = check.mapping(value, item.line_of(key), f"{where} {key}")
    result: dict[str, int] = {}
    for name, level in (mapping or {}).items():
        if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high:
            check.error(mapping.line_of(name), f"{where}: {key} {name} must be {low}-{high}, not {level!r}")
        else:
            result[str(name)] = level
    return result
