"""Per-source token buckets and the once-per-interval report throttle: pure, time passed in."""

import pytest

from acd.sip.rate_limit import UNLIMITED, Budget, ReportThrottle, TokenBuckets

T0 = 1000.0
IP = "203.0.113.9"


def spend(buckets, budget, times, *, key=IP, at=T0):
    return [buckets.allow(key, budget, at) for _ in range(times)]


def test_a_burst_passes_then_the_next_request_is_refused():
    buckets = TokenBuckets()
    assert spend(buckets, Budget(10, 40), 41) == [True] * 40 + [False]


def test_tokens_refill_at_the_rate_up_to_the_burst():
    buckets = TokenBuckets()
    budget = Budget(10, 40)
    spend(buckets, budget, 40)
    assert buckets.allow(IP, budget, T0 + 0.05) is False  # half a token
    assert buckets.allow(IP, budget, T0 + 0.1) is True     # one token after 0.1 s at 10/s
    assert buckets.tokens(IP, T0 + 100) == 40              # never more than the burst


def test_a_steady_rate_at_the_budget_is_never_refused():
    buckets = TokenBuckets()
    budget = Budget(10, 1)
    assert all(buckets.allow(IP, budget, T0 + n * 0.1) for n in range(1000))


def test_sources_have_their_own_buckets():
    buckets = TokenBuckets()
    budget = Budget(1, 2)
    assert spend(buckets, budget, 3, key="192.0.2.1") == [True, True, False]
    assert spend(buckets, budget, 2, key="192.0.2.2") == [True, True]


def test_an_unlimited_budget_always_passes_and_tracks_nothing():
    buckets = TokenBuckets()
    assert all(spend(buckets, UNLIMITED, 100_000))
    assert len(buckets) == 0


def test_a_source_whose_kind_changes_starts_afresh_under_the_new_budget():
    """A phone that registered moves from the stranger budget to the agent one, with its full burst."""
    buckets = TokenBuckets()
    spend(buckets, Budget(1, 2), 2)
    assert buckets.allow(IP, Budget(1, 2), T0) is False
    assert spend(buckets, Budget(100, 400), 401) == [True] * 400 + [False]


def test_memory_is_bounded_and_full_buckets_are_forgotten():
    buckets = TokenBuckets(max_tracked=100)
    budget = Budget(10, 20)
    for n in range(1000):
        buckets.allow(f"10.0.{n // 256}.{n % 256}", budget, T0)
    assert len(buckets) == 100
    buckets.allow(IP, budget, T0 + 10)  # 10 s later every bucket is full again: nothing worth keeping
    assert len(buckets) == 1


@pytest.mark.parametrize("rate, burst", [(-1, 10), (10, -1), (10, 0.5)])
def test_a_budget_that_cannot_work_is_refused(rate, burst):
    with pytest.raises(ValueError):
        Budget(rate, burst)


def test_the_first_event_is_reported_then_one_line_per_interval_with_the_count():
    throttle = ReportThrottle(interval_seconds=10)
    assert throttle.report(IP, T0) == 1
    assert [throttle.report(IP, T0 + n * 0.01) for n in range(1, 500)] == [None] * 499
    assert throttle.report(IP, T0 + 10) == 500  # this one and the 499 not reported
    assert throttle.report(IP, T0 + 10.5) is None


def test_reports_are_per_key_and_memory_is_bounded():
    throttle = ReportThrottle(interval_seconds=10, max_tracked=50)
    assert all(throttle.report(f"192.0.2.{n}", T0) == 1 for n in range(200))
    assert throttle.report("192.0.2.199", T0 + 1) is None
    assert len(throttle) <= 50
    assert throttle.report("192.0.2.5", T0 + 30) == 1  # forgotten long ago: a fresh first line
