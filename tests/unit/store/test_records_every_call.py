"""RecordStore, schema 3: the fields every kind of call fills (callback, overflow, transfer, priority),
and the upgrade of a schema-2 database."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from acd.store.records import SCHEMA_VERSION, RecordStore


@pytest.fixture
def store(tmp_path):
    records = RecordStore(tmp_path / "records.db")
    yield records
    records.close()


def cdr(store: RecordStore, call_id: str) -> dict:
    assert store.flush(5)
    with sqlite3.connect(store.path) as reader:
        reader.row_factory = sqlite3.Row
        return dict(reader.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone())


def test_a_callback_stays_open_and_its_wait_ends_at_the_request(store):
    """Queued at 10, callback asked at 40, the customer reached and bridged at 100, ended at 160:
    wait 30 s (time in line), talk 60 s, the agent and the serving queue on the record."""
    store.call_arrived("c1", trunk="t", caller="5551", dialled="3000", at=5.0)
    store.call_queued("c1", queue="sales", at=10.0)
    store.call_priority("c1", priority=3, source="customer tier")
    store.set_field("c1", "entry_position", 2)
    store.callback_requested("c1", at=40.0)
    store.call_connected("c1", agent="1001", at=100.0, queue="sales")
    store.call_ended("c1", outcome="caller_hangup", reason="customer hung up", at=160.0)
    row = cdr(store, "c1")
    assert (row["wait_seconds"], row["talk_seconds"], row["agent"], row["served_queue"]) == (30.0, 60.0, "1001",
                                                                                             "sales")
    assert (row["priority"], row["priority_source"], row["entry_position"]) == (3, "customer tier", 2)
    assert (row["callback_requested_at"], row["outcome"]) == (40.0, "caller_hangup")


def test_overflow_keeps_the_queue_entered_and_records_the_one_that_served(store):
    store.call_arrived("c2", trunk="t", caller="5552", dialled="3000", at=0.0)
    store.call_queued("c2", queue="sales", at=1.0)
    store.call_connected("c2", agent="2001", at=31.0, queue="overflow")
    row = cdr(store, "c2")
    assert (row["queue"], row["served_queue"], row["wait_seconds"]) == ("sales", "overflow", 30.0)


def test_transfer_target_and_the_agent_of_a_failed_callback_are_settable(store):
    store.call_arrived("c3", trunk="t", caller="5553", dialled="3000", at=0.0)
    store.set_field("c3", "transfer_target", "q2")
    store.set_field("c3", "agent", "1001")
    assert (cdr(store, "c3")["transfer_target"], cdr(store, "c3")["agent"]) == ("q2", "1001")
    with pytest.raises(ValueError):
        store.set_field("c3", "outcome", "answered")


def test_a_schema_2_database_gets_the_new_columns_and_keeps_its_rows(tmp_path):
    """A calls table without the schema-3 columns (an older server's) is upgraded in place."""
    path = tmp_path / "records.db"
    db = sqlite_utils.Database(path)
    db["calls"].create({"call_id": str, "arrived_at": float, "queue": str, "queued_at": float, "agent": str,
                        "connected_at": float, "ended_at": float, "wait_seconds": float, "outcome": str,
                        "end_reason": str, "talk_seconds": float}, pk="call_id")
    db["calls"].insert({"call_id": "old", "arrived_at": 1.0, "outcome": "caller_hangup"})
    db.close()
    store = RecordStore(path)
    try:
        store.call_priority("old", priority=1, source="flow")
        row = cdr(store, "old")
    finally:
        store.close()
    assert row["outcome"] == "caller_hangup" and row["served_queue"] is None and row["notes"] is None
    assert row["node"] is None and row["incarnation"] is None
    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
