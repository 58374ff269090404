"""ProcessRecordStore: the records writer as a child process (issue 16), with RecordStore's methods."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from acd.store.records_process import ProcessRecordStore, encode
from tests.store_backends import read_rows


def _rows(path, sql: str) -> list[tuple]:
    reader = sqlite3.connect(path)
    try:
        return reader.execute(sql).fetchall()
    finally:
        reader.close()


@pytest.fixture
def store(tmp_path):
    opened = ProcessRecordStore(tmp_path / "r.db")
    yield opened
    opened.close()


def test_writes_reach_the_database_once_flushed(store_location):
    """SQLite, then PostgreSQL: the child process opens whichever the location names."""
    store = ProcessRecordStore(store_location)
    try:
        store.call_arrived("c1", trunk="t", caller="+331", dialled="1000", at=1.0)
        store.ivr_step("c1", flow="main", step="welcome", at=1.5)
        store.call_ended("c1", outcome="caller_hangup", reason="caller hung up", at=3.0)
        assert store.flush(5)
    finally:
        store.close()
    assert read_rows(store_location, "SELECT call_id, ivr_path, outcome, ended_at FROM calls") == [
        {"call_id": "c1", "ivr_path": "welcome", "outcome": "caller_hangup", "ended_at": 3.0}]


def test_the_previous_run_is_answered_across_the_pipe(store_location):
    first = ProcessRecordStore(store_location)
    try:
        assert first.start_run(at=10.0).ending == "the first start"
        first.call_arrived("open", trunk="t", caller="1", dialled="2", at=11.0)
        first.stop_run(at=12.0)
    finally:
        first.close()
    second = ProcessRecordStore(store_location)
    try:
        previous = second.start_run(at=20.0)
        assert (previous.stopped_cleanly, previous.stopped_at, previous.open_calls) == (True, 12.0, 1)
    finally:
        second.close()


def test_with_a_schedule_writes_wait_for_one_ship(tmp_path):
    scheduled = []
    store = ProcessRecordStore(tmp_path / "r.db", schedule=lambda delay, function: scheduled.append((delay, function)))
    try:
        store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
        assert store.backlog == 0 and not scheduled
        for index in range(50):
            store.ivr_step("c1", flow="main", step=f"s{index}", at=float(index))
        assert len(scheduled) == 1 and 0 < scheduled[0][0] <= 0.05
        assert store.backlog == 50
        scheduled[0][1]()
        assert store.backlog == 0
        assert store.flush(5)
        assert _rows(store.path, "SELECT COUNT(*) FROM ivr_steps") == [(50,)]
    finally:
        store.close()


def test_a_call_arriving_ships_at_once_with_what_waits(tmp_path):
    """A call's first item does not wait for the ship timer: a kill -9 just after the caller is
    answered must not leave the call without a record (the cluster e2e lost 3 that way)."""
    scheduled = []
    store = ProcessRecordStore(tmp_path / "r.db", schedule=lambda delay, function: scheduled.append((delay, function)))
    try:
        store.agent_state("a1", state="available", reason="login", at=1.0)
        assert store.backlog == 1 and len(scheduled) == 1
        store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=2.0)
        assert store.backlog == 0
        assert store.flush(5)
        assert _rows(store.path, "SELECT call_id FROM calls") == [("c1",)]
    finally:
        store.close()


SERVER_KILLED_AFTER_A_CALL = """
import os, signal, sys
from acd.store.records_process import ProcessRecordStore
store = ProcessRecordStore(sys.argv[1], schedule=lambda delay, function: None)  # a timer that never comes
store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
print(store._process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_server_killed_9_right_after_answering_leaves_the_call_record_and_a_word_on_stderr(tmp_path):
    """A real kill -9 of the server process: its writer (now an orphan) commits the arrival and says
    on the server's stderr (its log file under acd serve) that it carried on alone."""
    path, errors = tmp_path / "r.db", tmp_path / "server.log"
    with open(errors, "wb") as stderr:
        server = subprocess.run([sys.executable, "-c", SERVER_KILLED_AFTER_A_CALL, str(path)], stdout=subprocess.PIPE,
                                stderr=stderr, timeout=30)
    assert server.returncode == -9
    writer = int(server.stdout.split()[0])
    deadline = time.monotonic() + 20
    while _alive(writer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(writer)
    assert _rows(path, "SELECT call_id FROM calls") == [("c1",)]
    said = errors.read_text()
    assert "WARNING acd.records records writer: server process" in said and "is gone" in said, said
    assert "committed what server process" in said, said


def _alive(pid: int) -> bool:
    """Running (an orphan that exited may stay a zombie until its new parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_when_the_server_vanishes_the_writer_commits_what_it_read_and_exits(tmp_path):
    store = ProcessRecordStore(tmp_path / "r.db")
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
    store._process.stdin.close()  # what a kill -9 of the server does to the pipe
    assert store._process.wait(10) == 0
    store._closed = True
    assert _rows(store.path, "SELECT call_id FROM calls") == [("c1",)]


def test_when_the_server_is_killed_its_answers_break_but_everything_read_is_committed(tmp_path):
    """A kill -9 of the server closes both pipes: the writer's answers (a flush's ack, its log lines)
    meet a broken pipe; it still commits every item it read, after that answer too, and exits 0."""
    path = tmp_path / "r.db"
    process = subprocess.Popen([sys.executable, "-m", "acd.store.records_process", str(path)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        process.stdout.close()  # nobody reads the answers any more
        def arrived(n: int) -> bytes:
            return encode(("put", "call_arrived", {"call_id": f"c{n}", "trunk": "t", "caller": "1", "dialled": "2",
                                                   "at": float(n), "node": None}))
        process.stdin.write(b"".join([arrived(1), arrived(2), encode(("flush", 1)), arrived(3), encode(("flush", 2)),
                                      arrived(4)]))
        process.stdin.close()
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert _rows(path, "SELECT call_id FROM calls ORDER BY call_id") == [("c1",), ("c2",), ("c3",), ("c4",)]


def test_a_dead_writer_is_reported_once_and_writes_do_not_raise(tmp_path, caplog):
    store = ProcessRecordStore(tmp_path / "r.db")
    store._process.kill()
    store._process.wait(10)
    with caplog.at_level(logging.CRITICAL, logger="acd.records"):
        for index in range(3):
            store.call_arrived(f"c{index}", trunk="t", caller="1", dialled="2", at=1.0)
        assert not store.flush(1)
    store.close(timeout=1)
    assert "records: the writer" in caplog.text


def test_commit_delays_and_log_lines_come_back(tmp_path, caplog):
    delays: list[float] = []
    store = ProcessRecordStore(tmp_path / "r.db", commit_delay_observer=delays.append)
    with caplog.at_level(logging.WARNING, logger="acd.records"):
        store.call_answered("nobody", at=1.0)  # an update for a call never recorded: the writer warns
        assert store.flush(5)
        store.close()
    assert "call_answered for unknown call 'nobody'" in caplog.text
    assert delays and all(0 <= delay < 5 for delay in delays)


def test_a_stalled_writer_never_blocks_the_server_and_gets_everything_once_it_resumes(tmp_path, caplog):
    """The writer stopped (SIGSTOP: a database that does not answer) while the server writes more
    than the pipe holds: every write returns at once, what the pipe cannot take waits in the server
    (a WARNING says so), and all of it is committed once the writer runs again."""
    scheduled = []
    store = ProcessRecordStore(tmp_path / "r.db", schedule=lambda delay, function: scheduled.append(function))
    calls = 15_000  # ~2 MB of frames: more than the pipe's 1 MiB
    try:
        os.kill(store._process.pid, signal.SIGSTOP)
        with caplog.at_level(logging.WARNING, logger="acd.records"):
            writing = threading.Thread(target=lambda: [
                store.call_arrived(f"c{index}", trunk="t", caller="1", dialled="2", at=float(index))
                for index in range(calls)])
            writing.start()
            writing.join(20)
            assert not writing.is_alive(), "a write blocked on the full pipe"
            assert store.unshipped_bytes > 0 and scheduled
            assert "the writer process is behind" in caplog.text
            os.kill(store._process.pid, signal.SIGCONT)
            deadline = time.monotonic() + 20
            while store.unshipped_bytes and time.monotonic() < deadline:
                scheduled.pop(0)() if scheduled else time.sleep(0.01)
            assert store.unshipped_bytes == 0
            assert "caught up" in caplog.text
        assert store.flush(20)
        assert _rows(store.path, "SELECT COUNT(*) FROM calls") == [(calls,)]
    finally:
        os.kill(store._process.pid, signal.SIGCONT)
        store.close()
