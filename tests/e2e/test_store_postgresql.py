"""`acd serve` with `store: postgresql://...` (issue 20's first slice), over real SIP and a real
PostgreSQL (a throwaway cluster: `pg_cluster` in tests/conftest.py, skipped when not installed).

One call into the demo IVR ends normally and its record is in PostgreSQL, read back by `acd report`;
a second is in the IVR when the server is killed -9: after the restart its record says interrupted,
as with SQLite (tests/e2e/test_restart.py), and the writer was the records child process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

from acd.store.pg_reader import PgReader

from .harness import RtpSink, free_port, rtp_base, run_sipp, start_server, start_sipp, wait_until


def _records(url: str, sql: str, *parameters) -> list[dict]:
    reader = PgReader(url)
    try:
        return list(reader.query(sql, parameters))
    finally:
        reader.close()


def _report(root, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acd.cli", "report", "--root", str(root), *arguments],
                          capture_output=True, text=True, timeout=30, cwd=root)


def test_serve_writes_records_to_postgresql_and_a_kill_9_leaves_the_open_call_interrupted(pg_cluster, tmp_path):
    url = pg_cluster.create_database(f"acd_{uuid.uuid4().hex[:12]}")
    root = tmp_path / "server"
    sip_port, rtp = free_port(), rtp_base()
    server = start_server(root, sip_port=sip_port, rtp_base=rtp, main_extra=f"store: {url}\n")
    restarted = caller = None
    try:
        assert "records: PostgreSQL store postgresql://" in server.log()
        sink = RtpSink()
        try:
            run_sipp(tmp_path / "short", server.target, scenario="short_call.xml", keys={"rtp_port": str(sink.port)},
                     timeout=20).assert_ok(server)
        finally:
            sink.close()
        done = wait_until(lambda: _records(url, "SELECT * FROM calls WHERE ended_at IS NOT NULL") or None, 10,
                          "the finished call's record in PostgreSQL", server=server)[0]
        assert (done["dialled"], done["outcome"]) == ("1000", "caller_hangup") and done["ivr_path"]
        story = _report(root, "--call", done["call_id"])
        assert story.returncode == 0, story.stderr
        assert "answered by the IVR" in story.stdout and "ended caller_hangup" in story.stdout

        caller = start_sipp(tmp_path / "waiting", server.target, "waits_for_bye.xml", service="1000", timeout=40)
        wait_until(lambda: _records(url, "SELECT call_id FROM calls WHERE ended_at IS NULL AND answered_at IS NOT NULL")
                   or None, 10, "the open call's record in PostgreSQL", server=server)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        server.stop()
        caller.kill()
        caller.wait(timeout=5)

        restarted = start_server(root, sip_port=sip_port, rtp_base=rtp, main_extra=f"store: {url}\n")
        restarted.wait_for_log(r"starting after a crash; 1 call\(s\) left open")
        wait_until(lambda: _records(url, "SELECT outcome, end_reason FROM calls WHERE outcome = 'interrupted'") == [
            {"outcome": "interrupted", "end_reason": "server stopped unexpectedly"}], 10,
            "the open call closed as interrupted", server=restarted)
        runs = _records(url, "SELECT started_at, stopped_at FROM server_runs ORDER BY id")
        assert len(runs) == 2 and runs[0]["stopped_at"] is None, "the killed run wrote no stop"
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
        server.stop()
        if restarted is not None:
            restarted.stop()
