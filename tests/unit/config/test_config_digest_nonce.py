"""conf/agents.yaml `digest_nonce_lifetime_seconds`: default 30, bounds 5-3600, file:line errors, seen by a reload."""

from pathlib import Path

import pytest

from acd.config.agents import load_agents
from acd.config.changes import describe_changes
from acd.config.loader import load_config
from tests.e2e.harness import write_config


def load(tmp_path: Path, text: str):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    errors: list = []
    config = load_agents(path, errors, [], [])
    return config, [(error.line, error.message) for error in errors]


def test_nonce_lifetime_defaults_to_30_seconds(tmp_path):
    config, errors = load(tmp_path, "realm: r\n")
    assert errors == [] and config.digest_nonce_lifetime_seconds == 30.0


def test_nonce_lifetime_takes_seconds(tmp_path):
    config, errors = load(tmp_path, "realm: r\ndigest_nonce_lifetime_seconds: 120\n")
    assert errors == [] and config.digest_nonce_lifetime_seconds == 120.0


@pytest.mark.parametrize("written", ["1", "0", "-3", "7200", "soon", "true"])
def test_bad_nonce_lifetime_names_its_line(tmp_path, written):
    config, errors = load(tmp_path, f"realm: r\ndigest_nonce_lifetime_seconds: {written}\n")
    assert len(errors) == 1 and errors[0][0] == 2, errors
    assert "digest_nonce_lifetime_seconds must be" in errors[0][1]
    assert config.digest_nonce_lifetime_seconds == 30.0


def test_the_shipped_config_sets_30_seconds_and_a_reload_lists_a_change(tmp_path):
    write_config(tmp_path, sip_port=5060, rtp_base=20000)
    before = load_config(tmp_path)
    assert before.agents.digest_nonce_lifetime_seconds == 30.0
    path = tmp_path / "conf" / "agents.yaml"
    path.write_text(path.read_text().replace("digest_nonce_lifetime_seconds: 30", "digest_nonce_lifetime_seconds: 60"))
    after = load_config(tmp_path)
    assert after.agents.digest_nonce_lifetime_seconds == 60.0
    assert "agents.digest_nonce_lifetime_seconds changed" in describe_changes(before, after)
