"""The records store's restart memory: each agent's current state (`agent_presence`) and how the
previous run ended (`server_runs`), read back by `start_run`."""

from __future__ import annotations

import sqlite3

import pytest

from acd.store.presence import AgentPresence
from acd.store.records import RecordStore
from tests.store_backends import open_records, read_rows


@pytest.fixture
def path(store_location):
    """The records' location: a SQLite file, then a PostgreSQL database (tests/conftest.py)."""
    return store_location


def reopen(store: RecordStore, *, at: float) -> tuple[RecordStore, object]:
    """Close `store` (as the process ends) and open the file again as the next run does."""
    store.close()
    again = open_records(store.location)
    return again, again.start_run(at=at)


def test_first_start_has_no_previous_run_and_nobody_logged_in(path):
    """A new database: the first start, no open call, no agent to restore."""
    store = open_records(path)
    previous = store.start_run(at=10.0)
    store.close()
    assert (previous.first_start, previous.ending, previous.open_calls, previous.agents) == \
        (True, "the first start", 0, ())


def test_presence_keeps_the_last_state_of_each_agent_with_queues_and_pause_reason(path):
    """Every change replaces the agent's row; logged-out agents are not offered for restore."""
    store = open_records(path)
    store.start_run(at=1.0)
    store.agent_presence("1001", state="available", queues={"sales": 0, "support": 2}, reason="logged in", at=2.0)
    store.agent_presence("1001", state="on_call", queues={"sales": 0, "support": 2}, reason="answered", at=3.0,
                         pending="pause", pending_reason="lunch")
    store.agent_presence("1002", state="paused", queues={"sales": 1}, reason="paused: lunch", at=4.0,
                         pause_reason="lunch")
    store.agent_presence("1003", state="available", queues={"sales": 0}, reason="logged in", at=5.0)
    store.agent_presence("1003", state="logged_out", queues={}, reason="logged out", at=6.0)
    store.stop_run(at=7.0)
    store, previous = reopen(store, at=8.0)
    store.close()
    assert previous.ending == "a clean stop" and previous.stopped_at == 7.0
    assert previous.agents == (
        AgentPresence(agent_id="1001", state="on_call", queues={"sales": 0, "support": 2}, pending="pause",
                      pending_reason="lunch", updated_at=3.0),
        AgentPresence(agent_id="1002", state="paused", queues={"sales": 1}, pause_reason="lunch", updated_at=4.0))


def test_a_run_without_a_stop_mark_ended_in_a_crash(path):
    """No stop written (SIGKILL): the next start says crash, with the calls left open counted."""
    store = open_records(path)
    store.start_run(at=1.0)
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=2.0)
    store, previous = reopen(store, at=5.0)
    assert (previous.first_start, previous.stopped_cleanly, previous.ending, previous.open_calls) == \
        (False, False, "a crash", 1)
    store.close_interrupted(at=5.0)
    store.stop_run(at=6.0)
    store, again = reopen(store, at=7.0)
    store.close()
    assert again.ending == "a clean stop" and again.open_calls == 0


def test_a_stop_mark_with_calls_left_open_counts_as_a_crash(path):
    """Calls still open at a clean stop mean they were cut off: treated as a crash."""
    store = open_records(path)
    store.start_run(at=1.0)
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=2.0)
    store.stop_run(at=3.0)
    store, previous = reopen(store, at=4.0)
    store.close()
    assert previous.stopped_cleanly and previous.ending == "a crash"


def test_pending_must_be_pause_or_logout(path):
    """A typo in `pending` is refused on the reactor side, before it reaches the file."""
    store = open_records(path)
    try:
        with pytest.raises(ValueError, match="pending"):
            store.agent_presence("1001", state="on_call", queues={}, reason="x", at=1.0, pending="pasue")
    finally:
        store.close()


def test_an_old_database_seeds_presence_from_the_history(tmp_path):
    """A records.db written before `agent_presence` existed: agents whose last history row is not
    logged out are restorable after the upgrade (paused ones with their reason)."""
    path = tmp_path / "records.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE calls (call_id TEXT PRIMARY KEY, arrived_at FLOAT NOT NULL, ended_at FLOAT)")
        db.execute("CREATE TABLE agent_states (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, state TEXT NOT NULL, "
                   "reason TEXT NOT NULL, at FLOAT NOT NULL)")
        db.executemany("INSERT INTO agent_states (agent_id, state, reason, at) VALUES (?, ?, ?, ?)", [
            ("1001", "available", "logged in", 1.0), ("1002", "paused", "logged in paused: lunch", 2.0),
            ("1003", "available", "logged in", 3.0), ("1003", "logged_out", "logged out", 4.0)])
    db.close()
    store = RecordStore(path)
    previous = store.start_run(at=10.0)
    store.close()
    assert [(a.agent_id, a.state, a.pause_reason) for a in previous.agents] == [
        ("1001", "available", None), ("1002", "paused", "lunch")]


def test_an_old_postgresql_database_seeds_presence_from_the_history(pg_url):
    """The same upgrade in PostgreSQL: tables of an older schema, migrated and seeded on open."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE calls (call_id text PRIMARY KEY, arrived_at double precision NOT NULL, "
                   "ended_at double precision)")
        db.execute("CREATE TABLE agent_states (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, agent_id text "
                   "NOT NULL, state text NOT NULL, reason text NOT NULL, at double precision NOT NULL)")
        db.cursor().executemany("INSERT INTO agent_states (agent_id, state, reason, at) VALUES (%s, %s, %s, %s)", [
            ("1001", "available", "logged in", 1.0), ("1002", "paused", "logged in paused: lunch", 2.0),
            ("1003", "available", "logged in", 3.0), ("1003", "logged_out", "logged out", 4.0)])
    store = open_records(pg_url)
    previous = store.start_run(at=10.0)
    store.close()
    assert [(a.agent_id, a.state, a.pause_reason) for a in previous.agents] == [
        ("1001", "available", None), ("1002", "paused", "lunch")]
    assert {"served_queue", "notes"} <= {row["column_name"] for row in read_rows(
        pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls' "
        "AND table_schema = current_schema()")}
