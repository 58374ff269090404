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


def test_speech_choice_reaches_billing_and_the_pin_is_masked_everywhere():
    """Key 4, say 'billing', account 1234#, PIN 9876: queued to billing; the PIN never shows."""
    outcome, text = run(["4", "billing", "1234#", "9876"])
    assert outcome == "queued to billing"
    assert "collected pin = ****" in text
    assert "9876" not in text


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
