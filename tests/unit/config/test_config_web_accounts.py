"""conf/agents.yaml `dispositions:`, and conf/acd.yaml's web session lifetimes:
parsed with defaults, bad values reported at their line."""

from pathlib import Path

import pytest

from acd.config.agents import load_agents
from acd.config.loader import load_config
from acd.config.yaml_lines import ConfigInvalid
from tests.e2e.harness import write_config

MD5 = "a" * 32
SHA = "b" * 64


def load(tmp_path: Path, text: str):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    errors: list = []
    config = load_agents(path, errors, [], [])
    return config, [(error.line, error.message) for error in errors]


def test_no_dispositions_by_default(tmp_path):
    config, errors = load(tmp_path, "realm: r\n")
    assert errors == [] and config.dispositions == ()


def test_a_supervisors_section_is_refused_supervisors_are_agents_with_a_role(tmp_path):
    _, errors = load(tmp_path, f'realm: r\nsupervisors:\n  "9001": {{password_ha1: {{md5: {MD5}}}}}\n')
    assert [line for line, _ in errors] == [2] and "unknown key 'supervisors'" in errors[0][1]


def test_dispositions_are_a_list_of_distinct_codes(tmp_path):
    config, errors = load(tmp_path, "realm: r\ndispositions: [sale, no-sale, call back later]\n")
    assert errors == [] and config.dispositions == ("sale", "no-sale", "call back later")
    _, errors = load(tmp_path, "realm: r\ndispositions: [sale, sale]\n")
    assert errors and errors[0][0] == 2 and "distinct wrap-up codes" in errors[0][1]
    _, errors = load(tmp_path, "realm: r\ndispositions: {sale: 1}\n")
    assert errors and errors[0][0] == 2


def test_web_session_lifetimes_default_and_take_seconds(tmp_path):
    write_config(tmp_path, sip_port=5060, rtp_base=20000)
    config = load_config(tmp_path)
    assert (config.http.web_session_idle_seconds, config.http.web_session_max_seconds) == (1800.0, 43200.0)
    main = tmp_path / "conf" / "acd.yaml"
    main.write_text(main.read_text().replace("http:\n", "http:\n  web_session_idle_seconds: 600\n"
                                                         "  web_session_max_seconds: 3600\n"))
    config = load_config(tmp_path)
    assert (config.http.web_session_idle_seconds, config.http.web_session_max_seconds) == (600.0, 3600.0)


def test_a_web_session_shorter_than_a_minute_is_refused(tmp_path):
    write_config(tmp_path, sip_port=5060, rtp_base=20000)
    main = tmp_path / "conf" / "acd.yaml"
    main.write_text(main.read_text().replace("http:\n", "http:\n  web_session_idle_seconds: 5\n"))
    with pytest.raises(ConfigInvalid, match="web_session_idle_seconds must be between 60"):
        load_config(tmp_path)
