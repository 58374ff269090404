"""The report's text tables, its CSV, date parsing and `run_report` (what `acd report` runs)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from acd.report import (AgentKpis, IvrContainment, IvrDropOff, PauseTime, QueueKpis, Report, Satisfaction,
                        format_report, parse_when, run_report, write_csv)
from acd.store.records import RecordStore

REPORT = Report(
    since=1000.0, until=2000.0,
    queues=(QueueKpis(queue="sales", offered=4, answered=3, answered_within_sl=2, abandoned=1, timed_out=0,
                      callbacks=1, service_level_seconds=20.0, abandon_rate=0.25, asa_seconds=25.0,
                      aht_seconds=200 / 3, service_level=0.5),
            QueueKpis(queue="support", offered=0, answered=0, answered_within_sl=0, abandoned=0, timed_out=0,
                      callbacks=0, service_level_seconds=30.0, abandon_rate=None, asa_seconds=None,
                      aht_seconds=None, service_level=None)),
    agents=(AgentKpis(agent="alice", calls=2, missed=1, talk_seconds=150.0, wrap_up_seconds=15.0, aht_seconds=82.5,
                      paused_seconds=300.0),),
    pauses=(PauseTime(agent="alice", reason="lunch", seconds=300.0),),
    ivr=IvrContainment(answered=10, contained=1, rate=0.1),
    ivr_drop_off=(IvrDropOff(flow="main", step="menu", hangups=2),),
    satisfaction=(Satisfaction(scope="queue", name="sales", surveys=3, average=3.5,
                               by_question=(("q1", 10 / 3), ("q2", 4.0))),),
)


def test_text_report_has_aligned_tables_with_every_kpi():
    text = format_report(REPORT)
    lines = text.splitlines()
    start = lines.index("Queues")
    header, sales, support = lines[start + 1:start + 4]
    assert sales.split() == ["sales", "4", "3", "1", "25.0%", "25.0", "66.7", "50.0%", "20", "1", "0"]
    assert support.split() == ["support", "0", "0", "0", "-", "-", "-", "-", "30", "0", "0"]
    # Right-aligned figures end in the same column as their header.
    for column in ("offered", "ASA s", "AHT s", "timed out"):
        end = header.index(column) + len(column)
        assert sales[end - 1] != " " and (len(sales) == end or sales[end] == " ")
    assert "  alice      2       1   82.5     150         15       300" in lines
    assert "  alice  lunch       300" in lines
    assert "IVR containment: 1 of 10 answered calls (10.0%)" in lines
    assert "  main  menu         2" in lines
    assert "  queue  sales        3     3.50  3.33  4.00" in lines


def test_empty_sections_say_none():
    empty = Report(since=0.0, until=1.0, queues=(), agents=(), pauses=(),
                   ivr=IvrContainment(answered=0, contained=0, rate=None), ivr_drop_off=(), satisfaction=())
    text = format_report(empty)
    assert text.count("(none)") == 6 and "IVR containment: 0 of 0 answered calls (-)" in text


def test_csv_is_one_long_file_with_a_section_column(tmp_path):
    path = tmp_path / "report.csv"
    write_csv(REPORT, path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["section", "name", "detail", "metric", "value"]
    table = {(r["section"], r["name"], r["detail"], r["metric"]): r["value"] for r in rows}
    assert table[("period", "", "", "since")] == "1000.0"
    assert table[("queue", "sales", "", "service_level")] == "0.5"
    assert table[("queue", "sales", "", "asa_seconds")] == "25.0"
    assert table[("queue", "support", "", "service_level")] == ""  # no data, not zero
    assert table[("agent", "alice", "", "missed")] == "1"
    assert table[("agent_pause", "alice", "lunch", "seconds")] == "300.0"
    assert table[("ivr", "", "", "rate")] == "0.1"
    assert table[("ivr_drop_off", "main", "menu", "hangups")] == "2"
    assert table[("satisfaction_queue", "sales", "q2", "average")] == "4.0"
    assert {r["section"] for r in rows} == {"period", "calls", "queue", "agent", "agent_pause", "ivr", "ivr_drop_off",
                                            "satisfaction_queue"}


def test_parse_when_takes_dates_times_offsets_and_posix_seconds():
    assert parse_when("2026-11-01") == dt.datetime(2026, 11, 1).timestamp()  # local midnight
    assert parse_when("2026-11-01T08:30") == dt.datetime(2026, 11, 1, 8, 30).timestamp()
    assert parse_when("2026-11-01T08:00+01:00") == dt.datetime(2026, 11, 1, 7, tzinfo=dt.timezone.utc).timestamp()
    assert parse_when("1700000000.5") == 1700000000.5
    with pytest.raises(ValueError, match="not a date"):
        parse_when("yesterday")


def test_run_report_prints_the_tables_and_writes_the_csv(tmp_path):
    path = tmp_path / "records.db"
    store = RecordStore(path)
    store.queue_log(at=100, call_id="c", queue="sales", agent="", event="ENTERQUEUE")
    store.queue_log(at=105, call_id="c", queue="sales", agent="alice", event="CONNECT", data1=5)
    store.close()
    out, err = io.StringIO(), io.StringIO()
    status = run_report(path, since="50", until="200", csv_path=tmp_path / "r.csv",
                        service_level_seconds={"sales": 10}, out=out, err=err)
    assert status == 0
    assert "  sales        1         1          0          0.0%    5.0      -  100.0%    10" in out.getvalue()
    assert (tmp_path / "r.csv").read_text().startswith("section,name,detail,metric,value")


def test_run_report_explains_bad_input(tmp_path):
    err = io.StringIO()
    assert run_report(tmp_path / "none.db", since="2026-11-01", out=io.StringIO(), err=err) == 1
    assert "no records database" in err.getvalue()
    err = io.StringIO()
    RecordStore(tmp_path / "r.db").close()
    assert run_report(tmp_path / "r.db", since="last week", out=io.StringIO(), err=err) == 1
    assert "not a date" in err.getvalue()


def test_each_agents_own_wrap_up_comes_from_the_state_history():
    """A blind transfer: both agents wrapped up after the same call; the CDR's single wrap-up field
    keeps only the last, the history keeps each (open wrap-up counted up to `until`)."""
    from acd.report import wrap_ups

    states = [
        {"agent_id": "a", "state": "on_call", "reason": "answered c1", "at": 10.0},
        {"agent_id": "a", "state": "wrap_up", "reason": "c1 ended", "at": 20.0},
        {"agent_id": "a", "state": "available", "reason": "wrap-up over", "at": 23.0},
        {"agent_id": "b", "state": "wrap_up", "reason": "c1 ended", "at": 40.0},
        {"agent_id": "b", "state": "available", "reason": "ready", "at": 41.5},
        {"agent_id": "b", "state": "wrap_up", "reason": "c2 ended", "at": 50.0},
    ]
    assert wrap_ups(states, until=52.0) == {("c1", "a"): 3.0, ("c1", "b"): 1.5, ("c2", "b"): 2.0}
