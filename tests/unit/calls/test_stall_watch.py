"""StallWatch: a stall of the event loop is reported once, with where the loop was and whether it
computed or waited (acd/calls/stall_watch.py)."""

import logging
import time

import pytest

from acd.calls.stall_watch import MAX_REPORTS_PER_MINUTE, StallBegan, StallCheck, StallEnded, StallWatch


def test_a_stall_is_reported_once_when_it_passes_the_threshold_and_once_when_it_ends():
    check = StallCheck(0.25, now=0.0, cpu=1.0)
    assert check.check(0.2) is None
    assert check.beat(0.2, cpu=1.1) is None  # on time: nothing to say
    assert check.check(0.44) is None
    began = check.check(0.5)
    assert isinstance(began, StallBegan) and began.seconds == pytest.approx(0.3)
    assert check.check(0.9) is None  # reported once
    ended = check.beat(1.0, cpu=1.15)
    assert isinstance(ended, StallEnded)
    assert (ended.seconds, ended.cpu_seconds) == (pytest.approx(0.8), pytest.approx(0.05))
    assert check.beat(1.05, cpu=1.2) is None


def test_reports_are_rate_limited_per_minute():
    check = StallCheck(0.1, now=0.0, cpu=0.0)
    began = 0
    for second in range(2 * MAX_REPORTS_PER_MINUTE):
        now = second * 1.0
        check.beat(now, cpu=0.0)
        began += check.check(now + 0.5) is not None
    assert began == MAX_REPORTS_PER_MINUTE
    check.beat(100.0, cpu=0.0)
    assert check.check(100.5) is not None  # a minute later it speaks again


def test_a_blocked_thread_is_caught_in_the_act_and_said_to_have_waited(caplog):
    """A real thread: the watched one sleeps (blocked in a system call) past the threshold."""
    caplog.set_level(logging.WARNING, logger="acd.loop")
    watch = StallWatch(threshold_seconds=0.05)
    watch.start()
    try:
        time.sleep(0.3)
        watch.beat()
    finally:
        watch.stop()
    stalled = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    over = [r.getMessage() for r in caplog.records if "stall over" in r.getMessage()]
    assert len(stalled) == 1 and "test_a_blocked_thread_is_caught_in_the_act" in stalled[0]
    assert len(over) == 1 and "mostly waiting" in over[0]
