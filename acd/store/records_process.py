"""The records writer in a process of its own: the database work off the SIP/ACD process (issue 16).

In `acd serve` the writer thread of `RecordStore` took 17 % of a core at 550 calls/s and competed
with the reactor for the GIL (py-spy: the reactor thread waited for the GIL after a third of its
sends). `ProcessRecordStore` keeps RecordStore's methods; each write is marshalled into a buffer that
goes down a pipe at most `SHIP_DELAY_SECONDS` later (one write for many items), to
`python -m acd.store.records_process`, which runs the same RecordStore (group commit, one
transaction per batch; PgRecordStore when the location is a postgresql:// URL) and answers flushes, the start-up question about the previous run, commit
delays and its log lines on its stdout.

Durability: an item is in the writer process within SHIP_DELAY_SECONDS of being written and then
committed as before (RecordStore's batch, gathered for WRITER_GATHER_SECONDS). A kill -9 of the server loses at most what it had not
shipped yet; the writer sees the pipe close, commits everything it read and exits. A call's first
item (`call_arrived`, SHIP_AT_ONCE) ships at once with whatever waits, before the caller hears any
answer: a server killed later leaves the call's row for the survivors or the next start to close
as "interrupted", never a call without a record (a delayed ship of it lost 3 records in a cluster
e2e run, tests/e2e/test_cluster_e2e.py). Once the server is gone, the writer logs on stderr. The writer
ignores SIGINT and SIGTERM (a Ctrl-C or a stop signal to the process group must not cut it short
before the server's last records arrive); it exits when its input closes.

Wire format: frames of a 4-byte big-endian length and a `marshal` tuple:
    to the writer:  ("put", kind, arguments) | ("flush", token) | ("start_run", at, token) | ("close",)
                    (the last before a clean close: input ending without it means the server died)
    from it:        ("ack", token) | ("run", token, pickled PreviousRun) | ("delays", [s, ...])
                    | ("log", levelno, text)
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import logging
import marshal
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

from ..log_output import LINE_FORMAT
from .location import describe, is_postgresql
from .presence import PreviousRun
from .records import RecordStore, check_synchronous

__all__ = ["ProcessRecordStore", "encode", "read_frame", "main"]

log = logging.getLogger("acd.records")

SHIP_DELAY_SECONDS = 0.02  # how long a write may wait in the server before going down the pipe
SHIP_BYTES = 64 * 1024  # or go at once when this much is waiting
SHIP_AT_ONCE = frozenset({"call_arrived"})  # or go at once with one of these (see Durability above)
# The writer gathers items this long before each commit (RecordStore.gather_seconds): the server ships
# at every call's arrival, which would otherwise be a transaction (and a sync to disk) a call.
WRITER_GATHER_SECONDS = 0.002
PIPE_BYTES = 1024 * 1024  # the pipe's buffer (Linux F_SETPIPE_SZ): ~10,000 items of slack
# The pipe is written without blocking: when the writer falls behind (a slow database) and the pipe
# is full, what did not go waits in the server and goes again this much later, or with the next ship.
RETRY_SHIP_SECONDS = 0.01
MAX_UNSHIPPED_BYTES = 64 * 1024 * 1024  # past this, new items are dropped (counted, logged) until it drains
DROPPED_REPORT_SECONDS = 10.0
DELAY_REPORT_SECONDS = 0.25  # commit delays are sent back at most this often
_F_SETPIPE_SZ = 1031
_LENGTH = struct.Struct("!I")


def encode(message: tuple) -> bytes:
    """One frame: length, then the marshalled tuple."""
    body = marshal.dumps(message)
    return _LENGTH.pack(len(body)) + body


def read_frame(stream: BinaryIO) -> tuple | None:
    """The next frame from a blocking binary stream; None at its end (a cut frame counts as the end)."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    body = stream.read(length)
    if len(body) < length:
        return None
    return marshal.loads(body)


class ProcessRecordStore(RecordStore):
    """RecordStore whose writer is a child process; `schedule(delay, function)` (a reactor's
    callLater) ships the buffered writes. Without `schedule`, every write ships at once."""

    def __init__(self, path: str | Path, *, schedule: Callable[[float, Callable[[], None]], Any] | None = None,
                 commit_delay_observer: Callable[[float], None] | None = None, synchronous: str = "FULL",
                 start_timeout: float = 10.0, node: str | None = None) -> None:
        check_synchronous(synchronous)
        self.node = node  # written with each call by RecordStore's methods, which run on this side
        self.location: str | Path = str(path) if is_postgresql(path) else Path(path)
        self.path = None if is_postgresql(path) else Path(path)
        self._schedule = schedule
        self._observe_commit_delay = commit_delay_observer
        self._closed = False
        self._crashed = False
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._ship_pending = False
        self._unsent: collections.deque[bytes] = collections.deque()  # shipped, not yet in the pipe
        self._unsent_offset = 0  # bytes of the first one already written
        self._unsent_bytes = 0
        self._behind_since: float | None = None
        self._dropped = 0
        self._dropped_reported_at = 0.0
        self._lock = threading.Lock()  # flush() and close() may come from another thread
        self._answers: dict[int, list] = {}
        self._next_token = 0
        self._lost_logged = False
        self._process = subprocess.Popen(
            [sys.executable, "-m", "acd.store.records_process", str(self.location), "--synchronous", synchronous]
            + ([] if node is None else ["--node", node]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self._fd = self._process.stdin.fileno()
        try:
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # not Linux, or above /proc/sys/fs/pipe-max-size: the default 64 KiB
            pass
        os.set_blocking(self._fd, False)  # written with os.write only (never the file object's buffer)
        self._reader = threading.Thread(target=self._read_answers, name="acd-records-answers", daemon=True)
        self._reader.start()
        if not self._ask(("flush",), start_timeout):
            self._process.kill()
            raise RuntimeError(f"records: the writer process for {describe(self.location)} did not start "
                               f"(exit status {self._process.poll()}); see the lines above")

    # -- the server side ---------------------------------------------------------------------

    def _put(self, kind: str, **arguments: Any) -> None:
        if self._closed:
            log.warning("records: store closed, dropped %s %r", kind, arguments)
            return
        frame = encode(("put", kind, arguments))
        with self._lock:
            if self._unsent_bytes > MAX_UNSHIPPED_BYTES:
                self._drop_locked(kind)
                return
            self._buffer.append(frame)
            self._buffered += len(frame)
            if self._schedule is None or kind in SHIP_AT_ONCE or self._buffered >= SHIP_BYTES:
                self._ship_locked()
            elif not self._ship_pending:
                self._ship_pending = True
                self._schedule(SHIP_DELAY_SECONDS, self._ship)

    def _ship(self) -> None:
        with self._lock:
            self._ship_locked()

    def _ship_locked(self) -> bool:
        """Move the buffer to the pipe, without blocking; True when nothing is left unsent. With a
        reactor, what a full pipe did not take goes again RETRY_SHIP_SECONDS later; without one
        (tools, tests), this waits for the pipe."""
        self._ship_pending = False
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            self._buffered = 0
            self._unsent.append(data)
            self._unsent_bytes += len(data)
        if self._write_unsent_locked():
            return True
        if self._schedule is None:
            while not self._write_unsent_locked():
                select.select([], [self._fd], [], 1.0)
            return True
        self._ship_pending = True
        self._schedule(RETRY_SHIP_SECONDS, self._ship)
        return False

    def _write_unsent_locked(self) -> bool:
        """Write what waits until the pipe is full; True when all of it went."""
        unsent = self._unsent
        while unsent:
            chunk = unsent[0]
            try:
                written = os.write(self._fd, memoryview(chunk)[self._unsent_offset:])
            except BlockingIOError:
                if self._behind_since is None:
                    self._behind_since = time.monotonic()
                    log.warning("records: the writer process is behind (its pipe is full); %d KiB wait in the "
                                "server and go as it catches up (is the database slow? see its commit delays)",
                                self._unsent_bytes // 1024)
                return False
            except (OSError, ValueError):
                self._writer_gone_locked()
                return True
            self._unsent_offset += written
            self._unsent_bytes -= written
            if self._unsent_offset == len(chunk):
                unsent.popleft()
                self._unsent_offset = 0
        if self._behind_since is not None:
            log.warning("records: the writer process caught up after %.1f s%s", time.monotonic() - self._behind_since,
                        f"; {self._dropped} item(s) were dropped meanwhile" if self._dropped else "")
            self._behind_since = None
            self._dropped = 0
        return True

    def _writer_gone_locked(self) -> None:
        self._crashed = True
        count = sum(1 for _ in self._unsent)
        self._unsent.clear()
        self._unsent_offset = self._unsent_bytes = 0
        if not self._lost_logged:
            self._lost_logged = True
            log.critical("records: the writer process is gone (exit status %s); %d shipment(s) and every later "
                         "record are lost until the server restarts", self._process.poll(), count)

    def _drop_locked(self, kind: str) -> None:
        self._dropped += 1
        now = time.monotonic()
        if now - self._dropped_reported_at >= DROPPED_REPORT_SECONDS:
            self._dropped_reported_at = now
            log.error("records: the writer process is %d MiB behind; %s and later items are dropped (%d so far) "
                      "until it catches up: check the database", self._unsent_bytes // (1024 * 1024), kind,
                      self._dropped)

    def _ask(self, request: tuple, timeout: float | None) -> list | None:
        """Send `request` + a token and wait for its answer (None: timeout or writer gone)."""
        done = threading.Event()
        answer: list = [done]
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            token = self._next_token = self._next_token + 1
            self._answers[token] = answer
            self._buffer.append(encode(request + (token,)))
            self._ship_pending = False
            self._unsent.append(b"".join(self._buffer))
            self._unsent_bytes += len(self._unsent[-1])
            self._buffer.clear()
            self._buffered = 0
            sent = self._write_unsent_locked()
        while not sent:  # the pipe is full: wait for room here, not holding the lock the reactor takes
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            select.select([], [self._fd], [], min(1.0, remaining) if remaining is not None else 1.0)
            with self._lock:
                sent = self._write_unsent_locked()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not done.wait(remaining):
            self._answers.pop(token, None)
            return None
        return answer[1:] if len(answer) > 1 else None

    def _read_answers(self) -> None:
        stream = self._process.stdout
        while True:
            message = read_frame(stream)
            if message is None:
                break
            what = message[0]
            if what == "ack" or what == "run":
                answer = self._answers.pop(message[1], None)
                if answer is not None:
                    answer.append(True if what == "ack" else pickle.loads(message[2]))
                    answer[0].set()
            elif what == "delays":
                if self._observe_commit_delay is not None:
                    for seconds in message[1]:
                        self._observe_commit_delay(seconds)
            elif what == "log":
                log.log(message[1], "%s", message[2])
        for answer in list(self._answers.values()):  # the writer is gone: nobody waits for ever
            answer[0].set()
        self._answers.clear()
        if not self._closed:
            self._crashed = True
            log.critical("records: the writer process exited (status %s); records are lost until the server "
                         "restarts", self._process.wait())

    def start_run(self, *, at: float, timeout: float = 10.0) -> PreviousRun:
        """See RecordStore.start_run."""
        answer = self._ask(("start_run", at), timeout)
        if not answer or not isinstance(answer[0], PreviousRun):
            raise RuntimeError(f"records: no answer from the writer about the previous run within {timeout}s")
        return answer[0]

    @property
    def backlog(self) -> int:
        """Items buffered here and not yet shipped to the writer."""
        return len(self._buffer)

    @property
    def unshipped_bytes(self) -> int:
        """Bytes shipped but waiting in the server for room in the full pipe (the writer is behind)."""
        return self._unsent_bytes

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything written before this call is committed; False on timeout or when the
        writer is gone."""
        if self._crashed or self._process.poll() is not None:
            return False
        return self._ask(("flush",), timeout) is not None

    def close(self, timeout: float | None = 5.0) -> None:
        """Ship what is left, let the writer commit it and exit. Later writes are logged and dropped."""
        if self._closed:
            return
        with self._lock:
            self._buffer.append(encode(("close",)))
            self._closed = True
            self._unsent.append(b"".join(self._buffer))
            self._unsent_bytes += len(self._unsent[-1])
            self._buffer.clear()
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._write_unsent_locked():  # stopping: waiting for the writer is the point now
                if deadline is not None and time.monotonic() >= deadline:
                    break
                select.select([], [self._fd], [], 0.1)
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("records: writer process still busy after %ss; stopped, what it had not committed is lost",
                      timeout)
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout)


# -- the writer process --------------------------------------------------------------------------

class _Replies:
    """The writer's stdout: frames written whole from any thread."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._delays: list[float] = []
        self._delays_sent_at = 0.0
        self.server_gone = False

    def send(self, message: tuple) -> None:
        """Send one answer. Once the server is gone (kill -9: the pipe is broken) answers are dropped:
        the writer must go on to commit what it read, not die on its first answer."""
        with self._lock:
            if self.server_gone:
                return
            try:
                self._stream.write(encode(message))
                self._stream.flush()
            except (OSError, ValueError):
                self.server_gone = True

    def commit_delay(self, seconds: float) -> None:
        """Note one commit's delay; send the delays noted at most every DELAY_REPORT_SECONDS."""
        self._delays.append(seconds)
        if time.monotonic() - self._delays_sent_at >= DELAY_REPORT_SECONDS:
            self.send_delays()

    def send_delays(self) -> None:
        """Send the delays noted and not sent yet."""
        self._delays_sent_at = time.monotonic()
        delays, self._delays = self._delays, []
        if delays:
            self.send(("delays", delays))


_ALONE_FORMAT = logging.Formatter(LINE_FORMAT)  # once the server is gone: its log's format, on stderr


class _LogToPipe(logging.Handler):
    def __init__(self, replies: _Replies) -> None:
        super().__init__()
        self.replies = replies

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.replies.server_gone:  # killed: stderr is the server's, often its log file
                sys.__stderr__.write(_ALONE_FORMAT.format(record) + "\n")
                sys.__stderr__.flush()
            else:
                self.replies.send(("log", record.levelno, self.format(record)))
        except Exception:  # nowhere left to say it
            pass


def main(argv: list[str] | None = None) -> int:
    """Run the writer: frames on stdin, answers on stdout, until stdin closes."""
    parser = argparse.ArgumentParser(description="The records writer of acd serve (started by it).")
    parser.add_argument("location", help="the SQLite file, or a postgresql:// URL")
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--node", default=None, help="the cluster node id the server runs as")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = _Replies(os.fdopen(os.dup(sys.stdout.fileno()), "wb"))
    sys.stdout = sys.stderr  # nothing else may write into the frames
    root = logging.getLogger()
    root.handlers[:] = [_LogToPipe(replies)]
    root.setLevel(logging.INFO)
    if is_postgresql(args.location):
        from .records_pg import PgRecordStore  # psycopg only where PostgreSQL is configured

        store: RecordStore = PgRecordStore(args.location, commit_delay_observer=replies.commit_delay,
                                           synchronous=args.synchronous, node=args.node)
    else:
        store = RecordStore(args.location, commit_delay_observer=replies.commit_delay, synchronous=args.synchronous,
                            node=args.node)
    store.gather_seconds = WRITER_GATHER_SECONDS
    incoming = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    put = store._put  # noqa: SLF001 - this process is the store's other half
    server = os.getppid()
    items = 0
    closed = False  # the server said goodbye before its end of the pipe closed
    while True:
        message = read_frame(incoming)
        if message is None:
            break
        what = message[0]
        if what == "put":
            items += 1
            put(message[1], **message[2])
        elif what == "flush":
            store.flush(None)
            replies.send(("ack", message[1]))
        elif what == "start_run":
            previous = store.start_run(at=message[1])
            replies.send(("run", message[2], pickle.dumps(previous)))
        elif what == "close":
            closed = True
        else:
            log.error("records writer: unknown request %r ignored", what)
    if not closed:  # the server died without closing the store (kill -9, a crash)
        replies.server_gone = True
        log.warning("records writer: server process %d is gone; committing the %d item(s) it had sent, the last "
                    "at the end of its input", server, items)
    store.close(timeout=None)
    if replies.server_gone:
        log.warning("records writer: committed what server process %d had sent; exiting", server)
    replies.send_delays()
    return 0


if __name__ == "__main__":
    sys.exit(main())
