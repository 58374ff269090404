"""`sip: limits:` and `sip: timer_t1_seconds`: defaults, "auto" caps from the RTP range, file:line errors."""

from pathlib import Path

import pytest

from acd.config.changes import describe_changes, restart_required
from acd.config.checker import Checker
from acd.config.loader import ConfigInvalid, load_config
from acd.config.model import RtpSettings, SipLimits
from acd.config.sip_limits import parse_sip_limits
from acd.config.yaml_lines import load_yaml_with_lines

from tests.e2e.harness import write_config

REPO = Path(__file__).resolve().parents[3]


def parse(tmp_path: Path, text: str) -> tuple[SipLimits, list[tuple[int, str]]]:
    """parse_sip_limits on `limits:` + `text`; (limits, [(line, message)])."""
    path = tmp_path / "acd.yaml"
    path.write_text("limits:\n" + text)
    document = load_yaml_with_lines(path)
    errors: list = []
    limits = parse_sip_limits(Checker(path, errors), document["limits"], document.line_of("limits"))
    return limits, [(error.line, error.message) for error in errors]


def test_the_shipped_config_states_the_defaults():
    """conf/acd.yaml documents every limit with the value the server uses when it is left out."""
    config = load_config(REPO)
    assert config.sip.limits == SipLimits()
    assert config.sip.timer_t1_seconds == 0.5


def test_auto_caps_are_a_quarter_and_three_quarters_of_the_rtp_legs():
    """20000-20999 has ports for 500 legs: 125 unconfirmed calls per silent source, 375 in all."""
    assert SipLimits().unconfirmed_caps(RtpSettings(port_min=20000, port_max=20999)) == (125, 375)
    assert SipLimits().unconfirmed_caps(RtpSettings(port_min=20000, port_max=20003)) == (1, 1)
    assert SipLimits(max_unconfirmed_calls_per_source=7, max_unconfirmed_calls=9).unconfirmed_caps(
        RtpSettings()) == (7, 9)


def test_limits_are_read_with_their_types(tmp_path):
    limits, errors = parse(tmp_path, "  max_unconfirmed_calls_per_source: 20\n  max_unconfirmed_calls: auto\n"
                                     "  unknown_source_requests_per_second: 2.5\n  trunk_requests_per_second: 0\n")
    assert errors == []
    assert (limits.max_unconfirmed_calls_per_source, limits.max_unconfirmed_calls) == (20, None)
    assert (limits.unknown_source_requests_per_second, limits.trunk_requests_per_second) == (2.5, 0)


@pytest.mark.parametrize("line, needle", [
    ("  max_unconfirmed_calls: 0\n", "must be auto or a number of calls"),
    ("  max_unconfirmed_calls_per_source: lots\n", "must be auto or a number of calls"),
    ("  agent_request_burst: 1.5\n", "agent_request_burst must be an integer"),
    ("  unknown_source_requests_per_second: -1\n", "must be between 0 and"),
    ("  unknown_source_request_burst: 0\n", "must be at least 1 when unknown_source_requests_per_second is not 0"),
    ("  max_unconfirmed: 5\n", "unknown key 'max_unconfirmed' in sip limits"),
])
def test_a_bad_limit_is_reported_at_its_line(tmp_path, line, needle):
    limits, errors = parse(tmp_path, "  agent_requests_per_second: 100\n" + line)
    assert len(errors) == 1 and errors[0][0] == 3 and needle in errors[0][1], errors


def test_limits_apply_on_reload_but_t1_needs_a_restart(tmp_path):
    write_config(tmp_path, sip_port=5060, rtp_base=20000)
    old = load_config(tmp_path)
    text = (tmp_path / "conf" / "acd.yaml").read_text()
    (tmp_path / "conf" / "acd.yaml").write_text(text.replace(
        "  public_address: 127.0.0.1\n", "  public_address: 127.0.0.1\n  limits: {max_unconfirmed_calls: 3}\n"))
    new = load_config(tmp_path)
    assert restart_required(old, new) == []
    assert describe_changes(old, new) == ["sip.limits.max_unconfirmed_calls None -> 3"]
    (tmp_path / "conf" / "acd.yaml").write_text(text.replace(
        "  public_address: 127.0.0.1\n", "  public_address: 127.0.0.1\n  timer_t1_seconds: 0.1\n"))
    assert restart_required(old, load_config(tmp_path)) == ["sip.timer_t1_seconds 0.5 -> 0.1"]


@pytest.mark.parametrize("value", ["0.01", "5", "fast"])
def test_a_t1_out_of_range_is_refused_at_its_line(tmp_path, value):
    write_config(tmp_path, sip_port=5060, rtp_base=20000)
    path = tmp_path / "conf" / "acd.yaml"
    path.write_text(path.read_text().replace("  port: 5060\n", f"  port: 5060\n  timer_t1_seconds: {value}\n"))
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    [error] = caught.value.errors
    assert error.line == 4 and "sip timer_t1_seconds must be" in error.message, error
