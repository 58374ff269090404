"""The PJSUA2 softphone tool (scripts/softphone.py) against a real SIP UAS: SIPp's built-in `uas`.

This checks the test tool itself, before it is aimed at the server: it places a call, sees
180 and 200, hangs up locally after 1 s, exits 0 and reports it all as JSON.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .softphone_driver import run_softphone

SIPP = shutil.which("sipp")

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp is not installed (Debian package sip-tester; see scripts/setup)")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


@pytest.fixture
def sipp_uas(tmp_path):
    """SIPp's built-in UAS on a free 127.0.0.1 port, for one call; killed by pid in teardown."""
    port, media_port = free_udp_port(), free_udp_port()
    stderr = open(tmp_path / "sipp.stderr", "wb")
    proc = subprocess.Popen(
        [SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", str(media_port),
         "-m", "1", "-timeout", "20s", "-nostdin", "-trace_err"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 5  # wait until SIPp holds its port
        while not udp_port_taken(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sipp did not start on 127.0.0.1:{port} (exit {proc.poll()}): "
                            f"{(tmp_path / 'sipp.stderr').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield port, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        stderr.close()


def test_softphone_calls_sipp_uas_and_hangs_up_locally(sipp_uas, tmp_path):
    port, sipp = sipp_uas
    record = tmp_path / "heard.wav"
    result = run_softphone(
        "call", f"sip:service@127.0.0.1:{port}", "--from-user", "5551234",
        "--hangup-after", "1", "--timeout", "8", "--record", str(record), timeout=12)
    report = {k: v for k, v in result.items() if k != "stderr"}

    assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
    assert result["answered"] is True, report
    assert result["final_status"] == 200, report
    assert 200 in result["status_codes"] and 180 in result["status_codes"], report
    assert result["hung_up_by"] == "local", report
    assert 0.9 <= result["connected_seconds"] < 3, report
    assert result["timed_out"] is False and result["error"] is None, report
    # SIPp's uas sends no RTP: the recording exists, is a valid WAV, and lasts about the call.
    fmt = result["record_format"]
    assert fmt["sample_width"] == 2 and fmt["channels"] == 1 and fmt["sample_rate"] == 8000, fmt
    assert record.exists() and 0.5 < fmt["seconds"] < 3, fmt

    # SIPp saw one complete call (INVITE/180/200/ACK/BYE/200) and exits 0 on its own.
    try:
        assert sipp.wait(8) == 0, (tmp_path / "sipp.stderr").read_text(errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail("sipp did not finish its one call")
