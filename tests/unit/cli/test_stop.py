"""`acd stop`: signals the pid in data/acd.pid only when that process is alive, waits for it to
exit, and tells a clean stop (pid file removed) from a process that went away otherwise."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from acd.stop import process_alive, read_pid, remove_pid_file, stop_server

# A stand-in server: holds the data directory's lock as `acd serve` does; on SIGTERM it removes its pid file (as `acd serve` does after a drain) and exits.
FAKE_SERVER = """
import fcntl, os, signal, sys, time
path = sys.argv[1]
lock = open(os.path.join(os.path.dirname(path), "acd.lock"), "w")
fcntl.flock(lock, fcntl.LOCK_EX)
lock.write(f"{os.getpid()}\\n")
lock.flush()
def stop(number, frame):
    os.unlink(path)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(path, "w").write(f"{os.getpid()}\\n")
time.sleep(30)
"""


def start_fake_server(data_dir, script=FAKE_SERVER) -> subprocess.Popen:
    # argv mentions "acd" (the data directory), as `acd serve`'s command line does.
    process = subprocess.Popen([sys.executable, "-c", script, str(data_dir / "acd.pid")])
    for _ in range(200):
        if read_pid(data_dir) == process.pid:
            return process
        time.sleep(0.02)
    process.kill()
    raise AssertionError("the stand-in server did not write its pid file")


def test_no_pid_file_means_nothing_to_stop(tmp_path):
    err = io.StringIO()
    assert stop_server(tmp_path, timeout=1, out=io.StringIO(), err=err) == 2
    assert "no readable pid file" in err.getvalue()


def test_a_stale_pid_file_is_not_signalled(tmp_path):
    """The pid of a process that is gone: reported, nothing signalled."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "acd.pid").write_text(f"{gone.pid}\n")
    err = io.StringIO()
    assert stop_server(tmp_path, timeout=1, out=io.StringIO(), err=err) == 2
    assert "stale pid file" in err.getvalue()


def test_a_pid_file_without_a_lock_holder_is_stale_even_if_the_pid_runs(tmp_path):
    """The pid was reused by another process: no acd serve holds the lock, so nothing is signalled."""
    (tmp_path / "acd.pid").write_text(f"{os.getpid()}\n")
    err = io.StringIO()
    assert stop_server(tmp_path, timeout=1, out=io.StringIO(), err=err) == 2
    assert "stale pid file (no acd serve holds the data directory's lock)" in err.getvalue()


def test_a_running_server_is_sent_sigterm_and_waited_for(tmp_path):
    """SIGTERM, then the wait until it exited (a zombie not yet reaped counts as exited); its pid
    file is gone: a clean stop."""
    data_dir = tmp_path / "acd-data"
    data_dir.mkdir()
    process = start_fake_server(data_dir)
    try:
        out = io.StringIO()
        assert stop_server(data_dir, timeout=10, out=out, err=io.StringIO()) == 0
        assert f"asked the server (pid {process.pid}) to stop" in out.getvalue()
        assert f"the server (pid {process.pid}) stopped after" in out.getvalue()
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_server_still_running_after_the_timeout_is_reported(tmp_path):
    data_dir = tmp_path / "acd-data"
    data_dir.mkdir()
    stubborn = FAKE_SERVER.replace("    os.unlink(path)\n    sys.exit(0)\n", "    pass\n")
    process = start_fake_server(data_dir, stubborn)
    try:
        err = io.StringIO()
        assert stop_server(data_dir, timeout=0.3, out=io.StringIO(), err=err) == 1
        assert "still running after 0.3 s" in err.getvalue()
    finally:
        process.kill()
        process.wait()


def test_process_alive_and_pid_file_removal(tmp_path):
    assert process_alive(os.getpid())
    (tmp_path / "acd.pid").write_text("1\n")
    remove_pid_file(tmp_path)
    assert (tmp_path / "acd.pid").exists(), "another process's pid file is left alone"
    (tmp_path / "acd.pid").write_text(f"{os.getpid()}\n")
    remove_pid_file(tmp_path)
    assert not (tmp_path / "acd.pid").exists()
