"""One server per data directory: `acd serve` holds an exclusive lock on DATA_DIR/acd.lock for as
long as it runs, taken before it opens any record.

A second `acd serve` on the same data directory (started by mistake, or by a supervisor that lost
track of the first) finds the lock taken and exits without touching the records, the bindings or
the pid file of the live server. The kernel drops the lock when the process dies however it dies
(kill -9 included), so a stale lock cannot exist; `acd stop` and `acd reload` ask the lock, not
just the pid file, whether a server runs there, and so never signal a reused pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["DataDirBusy", "DataDirLock", "lock_file", "lock_holder"]


def lock_file(data_dir: Path) -> Path:
    """The lock `acd serve` holds while it runs on `data_dir`; it also names the holder's pid."""
    return Path(data_dir) / "acd.lock"


class DataDirBusy(RuntimeError):
    """Another process holds the data directory's lock; `pid` is the holder's, when it is known."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"another acd serve ({holder}) is running on data directory {data_dir}: stop it first "
                         f"(acd stop) or give this one another data_dir; nothing was changed")
        self.pid = pid


class DataDirLock:
    """The exclusive lock of one data directory, held from `acquire()` until `release()` or exit."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._fd: int | None = None

    def acquire(self) -> "DataDirLock":
        """Take the lock and write our pid into it; raise DataDirBusy when another process holds it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file(self.data_dir), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirBusy(self.data_dir, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a server starting)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_holder(data_dir: Path) -> int | None:
    """The pid of the `acd serve` running on `data_dir` (0: running, pid not written yet), or None
    when no process holds its lock."""
    try:
        fd = os.open(lock_file(data_dir), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
