"""RecordStore: each write method, through the writer thread, read back from a connection of our own.
Tests taking `store` or `store_location` run against SQLite and PostgreSQL (tests/conftest.py)."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

import pytest

from acd.store.records import QUEUE_LOG_EVENTS, SCHEMA_VERSION, RecordStore
from tests.store_backends import open_records, read_rows


@pytest.fixture
def store(store_location):
    records = open_records(store_location)
    yield records
    records.close()


def rows(store: RecordStore, sql: str, *parameters) -> list[dict]:
    """Flush, then read with a fresh reader connection (as `acd report` does)."""
    assert store.flush(5)
    return read_rows(store.location, sql, *parameters)


def cdr(store: RecordStore, call_id: str) -> dict:
    (row,) = rows(store, "SELECT * FROM calls WHERE call_id = ?", call_id)
    return row


def test_database_is_in_wal_mode_with_the_schema_version(tmp_path):
    """The file is WAL (readers never block the writer) and carries user_version for migrations."""
    store = RecordStore(tmp_path / "records.db")
    store.close()
    reader = sqlite3.connect(store.path)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {name for (name,) in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"calls", "ivr_steps", "queue_log", "agent_states"} <= tables
    reader.close()


def test_postgresql_database_carries_the_schema_version_and_the_same_tables(pg_url):
    """PostgreSQL: the version in `acd_schema`, the same tables and columns as SQLite's."""
    from acd.store.pg_reader import PgReader

    store = open_records(pg_url)
    store.close()
    reader = PgReader(pg_url)
    try:
        assert reader.execute("SELECT version FROM acd_schema").fetchone()[0] == SCHEMA_VERSION
        assert {"calls", "ivr_steps", "queue_log", "agent_states", "routing_events", "monitoring", "server_runs",
                "agent_presence"} <= set(reader.table_names())
        columns = [row["column_name"] for row in reader.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls' "
            "AND table_schema = current_schema() ORDER BY ordinal_position")]
    finally:
        reader.close()
    from acd.store.records import CALLS_COLUMNS

    assert columns == list(CALLS_COLUMNS)


def test_call_arrived_inserts_the_cdr_row(store):
    store.call_arrived("c1", trunk="carrier", caller="5550100", dialled="1000", at=100.0)
    row = cdr(store, "c1")
    assert (row["trunk"], row["caller"], row["dialled"], row["arrived_at"]) == ("carrier", "5550100", "1000", 100.0)
    assert row["ended_at"] is None and row["ivr_path"] == ""


def test_call_answered_sets_answered_at(store):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.call_answered("c1", at=100.5)
    assert cdr(store, "c1")["answered_at"] == 100.5


def test_ivr_steps_build_the_path_and_the_step_table(store):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.ivr_step("c1", flow="main", step="welcome", at=101.0)
    store.ivr_step("c1", flow="main", step="menu", at=103.0)
    store.ivr_step("c1", flow="billing", step="pin", at=107.0)
    assert cdr(store, "c1")["ivr_path"] == "welcome>menu>pin"
    assert rows(store, "SELECT flow, step, at FROM ivr_steps WHERE call_id = 'c1' ORDER BY id") == [
        {"flow": "main", "step": "welcome", "at": 101.0}, {"flow": "main", "step": "menu", "at": 103.0},
        {"flow": "billing", "step": "pin", "at": 107.0}]


def test_connected_sets_agent_and_wait_from_queued_at(store):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.call_queued("c1", queue="sales", at=110.0)
    store.call_connected("c1", agent="alice", at=125.5)
    row = cdr(store, "c1")
    assert (row["queue"], row["queued_at"], row["agent"], row["connected_at"]) == ("sales", 110.0, "alice", 125.5)
    assert row["wait_seconds"] == 15.5


def test_overflow_keeps_the_first_queued_at_but_a_requeue_after_talk_starts_a_new_wait(store):
    """Overflow while waiting: the caller's wait goes on. Transfer to a queue after an agent: new wait."""
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.call_queued("c1", queue="sales", at=110.0)
    store.call_queued("c1", queue="overflow", at=140.0)
    store.call_connected("c1", agent="alice", at=150.0)
    assert cdr(store, "c1")["wait_seconds"] == 40.0
    store.call_queued("c1", queue="billing", at=200.0)
    store.call_connected("c1", agent="bob", at=230.0)
    row = cdr(store, "c1")
    assert (row["queue"], row["agent"], row["wait_seconds"]) == ("billing", "bob", 30.0)


def test_connected_without_queue_leaves_wait_null(store):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.call_connected("c1", agent="alice", at=105.0)
    assert cdr(store, "c1")["wait_seconds"] is None


def test_call_ended_sets_talk_seconds_when_connected(store):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.call_queued("c1", queue="sales", at=110.0)
    store.call_connected("c1", agent="alice", at=120.0)
    store.call_ended("c1", outcome="agent_hangup", reason="agent hung up", at=185.25)
    row = cdr(store, "c1")
    assert (row["ended_at"], row["outcome"], row["end_reason"], row["talk_seconds"]) == (
        185.25, "agent_hangup", "agent hung up", 65.25)


def test_call_ended_without_agent_has_no_talk_and_a_second_end_is_ignored(store, caplog):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.call_ended("c1", outcome="caller_hangup", reason="caller hung up at menu", at=130.0)
    with caplog.at_level(logging.WARNING, logger="acd.store.records"):
        store.call_ended("c1", outcome="completed", reason="late", at=140.0)
        row = cdr(store, "c1")
    assert (row["ended_at"], row["outcome"], row["talk_seconds"]) == (130.0, "caller_hangup", None)
    assert "after it ended" in caplog.text


def test_set_field_writes_whitelisted_fields_and_survey_as_json(store):
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    store.set_field("c1", "recording_path", "recordings/c1.wav")
    store.set_field("c1", "survey", {"q2": 5, "q1": 4})
    store.set_field("c1", "disposition", "sale")
    store.set_field("c1", "wrap_up_seconds", 12)
    row = cdr(store, "c1")
    assert row["recording_path"] == "recordings/c1.wav" and row["disposition"] == "sale"
    assert json.loads(row["survey"]) == {"q1": 4, "q2": 5} and row["wrap_up_seconds"] == 12.0


def test_set_field_refuses_other_columns_at_the_call_site(store):
    """The column name ends up in SQL: anything off the whitelist is refused before enqueueing."""
    with pytest.raises(ValueError, match="outcome"):
        store.set_field("c1", "outcome", "x")
    with pytest.raises(ValueError):
        store.set_field("c1", "survey = 1; DROP TABLE calls; --", "x")


def test_queue_log_rows_keep_order_and_fields_as_text(store):
    store.queue_log(at=110.0, call_id="c1", queue="sales", agent="", event="ENTERQUEUE", data2="5550100", data3=1)
    store.queue_log(at=125.5, call_id="c1", queue="sales", agent="alice", event="CONNECT", data1=15.5,
                    data2="leg-9", data3=2.0)
    assert rows(store, "SELECT at, call_id, queue, agent, event, data1, data2, data3 FROM queue_log ORDER BY id") == [
        {"at": 110.0, "call_id": "c1", "queue": "sales", "agent": "", "event": "ENTERQUEUE", "data1": "",
         "data2": "5550100", "data3": "1"},
        {"at": 125.5, "call_id": "c1", "queue": "sales", "agent": "alice", "event": "CONNECT", "data1": "15.5",
         "data2": "leg-9", "data3": "2"}]


def test_queue_log_refuses_unknown_events_and_documents_every_known_one(store):
    with pytest.raises(ValueError, match="HANGUP"):
        store.queue_log(at=1.0, call_id="c1", queue="q", agent="", event="HANGUP")
    assert {"ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT", "ABANDON", "RINGNOANSWER", "CALLBACK",
            "TRANSFER", "EXITWITHTIMEOUT", "AGENTLOGIN", "AGENTLOGOFF", "PAUSE", "UNPAUSE"} == set(QUEUE_LOG_EVENTS)
    assert all(len(fields) == 3 for fields in QUEUE_LOG_EVENTS.values())


def test_agent_state_history(store):
    store.agent_state("alice", state="available", reason="login", at=50.0)
    store.agent_state("alice", state="paused", reason="lunch", at=60.0)
    assert rows(store, "SELECT agent_id, state, reason, at FROM agent_states ORDER BY id") == [
        {"agent_id": "alice", "state": "available", "reason": "login", "at": 50.0},
        {"agent_id": "alice", "state": "paused", "reason": "lunch", "at": 60.0}]


@pytest.mark.parametrize("update", [
    lambda s: s.call_answered("ghost", at=1.0),
    lambda s: s.ivr_step("ghost", flow="f", step="s", at=1.0),
    lambda s: s.call_queued("ghost", queue="q", at=1.0),
    lambda s: s.call_connected("ghost", agent="a", at=1.0),
    lambda s: s.call_ended("ghost", outcome="completed", reason="r", at=1.0),
    lambda s: s.set_field("ghost", "disposition", "x"),
])
def test_updates_for_unknown_calls_are_logged_and_skipped(store, caplog, update):
    with caplog.at_level(logging.WARNING, logger="acd.store.records"):
        update(store)
        store.call_arrived("c2", trunk="t", caller="1", dialled="2", at=2.0)
        assert cdr(store, "c2")["arrived_at"] == 2.0  # the writer went on
    assert "unknown call 'ghost'" in caplog.text
    assert rows(store, "SELECT * FROM ivr_steps") == []


def test_a_write_error_is_logged_with_the_event_and_the_writer_goes_on(store, caplog):
    """A duplicate call id violates the primary key: logged with the event, nothing else lost."""
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=100.0)
    with caplog.at_level(logging.ERROR, logger="acd.store.records"):
        store.call_arrived("c1", trunk="other", caller="9", dialled="9", at=200.0)
        store.call_answered("c1", at=101.0)
        row = cdr(store, "c1")
    assert (row["trunk"], row["answered_at"]) == ("t", 101.0)
    assert "write failed, skipped: call_arrived" in caplog.text and "'other'" in caplog.text


def test_close_interrupted_ends_open_calls_and_leaves_agents_to_the_restore(store):
    """After a crash: every started call gets an end ("interrupted"); the agents' states are left
    as they were (the server restores them from `agent_presence`)."""
    store.call_arrived("done", trunk="t", caller="1", dialled="2", at=10.0)
    store.call_ended("done", outcome="completed", reason="flow ended", at=20.0)
    store.call_arrived("talking", trunk="t", caller="1", dialled="2", at=30.0)
    store.call_connected("talking", agent="alice", at=40.0)
    store.call_arrived("waiting", trunk="t", caller="1", dialled="2", at=50.0)
    store.agent_state("alice", state="on_call", reason="c", at=40.0)
    store.agent_state("bob", state="logged_out", reason="bye", at=45.0)
    store.close_interrupted(at=100.0, reason="restart after crash")
    ended = {r["call_id"]: (r["outcome"], r["ended_at"], r["talk_seconds"])
             for r in rows(store, "SELECT * FROM calls")}
    assert ended == {"done": ("completed", 20.0, None), "talking": ("interrupted", 100.0, 60.0),
                     "waiting": ("interrupted", 100.0, None)}
    assert rows(store, "SELECT agent_id, state, reason, at FROM agent_states WHERE at = 100.0") == []


def test_public_methods_only_enqueue(tmp_path):
    """The reactor thread must not wait for SQLite: 2,000 calls return in well under a millisecond each."""
    store = RecordStore(tmp_path / "r.db")
    try:
        started = time.perf_counter()
        for index in range(1000):
            store.call_arrived(f"c{index}", trunk="t", caller="1", dialled="2", at=float(index))
            store.queue_log(at=float(index), call_id=f"c{index}", queue="q", agent="", event="ENTERQUEUE")
        per_call = (time.perf_counter() - started) / 2000
        assert per_call < 100e-6, per_call
        assert store.flush(10)
        assert rows(store, "SELECT COUNT(*) AS n FROM calls") == [{"n": 1000}]
    finally:
        store.close()


def test_writes_happen_on_one_writer_thread(tmp_path, monkeypatch):
    store = RecordStore(tmp_path / "r.db")
    seen = set()
    original = RecordStore._write_agent_state

    def spy(self, *args, **kwargs):
        seen.add(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RecordStore, "_write_agent_state", spy)
    for index in range(5):
        store.agent_state("a", state="available", reason="", at=float(index))
    store.close()
    assert seen == {"acd-records"}


def test_close_flushes_and_later_writes_are_dropped(store_location, caplog):
    store = open_records(store_location)
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
    store.close()
    store.close()  # idempotent
    with caplog.at_level(logging.WARNING, logger="acd.store.records"):
        store.call_arrived("c2", trunk="t", caller="1", dialled="2", at=2.0)
    assert "store closed" in caplog.text
    assert read_rows(store_location, "SELECT call_id FROM calls") == [{"call_id": "c1"}]


def test_reopening_an_existing_database_keeps_its_rows(store_location):
    store = open_records(store_location)
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
    store.close()
    again = open_records(store_location)
    again.call_answered("c1", at=2.0)
    assert cdr(again, "c1")["answered_at"] == 2.0
    again.close()


def test_an_unopenable_path_fails_in_the_constructor(tmp_path):
    with pytest.raises(Exception):
        RecordStore(tmp_path / "missing-dir" / "r.db")


def test_an_unreachable_postgresql_fails_in_the_constructor_saying_what_to_check(pg_cluster):
    """Nothing listens there: the error names the URL (password hidden) and what to check."""
    url = f"postgresql://acd:secret@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(RuntimeError, match=r"cannot open the PostgreSQL store postgresql://acd:\*\*\*@") as error:
        open_records(url)
    assert "secret" not in str(error.value) and "store:" in str(error.value)
