"""RecordStore group commit: many queued events in one durable (synchronous=FULL) transaction,
one savepoint per event so a bad event costs only itself, and the commit delay reported; SQLite
and PostgreSQL (`store_location`, tests/conftest.py)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from acd.store.records import RecordStore
from tests.store_backends import open_records, read_rows


def _count(path, sql: str) -> int:
    reader = sqlite3.connect(path)
    try:
        return reader.execute(sql).fetchone()[0]
    finally:
        reader.close()


def _hold_the_writer(store: RecordStore, monkeypatch) -> threading.Event:
    """Make the writer wait inside its first write until the returned event is set, so the events
    enqueued meanwhile are taken as one batch."""
    release = threading.Event()
    original = RecordStore._write_stop_run

    def blocking(self, **arguments):
        release.wait(5)
        return original(self, **arguments)

    monkeypatch.setattr(RecordStore, "_write_stop_run", blocking)
    store.stop_run(at=0.0)
    return release


def test_a_backlog_is_committed_as_one_batch_and_the_delay_observed(store_location, monkeypatch):
    delays: list[float] = []
    store = open_records(store_location, commit_delay_observer=delays.append)
    release = _hold_the_writer(store, monkeypatch)
    for index in range(200):
        store.call_arrived(f"c{index}", trunk="t", caller="1", dialled="2", at=float(index))
    release.set()
    assert store.flush(5)
    store.close()
    assert read_rows(store_location, "SELECT COUNT(*) AS n FROM calls") == [{"n": 200}]
    assert len(delays) <= 3, "200 queued events took one or two commits, not one each"
    assert all(0 <= delay < 5 for delay in delays)


def test_a_bad_event_in_a_batch_is_rolled_back_alone(store_location, monkeypatch, caplog):
    store = open_records(store_location)
    release = _hold_the_writer(store, monkeypatch)
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
    store.call_arrived("c1", trunk="duplicate", caller="9", dialled="9", at=2.0)  # primary key: fails
    store.call_answered("c1", at=3.0)
    store.call_arrived("c2", trunk="t", caller="1", dialled="2", at=4.0)
    release.set()
    assert store.flush(5)
    store.close()
    assert read_rows(store_location, "SELECT call_id, trunk, answered_at FROM calls ORDER BY call_id") == [
        {"call_id": "c1", "trunk": "t", "answered_at": 3.0}, {"call_id": "c2", "trunk": "t", "answered_at": None}]
    assert "write failed, skipped: call_arrived" in caplog.text


def test_the_writer_connection_is_synchronous_full(tmp_path, monkeypatch):
    seen: list[int] = []

    def probe(self, at: float) -> None:
        seen.append(self._db.execute("PRAGMA synchronous").fetchone()[0])

    monkeypatch.setattr(RecordStore, "_write_stop_run", probe)
    store = RecordStore(tmp_path / "r.db")
    store.stop_run(at=0.0)
    store.close()
    assert seen == [2], "2 is FULL (https://www.sqlite.org/pragma.html#pragma_synchronous)"


def test_the_postgresql_writer_commits_with_synchronous_commit_on(pg_url, monkeypatch):
    """PostgreSQL's FULL: COMMIT returns once the WAL is flushed on the database server."""
    seen: list[str] = []

    def probe(self, at: float) -> None:
        seen.append(self._db.execute("SHOW synchronous_commit").fetchone()[0])

    monkeypatch.setattr(RecordStore, "_write_stop_run", probe)
    store = open_records(pg_url)
    store.stop_run(at=0.0)
    store.close()
    assert seen == ["on"]


def test_an_unknown_synchronous_setting_is_refused():
    with pytest.raises(ValueError, match="synchronous"):
        RecordStore("/nonexistent/r.db", synchronous="SOMETIMES")
