"""`sip: session_timer:`: defaults, values read with their types, file:line errors."""

from pathlib import Path

from acd.config.changes import describe_changes, restart_required
from acd.config.checker import Checker
from acd.config.loader import load_config
from acd.config.model import SessionTimerSettings
from acd.config.session_timers import parse_session_timer
from acd.config.yaml_lines import load_yaml_with_lines

from tests.e2e.harness import write_config

REPO = Path(__file__).resolve().parents[3]


def parse(tmp_path: Path, text: str) -> tuple[SessionTimerSettings, list[tuple[int, str]]]:
    """parse_session_timer on `session_timer:` + `text`; (settings, [(line, message)])."""
    path = tmp_path / "acd.yaml"
    path.write_text("session_timer:\n" + text)
    errors: list = []
    settings = parse_session_timer(Checker(path, errors), load_yaml_with_lines(path))
    return settings, [(error.line, error.message) for error in errors]


def test_the_shipped_config_states_the_defaults():
    assert load_config(REPO).sip.session_timer == SessionTimerSettings(default_seconds=1800, min_seconds=90)


def test_settings_are_read(tmp_path):
    assert parse(tmp_path, "  default_seconds: 600\n  min_seconds: 120\n") == (
        SessionTimerSettings(default_seconds=600, min_seconds=120), [])
    assert parse(tmp_path, "  min_seconds: 2\n  default_seconds: 3\n")[0] == SessionTimerSettings(3, 2)


def test_bad_values_are_reported_at_their_line(tmp_path):
    settings, errors = parse(tmp_path, "  default_seconds: 60\n  min_seconds: 90\n")
    assert settings == SessionTimerSettings(default_seconds=90, min_seconds=90)  # the load is refused anyway
    assert errors == [(2, "sip session_timer default_seconds (60) must be at least min_seconds (90): raise it or "
                          "lower min_seconds")]
    _, errors = parse(tmp_path, "  min_seconds: 0\n")
    assert errors and errors[0][0] == 2 and "min_seconds must be between 1 and 86400" in errors[0][1]
    _, errors = parse(tmp_path, "  default_seconds: half\n")
    assert errors == [(2, "sip session_timer default_seconds must be an integer, not 'half'")]


def test_a_reload_changes_the_timer_settings_live(tmp_path):
    """Read at each new call: no restart needed, and the reload says what changed."""
    write_config(tmp_path, sip_port=5060, rtp_base=20000)
    old = load_config(tmp_path)
    write_config(tmp_path, sip_port=5060, rtp_base=20000, sip_extra="  session_timer: {min_seconds: 120}\n")
    new = load_config(tmp_path)
    assert restart_required(old, new) == []
    assert describe_changes(old, new) == ["sip.session_timer.min_seconds 90 -> 120"]
