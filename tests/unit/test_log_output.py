"""The log `acd serve` writes (acd/log_output.py): the same lines as logging's own formatter gives for
the documented format (fail2ban reads them), written in the order logged, all of them by a flush or a
close, to every target, and to a log file that logrotate moved, in its new file."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys

import pytest

from acd.log_output import LINE_FORMAT, BatchedLineHandler, LineFormatter, configure


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


def test_configure_makes_the_root_logger_write_through_one_batched_handler(tmp_path):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging._srcfile, logging.logThreads, logging.logProcesses,
             logging.logMultiprocessing)
    stream = io.StringIO()
    try:
        handler = configure("WARNING", tmp_path / "logs" / "acd.log", stream=stream)
        assert root.handlers == [handler] and root.level == logging.WARNING
        logging.getLogger("log_output_test").warning("agent=%s locked", "1001")
        logging.getLogger("log_output_test").info("not at WARNING")
        handler.close()
        root.removeHandler(handler)
        for text in (stream.getvalue(), (tmp_path / "logs" / "acd.log").read_text()):
            assert text.endswith(" WARNING log_output_test agent=1001 locked\n") and "not at" not in text
    finally:
        for old in list(root.handlers):
            root.removeHandler(old)
        for old in saved[0]:
            root.addHandler(old)
        root.setLevel(saved[1])
        logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = saved[2:]
