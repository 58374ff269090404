"""conf/agents.yaml keys for caller priority (`priority_aging_seconds`, `tier_priority`) and for what
waiting callers hear (`announce_position`, `hold_messages`): defaults, values, and file:line errors."""

from pathlib import Path

import pytest

from acd.calls.acd_service import routing_config_from
from acd.config.agents import DEFAULT_HOLD_MESSAGES, load_agents
from acd.config.changes import describe_changes
from acd.config.loader import ConfigInvalid, load_config
from acd.context.routing_hints import TIER_PRIORITY_BONUS, caller_priority
from tests.e2e.harness import write_config

QUEUES = "queues:\n  q: {when_no_agents: join}\n"


def load(tmp_path: Path, text: str):
    """load_agents on `text`; (config, [(line, message)], prompt uses)."""
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    errors, uses = [], []
    config = load_agents(path, errors, [], uses)
    return config, [(error.line, error.message) for error in errors], uses


def test_defaults_keep_aging_a_minute_the_shipped_tier_bonuses_and_on_change_announcements(tmp_path):
    config, errors, _ = load(tmp_path, QUEUES)
    assert errors == []
    assert config.priority_aging_seconds == 60.0
    assert config.tier_priority == TIER_PRIORITY_BONUS == {"vip": 5, "gold": 3, "silver": 1}
    queue = config.queues["q"]
    assert queue.announce_position == "on_change" and queue.hold_messages == DEFAULT_HOLD_MESSAGES


@pytest.mark.parametrize("written, expected", [("90", 90.0), ("2.5", 2.5), ("none", None), ("null", None),
                                               ("", None)])
def test_priority_aging_takes_seconds_or_none_for_strict_tiers(tmp_path, written, expected):
    config, errors, _ = load(tmp_path, f"priority_aging_seconds: {written}\n" + QUEUES)
    assert errors == [] and config.priority_aging_seconds == expected


@pytest.mark.parametrize("written", ["0", "-5", "soon", "true", "[60]"])
def test_bad_priority_aging_names_its_line(tmp_path, written):
    config, errors, _ = load(tmp_path, QUEUES + f"priority_aging_seconds: {written}\n")
    assert len(errors) == 1 and errors[0][0] == 3, errors
    assert "priority_aging_seconds must be the seconds of waiting one priority level is worth" in errors[0][1]
    assert "or none for strict priority tiers" in errors[0][1]
    assert config.priority_aging_seconds == 60.0


def test_tier_priority_replaces_the_defaults(tmp_path):
    config, errors, _ = load(tmp_path, "tier_priority: {platinum: 7, gold: 2}\n" + QUEUES)
    assert errors == [] and config.tier_priority == {"platinum": 7, "gold": 2}
    assert caller_priority(1, {"tier": "platinum"}, config.tier_priority) == 8
    assert caller_priority(1, {"tier": "vip"}, config.tier_priority) == 1, "an unlisted tier adds nothing"
    assert caller_priority(5, {"tier": "platinum"}, config.tier_priority) == 9, "capped at 9"


@pytest.mark.parametrize("written, line, problem", [
    ("tier_priority:\n  vip: 12\n", 2, "tier_priority maps customer tiers to a priority bonus 0-9, e.g. vip: 5 "
                                        "(not vip: 12)"),
    ("tier_priority:\n  gold: 3\n  vip: high\n", 3, "(not vip: 'high')"),
    ("tier_priority: [vip, gold]\n", 1, "tier_priority must be a mapping"),
])
def test_bad_tier_priority_names_its_line(tmp_path, written, line, problem):
    _, errors, _ = load(tmp_path, written + QUEUES)
    assert len(errors) == 1 and errors[0][0] == line and problem in errors[0][1], errors


def test_queue_announcement_options_are_read(tmp_path):
    config, errors, uses = load(tmp_path, "queues:\n  q:\n    announce_position: always\n"
                                          "    hold_messages:\n      - queue/please_hold\n      - thank_you\n"
                                          "  quiet: {announce_position: never, hold_messages: []}\n"
                                          "  music_only: {hold_messages: null}\n")
    assert errors == []
    assert config.queues["q"].announce_position == "always"
    assert config.queues["q"].hold_messages == ("queue/please_hold", "thank_you")
    assert config.queues["quiet"].hold_messages == () == config.queues["music_only"].hold_messages
    assert config.queues["quiet"].announce_position == "never"
    assert [(line, prompt) for _, line, _, prompt in uses] == [(5, "queue/please_hold"), (6, "thank_you")]


@pytest.mark.parametrize("written, problem", [
    ("{announce_position: sometimes}", "queue 'q': announce_position must be one of on_change, always, never, "
                                       "not 'sometimes'"),
    ("{hold_messages: queue/please_hold}", "queue 'q': hold_messages must be a list of prompt names"),
    ("{hold_messages: [queue/please_hold, 5]}", "queue 'q': hold_messages must be a list of prompt names"),
])
def test_bad_queue_announcement_options_name_their_line(tmp_path, written, problem):
    _, errors, _ = load(tmp_path, f"realm: x\nqueues:\n  q: {written}\n")
    assert len(errors) == 1 and errors[0][0] == 3 and problem in errors[0][1], errors


def demo_tree(root: Path, *, replace: tuple[str, str] | None = None) -> Path:
    """The shipped demo config (sounds from the repository), with conf/agents.yaml edited."""
    write_config(root, sip_port=5060, rtp_base=20000)
    path = root / "conf" / "agents.yaml"
    text = path.read_text()
    if replace:
        assert text.count(replace[0]) == 1
        text = text.replace(*replace)
    path.write_text(text)
    return path


def test_missing_hold_message_prompt_names_its_line(tmp_path):
    path = demo_tree(tmp_path, replace=("hold_messages: [queue/please_hold, queue/thanks_for_holding]",
                                        "hold_messages: [queue/please_hold, queue/nope]"))
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    [error] = caught.value.errors
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "queue/nope" in text)
    assert error.line == line and "prompt 'queue/nope' has no file sounds/queue/nope.wav" in error.message


def test_routing_config_carries_priority_aging_and_a_change_is_listed_for_the_reload(tmp_path):
    demo_tree(tmp_path)
    before = load_config(tmp_path)
    assert routing_config_from(before).priority_aging_seconds == 60.0
    demo_tree(tmp_path, replace=("tier_priority: {vip: 5, gold: 3, silver: 1}\npriority_aging_seconds: 60",
                                 "tier_priority: {vip: 4}\npriority_aging_seconds: none"))
    after = load_config(tmp_path)
    assert routing_config_from(after).priority_aging_seconds is None
    assert after.agents.tier_priority == {"vip": 4}
    changes = describe_changes(before, after)
    assert "agents.priority_aging_seconds 60.0 -> None" in changes and "agents.tier_priority changed" in changes
