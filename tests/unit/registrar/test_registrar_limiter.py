"""The failed-authentication limiter: fail2ban-like blocking with bounded memory."""

import pytest

from acd.registrar.limiter import FailedAuthLimiter

IP = "203.0.113.9"
T0 = 5000.0


def fail(limiter, times, ip=IP, start=T0, step=1.0):
    for index in range(times):
        limiter.record_failure(ip, start + index * step)


def test_fifth_failure_within_the_window_blocks_for_block_seconds():
    limiter = FailedAuthLimiter(max_failures=5, window_seconds=60, block_seconds=300)
    fail(limiter, 4)
    assert not limiter.is_blocked(IP, T0 + 4)
    limiter.record_failure(IP, T0 + 4)
    assert limiter.is_blocked(IP, T0 + 4)
    assert limiter.is_blocked(IP, T0 + 4 + 299.9)
    assert not limiter.is_blocked(IP, T0 + 4 + 300)
    assert limiter.blocked_count(T0 + 5) == 1 and limiter.blocked_count(T0 + 305) == 0


def test_failures_spread_beyond_the_window_never_block():
    """A phone with a mistyped password retrying every 20 s stays under 5 failures a minute."""
    limiter = FailedAuthLimiter()
    fail(limiter, 50, step=20.0)
    assert not limiter.is_blocked(IP, T0 + 1000)


def test_failures_are_counted_per_source():
    limiter = FailedAuthLimiter(max_failures=3)
    fail(limiter, 2, ip="192.0.2.1")
    fail(limiter, 2, ip="192.0.2.2")
    assert limiter.blocked_count(T0 + 2) == 0
    limiter.record_failure("192.0.2.1", T0 + 2)
    assert limiter.is_blocked("192.0.2.1", T0 + 2) and not limiter.is_blocked("192.0.2.2", T0 + 2)


def test_success_forgets_earlier_failures():
    limiter = FailedAuthLimiter(max_failures=3)
    fail(limiter, 2)
    limiter.record_success(IP, T0 + 2)
    fail(limiter, 2, start=T0 + 3)
    assert not limiter.is_blocked(IP, T0 + 5)


def test_success_does_not_lift_a_running_block():
    limiter = FailedAuthLimiter(max_failures=2)
    fail(limiter, 2)
    limiter.record_success(IP, T0 + 2)
    assert limiter.is_blocked(IP, T0 + 3)


def test_failures_while_blocked_do_not_extend_the_block():
    limiter = FailedAuthLimiter(max_failures=2, block_seconds=100)
    fail(limiter, 2)
    fail(limiter, 50, start=T0 + 2)
    assert not limiter.is_blocked(IP, T0 + 1 + 100)


def test_idle_sources_are_forgotten():
    limiter = FailedAuthLimiter(max_failures=5, window_seconds=60, block_seconds=300)
    fail(limiter, 2, ip="192.0.2.1")
    fail(limiter, 5, ip="192.0.2.2")
    limiter.record_failure("192.0.2.3", T0 + 120)  # 192.0.2.1's failures are out of the window
    assert len(limiter) == 2
    limiter.record_failure("192.0.2.3", T0 + 400)  # 192.0.2.2's block is over
    assert len(limiter) == 1


def test_tracked_sources_are_capped_least_recent_first():
    limiter = FailedAuthLimiter(max_tracked_sources=100)
    for n in range(1000):
        limiter.record_failure(f"10.0.{n // 256}.{n % 256}", T0)
    assert len(limiter) == 100
    fail(limiter, 4, ip="10.0.3.231")  # n = 999, the most recent: still counted
    assert limiter.is_blocked("10.0.3.231", T0 + 4)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        FailedAuthLimiter(max_failures=0)
