"""`acd simulate` walks the shipped demo flows without a network."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from acd.cli import main
from acd.config.loader import load_config
from acd.simulate import simulate

REPO = Path(__file__).resolve().parents[3]
WEDNESDAY_10AM_LONDON = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc).timestamp()
SATURDAY = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.timezone.utc).timestamp()
SUNDAY_NIGHT = "2026-11-29T23:30:00+00:00"


def run(inputs, now=WEDNESDAY_10AM_LONDON):
    lines: list[str] = []
    outcome = simulate(load_config(REPO), "main", caller="5551234", inputs=inputs, now=now, out=lines.append)
    return outcome, "\n".join(lines)


def test_order_status_self_service_speaks_the_order_and_never_queues():
    """Key 3, order 12345#: the status is read out (digits and a number) and the call ends."""
    outcome, text = run(["3", "12345#"])
    assert outcome == "completed"
    assert "collected order_number = 12345" in text
    assert "play order_prefix digits/1 digits/2 digits/3 digits/4 digits/5 order_shipped digits/3 days" in text
    assert "  queue " not in text


def test_speech_choice_reaches_billing_verifies_the_pin_and_never_shows_it(tmp_path):
    """The VIP caller: key 4, says 'billing', account 100234#, PIN 4821 (checked against the imported,
    hashed PIN): queued to billing as a verified VIP; the PIN never shows."""
    import io

    from acd.context.directory import CustomerDirectory
    from acd.context.importer import import_command

    directory = CustomerDirectory(tmp_path / "customers.db")
    assert import_command(directory, REPO / "conf" / "customers.csv", out=io.StringIO()) == 0
    lines: list[str] = []
    outcome = simulate(load_config(REPO), "main", caller="5550100", inputs=["4", "billing", "100234#", "4821"],
                       now=WEDNESDAY_10AM_LONDON, out=lines.append, directory=directory)
    text = "\n".join(lines)
    assert outcome == "queued to billing"
    assert "caller 5550100 is customer C1001 (Eleanor Whitfield, tier vip)" in text
    assert "collected pin = ****" in text and "lookup customer_pin[****] -> {'verified': True}" in text
    assert "4821" not in text
    assert "queue billing priority=7 (step 2 + tier vip)" in text  # the same tier rule as the server
    assert "'tier': 'vip', " in text and "'first_open_order': '12345', 'verified': True}" in text
    directory.close()


def test_after_hours_callers_reach_voicemail(tmp_path):
    """With the flow on `office_hours` (the example calendar in conf/hours.yaml), a Saturday is closed:
    closed prompt, voicemail, goodbye."""
    for folder in ("conf", "dialplans", "ivr_flows"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / "sounds").symlink_to(REPO / "sounds")
    flow = tmp_path / "ivr_flows" / "main.yaml"
    flow.write_text(flow.read_text().replace("{open: demo_hours}", "{open: office_hours}"))
    lines: list[str] = []
    outcome = simulate(load_config(tmp_path), "main", caller="5551234", inputs=[], now=SATURDAY, out=lines.append)
    text = "\n".join(lines)
    assert outcome == "completed"
    assert "step main:closed" in text and "record voicemail" in text


def test_the_readme_examples_work_on_a_sunday_night(capsys):
    """README "Try it": the shipped demo is open every day, so key 2 reaches the support queue and the
    order-status example is read out, on a Sunday at 23:30 as on a weekday."""
    assert "acd simulate main --input 3,12345#" in (REPO / "README.md").read_text()
    assert main(["simulate", "main", "--root", str(REPO), "--input", "2", "--at", SUNDAY_NIGHT]) == 0
    out = capsys.readouterr().out
    assert "step main:closed" not in out and "queue support" in out
    assert main(["simulate", "main", "--root", str(REPO), "--input", "3,12345#", "--at", SUNDAY_NIGHT]) == 0
    assert "order_shipped" in capsys.readouterr().out


def test_a_bad_simulated_time_is_a_usage_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "main", "--root", str(REPO), "--at", "tomorrow"])
    assert exited.value.code == 2
    assert "'tomorrow' is not a date and time like 2026-11-25T10:00:00+00:00" in capsys.readouterr().err


def test_menu_timeouts_end_at_goodbye():
    """No input at all: three menu timeouts, then goodbye and hang up."""
    outcome, text = run(["-", "-", "-"])
    assert text.count("(no input: timeout)") == 3
    assert "step main:goodbye" in text


def test_cli_simulate_prints_steps_and_rejects_an_unknown_flow(capsys):
    """The command prints the walk; an unknown flow name is an error naming the known ones."""
    assert main(["simulate", "main", "--root", str(REPO), "--input", "1", "--at", "2026-11-25T10:00:00+00:00"]) == 0
    assert "choice 1 -> sales" in capsys.readouterr().out
    assert main(["simulate", "nope", "--root", str(REPO)]) == 1
    assert "no flow named 'nope'" in capsys.readouterr().err
