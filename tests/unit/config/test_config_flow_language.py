"""The IVR flow language in YAML: every step kind parses, and every mistake names its file and line.

Each test builds a small config tree in `tmp_path` that uses every step kind (plus hours, queues and
a look-up table), breaks one thing, and checks `ConfigInvalid.errors` points at the line to fix.
"""

import datetime as dt
import wave
from pathlib import Path

import pytest

from acd.config.loader import ConfigInvalid, load_config
from acd.ivr.conditions import AllOf, AnyOf, Compare, IsOpen, Not
from acd.ivr.flow import (BranchStep, CollectStep, GotoFlowStep, HangupStep, LookupStep, MenuStep, PlayStep,
                          QueueStep, RecordStep, SayDigits, SayNumber, SetStep, SpeechMenuStep, TransferStep)
from acd.ivr.spoken import NUMBER_PROMPTS

MAIN_YAML = """\
trunks:
  demo:
    sources: [127.0.0.1]
"""

DIALPLAN_YAML = """\
routes:
  - number: "1000"
    flow: main
"""

HOURS_YAML = """\
office:
  timezone: Europe/London
  weekly:
    mon-fri: "08:00-18:00"
    sat: ["09:00-12:00", "13:00-14:00"]
  holidays:
    2026-12-25: Christmas Day
    "2026-12-26": Boxing Day
"""

AGENTS_YAML = """\
queues:
  sales:
    description: New orders
  billing:
"""

ORDERS_YAML = """\
description: Orders by number
records:
  "12345": {status: shipped, days: 3}
"""

FLOW_YAML = """\
name: main
start: welcome
steps:
  welcome:
    play: welcome
    barge_in: true
    next: check_hours
    event: call-started
  check_hours:
    branch:
      - when: {open: office}
        goto: main_menu
      - when:
          all:
            - {var: caller_id, starts_with: "+44"}
            - not: {var: tier, in: [gold, silver]}
            - any:
                - {var: count, greater_than: 2}
                - {var: count, less_than: 1}
                - {var: tier, exists: true}
                - {var: caller_id, matches: "[+0-9]+"}
                - {var: tier, not_equals: bronze}
                - {var: tier, equals: VIP}
        goto: main_menu
    otherwise: closed
  main_menu:
    menu: menu_main
    choices:
      "1": account
      "2": reason
    barge_in: false
    on_failure: goodbye
  account:
    collect: enter_account
    into: account_number
    min_length: 4
    max_length: 10
    terminator: "*"
    timeout: 4
    inter_digit_timeout: 2.5
    retries: 2
    pattern: "[0-9]+"
    mask: true
    timeout_prompt: menu_timeout
    invalid_prompt: menu_invalid
    next: find
    on_failure: goodbye
    barge_in: false
  find:
    lookup: orders
    key: "{account_number}"
    into: order
    found: remember
    not_found: goodbye
  remember:
    set:
      greeting: "Hello {caller_id}"
      tier: VIP
    next: say
  say:
    play: [order_prefix, {say_digits: "{account_number}"}, {say_number: "{order.days}"}]
    next: queue
  reason:
    speech_menu: say_reason
    phrases:
      billing: to_billing
      technical support: queue
    choices:
      "1": to_billing
    min_confidence: 0.7
    timeout: 6
    max_utterance: 5
    retries: 2
    no_input_prompt: speech_no_input
    no_match_prompt: speech_no_match
    on_failure: operator
  to_billing:
    goto_flow: billing
  queue:
    queue: sales
    priority: 5
    skills: {english: 2, billing: 10}
    on_failure: voicemail
  operator:
    transfer: "+44{branch}"
  closed:
    play: closed
    next: voicemail
  voicemail:
    record: leave_message
    into: message
    kind: callback
    max_seconds: 30
    next: goodbye
  goodbye:
    play: goodbye
    next: end
  end:
    hangup: true
"""

BILLING_YAML = """\
name: billing
steps:
  intro:
    play: billing
"""

PROMPTS = ("welcome", "menu_main", "enter_account", "menu_timeout", "menu_invalid", "order_prefix", "say_reason",
           "speech_no_input", "speech_no_match", "closed", "leave_message", "goodbye", "billing")


def write_wav(path: Path) -> None:
    """A 10 ms prompt of 8 kHz 16-bit mono silence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00" * 160)


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    """A valid tree using every step kind, hours, queues, a look-up table and the number prompts."""
    for name, text in (("conf/acd.yaml", MAIN_YAML), ("dialplans/demo.yaml", DIALPLAN_YAML),
                       ("conf/hours.yaml", HOURS_YAML), ("conf/agents.yaml", AGENTS_YAML),
                       ("conf/lookups/orders.yaml", ORDERS_YAML), ("ivr_flows/main.yaml", FLOW_YAML),
                       ("ivr_flows/billing.yaml", BILLING_YAML)):
        write(tmp_path, name, text)
    for prompt in PROMPTS + NUMBER_PROMPTS:
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


def flow_error(root: Path, old: str, new: str, needle: str, problem: str, occurrence: int = 1) -> None:
    """Break main.yaml; the only error must be at the line holding `needle` and mention `problem`."""
    path = edit(root, "ivr_flows/main.yaml", old, new)
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(path, needle, occurrence)), message
    assert problem in message, message


# ---- what parses ---------------------------------------------------------------------------------

def test_every_step_kind_parses_with_its_options(root):
    config = load_config(root)
    path = root / "ivr_flows/main.yaml"
    steps = config.flows["main"].steps
    assert steps["welcome"] == PlayStep(name="welcome", prompts=("welcome",), next="check_hours", barge_in=True,
                                        event="call-started", line=line_of(path, "welcome:"))
    assert steps["main_menu"] == MenuStep(name="main_menu", prompts=("menu_main",),
                                          choices={"1": "account", "2": "reason"}, barge_in=False,
                                          on_failure="goodbye", line=line_of(path, "main_menu:"))
    assert steps["account"] == CollectStep(
        name="account", prompts=("enter_account",), into="account_number", min_length=4, max_length=10,
        terminator="*", timeout_seconds=4.0, inter_digit_timeout_seconds=2.5, retries=2, pattern="[0-9]+", mask=True,
        timeout_prompts=("menu_timeout",), invalid_prompts=("menu_invalid",), next="find", on_failure="goodbye",
        barge_in=False, line=line_of(path, "account:"))
    assert steps["find"] == LookupStep(name="find", source="orders", key="{account_number}", into="order",
                                       found="remember", not_found="goodbye", line=line_of(path, "find:"))
    assert steps["remember"] == SetStep(name="remember", values={"greeting": "Hello {caller_id}", "tier": "VIP"},
                                        next="say", line=line_of(path, "remember:"))
    assert steps["say"].prompts == ("order_prefix", SayDigits("{account_number}"), SayNumber("{order.days}"))
    assert steps["reason"] == SpeechMenuStep(
        name="reason", prompts=("say_reason",), phrases={"billing": "to_billing", "technical support": "queue"},
        choices={"1": "to_billing"}, min_confidence=0.7, timeout_seconds=6.0, max_utterance_seconds=5.0, retries=2,
        no_input_prompts=("speech_no_input",), no_match_prompts=("speech_no_match",), on_failure="operator",
        line=line_of(path, "reason:"))
    assert steps["to_billing"] == GotoFlowStep(name="to_billing", flow="billing", line=line_of(path, "to_billing:"))
    assert steps["queue"] == QueueStep(name="queue", queue="sales", priority=5, skills={"english": 2, "billing": 10},
                                       on_failure="voicemail", line=line_of(path, "  queue:"))
    assert steps["operator"] == TransferStep(name="operator", target="+44{branch}", line=line_of(path, "operator:"))
    assert steps["voicemail"] == RecordStep(name="voicemail", prompts=("leave_message",), into="message",
                                            kind="callback", max_seconds=30.0, next="goodbye",
                                            line=line_of(path, "voicemail:"))
    assert steps["end"] == HangupStep(name="end", line=line_of(path, "end:"))
    assert list(config.flows["billing"].steps) == ["intro"]
    assert set(config.queues) == {"sales", "billing"}
    assert config.lookups == {"orders": {"12345": {"status": "shipped", "days": 3}}}


def test_branch_conditions_parse_into_their_data(root):
    branch = load_config(root).flows["main"].steps["check_hours"]
    assert isinstance(branch, BranchStep)
    assert branch.otherwise == "closed"
    assert branch.cases == (
        (IsOpen("office"), "main_menu"),
        (AllOf((Compare("caller_id", "starts_with", "+44"),
                Not(Compare("tier", "in", ["gold", "silver"])),
                AnyOf((Compare("count", "greater_than", 2), Compare("count", "less_than", 1),
                       Compare("tier", "exists", True), Compare("caller_id", "matches", "[+0-9]+"),
                       Compare("tier", "not_equals", "bronze"), Compare("tier", "equals", "VIP"))))),
         "main_menu"),
    )


def test_hours_yaml_parses_day_ranges_split_days_and_holidays(root):
    office = load_config(root).calendars["office"]
    assert office.timezone == "Europe/London"
    assert office.weekly == {**{day: ((480, 1080),) for day in range(5)}, 5: ((540, 720), (780, 840))}
    assert office.holidays == {dt.date(2026, 12, 25): "Christmas Day", dt.date(2026, 12, 26): "Boxing Day"}
    assert office.is_open(1780297200.0)  # Mon 2026-06-01 08:00 BST
    assert not office.is_open(1798200000.0)  # Fri 2026-12-25 12:00 GMT


def test_hours_default_to_utc(root):
    edit(root, "conf/hours.yaml", "  timezone: Europe/London\n", "")
    assert load_config(root).calendars["office"].timezone == "UTC"


def test_lookup_without_not_found_goes_to_found_either_way(root):
    edit(root, "ivr_flows/main.yaml", "    not_found: goodbye\n", "")
    assert load_config(root).flows["main"].steps["find"].not_found == "remember"


def test_yes_and_no_are_phrases_when_quoted(root):
    edit(root, "ivr_flows/main.yaml", "      billing: to_billing\n", '      "yes": to_billing\n      "no": queue\n')
    assert set(load_config(root).flows["main"].steps["reason"].phrases) == {"yes", "no", "technical support"}


# ---- flow errors: the right line -----------------------------------------------------------------

@pytest.mark.parametrize("old, new, needle, problem", [
    ("{var: tier, equals: VIP}", "{var: tier, equals: VIP, in: [a]}", "equals: VIP", "a condition is {var: name"),
    ("{var: tier, equals: VIP}", "{equals: VIP}", "equals: VIP", "a condition is {var: name"),
    ("{var: tier, equals: VIP}", "{var: tier}", "var: tier}", "a condition is {var: name"),
    ("{var: tier, equals: VIP}", "{var: tier, contains: VIP}", "contains: VIP", "a condition is {var: name"),
    ("{open: office}", "{open: office, var: tier}", "open: office", "a condition is {var: name"),
    ("{var: tier, not_equals: bronze}", "{not: {var: tier, equals: x}, var: y}", "var: y}", "a condition is"),
    ("            - {var: caller_id, starts_with: \"+44\"}\n", "            - [caller_id]\n", "[caller_id]",
     "condition must be a mapping"),
    ("{var: tier, equals: VIP}", "{all: {var: a, equals: b}}", "all: {var", "all: needs a list"),
    ("{var: tier, equals: VIP}", "{any: []}", "any: []", "any: needs a list"),
    ("{var: tier, in: [gold, silver]}", "{var: tier, in: gold}", "in: gold", "in: needs a list"),
    ("{var: caller_id, matches: \"[+0-9]+\"}", "{var: caller_id, matches: \"[0-9\"}", "matches:",
     "is not a valid regular expression"),
    ("      - when: {open: office}\n        goto: main_menu\n", "      - when: {open: office}\n        goto: [x]\n",
     "when: {open: office}", "case needs goto"),
    ("      - when: {open: office}\n", "      - when: {open: office}\n        go: main_menu\n", "go: main_menu",
     "unknown key 'go'"),
])
def test_bad_condition_names_its_line(root, old, new, needle, problem):
    flow_error(root, old, new, needle, problem)


@pytest.mark.parametrize("cases", ["{open: office}", "[]", "main_menu"])
def test_branch_without_a_list_of_cases_is_refused(root, cases):
    path = edit(root, "ivr_flows/main.yaml", "    branch:\n", f"    branch: {cases}\n    old_cases:\n")
    errors = errors_of(root)
    assert ("ivr_flows/main.yaml", line_of(path, "branch: "),
            "branch step 'check_hours' needs a list of {when: condition, goto: step}") in errors, errors


@pytest.mark.parametrize("old, new, needle, problem", [
    ('    pattern: "[0-9]+"\n', '    pattern: "[0-9"\n', "pattern:", "not a valid regular expression"),
    ("    min_length: 4\n", "    min_length: 12\n", "min_length", "min_length 12 exceeds max_length 10"),
    ("    max_length: 10\n", "    max_length: 65\n", "max_length", "between 1 and 64"),
    ('    terminator: "*"\n', "    terminator: 5\n", "terminator", "terminator must be '#', '*' or null"),
    ("    mask: true\n", "    mask: sometimes\n", "mask:", "must be true or false"),
    ("    inter_digit_timeout: 2.5\n", "    inter_digit_timeout: 0.1\n", "inter_digit_timeout", "at least 0.5"),
    ("    into: account_number\n", "", "collect: enter_account", "needs 'into'"),
])
def test_bad_collect_option_names_its_line(root, old, new, needle, problem):
    flow_error(root, old, new, needle, problem)


@pytest.mark.parametrize("phrase", ["Technical support", "technical  support", "technical-support", "ok!", "42"])
def test_bad_phrase_text_names_its_line(root, phrase):
    flow_error(root, "      technical support: queue\n", f'      "{phrase}": queue\n', f'"{phrase}"',
               "must be lower-case words separated by single spaces")


def test_unquoted_yes_phrase_says_to_quote_it(root):
    """YAML 1.1 reads `yes:` as true; the message must say why "True" is not the phrase written."""
    flow_error(root, "      billing: to_billing\n", "      yes: to_billing\n", "yes: to_billing", "quote")


@pytest.mark.parametrize("old, new, needle, problem", [
    ("    min_confidence: 0.7\n", "    min_confidence: 1.5\n", "min_confidence", "between 0 and 1"),
    ("    max_utterance: 5\n", "    max_utterance: 0.5\n", "max_utterance", "at least 1"),
    ("    choices:\n      \"1\": to_billing\n", "    choices:\n      \"x\": to_billing\n", '"x": to_billing',
     "is not a DTMF key"),
    ("    phrases:\n      billing: to_billing\n      technical support: queue\n", "    phrases: {}\n",
     "phrases: {}", "has no phrases"),
])
def test_bad_speech_menu_option_names_its_line(root, old, new, needle, problem):
    flow_error(root, old, new, needle, problem)


@pytest.mark.parametrize("level", ["0", "11", "high", "2.5", "true"])
def test_skill_level_out_of_range_names_the_skill_line(root, level):
    flow_error(root, "skills: {english: 2, billing: 10}", f"skills: {{english: {level}, billing: 10}}",
               "skills:", "skill english level must be 1-10")


@pytest.mark.parametrize("old, new, needle, problem", [
    ("    priority: 5\n", "    priority: 10\n", "priority", "between 0 and 9"),
    ("    skills: {english: 2, billing: 10}\n", "    skills: [english]\n", "skills:", "must be a mapping"),
    ("    on_failure: voicemail\n", "    on_failure: voicemale\n", "voicemale", "unknown step 'voicemale'"),
    ("    kind: callback\n", "    kind: fax\n", "kind: fax", "kind must be voicemail or callback"),
    ("    max_seconds: 30\n", "    max_seconds: 601\n", "max_seconds", "between 1 and 600"),
    ("    max_seconds: 30\n", "    max_seconds: 30\n    silence_seconds: -1\n", "silence_seconds", "between 0 and 60"),
    ("    found: remember\n", "", "find:", "needs found"),
    ("    set:\n      greeting:", "    set:\n      2nd: x\n      greeting:", "2nd: x", "is not a variable name"),
    ("      tier: VIP\n", "      tier: [a, b]\n", "tier: [a, b]", "must be text or a number"),
    ('    transfer: "+44{branch}"\n', "    transfer:\n", "transfer:", "needs 'transfer'"),
    ("    goto_flow: billing\n", "    goto_flow: billing\n    next: after_billing\n", "after_billing",
     "unknown key 'next' in goto_flow"),
    ("    hangup: true\n", "    hangup: true\n    next: after_end\n", "after_end", "unknown key 'next' in hangup"),
    ("    barge_in: true\n", "    barge_in: yes please\n", "barge_in: yes", "must be true or false"),
    ("    event: call-started\n", "    event: [a]\n", "event: [a]", "event must be text"),
])
def test_bad_step_option_names_its_line(root, old, new, needle, problem):
    flow_error(root, old, new, needle, problem)


@pytest.mark.parametrize("old, new, needle, problem", [
    # YAML 1.1 reads 0123 as octal 83 and +44 as 44: text compared with collected digits must stay as written.
    ("{var: tier, equals: VIP}", "{var: account_number, equals: 0123}", "equals: 0123", 'quote it: equals: "0123"'),
    ('{var: caller_id, starts_with: "+44"}', "{var: caller_id, starts_with: +44}", "starts_with: +44", "reads as 44"),
    ("{var: tier, in: [gold, silver]}", "{var: tier, in: [gold, 007]}", "in: [gold, 007]", "reads as 7"),
    ("      tier: VIP\n", "      tier: 1_000\n", "tier: 1_000", "reads as 1000"),
    ('    transfer: "+44{branch}"\n', "    transfer: +442071234567\n", "transfer: +44", "reads as 442071234567"),
])
def test_number_yaml_would_change_is_refused_where_it_is_used_as_text(root, old, new, needle, problem):
    flow_error(root, old, new, needle, problem)


def test_plain_numbers_that_read_as_written_are_fine(root):
    edit(root, "ivr_flows/main.yaml", "{var: tier, equals: VIP}", "{var: account_number, equals: 12345}")
    edit(root, "ivr_flows/main.yaml", '    transfer: "+44{branch}"\n', "    transfer: 442071234567\n")
    steps = load_config(root).flows["main"].steps
    assert steps["operator"].target == "442071234567"


# ---- loops without input -------------------------------------------------------------------------

def test_set_step_that_goes_to_itself_is_a_loop(root):
    edit(root, "ivr_flows/main.yaml", "    not_found: goodbye\n", "    not_found: say\n")  # keep `say` reachable
    flow_error(root, "      tier: VIP\n    next: say\n", "      tier: VIP\n    next: remember\n", "remember:",
               "steps remember -> remember loop without waiting for input")


def test_play_to_play_cycle_is_a_loop(root):
    """Prompts take time but wait for nobody: a caller would hear them forever."""
    edit(root, "ivr_flows/main.yaml", "    barge_in: false\n    on_failure: goodbye\n",
         "    barge_in: false\n    on_failure: end\n")  # keep `end` reachable
    edit(root, "ivr_flows/main.yaml", "    play: closed\n    next: voicemail\n",
         "    play: closed\n    next: goodbye\n")
    flow_error(root, "    play: goodbye\n    next: end\n", "    play: goodbye\n    next: closed\n", "  closed:",
               "steps closed -> goodbye -> closed loop without waiting for input")


def test_set_branch_cycle_is_a_loop(root):
    edit(root, "ivr_flows/main.yaml", "    barge_in: false\n    on_failure: goodbye\n",
         "    barge_in: false\n    on_failure: closed\n")  # keep `closed` reachable
    flow_error(root, "    otherwise: closed\n",
               "    otherwise: again\n  again:\n    set: {n: x}\n    next: check_hours\n",
               "check_hours:", "steps check_hours -> again -> check_hours loop without waiting for input")


def test_a_loop_through_a_menu_is_fine(root):
    edit(root, "ivr_flows/main.yaml", "    play: goodbye\n    next: end\n", "    play: goodbye\n    next: main_menu\n")
    edit(root, "ivr_flows/main.yaml", "    on_failure: goodbye\n    barge_in: false\n  find", "    on_failure: end\n"
         "    barge_in: false\n  find")
    assert load_config(root).flows["main"].steps["goodbye"].next == "main_menu"


# ---- cross-references: the line that names the missing thing -------------------------------------

@pytest.mark.parametrize("old, new, needle, problem", [
    ("    queue: sales\n", "    queue: sails\n", "queue: sails", "unknown queue 'sails' (known: billing, sales)"),
    ("    lookup: orders\n", "    lookup: order\n", "lookup: order", "unknown look-up source 'order' (known: customer_account, customer_pin, orders)"),
    ("{open: office}", "{open: ofice}", "open: ofice", "unknown business hours 'ofice' (known: office)"),
    ("    goto_flow: billing\n", "    goto_flow: biling\n", "goto_flow: biling",
     "unknown flow 'biling' (known: billing, main)"),
])
def test_unknown_name_from_another_file_names_the_line_that_uses_it(root, old, new, needle, problem):
    flow_error(root, old, new, needle, problem)


def test_goto_flow_to_a_broken_flow_reports_only_the_broken_flow(root):
    path = edit(root, "ivr_flows/billing.yaml", "    play: billing\n", "    play: billing\n    nxt: x\n")
    assert only_error(root)[:2] == ("ivr_flows/billing.yaml", line_of(path, "nxt"))


def test_missing_number_prompt_names_the_line_that_says_a_number(root):
    (root / "sounds/numbers/hundred.wav").unlink()
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(root / "ivr_flows/main.yaml", "say_digits"))
    assert "numbers/hundred" in message


def test_say_digits_needs_only_the_digit_prompts(root):
    edit(root, "ivr_flows/main.yaml", ', {say_number: "{order.days}"}', "")
    for prompt in NUMBER_PROMPTS:
        if prompt.startswith("numbers/"):
            (root / "sounds" / f"{prompt}.wav").unlink()
    assert load_config(root).flows["main"].steps["say"].prompts == ("order_prefix", SayDigits("{account_number}"))


def test_missing_prompt_of_a_new_step_kind_names_its_line(root):
    (root / "sounds/speech_no_match.wav").unlink()
    name, line, message = only_error(root)
    assert (name, line) == ("ivr_flows/main.yaml", line_of(root / "ivr_flows/main.yaml", "no_match_prompt"))
    assert "speech_no_match" in message


def test_bad_spoken_prompt_item_names_its_line(root):
    flow_error(root, '{say_number: "{order.days}"}', '{say_words: "{order.days}"}', "say_words",
               "each prompt is a name")


# ---- hours.yaml, agents.yaml, lookups ------------------------------------------------------------

@pytest.mark.parametrize("old, new, needle, problem", [
    ("timezone: Europe/London", "timezone: Europe/Lundon", "timezone", "unknown time zone 'Europe/Lundon'"),
    ("timezone: Europe/London", "timezone: Europe", "timezone", "unknown time zone 'Europe'"),
    ("timezone: Europe/London", "timezone: ../etc", "timezone", "unknown time zone '../etc'"),
])
def test_bad_time_zone_names_its_line(root, old, new, needle, problem):
    path = edit(root, "conf/hours.yaml", old, new)
    errors = errors_of(root)
    assert ("conf/hours.yaml", line_of(path, needle)) == errors[0][:2], errors
    assert problem in errors[0][2]
    # The calendar is unusable, so the flow's {open: office} is reported as well.
    assert [e[:1] for e in errors[1:]] == [("ivr_flows/main.yaml",)]


@pytest.mark.parametrize("old, new, needle, problem", [
    ('mon-fri: "08:00-18:00"', 'mon-fri: "18:00-08:00"', "mon-fri", "ends before it starts"),
    ('mon-fri: "08:00-18:00"', 'mon-fri: "8am-6pm"', "mon-fri", "is not a time range"),
    ('mon-fri: "08:00-18:00"', 'fri-mon: "08:00-18:00"', "fri-mon", "is not a day or day range"),
    ('mon-fri: "08:00-18:00"', 'weekdays: "08:00-18:00"', "weekdays", "is not a day or day range"),
    ("2026-12-25: Christmas Day", "tomorrow: Christmas Day", "tomorrow", "is not a date like 2026-12-25"),
    ("2026-12-25: Christmas Day", '"2026-02-30": Not a day', "2026-02-30", "is not a date like 2026-12-25"),
    ("  holidays:\n", "  holiday:\n", "holiday:", "unknown key 'holiday'"),
])
def test_bad_hours_entry_names_its_line(root, old, new, needle, problem):
    path = edit(root, "conf/hours.yaml", old, new)
    errors = errors_of(root)
    assert errors == [("conf/hours.yaml", line_of(path, needle), errors[0][2])], errors
    assert problem in errors[0][2]


def test_impossible_unquoted_holiday_date_is_an_error_not_a_crash(root):
    """YAML reads 2026-02-30 as a timestamp and fails to build it: that must be a file:line error."""
    path = edit(root, "conf/hours.yaml", "2026-12-25: Christmas Day", "2026-02-30: Not a day")
    errors = errors_of(root)
    assert errors[0] == ("conf/hours.yaml", line_of(path, "2026-02-30"),
                         "YAML syntax: '2026-02-30' is not a valid date or time (day is out of range for month)")
    # The file is unusable as a whole, so the flow's {open: office} is reported as well.
    assert [e[0] for e in errors[1:]] == ["ivr_flows/main.yaml"]


def test_queue_that_is_not_a_mapping_is_an_error_not_a_crash(root):
    path = edit(root, "conf/agents.yaml", "    description: New orders\n", "")
    edit(root, "conf/agents.yaml", "  sales:\n", "  sales: New orders\n")
    name, line, message = only_error(root)
    assert (name, line) == ("conf/agents.yaml", line_of(path, "sales:"))
    assert "queue 'sales' must be a mapping" in message


def test_lookup_table_record_that_is_not_a_mapping_names_its_line(root):
    path = edit(root, "conf/lookups/orders.yaml", '"12345": {status: shipped, days: 3}', '"12345": shipped')
    errors = errors_of(root)
    assert ("conf/lookups/orders.yaml", line_of(path, "12345")) == errors[0][:2], errors


# ---- announce_before_answer (early media before the answer) ------------------------------------

def test_announce_before_answer_takes_a_prompt_or_a_list_of_them(root):
    assert load_config(root).flows["main"].announce_before_answer == ()
    edit(root, "ivr_flows/main.yaml", "start: welcome\n", "start: welcome\nannounce_before_answer: goodbye\n")
    assert load_config(root).flows["main"].announce_before_answer == ("goodbye",)
    edit(root, "ivr_flows/main.yaml", "announce_before_answer: goodbye\n",
         "announce_before_answer: [goodbye, closed]\n")
    assert load_config(root).flows["main"].announce_before_answer == ("goodbye", "closed")


@pytest.mark.parametrize("value, problem", [
    ("nope", "prompt 'nope' has no file sounds/nope.wav"),
    ("[goodbye, {say_digits: \"{caller_id}\"}]", "each item is a prompt name"),
    ("[]", "names no prompt"),
    ("12", "each item is a prompt name (a WAV file in sounds/ without .wav), not a number"),
])
def test_a_bad_announce_before_answer_is_an_error_at_its_line(root, value, problem):
    flow_error(root, "start: welcome\n", f"start: welcome\nannounce_before_answer: {value}\n",
               "announce_before_answer", problem)
