"""The wallboard's figures of the day (acd/today_figures.py): service level edge cases (abandoned
before the threshold, at it, after it; callbacks; transfers; timed out), AHT with wrap-up, hold time,
the period's edges; and the same figures read from a real records database (today_records.py)."""

from __future__ import annotations

import pytest

from acd.store.records import RecordStore
from acd.store.today_records import today_from_records
from acd.today_figures import figures_today

SINCE = 1_000_000.0  # the start of the wallboard's day (any number: nothing here reads a clock)
UNTIL = SINCE + 3600


def log(at: float, event: str, call: str = "", queue: str = "sales", agent: str = "",
        data1: object = "", data2: object = "", data3: object = "") -> dict:
    return {"at": SINCE + at, "event": event, "call_id": call, "queue": queue, "agent": agent,
            "data1": str(data1), "data2": str(data2), "data3": str(data3)}


def answered(call: str, agent: str, *, entered: float, waited: float, talk: float, queue: str = "sales",
             end: str = "COMPLETECALLER") -> list[dict]:
    """ENTERQUEUE, CONNECT after `waited`, the end after `talk`."""
    connect = entered + waited
    return [log(entered, "ENTERQUEUE", call, queue, "", "", "5550100", 1),
            log(connect, "CONNECT", call, queue, agent, waited, f"{call}-leg", 2),
            log(connect + talk, end, call, queue, agent, waited, talk, 1)]


def only(figures, name: str):
    found = [entry for entry in figures.queues + figures.agents if getattr(entry, "queue", None) == name
             or getattr(entry, "agent", None) == name]
    assert len(found) == 1, found
    return found[0]


def test_an_answered_call_counts_for_its_queue_and_agent_with_talk_plus_wrap_up_and_hold_time():
    today = figures_today(answered("c1", "1001", entered=10, waited=8, talk=60), since=SINCE, until=UNTIL,
                          wrap_ups={("c1", "1001"): 5.0})
    sales, alice = only(today, "sales"), only(today, "1001")
    assert (sales.offered, sales.answered, sales.answered_within_threshold, sales.service_level) == (1, 1, 1, 1.0)
    assert (alice.answered, alice.handled, alice.talk_seconds, alice.wrap_up_seconds) == (1, 1, 60.0, 5.0)
    assert alice.aht_seconds == 65.0 and alice.hold_seconds == 8.0 and alice.average_hold_seconds == 8.0


def test_abandoned_before_the_threshold_is_not_in_the_service_level_after_it_counts_against():
    rows = answered("c1", "1001", entered=0, waited=10, talk=30) + [
        log(100, "ENTERQUEUE", "short"), log(105, "ABANDON", "short", data1=1, data2=1, data3=5),
        log(200, "ENTERQUEUE", "long"), log(240, "ABANDON", "long", data1=1, data2=1, data3=40)]
    sales = only(figures_today(rows, since=SINCE, until=UNTIL), "sales")
    assert (sales.offered, sales.answered, sales.abandoned, sales.abandoned_before_threshold) == (3, 1, 2, 1)
    assert sales.service_level == 0.5  # 1 within / (1 answered + 1 abandoned after 20 s)


def test_a_caller_who_hangs_up_exactly_at_the_threshold_and_one_answered_exactly_at_it():
    rows = answered("on-time", "1001", entered=0, waited=20, talk=30) + [
        log(100, "ENTERQUEUE", "gone"), log(120, "ABANDON", "gone", data1=1, data2=1, data3=20)]
    sales = only(figures_today(rows, since=SINCE, until=UNTIL), "sales")
    assert sales.answered_within_threshold == 1 and sales.abandoned_before_threshold == 0
    assert sales.service_level == 0.5


def test_each_queue_has_its_own_threshold_and_the_default_is_20_seconds():
    rows = (answered("a", "1001", entered=0, waited=25, talk=10, queue="sales")
            + answered("b", "1002", entered=0, waited=25, talk=10, queue="support"))
    today = figures_today(rows, since=SINCE, until=UNTIL, service_level_seconds={"support": 30})
    assert only(today, "sales").service_level == 0.0 and only(today, "sales").service_level_seconds == 20.0
    assert only(today, "support").service_level == 1.0 and only(today, "support").service_level_seconds == 30.0


def test_a_callback_is_answered_when_called_back_with_the_wait_it_had_in_line():
    asked = [log(0, "ENTERQUEUE", "cb"), log(12, "CALLBACK", "cb", data1=1, data2=1, data3=12)]
    waiting = only(figures_today(asked, since=SINCE, until=UNTIL), "sales")
    assert (waiting.callbacks, waiting.answered, waiting.abandoned, waiting.service_level) == (1, 0, 0, None)
    called_back = asked + [log(300, "CONNECT", "cb", agent="1001", data1=12, data2="cb-leg", data3=3),
                           log(360, "COMPLETEAGENT", "cb", agent="1001", data1=12, data2=60, data3=1)]
    today = figures_today(called_back, since=SINCE, until=UNTIL)
    sales, alice = only(today, "sales"), only(today, "1001")
    assert (sales.callbacks, sales.answered, sales.answered_within_threshold, sales.service_level) == (1, 1, 1, 1.0)
    assert (alice.answered, alice.aht_seconds, alice.hold_seconds) == (1, 60.0, 12.0)


def test_a_transfer_to_another_queue_is_offered_there_again_and_both_agents_handled_it():
    rows = [log(0, "ENTERQUEUE", "t", "sales"), log(5, "CONNECT", "t", "sales", "1001", 5, "leg1", 1),
            log(45, "TRANSFER", "t", "sales", "1001", "support", 5, 40),
            log(45, "ENTERQUEUE", "t", "support"), log(75, "CONNECT", "t", "support", "1002", 30, "leg2", 2),
            log(135, "COMPLETECALLER", "t", "support", "1002", 30, 60, 1)]
    today = figures_today(rows, since=SINCE, until=UNTIL, wrap_ups={("t", "1001"): 4.0, ("t", "1002"): 6.0})
    sales, support = only(today, "sales"), only(today, "support")
    assert (sales.offered, sales.answered, sales.service_level) == (1, 1, 1.0)
    assert (support.offered, support.answered, support.service_level) == (1, 1, 0.0)  # waited 30 s there
    assert only(today, "1001").aht_seconds == 44.0 and only(today, "1002").aht_seconds == 66.0
    assert only(today, "1002").hold_seconds == 30.0


def test_a_transfer_out_of_the_line_is_no_agent_leg():
    rows = [log(0, "ENTERQUEUE", "w"), log(9, "TRANSFER", "w", data1="1000", data2=9, data3=0)]
    today = figures_today(rows, since=SINCE, until=UNTIL)
    assert only(today, "sales").offered == 1 and today.agents == ()


def test_a_timed_out_caller_counts_against_the_service_level():
    rows = answered("c", "1001", entered=0, waited=3, talk=10) + [
        log(10, "ENTERQUEUE", "slow"), log(310, "EXITWITHTIMEOUT", "slow", data1=1, data2=1, data3=300)]
    sales = only(figures_today(rows, since=SINCE, until=UNTIL), "sales")
    assert (sales.timed_out, sales.abandoned, sales.service_level) == (1, 0, 0.5)


def test_only_events_of_the_period_count_a_call_entered_yesterday_is_answered_today_not_offered():
    rows = [log(-30, "ENTERQUEUE", "early"), log(15, "CONNECT", "early", agent="1001", data1=45, data2="l", data3=1),
            log(75, "COMPLETECALLER", "early", agent="1001", data1=45, data2=60, data3=1),
            log(3600, "ENTERQUEUE", "tomorrow")]
    today = figures_today(rows, since=SINCE, until=UNTIL)
    sales = only(today, "sales")
    assert (sales.offered, sales.answered, sales.service_level) == (0, 1, 0.0)
    assert only(today, "1001").hold_seconds == 45.0


def test_missing_durations_fall_back_to_the_event_times():
    rows = [log(0, "ENTERQUEUE", "c"), log(7, "CONNECT", "c", agent="1001"), log(57, "COMPLETECALLER", "c", agent="1001")]
    alice = only(figures_today(rows, since=SINCE, until=UNTIL), "1001")
    assert (alice.hold_seconds, alice.talk_seconds, alice.aht_seconds) == (7.0, 50.0, 50.0)


def test_configured_queues_and_agents_are_listed_with_zeros_before_any_call():
    today = figures_today([], since=SINCE, until=UNTIL, queues=["sales", "support"], agents=["1001"])
    assert [q.queue for q in today.queues] == ["sales", "support"]
    assert today.queues[0].service_level is None and today.queues[0].offered == 0
    assert today.agents[0].aht_seconds is None and today.agents[0].answered == 0


def test_the_same_figures_come_from_a_records_database_wrap_up_from_the_agents_states(tmp_path):
    path = tmp_path / "records.db"
    assert today_from_records(path, since=SINCE, until=UNTIL, queues=["sales"]).queues[0].offered == 0
    store = RecordStore(path)
    try:
        for row in answered("c1", "1001", entered=10, waited=8, talk=60) + [log(-100, "ENTERQUEUE", "yesterday")]:
            store.queue_log(**{key: value for key, value in row.items() if key != "call_id"}, call_id=row["call_id"])
        store.agent_state("1001", state="wrap_up", reason="c1 ended", at=SINCE + 78)
        store.agent_state("1001", state="available", reason="wrap-up over", at=SINCE + 88)
        assert store.flush()
    finally:
        store.close()
    today = today_from_records(path, since=SINCE, until=UNTIL, service_level_seconds={"sales": 5}, agents=["1002"])
    sales, alice = only(today, "sales"), only(today, "1001")
    assert (sales.offered, sales.answered, sales.service_level, sales.service_level_seconds) == (1, 1, 0.0, 5.0)
    assert (alice.answered, alice.aht_seconds, alice.hold_seconds) == (1, pytest.approx(70.0), 8.0)
    assert only(today, "1002").answered == 0
