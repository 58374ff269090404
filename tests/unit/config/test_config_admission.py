"""`sip: admission:`: defaults, "auto" ceilings from the RTP range, file:line errors, capacity
warnings from `acd check`, and changes that go live on reload."""

from pathlib import Path

import pytest

from acd.cli import main
from acd.config.admission import capacity_warnings, parse_admission
from acd.config.changes import describe_changes, restart_required
from acd.config.checker import Checker
from acd.config.loader import load_config
from acd.config.model import AdmissionSettings, RtpSettings
from acd.config.yaml_lines import load_yaml_with_lines

from tests.e2e.harness import write_config

REPO = Path(__file__).resolve().parents[3]


def parse(tmp_path: Path, text: str) -> tuple[AdmissionSettings, list[tuple[int, str]]]:
    """parse_admission on `admission:` + `text`; (settings, [(line, message)])."""
    path = tmp_path / "acd.yaml"
    path.write_text("admission:\n" + text)
    errors: list = []
    settings = parse_admission(Checker(path, errors), load_yaml_with_lines(path))
    return settings, [(error.line, error.message) for error in errors]


def with_sip_lines(tmp_path: Path, lines: str, rtp_ports: int = 400):
    write_config(tmp_path, sip_port=5060, rtp_base=20000, sip_extra=lines, rtp_ports=rtp_ports)
    return load_config(tmp_path)


def test_the_shipped_config_states_the_defaults_and_its_range_holds_the_ceiling():
    """conf/acd.yaml documents every setting with the value used when it is left out; its RTP range
    (2000 legs) holds the auto ceiling (500 calls) and the agents' legs: no warning."""
    config = load_config(REPO)
    assert config.sip.admission == AdmissionSettings()
    ceilings = config.sip.admission.ceilings(config.rtp)
    assert (ceilings.max_calls, ceilings.new_calls_per_second, ceilings.overload_loop_lag_seconds) == (500, 400, 0.1)
    assert capacity_warnings(config) == []


def test_auto_follows_the_rtp_range():
    rtp = RtpSettings(port_min=20000, port_max=20999)  # the old demo range: 500 legs
    assert AdmissionSettings().ceilings(rtp).max_calls == 375
    assert AdmissionSettings(max_calls=7, max_new_calls_per_second=0).ceilings(rtp).max_calls == 7


def test_settings_are_read_with_their_types(tmp_path):
    settings, errors = parse(tmp_path, "  max_calls: 300\n  max_new_calls_per_second: 0\n"
                                       "  overload_loop_lag_seconds: 0\n  retry_after_seconds: 10\n")
    assert errors == []
    assert settings == AdmissionSettings(max_calls=300, max_new_calls_per_second=0.0, overload_loop_lag_seconds=0,
                                         retry_after_seconds=10)
    settings, errors = parse(tmp_path, "  max_calls: auto\n  max_new_calls_per_second: 250.5\n")
    assert errors == [] and (settings.max_calls, settings.max_new_calls_per_second) == (None, 250.5)


@pytest.mark.parametrize("line, needle", [
    ("  max_calls: 0\n", "sip admission max_calls must be auto or a number of calls"),
    ("  max_calls: 2.5\n", "sip admission max_calls must be auto or a number of calls"),
    ("  max_calls: -3\n", "sip admission max_calls must be auto or a number of calls"),
    ("  overload_loop_lag_seconds: 0.001\n", "must be 0 (not watched) or at least 0.005"),
    ("  overload_loop_lag_seconds: -1\n", "overload_loop_lag_seconds must be between 0 and 10"),
    ("  retry_after_seconds: 0\n", "retry_after_seconds must be between 1 and 3600"),
    ("  max_call: 5\n", "unknown key 'max_call' in sip admission"),
])
def test_a_bad_setting_is_reported_at_its_line(tmp_path, line, needle):
    _, errors = parse(tmp_path, "  max_new_calls_per_second: 50\n" + line)
    assert len(errors) == 1 and errors[0][0] == 3 and needle in errors[0][1], errors


def test_a_bad_rate_is_reported_at_its_line(tmp_path):
    _, errors = parse(tmp_path, "  max_calls: 5\n  max_new_calls_per_second: fast\n")
    assert errors == [(3, "sip admission max_new_calls_per_second must be auto or a number of calls a second (0: "
                          "no limit), 0-100000; not 'fast'")]


def test_acd_check_warns_when_the_rtp_range_holds_fewer_legs_than_the_call_ceiling(tmp_path, capsys):
    """400 ports are 200 legs: a ceiling of 300 calls cannot be reached; the config still loads (exit 0)."""
    with_sip_lines(tmp_path, "  admission:\n    max_calls: 300\n")
    assert main(["check", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("config OK")
    assert out[1] == ("warning: rtp ports 20000-20399 hold 200 call legs, fewer than sip admission max_calls 300: "
                      "calls past 200 would be refused for want of a port; widen rtp ports to 20000-20xxx or lower "
                      "sip admission max_calls".replace("20xxx", str(20000 + 2 * (300 + agents(tmp_path)) - 1)))


def test_a_range_that_holds_the_calls_but_not_the_agents_legs_is_warned_too(tmp_path):
    config = with_sip_lines(tmp_path, "  admission:\n    max_calls: 199\n")
    [warning] = capacity_warnings(config)
    assert "with 199 calls in progress (sip admission max_calls) only 1 are left for the legs to" in warning


def test_admission_changes_go_live_on_reload(tmp_path):
    old = with_sip_lines(tmp_path, "")
    new = with_sip_lines(tmp_path, "  admission: {max_calls: 3}\n")
    assert restart_required(old, new) == []
    assert describe_changes(old, new) == ["sip.admission.max_calls None -> 3"]


def agents(root: Path) -> int:
    config = load_config(root)
    return len(config.agents.agents) if config.agents is not None else 0
