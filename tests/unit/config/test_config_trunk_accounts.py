"""`trunks: NAME: register:`, `caller_id` and `trusted` in conf/acd.yaml: what loads, and file:line errors."""

import pytest

from acd.config.loader import load_config
from tests.unit.config import test_config_loader as loader_tests
from tests.unit.config.test_config_loader import edit, line_of, only_error

REGISTER = """    register:
      user: acd
      password: secret
      proxy: 192.0.2.10:5060
      backup_proxies: [192.0.2.11:5070]
      expires_seconds: 120
    caller_id: "+442071234567"
    trusted: true
"""


@pytest.fixture
def root(tmp_path):
    """The loader tests' demo-shaped tree, its trunk given REGISTER."""
    loader_tests.write(tmp_path, "conf/acd.yaml", loader_tests.MAIN_YAML)
    loader_tests.write(tmp_path, "dialplans/demo.yaml", loader_tests.DIALPLAN_YAML)
    loader_tests.write(tmp_path, "ivr_flows/main.yaml", loader_tests.FLOW_YAML)
    for prompt in loader_tests.DEMO_PROMPTS:
        loader_tests.write_wav(tmp_path / "sounds" / f"{prompt}.wav")
    edit(tmp_path, "conf/acd.yaml", "    sources: [127.0.0.1]\n", "    sources: [127.0.0.1]\n" + REGISTER)
    return tmp_path


def test_a_registering_trunk_loads_and_sends_its_calls_to_its_registrar(root):
    """The proxy is the default outbound address; the domain defaults to the proxy's host."""
    [trunk] = load_config(root).trunks
    register = trunk.register
    assert register.user == "acd" and register.credentials.password == "secret"
    assert register.proxies == (("192.0.2.10", 5060), ("192.0.2.11", 5070))
    assert register.domain == "192.0.2.10" and register.expires_seconds == 120
    assert trunk.outbound == ("192.0.2.10", 5060) and trunk.caller_id == "+442071234567" and trunk.trusted


@pytest.mark.parametrize("old, new, needle, problem", [
    ("      password: secret\n", "", "register:", "needs 'password' or 'ha1'"),
    ("      password: secret\n", "      ha1: abc\n", "ha1:", "32 hex digits"),
    ("      proxy: 192.0.2.10:5060\n", "      proxy: carrier.example\n", "proxy:", "must be IP:port"),
    ("[192.0.2.11:5070]", "[nowhere]", "backup_proxies", "must be IP:port"),
    ("expires_seconds: 120", "expires_seconds: 5", "expires_seconds", "between 10 and 86400"),
    ("      user: acd\n", "      user: acd\n      secret: x\n", "secret:", "unknown key 'secret'"),
    ('caller_id: "+442071234567"', 'caller_id: "<sip:x>"', "caller_id", "caller_id must be a number"),
    ("trusted: true", "trusted: maybe", "trusted", "must be true or false"),
])
def test_a_wrong_register_setting_names_its_line(root, old, new, needle, problem):
    """Each mistake is reported at its own line, saying what is expected."""
    path = edit(root, "conf/acd.yaml", old, new)
    name, line, message = only_error(root)
    assert name == "conf/acd.yaml" and line == line_of(path, needle) and problem in message, message


def test_a_trunk_with_auth_needs_no_sources_and_its_realm_defaults_to_our_address(root):
    """auth: alone identifies a trunk; without a realm, the challenge's realm is sip public_address."""
    edit(root, "conf/acd.yaml", REGISTER, "")
    edit(root, "conf/acd.yaml", "    sources: [127.0.0.1]\n", "    auth: {user: pbx, ha1: " + "a" * 32 + "}\n")
    [trunk] = load_config(root).trunks
    assert trunk.sources == () and trunk.auth.username == "pbx" and trunk.auth.realm == "127.0.0.1"


def test_a_trunk_without_sources_or_auth_is_refused(root):
    """Nobody could call in on it: the error says what identifies a trunk."""
    edit(root, "conf/acd.yaml", REGISTER, "")
    edit(root, "conf/acd.yaml", "    sources: [127.0.0.1]\n", "    port: 5060\n")
    messages = [message for _name, _line, message in loader_tests.errors_of(root)]
    assert "trunk 'demo' needs 'sources': a list of IP addresses or networks, or 'auth:' (Digest credentials) or 'register:'" in messages[0]


def test_a_registering_trunk_without_sources_takes_calls_from_its_registrars(root):
    """No sources: the proxy and the backups are the trunk's sources (calls come from the registrar)."""
    edit(root, "conf/acd.yaml", "    sources: [127.0.0.1]\n", "")
    [trunk] = load_config(root).trunks
    assert trunk.allows("192.0.2.10", 5060) and trunk.allows("192.0.2.11", 5070) and not trunk.allows("127.0.0.1", 1)
