"""How `acd serve` writes its log: one line per event, at a small cost per line on the reactor thread.

The line format is read by conf/fail2ban/filter.d/acd-sip.conf: keep the two in step.

Why not logging's StreamHandler: at 700 calls/s the demo IVR logs 5-9 INFO lines a call, and a line
cost 17 µs of the reactor's CPU (scripts/bench/sip_path.py): a stack walk to find the caller, the
thread and process names, `time.localtime` + `strftime` for every line, and a write and flush
system call each. Here:
- the caller's file and line, thread and process are not looked up (the format shows none of them;
  the "Optimization" section of Python's logging HOWTO names these switches);
- the time text is made once a second (`LineFormatter`), the milliseconds appended per line;
- lines are appended to a buffer, and a writer thread writes the buffer in one system call, every
  FLUSH_INTERVAL_SECONDS, and at once (woken) for a WARNING or worse or when MAX_BUFFERED_LINES wait.
  The reactor never waits on the disk or the terminal for a log line.
What a crash (SIGKILL, power loss) can lose: the INFO lines of the last FLUSH_INTERVAL_SECONDS. A
normal exit writes everything (`logging.shutdown` flushes every handler).

Even so, a line cost 12-23 µs in a call's context (logging's walk: LogRecord, filters, handler
chain, formatter) and the demo IVR writes 9 a call: 18 % of the reactor's CPU at INFO against
WARNING (scripts/bench/sip_path.py). `FastInfoLogger.info` writes the same line straight into the
handler's buffer whenever that handler is the only place the record could go, which is what
`configure` sets up; with any other handler or filter on the way (tests, a library), or keyword
arguments, it goes through logging as usual.
"""

from __future__ import annotations

import collections.abc
import logging
import logging.handlers
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

__all__ = ["LINE_FORMAT", "LineFormatter", "BatchedLineHandler", "FastInfoLogger", "configure"]

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Lines appear in the log at most this late (a tail -f, fail2ban, a test waiting for a line).
FLUSH_INTERVAL_SECONDS = 0.1
# More waiting lines than this wake the writer at once (bounds the buffer at any log rate).
MAX_BUFFERED_LINES = 512


class LineFormatter(logging.Formatter):
    """LINE_FORMAT with logging's default time text (`2026-03-01 10:00:00,123`, local time), the part
    up to the second made once a second instead of once a line."""

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging API
        """The record's time as logging.Formatter writes it without a datefmt."""
        return self.time_text(record.created, record.msecs)

    def time_text(self, created: float, msecs: float) -> str:
        """`created` (time.time()) and its milliseconds (as LogRecord computes them) as text."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(created)))
            self._second = cached  # one tuple: a thread reading it sees the old pair or the new one
        return self.default_msec_format % (cached[1], msecs)

    def format(self, record: logging.LogRecord) -> str:
        """LINE_FORMAT filled in directly (what logging.Formatter.format does through its style
        object), with the traceback and stack lines appended as logging appends them."""
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        line = f"{record.asctime} {record.levelname} {record.name} {record.message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class BatchedLineHandler(logging.Handler):
    """Formats each record on the logging thread and leaves the writing to a writer thread.

    `targets` are the StreamHandlers (stderr, a WatchedFileHandler for `--log-file`) whose streams
    receive the text; they are only used for their stream (a WatchedFileHandler reopens its file
    after a rotation, before each write)."""

    def __init__(self, targets: list[logging.StreamHandler], level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.targets = targets
        self._lines: list[str] = []
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="acd-log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the record's line (the caller holds `self.lock`); wake the writer when it must go now."""
        try:
            line = self.format(record)
        except Exception:  # a bad format string or argument: logging's own report, on stderr
            self.handleError(record)
            return
        lines = self._lines
        lines.append(line + "\n")
        if record.levelno >= logging.WARNING or len(lines) >= MAX_BUFFERED_LINES:
            self._wake.set()

    def flush(self) -> None:
        """Write every buffered line now (in the order logged). Locks are taken in one order, the
        handler's then the writer's: `logging.shutdown` calls this holding the handler's lock, and the
        writer thread taking them the other way round hung the exit (seen: `acd serve` refusing to start
        did not exit)."""
        self.acquire()
        try:
            lines, self._lines = self._lines, []
            self._write_lock.acquire()  # the next flush waits for this write: lines stay in order
        finally:
            self.release()
        try:
            if lines:
                self._write("".join(lines))
        finally:
            self._write_lock.release()

    def _write(self, text: str) -> None:
        for target in self.targets:
            try:
                if isinstance(target, logging.handlers.WatchedFileHandler):
                    target.reopenIfNeeded()
                target.stream.write(text)
                target.stream.flush()
            except Exception as error:  # a full disk, a closed terminal: say so where we still can
                if target.stream is not sys.stderr:
                    sys.stderr.write(f"acd: could not write the log to {target!r}: {error}\n")

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL_SECONDS)
            self._wake.clear()
            self.flush()

    def only_destination_of(self, logger: logging.Logger) -> bool:
        """True when an INFO record of `logger` would reach this handler and nothing else, formatted by
        a LineFormatter, with no filter on the way (what `logging.Logger.handle` would do)."""
        if (logger.disabled or logger.filters or self.filters or self.level > logging.INFO
                or type(self.formatter) is not LineFormatter
                or logging.getLogRecordFactory() is not logging.LogRecord):
            return False
        node = logger
        while node.parent is not None:
            if node.handlers or not node.propagate:
                return False
            node = node.parent
        return node.handlers == [self]

    def write_info(self, name: str, msg: object, args: tuple) -> bool:
        """Buffer the INFO line a LogRecord of `name` would give; False (nothing written) when `msg %
        args` fails, for logging to report it."""
        created = time.time()
        if args and len(args) == 1 and isinstance(args[0], collections.abc.Mapping) and args[0]:
            args = args[0]  # as LogRecord takes a lone mapping
        try:
            message = str(msg) % args if args else str(msg)
        except Exception:
            return False
        msecs = int((created - int(created)) * 1000) + 0.0
        line = f"{self.formatter.time_text(created, msecs)} {logging.getLevelName(logging.INFO)} {name} {message}\n"
        self.acquire()
        try:
            lines = self._lines
            lines.append(line)
        finally:
            self.release()
        if len(lines) >= MAX_BUFFERED_LINES:
            self._wake.set()
        return True

    def close(self) -> None:
        """Write what is buffered, stop the writer, close the targets."""
        global _sole_handler
        if _sole_handler is self:
            _sole_handler = None
        self._closed = True
        self._wake.set()
        self.flush()
        for target in self.targets:
            target.close()
        super().close()


# The handler `configure` installed (None before, and once it is closed).
_sole_handler: BatchedLineHandler | None = None


class FastInfoLogger(logging.Logger):
    """A Logger whose `info` skips logging's machinery when `configure`'s handler is the only place the
    line can go (module docstring); every other case is logging.Logger.info."""

    def info(self, msg: object, *args: object, **kwargs: object) -> None:
        """Log `msg % args` at INFO."""
        handler = _sole_handler
        if (handler is not None and not kwargs and self.isEnabledFor(logging.INFO)
                and handler.only_destination_of(self) and handler.write_info(self.name, msg, args)):
            return
        super().info(msg, *args, **kwargs)


def configure(level: str, log_file: Path | None = None, stream: TextIO | None = None) -> BatchedLineHandler:
    """The root logger of `acd serve`: `level` (a logging level name), lines to `stream` (stderr) and,
    with `log_file`, to that file too (reopened when logrotate moves it)."""
    logging._srcfile = None  # no stack walk per record for the caller's file and line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    targets: list[logging.StreamHandler] = [logging.StreamHandler(stream or sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        targets.append(logging.handlers.WatchedFileHandler(log_file, encoding="utf-8"))
    handler = BatchedLineHandler(targets)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    global _sole_handler
    _sole_handler = handler
    logging.setLoggerClass(FastInfoLogger)  # the loggers of modules imported from now on
    for logger in list(logging.Logger.manager.loggerDict.values()):  # and the server's made already
        if type(logger) is logging.Logger and (logger.name == "acd" or logger.name.startswith("acd.")):
            logger.__class__ = FastInfoLogger
    return handler
