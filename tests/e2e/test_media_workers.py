"""Media worker processes for real (`rtp: workers:`, acd.calls.remote_media): the server's RTP runs in
a child process; what happens when that child or the server itself is killed."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from acd.media.g711 import rms_pcm16, ulaw_decode

from .harness import RtpSink, free_port, rtp_base, run_sipp, sipp_available, start_server, start_sipp, wait_until
from .test_flood import server_pids

pytestmark = pytest.mark.skipif(not sipp_available(), reason="sipp not installed")


def children_running(pid: int, module: str) -> list[int]:
    """The server's children started as `python -m module`."""
    found = []
    for child in server_pids(pid)[1:]:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if module.encode() in cmdline.read().split(b"\0"):
                    found.append(child)
        except OSError:
            continue
    return found


def media_workers(pid: int) -> list[int]:
    """The server's media worker processes."""
    return children_running(pid, "acd.calls.media_worker")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_worker_ends_its_calls_and_a_new_one_carries_the_next(tmp_path):
    """kill -9 of the media worker during a call: the caller gets BYE at once (not silence until a
    timeout), the log says why, a new worker starts, and the next call hears the welcome prompt."""
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), rtp_workers=1)
    caller = None
    try:
        [worker] = wait_until(lambda: media_workers(server.process.pid) or None, 10, "a media worker")
        caller = start_sipp(tmp_path / "waiting", server.target, "waits_for_bye.xml", service="1000", timeout=40)
        server.wait_for_log(r"answered dialled=1000")
        time.sleep(0.5)
        killed_at = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        assert caller.wait(timeout=15) == 0, caller.stderr.read().decode(errors="replace")[-2000:]
        assert time.monotonic() - killed_at < 5, "the caller waited for its BYE"
        server.wait_for_log(r"media worker 0 \(pid \d+\) exited .*1 media leg\(s\) lost")
        server.wait_for_log(r"ended reason='media lost: media worker exited'")
        [replacement] = wait_until(lambda: [p for p in media_workers(server.process.pid) if p != worker] or None, 10,
                                   "a new media worker")
        sink = RtpSink()
        result = run_sipp(tmp_path / "next", server.target, scenario="short_call.xml",
                          keys={"rtp_port": str(sink.port)}, timeout=20)
        sink.close()
        result.assert_ok(server)
        assert len(sink.packets) >= 50
        assert rms_pcm16(ulaw_decode(b"".join(p[12:] for p in sink.packets[:50]))) > 500, "the welcome, not silence"
        assert "Traceback" not in server.log()
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
            caller.wait(timeout=5)
        server.stop()


def test_server_killed_takes_its_media_worker_with_it(tmp_path):
    """kill -9 of the server: the worker sees its command pipe close and exits (no orphan holding
    RTP ports for the restarted server); so does the records writer, once it has committed the
    records it was sent: the call answered just before the kill is in the database."""
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), rtp_workers=1)
    caller = None
    try:
        [worker] = wait_until(lambda: media_workers(server.process.pid) or None, 10, "a media worker")
        [writer] = children_running(server.process.pid, "acd.store.records_process")
        caller = start_sipp(tmp_path / "waiting", server.target, "waits_for_bye.xml", service="1000", timeout=40)
        server.wait_for_log(r"answered dialled=1000")
        time.sleep(0.1)
        server.process.kill()
        server.process.wait(timeout=5)
        wait_until(lambda: not alive(worker), 5, "the media worker exited")
        wait_until(lambda: not alive(writer), 5, "the records writer exited")
        reader = sqlite3.connect(server.root / "data" / "records.db")
        try:
            rows = reader.execute("SELECT dialled, answered_at IS NOT NULL, ended_at FROM calls").fetchall()
        finally:
            reader.close()
        assert rows == [("1000", 1, None)], "the answered call is recorded, still open (the next start closes it)"
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
            caller.wait(timeout=5)
        server.stop()
