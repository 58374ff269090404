"""The config loader: the demo set loads, and every problem is reported with its file and line.

Each test builds a small config tree in `tmp_path` (the demo's YAML plus tiny generated WAVs),
breaks one thing, and checks that `ConfigInvalid.errors` points at the file and line to fix.
"""

import wave
from pathlib import Path

import pytest

from acd.config.loader import ConfigError, ConfigInvalid, load_config

REPO = Path(__file__).resolve().parents[3]
DEMO_PROMPTS = ("welcome", "menu_main", "menu_timeout", "menu_invalid", "sales", "support", "goodbye")

MAIN_YAML = """\
sip:
  listen: 127.0.0.1
  port: 5060
rtp:
  address: 127.0.0.1
  ports: 20000-20999
trunks:
  demo:
    sources: [127.0.0.1]
"""

DIALPLAN_YAML = """\
routes:
  - number: "1000"
    flow: main
  - pattern: "2[0-9]{3}"
    flow: main
"""

FLOW_YAML = """\
name: main
start: welcome
steps:
  welcome:
    play: welcome
    next: main_menu
  main_menu:
    menu: menu_main
    choices:
      "1": sales
      "2": support
    timeout_prompt: menu_timeout
    invalid_prompt: menu_invalid
    on_failure: goodbye
  sales:
    play: sales
    next: goodbye
  support:
    play: support
    next: goodbye
  goodbye:
    play: goodbye
    next: end
  end:
    hangup: true
"""


def write_wav(path: Path, *, rate: int = 8000, channels: int = 1, width: int = 2) -> None:
    """A 10 ms prompt of silence in the given format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(b"\x00" * (width * channels * rate // 100))


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    """A valid config tree shaped like the demo: one trunk, two routes, flow `main`, 8 kHz prompts."""
    write(tmp_path, "conf/acd.yaml", MAIN_YAML)
    write(tmp_path, "dialplans/demo.yaml", DIALPLAN_YAML)
    write(tmp_path, "ivr_flows/main.yaml", FLOW_YAML)
    for prompt in DEMO_PROMPTS:
        write_wav(tmp_path / "sounds" / f"{prompt}.wav")
    return tmp_path


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line of `path` containing `needle`."""
    found = [number for number, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    return found[occurrence - 1]


def errors_of(root: Path) -> list[tuple[str, int, str]]:
    """Load `root`, which must fail; its errors as (file relative to root, line, message)."""
    with pytest.raises(ConfigInvalid) as caught:
        load_config(root)
    assert caught.value.errors, "ConfigInvalid with no errors"
    base = root.resolve()
    return [(Path(e.path).relative_to(base).as_posix(), e.line, e.message) for e in caught.value.errors]


def only_error(root: Path) -> tuple[str, int, str]:
    errors = errors_of(root)
    assert len(errors) == 1, errors
    return errors[0]


def edit(root: Path, name: str, old: str, new: str) -> Path:
    """Replace `old` (which must occur once) in one file of the tree."""
    path = root / name
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {name}"
    path.write_text(text.replace(old, new))
    return path


# ---- what loads ----------------------------------------------------------------------------------

def test_the_shipped_demo_config_loads():
    config = load_config(REPO)
    assert [(r.number, r.flow) for r in config.routes] == [("1000", "main"), ("1001", "main"),
                                                           ("1010", "recorded_line")]
    assert config.routes[1].answer_after_seconds == 3
    assert sorted(config.flows) == ["billing", "main", "recorded_line", "survey"]
    assert config.flows["recorded_line"].announce_before_answer == ("calls_recorded",)
    main = config.flows["main"]
    assert main.start == "welcome"
    assert main.prompts_used() <= set(config.prompts)
    assert config.trunk_for("127.0.0.1", 5062).name == "demo"
    assert config.trunk_for("192.0.2.1", 5060) is None
    assert (config.rtp.port_min, config.rtp.port_max) == (20000, 23999)


def test_a_demo_shaped_tree_loads_with_every_field(root):
    config = load_config(root)
    assert config.route_for("1000").flow == "main"
    assert config.route_for("2345").pattern.pattern == "2[0-9]{3}"
    assert config.route_for("23456") is None  # patterns match the whole number
    menu = config.flows["main"].steps["main_menu"]
    assert menu.choices == {"1": "sales", "2": "support"}
    assert (menu.timeout_prompts, menu.invalid_prompts, menu.on_failure) == (("menu_timeout",), ("menu_invalid",),
                                                                              "goodbye")
    assert menu.line == line_of(root / "ivr_flows/main.yaml", "main_menu:")
    assert config.sip.transports == ("udp", "tcp")
    assert str(root / "conf/acd.yaml") in config.files


def test_unquoted_plain_number_is_taken_as_written(root):
    edit(root, "dialplans/demo.yaml", 'number: "1000"', "number: 1000")
    assert load_config(root).route_for("1000") is not None


def test_prompts_in_subdirectories_and_lists_are_found(root):
    write_wav(root / "sounds/digits/1.wav")
    edit(root, "ivr_flows/main.yaml", "play: sales\n", "play: [sales, digits/1]\n")
    assert load_config(root).flows["main"].steps["sales"].prompts == ("sales", "digits/1")


# ---- one error, the right file and line ----------------------------------------------------------

def test_yaml_syntax_error_names_the_line(root):
    path = edit(root, "ivr_flows/main.yaml", "start: welcome\n", "start: welcome\n  oops: indented\n")
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(path, "oops"))
    assert "YAML syntax" in message


def test_unclosed_bracket_in_yaml_is_reported(root):
    edit(root, "conf/acd.yaml", "sources: [127.0.0.1]", "sources: [127.0.0.1")
    name, line, message = errors_of(root)[0]
    assert name == "conf/acd.yaml" and line > 0 and "YAML syntax" in message


def test_duplicate_key_names_the_second_occurrence(root):
    path = edit(root, "ivr_flows/main.yaml", "  end:\n", "  sales:\n    play: sales\n  end:\n")
    assert only_error(root) == ("ivr_flows/main.yaml", line_of(path, "sales:", 2), "YAML syntax: duplicate key 'sales'")


@pytest.mark.parametrize("name, old, new, needle, what", [
    ("conf/acd.yaml", "  port: 5060\n", "  prot: 5060\n", "prot", "unknown key 'prot' in sip"),
    ("conf/acd.yaml", "trunks:", "trunk_list: 1\ntrunks:", "trunk_list", "unknown key 'trunk_list' in conf/acd.yaml"),
    ("ivr_flows/main.yaml", "    next: main_menu\n", "    nxt: main_menu\n", "nxt", "unknown key 'nxt' in play step"),
    ("ivr_flows/main.yaml", "    on_failure: goodbye\n", "    on_fail: goodbye\n", "on_fail",
     "unknown key 'on_fail' in menu step"),
    ("dialplans/demo.yaml", "    flow: main\n  - pattern", "    flow: main\n    answer_after: 2\n  - pattern",
     "answer_after", "unknown key 'answer_after' in route"),
])
def test_unknown_key_names_its_line(root, name, old, new, needle, what):
    path = edit(root, name, old, new)
    errors = errors_of(root)
    assert (name, line_of(path, needle)) in [(e[0], e[1]) for e in errors], errors
    assert any(what in e[2] for e in errors), errors


def test_step_with_two_kinds_names_the_step(root):
    path = edit(root, "ivr_flows/main.yaml", "    play: sales\n", "    play: sales\n    hangup: true\n")
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(path, "sales:"))
    assert "exactly one of" in message and "'play', 'hangup'" in message


def test_step_with_no_kind_is_refused(root):
    path = edit(root, "ivr_flows/main.yaml", "  end:\n    hangup: true\n", "  end:\n    say: bye\n")
    errors = errors_of(root)
    assert ("ivr_flows/main.yaml", line_of(path, "end:")) in [(e[0], e[1]) for e in errors]
    assert any("found none" in e[2] for e in errors)


@pytest.mark.parametrize("old, new, needle", [
    ("next: main_menu", "next: main_mnu", "main_mnu"),
    ('"2": support', '"2": suport', "suport"),
    ("on_failure: goodbye", "on_failure: good_bye", "good_bye"),
])
def test_unknown_target_step_names_the_line_that_names_it(root, old, new, needle):
    path = edit(root, "ivr_flows/main.yaml", old, new)
    assert only_error(root)[:2] == ("ivr_flows/main.yaml", line_of(path, needle))
    assert f"unknown step {needle!r}" in only_error(root)[2]


def test_unreachable_step_names_the_step(root):
    path = edit(root, "ivr_flows/main.yaml", "  end:\n", "  lost:\n    play: sales\n  end:\n")
    assert only_error(root) == ("ivr_flows/main.yaml", line_of(path, "lost:"),
                                "step 'lost' is unreachable from start step 'welcome'")


def test_unknown_start_step_names_the_start_line(root):
    path = edit(root, "ivr_flows/main.yaml", "start: welcome", "start: hello")
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(path, "start:"))
    assert "starts at unknown step 'hello'" in message


def test_missing_prompt_file_names_the_line_of_the_prompt(root):
    (root / "sounds/sales.wav").unlink()
    path = root / "ivr_flows/main.yaml"
    assert only_error(root) == ("ivr_flows/main.yaml", line_of(path, "play: sales"),
                                "step 'sales': prompt 'sales' has no file sounds/sales.wav")


def test_missing_prompt_in_a_list_names_the_item_line(root):
    path = edit(root, "ivr_flows/main.yaml", "    play: goodbye\n", "    play:\n      - goodbye\n      - thanks\n")
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(path, "- thanks"))
    assert "'thanks' has no file" in message


def test_missing_feedback_prompt_names_its_key(root):
    (root / "sounds/menu_timeout.wav").unlink()
    name, line, message = only_error(root)
    assert line == line_of(root / "ivr_flows/main.yaml", "timeout_prompt:")
    assert "step 'main_menu'" in message


@pytest.mark.parametrize("wav_format, problem", [
    ({"rate": 16000}, "is 16000 Hz, expected 8000 Hz"),
    ({"channels": 2}, "has 2 channels, expected mono"),
    ({"width": 1}, "has 8-bit samples, expected 16-bit"),
])
def test_prompt_in_the_wrong_format_is_refused(root, wav_format, problem):
    write_wav(root / "sounds/welcome.wav", **wav_format)
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(root / "ivr_flows/main.yaml", "play: welcome"))
    assert problem in message and "welcome.wav" in message


def test_prompt_that_is_not_a_wav_file_is_refused(root):
    (root / "sounds/sales.wav").write_bytes(b"ID3 not a wave file")
    assert "not a 16-bit PCM WAV file" in only_error(root)[2]


def test_bad_regex_pattern_names_the_pattern_line(root):
    path = edit(root, "dialplans/demo.yaml", '"2[0-9]{3}"', '"2[0-9"')
    name, line, message = only_error(root)
    assert (name, line) == ("dialplans/demo.yaml", line_of(path, "pattern:"))
    assert "not a valid regular expression" in message


def test_route_to_unknown_flow_names_the_flow_line(root):
    path = edit(root, "dialplans/demo.yaml", "    flow: main\n  - pattern", "    flow: sales\n  - pattern")
    assert only_error(root) == ("dialplans/demo.yaml", line_of(path, "flow: sales"),
                                "route goes to unknown flow 'sales' (known: main)")


def test_route_without_flow_is_refused(root):
    edit(root, "dialplans/demo.yaml", "    flow: main\n  - pattern", "  - pattern")
    assert only_error(root)[1:] == (2, "route needs 'flow:' naming a flow in ivr_flows/")


def test_route_with_number_and_pattern_names_the_route(root):
    path = edit(root, "dialplans/demo.yaml", '  - number: "1000"\n', '  - number: "1000"\n    pattern: "1.*"\n')
    name, line, message = only_error(root)
    assert (name, line) == ("dialplans/demo.yaml", line_of(path, "number:"))
    assert "exactly one of 'number'" in message


def test_route_with_neither_number_nor_pattern_is_refused(root):
    edit(root, "dialplans/demo.yaml", '  - number: "1000"\n    flow: main\n', "  - flow: main\n")
    assert "exactly one of 'number'" in only_error(root)[2]


@pytest.mark.parametrize("written, reads_as", [("0123", "83"), ("+3312", "3312"), ("1_000", "1000"), ("yes", "True")])
def test_unquoted_number_yaml_would_change_is_refused(root, written, reads_as):
    """YAML 1.1 reads 0123 as octal 83 and drops a leading +: routing on that would be silently wrong."""
    path = edit(root, "dialplans/demo.yaml", 'number: "1000"', f"number: {written}")
    name, line, message = only_error(root)
    assert (name, line) == ("dialplans/demo.yaml", line_of(path, "number:"))
    assert f"reads as {reads_as}" in message and f'"{written}"' in message


def test_empty_number_is_refused(root):
    edit(root, "dialplans/demo.yaml", 'number: "1000"', "number:")
    assert only_error(root)[1:] == (2, "route number is empty")


def test_bad_trunk_source_names_the_source_line(root):
    path = edit(root, "conf/acd.yaml", "    sources: [127.0.0.1]\n", "    sources:\n      - 127.0.0.1\n      - 10.0.0.300\n")
    name, line, message = only_error(root)
    assert (name, line) == ("conf/acd.yaml", line_of(path, "10.0.0.300"))
    assert "'10.0.0.300' is not an IP address or network" in message


def test_trunk_without_sources_is_refused(root):
    path = edit(root, "conf/acd.yaml", "    sources: [127.0.0.1]\n", "    port: 5060\n")
    errors = errors_of(root)
    assert ("conf/acd.yaml", line_of(path, "port: 5060", 2)) == errors[0][:2]
    assert "needs 'sources'" in errors[0][2]


@pytest.mark.parametrize("port", ["true", "0", "70000", "five"])
def test_bad_trunk_port_is_refused(root, port):
    path = edit(root, "conf/acd.yaml", "    sources: [127.0.0.1]\n", f"    sources: [127.0.0.1]\n    port: {port}\n")
    name, line, message = only_error(root)
    assert (name, line) == ("conf/acd.yaml", line_of(path, f"port: {port}"))
    assert "port must be 1-65535" in message


@pytest.mark.parametrize("port", ["70000", "0", "-1", "5060.5"])
def test_bad_sip_port_is_refused(root, port):
    path = edit(root, "conf/acd.yaml", "  port: 5060", f"  port: {port}")
    name, line, message = only_error(root)
    assert (name, line) == ("conf/acd.yaml", line_of(path, "port:"))
    assert "sip port" in message


@pytest.mark.parametrize("ports", ["30000-20000", "20000-20000", "80-90", "20000-70000", "many", "20000"])
def test_bad_rtp_port_range_names_the_ports_line(root, ports):
    path = edit(root, "conf/acd.yaml", "ports: 20000-20999", f"ports: {ports}")
    name, line, message = only_error(root)
    assert (name, line) == ("conf/acd.yaml", line_of(path, "ports:"))
    assert "rtp ports must look like 20000-29999" in message


def test_bad_listen_address_is_refused(root):
    path = edit(root, "conf/acd.yaml", "listen: 127.0.0.1", "listen: localhost")
    assert only_error(root) == ("conf/acd.yaml", line_of(path, "listen:"), "listen must be an IP address, not 'localhost'")


def test_missing_main_config_file_is_reported(root):
    (root / "conf/acd.yaml").unlink()
    assert only_error(root) == ("conf/acd.yaml", 0, "file is missing")


def test_empty_main_config_file_is_refused(root):
    """An empty conf/acd.yaml has no trunks, so nobody could call in: refused, not defaulted."""
    (root / "conf/acd.yaml").write_text("# nothing yet\n")
    name, line, message = only_error(root)
    assert name == "conf/acd.yaml" and "must be a mapping" in message


def test_empty_flow_file_is_refused(root):
    write(root, "ivr_flows/draft.yaml", "")
    assert only_error(root)[0] == "ivr_flows/draft.yaml"


def test_config_without_trunks_is_refused(root):
    write(root, "conf/acd.yaml", MAIN_YAML.split("trunks:")[0])
    name, line, message = only_error(root)
    assert name == "conf/acd.yaml" and message.startswith("no trunks")


def test_config_with_an_empty_trunk_section_is_refused(root):
    path = write(root, "conf/acd.yaml", MAIN_YAML.split("trunks:")[0] + "trunks: {}\n")
    assert only_error(root)[1] == line_of(path, "trunks:")


def test_config_without_routes_is_refused(root):
    (root / "dialplans/demo.yaml").unlink()
    assert only_error(root)[2].startswith("no dialplan routes")


def test_missing_sounds_directory_is_reported(root):
    edit(root, "conf/acd.yaml", "trunks:", "sounds_dir: prompts\ntrunks:")
    errors = errors_of(root)
    assert errors[0][:2] == ("conf/acd.yaml", line_of(root / "conf/acd.yaml", "sounds_dir"))
    assert "does not exist" in errors[0][2]


def test_duplicate_flow_name_names_the_second_file(root):
    path = write(root, "ivr_flows/other.yaml", FLOW_YAML)
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/other.yaml", line_of(path, "name:"))
    assert "also used by" in message


# ---- every error at once -------------------------------------------------------------------------

def test_every_error_in_the_set_is_reported_at_once(root):
    main = edit(root, "conf/acd.yaml", "ports: 20000-20999", "ports: 9-1")
    edit(root, "conf/acd.yaml", "sources: [127.0.0.1]", "sources: [nowhere]")
    flow = edit(root, "ivr_flows/main.yaml", "next: main_menu", "next: main_mnu")
    edit(root, "ivr_flows/main.yaml", "    play: sales\n", "    play: sales\n    menu: sales\n")
    (root / "sounds/goodbye.wav").unlink()
    plan = edit(root, "dialplans/demo.yaml", '"2[0-9]{3}"', '"(2"')
    write(root, "dialplans/more.yaml", "routes:\n  - number: '3000'\n    flow: nothing\n")
    found = {(name, line) for name, line, _ in errors_of(root)}
    assert found == {
        ("conf/acd.yaml", line_of(main, "ports:")),
        ("conf/acd.yaml", line_of(main, "sources:")),
        ("ivr_flows/main.yaml", line_of(flow, "main_mnu")),
        ("ivr_flows/main.yaml", line_of(flow, "sales:")),
        ("ivr_flows/main.yaml", line_of(flow, "play: goodbye")),
        ("dialplans/demo.yaml", line_of(plan, "pattern:")),
        ("dialplans/more.yaml", 3),
    }


def test_a_broken_flow_does_not_also_make_its_routes_unknown(root):
    """Routes to a flow whose file has errors are not reported as 'unknown flow' on top."""
    edit(root, "ivr_flows/main.yaml", "start: welcome", "start: hello")
    errors = errors_of(root)
    assert [e[0] for e in errors] == ["ivr_flows/main.yaml"], errors


def test_route_errors_are_all_reported_for_one_route(root):
    edit(root, "dialplans/demo.yaml", '  - pattern: "2[0-9]{3}"\n    flow: main\n',
         '  - pattern: "(2"\n    flow: nothing\n')
    messages = [e[2] for e in errors_of(root)]
    assert len(messages) == 2
    assert any("unknown flow 'nothing'" in m for m in messages)
    assert any("not a valid regular expression" in m for m in messages)


def test_config_invalid_prints_as_file_line_message(root):
    edit(root, "ivr_flows/main.yaml", "start: welcome", "start: hello")
    with pytest.raises(ConfigInvalid) as caught:
        load_config(root)
    error = caught.value.errors[0]
    assert isinstance(error, ConfigError)
    assert str(error) == f"{error.path}:{error.line}: {error.message}"
    assert str(caught.value).splitlines() == [str(e) for e in caught.value.errors]


def test_menu_without_choices_is_refused_without_crashing(root):
    path = edit(root, "ivr_flows/main.yaml", '    choices:\n      "1": sales\n      "2": support\n', "")
    errors = errors_of(root)
    assert ("ivr_flows/main.yaml", line_of(path, "menu: menu_main")) == errors[0][:2], errors
    assert "choices must be a mapping" in errors[0][2]


@pytest.mark.parametrize("choice, problem", [('"5": 7', "must name a step"), ('"X": sales', "is not a DTMF key")])
def test_bad_menu_choice_names_its_line(root, choice, problem):
    path = edit(root, "ivr_flows/main.yaml", '"2": support', choice)
    errors = errors_of(root)
    assert errors[0][:2] == ("ivr_flows/main.yaml", line_of(path, choice)), errors
    assert problem in errors[0][2]


def test_prompt_list_with_a_non_name_is_refused_once(root):
    path = edit(root, "ivr_flows/main.yaml", "play: sales\n", "play: [sales, 3]\n")
    assert only_error(root)[:2] == ("ivr_flows/main.yaml", line_of(path, "play: [sales, 3]"))


@pytest.mark.parametrize("old, new, needle", [("timeout: 5\n", "timeout: 0.1\n", "timeout:"),
                                              ("timeout: 5\n", "retries: 0\n", "retries:"),
                                              ("timeout: 5\n", "retries: 2.5\n", "retries:")])
def test_bad_menu_timeout_or_retries_names_its_line(root, old, new, needle):
    edit(root, "ivr_flows/main.yaml", "    on_failure: goodbye\n", "    on_failure: goodbye\n    timeout: 5\n")
    path = edit(root, "ivr_flows/main.yaml", old, new)
    assert only_error(root)[:2] == ("ivr_flows/main.yaml", line_of(path, needle))


def test_an_unparsable_flow_file_does_not_make_its_routes_unknown(root):
    edit(root, "ivr_flows/main.yaml", "start: welcome\n", "start: [welcome\n")
    assert [e[0] for e in errors_of(root)] == ["ivr_flows/main.yaml"]


def test_rtcp_interval_defaults_to_rfc_3550s_five_seconds_and_0_turns_rtcp_off(root):
    assert load_config(root).rtp.rtcp_interval_seconds == 5.0
    edit(root, "conf/acd.yaml", "ports: 20000-20999", "ports: 20000-20999\n  rtcp_interval_seconds: 0")
    assert load_config(root).rtp.rtcp_interval_seconds == 0


@pytest.mark.parametrize("value", ["-1", "often"])
def test_bad_rtcp_interval_names_its_line(root, value):
    path = edit(root, "conf/acd.yaml", "ports: 20000-20999", f"ports: 20000-20999\n  rtcp_interval_seconds: {value}")
    name, line, message = only_error(root)
    assert (name, line) == ("conf/acd.yaml", line_of(path, "rtcp_interval_seconds:"))
    assert "rtp rtcp_interval_seconds must be" in message
