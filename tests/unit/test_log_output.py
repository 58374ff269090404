"""The log `acd serve` writes (acd/log_output.py): the same lines as logging's own formatter gives for
the documented format (fail2ban reads them), written in the order logged, all of them by a flush or a
close, to every target, and to a log file that logrotate moved, in its new file."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys

import pytest

from acd.log_output import LINE_FORMAT, BatchedLineHandler, FastInfoLogger, LineFormatter, configure


def record(message: str, *args, level: int = logging.INFO, created: float = 1_767_225_600.5, exc_info=None,
           name: str = "acd.call") -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, args, exc_info)
    made.created, made.msecs = created, (created - int(created)) * 1000
    return made


@pytest.mark.parametrize("created", [1_767_225_600.5, 1_767_225_601.0, 1_767_225_659.999])
def test_lines_are_what_logging_formats_for_the_documented_format(created):
    ours, theirs = LineFormatter(), logging.Formatter(LINE_FORMAT)
    for _ in range(2):  # the second time from the per-second cache
        assert ours.format(record("call=%s ended reason=%r", "c1", "x", created=created)) == \
            theirs.format(record("call=%s ended reason=%r", "c1", "x", created=created))


def test_a_traceback_follows_its_line_as_logging_writes_it():
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    assert LineFormatter().format(record("failed %s", "c1", level=logging.ERROR, exc_info=info)) == \
        logging.Formatter(LINE_FORMAT).format(record("failed %s", "c1", level=logging.ERROR, exc_info=info))


def test_lines_reach_every_target_in_order_by_flush_and_close():
    first, second = io.StringIO(), io.StringIO()
    handler = BatchedLineHandler([logging.StreamHandler(first), logging.StreamHandler(second)])
    handler.setFormatter(LineFormatter())
    try:
        for index in range(5):
            handler.handle(record("line %d", index))
        handler.flush()
        handler.handle(record("warning %d", 5, level=logging.WARNING))
        handler.handle(record("line %d", 6))
    finally:
        handler.close()
    for stream in (first, second):
        lines = stream.getvalue().splitlines()
        assert [line.rsplit(" ", 1)[1] for line in lines] == [str(index) for index in range(7)]
        assert lines[5].split(" ")[2:4] == ["WARNING", "acd.call"]


def test_a_rotated_log_file_is_reopened(tmp_path):
    path = tmp_path / "acd.log"
    handler = BatchedLineHandler([logging.handlers.WatchedFileHandler(path, encoding="utf-8")])
    handler.setFormatter(LineFormatter())
    try:
        handler.handle(record("before %s", "rotation"))
        handler.flush()
        path.rename(tmp_path / "acd.log.1")
        handler.handle(record("after %s", "rotation"))
        handler.flush()
    finally:
        handler.close()
    assert (tmp_path / "acd.log.1").read_text().endswith("before rotation\n")
    assert path.read_text().endswith("after rotation\n")


@pytest.fixture
def configured(tmp_path):
    """`configure` as `acd serve` calls it, into a StringIO and tmp_path/logs/acd.log; logging's global
    state (root handlers and level, logger class, the record switches) is put back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging._srcfile, logging.logThreads, logging.logProcesses,
             logging.logMultiprocessing)
    before = {name: type(logger) for name, logger in logging.Logger.manager.loggerDict.items()}
    stream = io.StringIO()

    def make(level: str) -> tuple[BatchedLineHandler, io.StringIO]:
        return configure(level, tmp_path / "logs" / "acd.log", stream=stream), stream

    yield make
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for old in saved[0]:
        root.addHandler(old)
    root.setLevel(saved[1])
    logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = saved[2:]
    logging.setLoggerClass(logging.Logger)
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, FastInfoLogger):
            logger.__class__ = before.get(name, logging.Logger)


def test_configure_makes_the_root_logger_write_through_one_batched_handler(configured, tmp_path):
    handler, stream = configured("WARNING")
    root = logging.getLogger()
    assert root.handlers == [handler] and root.level == logging.WARNING
    logging.getLogger("log_output_test").warning("agent=%s locked", "1001")
    logging.getLogger("log_output_test").info("not at WARNING")
    handler.flush()
    for text in (stream.getvalue(), (tmp_path / "logs" / "acd.log").read_text()):
        assert text.endswith(" WARNING log_output_test agent=1001 locked\n") and "not at" not in text


@pytest.mark.parametrize("message, args", [
    ("call=%s answered dialled=%s rtp=%s->%s:%s", ("c1", "1000", 20000, "127.0.0.1", 40002)),
    ("call=%s ended reason=%r duration=%.1fs", ("c1", "caller hung up", 1.04)),
    ("%(who)s joined %(queue)s", ({"who": "c1", "queue": "sales"},)),
    ("a plain line, 100%", ()),
    (12345, ()),
])
def test_info_lines_are_the_same_by_the_short_way_and_through_logging(configured, message, args):
    """FastInfoLogger writes exactly the line logging's own path writes (time aside)."""
    handler, stream = configured("INFO")
    fast = logging.getLogger("acd.log_output_test")
    assert isinstance(fast, FastInfoLogger) and handler.only_destination_of(fast)
    fast.info(message, *args)
    logging.Logger.info(fast, message, *args)  # the ordinary way: a LogRecord through the handler
    handler.flush()
    short_way, ordinary = [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()]
    assert short_way == ordinary


def test_another_handler_or_a_filter_on_the_way_gets_the_ordinary_path(configured):
    handler, stream = configured("INFO")
    fast = logging.getLogger("acd.log_output_test2")
    seen: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = seen.append
    logging.getLogger("acd").addHandler(capture)
    try:
        assert not handler.only_destination_of(fast)
        fast.info("call=%s seen by %s", "c1", "both")
    finally:
        logging.getLogger("acd").removeHandler(capture)
    fast.addFilter(lambda record: False)
    fast.info("call=%s filtered", "c2")
    handler.flush()
    assert [record.getMessage() for record in seen] == ["call=c1 seen by both"]
    assert stream.getvalue().endswith(" INFO acd.log_output_test2 call=c1 seen by both\n")
