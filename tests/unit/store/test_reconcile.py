"""acd.reconcile: the records' figures against /metrics and /api/queues, over the current run."""

from __future__ import annotations

import io

import pytest

from acd.reconcile import Difference, compare, current_run_start, live_figures, record_figures, run_check
from acd.store.records import RecordStore

METRICS = """\
# TYPE acd_queue_answered_total counter
acd_queue_answered_total{queue="sales"} 2.0
# TYPE acd_queue_callbacks_total counter
acd_queue_callbacks_total{queue="sales"} 1.0
# TYPE acd_calls_total counter
acd_calls_total{result="caller_hangup",trunk="pstn"} 2.0
acd_calls_total{result="completed",trunk="agents"} 5.0
# TYPE acd_handle_time_seconds histogram
acd_handle_time_seconds_bucket{le="+Inf",queue="sales"} 2.0
acd_handle_time_seconds_count{queue="sales"} 2.0
acd_handle_time_seconds_sum{queue="sales"} 100.0
"""


@pytest.fixture
def db(tmp_path):
    """An earlier run with one call, then this run (started at 100): an inbound call answered and
    a callback answered, both ended by the customer."""
    store = RecordStore(tmp_path / "records.db")
    store.start_run(at=0.0)
    store.call_arrived("old", trunk="pstn", caller="1", dialled="3000", at=1.0)
    store.call_ended("old", outcome="caller_hangup", reason="", at=2.0)
    store.queue_log(at=1.5, call_id="old", queue="sales", agent="", event="ENTERQUEUE")
    store.start_run(at=100.0)
    for call, connect in (("in", 110.0), ("cb", 150.0)):
        store.call_arrived(call, trunk="pstn", caller="5551", dialled="3000", at=100.0)
        store.call_queued(call, queue="sales", at=101.0)
        store.queue_log(at=101.0, call_id=call, queue="sales", agent="", event="ENTERQUEUE")
        if call == "cb":
            store.queue_log(at=105.0, call_id=call, queue="sales", agent="", event="CALLBACK")
        store.queue_log(at=connect, call_id=call, queue="sales", agent="1001", event="CONNECT")
        store.queue_log(at=connect + 50, call_id=call, queue="sales", agent="1001", event="COMPLETECALLER")
        store.call_ended(call, outcome="caller_hangup", reason="", at=connect + 50)
    store.close()
    return tmp_path / "records.db"


def test_records_of_the_current_run_only_are_compared(db):
    assert current_run_start(db) == 100.0
    figures = record_figures(db, 100.0)
    assert figures['acd_queue_answered_total{queue="sales"}'] == 2
    assert figures["/api/queues sales offered"] == 2 and figures["/api/queues sales answered"] == 2
    assert figures['acd_calls_total{result="caller_hangup"}'] == 2, "the earlier run's call is left out"


def test_live_figures_sum_trunks_and_leave_out_the_agents_own_calls():
    live = live_figures(METRICS, [{"queue": "sales", "offered": 2, "answered": 2, "abandoned": 0}])
    assert live['acd_calls_total{result="caller_hangup"}'] == 2
    assert 'acd_calls_total{result="completed"}' not in live
    assert live['acd_handle_time_seconds_count{queue="sales"}'] == 2


def test_agreeing_figures_give_no_difference_and_a_missing_one_counts_as_zero(db):
    live = live_figures(METRICS, [{"queue": "sales", "offered": 2, "answered": 2, "abandoned": 0}])
    assert compare(record_figures(db, 100.0), live) == []
    before_the_fix = dict(live, **{'acd_queue_answered_total{queue="sales"}': 1.0})
    assert compare(record_figures(db, 100.0), before_the_fix) == [
        Difference('acd_queue_answered_total{queue="sales"}', 2, 1.0)]


def test_run_check_exits_2_when_the_server_cannot_be_reached(db):
    out, err = io.StringIO(), io.StringIO()
    assert run_check(db, "http://127.0.0.1:9", "token", out=out, err=err) == 2
    assert "acd report --check" in err.getvalue()
