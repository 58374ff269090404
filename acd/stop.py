"""`acd stop`: ask the running server to drain and exit (SIGTERM to the pid in data/acd.pid), then
wait for it to go.

The server's side is `acd.calls.shutdown.GracefulShutdown`; it removes the pid file on a clean exit,
which is how this command tells a drained stop from a process that died otherwise. Linux and other
POSIX systems; a process that has exited but not been reaped by its parent (a zombie) counts as gone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable, TextIO

from .instance import lock_holder
from .reload import pid_file

__all__ = ["process_alive", "read_pid", "remove_pid_file", "stop_server", "POLL_SECONDS"]

POLL_SECONDS = 0.1


def read_pid(data_dir: Path) -> int | None:
    """The pid `acd serve` wrote in `data_dir`, or None (no file, unreadable)."""
    try:
        return int(pid_file(data_dir).read_text().strip())
    except (OSError, ValueError):
        return None


def remove_pid_file(data_dir: Path, pid: int | None = None) -> None:
    """Remove the pid file if it still names `pid` (this process by default)."""
    if read_pid(data_dir) == (pid if pid is not None else os.getpid()):
        try:
            pid_file(data_dir).unlink()
        except FileNotFoundError:
            pass


def process_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie, exited but not reaped, is not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(pid, 0)
    return stat.rpartition(")")[2].split()[0] != "Z"


def _is_acd(pid: int) -> bool:
    """False when /proc says `pid` is some other program (a stale pid file, the pid reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True
    return b"acd" in command


def stop_server(data_dir: Path, *, timeout: float, out: TextIO, err: TextIO,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """SIGTERM the server and wait up to `timeout` seconds for it to exit. Exit status: 0 stopped
    cleanly, 1 still running (or it left its pid file), 2 no server to stop."""
    holder = lock_holder(data_dir)
    pid = holder or read_pid(data_dir)
    path = pid_file(data_dir)
    if holder is None:
        why = "no readable pid file at" if pid is None else "stale pid file (no acd serve holds the data directory's lock):"
        print(f"no server to stop: {why} {path}", file=err)
        return 2
    if pid is None:
        print(f"no server to stop: no readable pid file at {path}", file=err)
        return 2
    if not process_alive(pid) or not _is_acd(pid):
        print(f"no server to stop: process {pid} from {path} is not running (stale pid file)", file=err)
        return 2
    os.kill(pid, signal.SIGTERM)
    print(f"asked the server (pid {pid}) to stop: new calls are refused, calls in progress are drained; "
          f"waiting up to {timeout:g} s", file=out, flush=True)
    started = clock()
    while process_alive(pid):
        if clock() - started >= timeout:
            print(f"the server (pid {pid}) is still running after {timeout:g} s; `acd stop` again (or SIGTERM) "
                  "ends its calls at once", file=err)
            return 1
        sleep(POLL_SECONDS)
    seconds = clock() - started
    if read_pid(data_dir) == pid:
        print(f"the server (pid {pid}) exited after {seconds:.1f} s but left its pid file: it did not stop "
              "cleanly (see its log)", file=err)
        return 1
    print(f"the server (pid {pid}) stopped after {seconds:.1f} s", file=out)
    return 0
