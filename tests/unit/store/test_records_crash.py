"""Committed records survive the process dying: a SIGKILLed writer, and a writer thread killed mid-run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from acd.store.records import RecordStore

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent("""
    import sys, time
    from acd.store.records import RecordStore

    store = RecordStore(sys.argv[1])
    for index in range(50):
        call = f"c{index}"
        store.call_arrived(call, trunk="t", caller="1", dialled="2", at=100.0 + index)
        store.call_queued(call, queue="sales", at=110.0 + index)
        store.queue_log(at=110.0 + index, call_id=call, queue="sales", agent="", event="ENTERQUEUE")
        store.call_connected(call, agent="alice", at=120.0 + index)
    assert store.flush(10)
    print("flushed", flush=True)
    # Mid-call: more events keep coming until the parent kills us.
    index = 50
    while True:
        store.call_arrived(f"c{index}", trunk="t", caller="1", dialled="2", at=100.0 + index)
        index += 1
        time.sleep(0.0005)
""")


def test_sigkill_mid_call_keeps_every_flushed_event(tmp_path):
    """SIGKILL after the first 50 calls were committed: all 50 rows are intact on reopening,
    the file passes integrity_check, and the store opens it again to close the calls as interrupted."""
    path = tmp_path / "records.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "flushed"
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reader = sqlite3.connect(path)
    assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connected = reader.execute("SELECT call_id, queue, agent, wait_seconds FROM calls "
                               "WHERE agent IS NOT NULL ORDER BY arrived_at").fetchall()
    assert connected == [(f"c{i}", "sales", "alice", 10.0) for i in range(50)]
    assert reader.execute("SELECT COUNT(*) FROM queue_log").fetchone()[0] == 50
    started = reader.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    reader.close()

    store = RecordStore(path)  # the restart
    store.close_interrupted(at=1000.0)
    store.close()
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT COUNT(*) FROM calls WHERE outcome = 'interrupted'").fetchone()[0] == started
    reader.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_writer_thread_dying_abruptly_keeps_what_was_committed(tmp_path, monkeypatch):
    """A BaseException (not a write error) kills the writer thread mid-stream: the events it had
    committed are on disk, flush reports the loss instead of hanging, and a new store carries on."""
    path = tmp_path / "records.db"
    store = RecordStore(path)
    store.call_arrived("c1", trunk="t", caller="1", dialled="2", at=1.0)
    store.call_answered("c1", at=2.0)
    assert store.flush(5)

    class Crash(BaseException):
        pass

    def crash(self, **_):
        raise Crash("simulated crash in the writer")

    monkeypatch.setattr(RecordStore, "_write_call_queued", crash)
    store.call_queued("c1", queue="sales", at=3.0)
    store.call_connected("c1", agent="alice", at=4.0)  # queued behind the crash: lost
    store._thread.join(5)
    assert not store._thread.is_alive()
    assert store.flush(0.2) is False
    monkeypatch.undo()

    reader = sqlite3.connect(path)
    assert reader.execute("SELECT answered_at, queue, agent FROM calls").fetchall() == [(2.0, None, None)]
    reader.close()
    again = RecordStore(path)
    again.call_ended("c1", outcome="caller_hangup", reason="r", at=5.0)
    again.close()
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT outcome FROM calls").fetchall() == [("caller_hangup",)]
    reader.close()
