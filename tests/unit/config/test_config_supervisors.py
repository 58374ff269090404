"""Supervisor accounts (`role: supervisor` on an agent entry) and the monitor codes of conf/agents.yaml:
defaults, file:line errors, codes that would read two ways, and the change listed for a reload."""

from pathlib import Path

import pytest

from acd.config.changes import describe_changes
from acd.config.loader import ConfigInvalid, load_config
from tests.e2e.harness import write_config


def demo_tree(root: Path, *, role: str | None = None, codes: str | None = None) -> Path:
    """The shipped demo config, with a `role:` on agent 1001 and/or a `monitor_codes:` line."""
    write_config(root, sip_port=5060, rtp_base=20000)
    path = root / "conf" / "agents.yaml"
    text = path.read_text()
    if role is not None:
        text = text.replace("    name: Alice\n", f"    name: Alice\n    role: {role}\n")
    if codes is not None:
        text = text.replace('monitor_codes: {listen: "*60", whisper: "*61", barge: "*62"}\n', f"monitor_codes: {codes}\n")
    path.write_text(text)
    return path


def test_accounts_are_agents_unless_they_say_supervisor_and_codes_default_to_60_61_62(tmp_path):
    demo_tree(tmp_path, role="supervisor")
    agents = load_config(tmp_path).agents
    assert {agent_id: agent.role for agent_id, agent in agents.agents.items()} == \
        {"1001": "supervisor", "1002": "agent", "1003": "agent", "9001": "supervisor"}
    assert agents.monitor_codes == {"listen": "*60", "whisper": "*61", "barge": "*62"}


def test_an_unknown_role_names_its_file_and_line(tmp_path):
    path = demo_tree(tmp_path, role="boss")
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "role: boss" in text)
    assert f"agents.yaml:{line}: agent '1001': role must be agent or supervisor, not 'boss'" in str(caught.value)


@pytest.mark.parametrize("codes, message", [
    ('{listen: "*4"}', "monitor code listen '*4' overlaps '*45'"),
    ('{listen: "*60", whisper: "*600"}', "overlaps"),
    ('{listen: "60a"}', "monitor code listen must be 2-8 of * # 0-9"),
    ('{spy: "*69"}', "spy"),
])
def test_monitor_codes_that_cannot_be_read_one_way_are_refused(tmp_path, codes, message):
    """A code that is a prefix of another (or of a feature code) would make *60 + 1001 ambiguous."""
    demo_tree(tmp_path, codes=codes)
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    assert message in str(caught.value)


def test_a_role_change_is_listed_for_the_reload(tmp_path):
    demo_tree(tmp_path / "old")
    demo_tree(tmp_path / "new", role="supervisor", codes='{listen: "*70", whisper: "*71", barge: "*72"}')
    changes = describe_changes(load_config(tmp_path / "old"), load_config(tmp_path / "new"))
    assert any("agent 1001" in change and "role agent -> supervisor" in change for change in changes), changes
    assert "agents.monitor_codes changed" in changes
