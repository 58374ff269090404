"""Media worker processes for real (`rtp: workers:`, acd.calls.remote_media): the server's RTP runs in
a child process; what happens when that child or the server itself is killed."""

from __future__ import annotations

import os
import signal
import time

import pytest

from acd.media.g711 import rms_pcm16, ulaw_decode

from .harness import RtpSink, free_port, rtp_base, run_sipp, sipp_available, start_server, start_sipp, wait_until
from .test_flood import server_pids

pytestmark = pytest.mark.skipif(not sipp_available(), reason="sipp not installed")


def media_workers(pid: int) -> list[int]:
    """The server's children: its media worker processes."""
    return server_pids(pid)[1:]


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
    RTP ports for the restarted server)."""
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), rtp_workers=1)
    try:
        [worker] = wait_until(lambda: media_workers(server.process.pid) or None, 10, "a media worker")
        server.process.kill()
        server.process.wait(timeout=5)
        wait_until(lambda: not alive(worker), 5, "the media worker exited")
    finally:
        server.stop()
