"""The `srtp:` policy of trunks (conf/acd.yaml) and agents (conf/agents.yaml): default, the three
values (a bare YAML `off` included), file:line errors, and a change listed for the reload."""

from pathlib import Path

import pytest

from acd.config.changes import describe_changes
from acd.config.loader import ConfigInvalid, load_config
from tests.e2e.harness import write_config


def demo_tree(root: Path, *, trunk_srtp: str | None = None, agent_srtp: str | None = None) -> None:
    """The shipped demo config with an `srtp:` line on the trunk and/or on agent 1001."""
    write_config(root, sip_port=5060, rtp_base=20000)
    if trunk_srtp is not None:
        path = root / "conf" / "acd.yaml"
        path.write_text(path.read_text().replace("    sources: [127.0.0.1]\n",
                                                 f"    sources: [127.0.0.1]\n    srtp: {trunk_srtp}\n"))
    if agent_srtp is not None:
        path = root / "conf" / "agents.yaml"
        text = path.read_text()
        assert text.count("    name: Alice\n") == 1
        path.write_text(text.replace("    name: Alice\n", f"    name: Alice\n    srtp: {agent_srtp}\n"))


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_default_is_optional_for_trunks_and_agents(tmp_path):
    demo_tree(tmp_path)
    config = load_config(tmp_path)
    assert {trunk.srtp for trunk in config.trunks} == {"optional"}
    assert {agent.srtp for agent in config.agents.agents.values()} == {"optional"}


@pytest.mark.parametrize("written, policy", [("required", "required"), ("optional", "optional"), ("off", "off"),
                                             ('"off"', "off"), ("false", "off")])
def test_each_policy_is_read_for_a_trunk_and_an_agent(tmp_path, written, policy):
    demo_tree(tmp_path, trunk_srtp=written, agent_srtp=written)
    config = load_config(tmp_path)
    assert config.trunks[0].srtp == policy
    assert config.agents.agents["1001"].srtp == policy and config.agents.agents["1002"].srtp == "optional"


@pytest.mark.parametrize("written", ["on", "yes", "mandatory", "1"])
def test_a_bad_policy_names_its_file_and_line(tmp_path, written):
    demo_tree(tmp_path, trunk_srtp=written, agent_srtp=written)
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    found = {(Path(e.path).name, e.line): e.message for e in caught.value.errors}
    trunk_line = line_of(tmp_path / "conf" / "acd.yaml", "srtp:")
    agent_line = line_of(tmp_path / "conf" / "agents.yaml", "srtp:")
    assert set(found) == {("acd.yaml", trunk_line), ("agents.yaml", agent_line)}, found
    assert "trunk 'test' srtp must be one of required, optional, off" in found[("acd.yaml", trunk_line)]
    assert "agent '1001' srtp must be one of required, optional, off" in found[("agents.yaml", agent_line)]


def test_a_policy_change_is_listed_for_the_reload(tmp_path):
    demo_tree(tmp_path)
    before = load_config(tmp_path)
    demo_tree(tmp_path, trunk_srtp="required", agent_srtp="off")
    changes = describe_changes(before, load_config(tmp_path))
    assert "trunk test: srtp 'optional' -> 'required'" in changes
    assert "agent 1001: srtp optional -> off" in changes
