"""`acd simulate` walks the shipped demo flows without a network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from acd.cli import main
from acd.config.loader import load_config
from acd.simulate import simulate

REPO = Path(__file__).resolve().parents[3]
WEDNESDAY_10AM_LONDON = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc).timestamp()
SATURDAY = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.timezone.utc).timestamp()


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


def test_after_hours_callers_reach_voicemail():
    """On a Saturday the office is closed: closed prompt, voicemail, goodbye."""
    outcome, text = run([], now=SATURDAY)
    assert outcome == "completed"
    assert "step main:closed" in text and "record voicemail" in text


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
