"""Admission control's pure core: ceilings, event-loop lag with hysteresis, priorities, summaries;
and the refusal cache its retransmissions are answered from."""

import pytest

from acd.sip.admission import (MAX_CALLS, MEASURED_MAX_CALLS, OVERLOAD, OVERLOAD_TICKS, PRIORITY, RATE,
                               SUMMARY_SECONDS, TICK_SECONDS, Admission, Ceilings, LoopLag, auto_max_calls)
from acd.sip.refusal_cache import RefusalCache

T0 = 1000.0


def admission(max_calls=10, rate=0.0, lag=0.1) -> Admission:
    return Admission(Ceilings(max_calls=max_calls, new_calls_per_second=rate, overload_loop_lag_seconds=lag), now=T0)


def lag_ticks(core_or_lag, start: float, lags: list[float]) -> tuple[float, list]:
    """Run ticks that are each `lag` late after the previous one; (the time after, the samples)."""
    lag_meter = core_or_lag.lag if isinstance(core_or_lag, Admission) else core_or_lag
    now = start
    lag_meter.start(now)
    samples = []
    for lag in lags:
        now += TICK_SECONDS + lag
        samples.append(lag_meter.tick(now))
    return now, samples


def test_auto_ceiling_is_three_quarters_of_the_legs_capped_at_the_measured_capacity():
    assert auto_max_calls(500) == 375  # 20000-20999
    assert auto_max_calls(600) == 450
    assert auto_max_calls(2000) == MEASURED_MAX_CALLS == 500  # the shipped 20000-23999
    assert auto_max_calls(1) == 1


def test_calls_are_admitted_up_to_the_ceiling_of_calls_in_progress():
    core = admission(max_calls=3)
    assert [core.decide(T0, active_calls=n, trunk=True) for n in range(5)] == [None, None, None, MAX_CALLS, MAX_CALLS]
    assert (core.admitted_total, core.refused_total) == (3, 2)


def test_the_rate_ceiling_admits_a_burst_then_the_rate():
    """400 calls/s: a burst of 50 ms (20 calls), then one call per 2.5 ms."""
    core = admission(max_calls=1000, rate=400)
    first = [core.decide(T0, active_calls=0, trunk=True) for _ in range(22)]
    assert first == [None] * 20 + [RATE] * 2
    assert core.decide(T0 + 0.001, active_calls=0, trunk=True) == RATE
    assert core.decide(T0 + 0.0025, active_calls=0, trunk=True) is None
    admitted = sum(core.decide(T0 + 0.0025 + n * 0.001, active_calls=0, trunk=True) is None for n in range(1, 1001))
    assert admitted == 400  # one more second at 1,000 offered a second: 400 admitted


def test_a_low_rate_ceiling_still_admits_one_call_at_once():
    """10 calls/s: the burst (0.5 of a call) is rounded up to one call, then one per 0.1 s."""
    core = admission(max_calls=1000, rate=10)
    assert [core.decide(T0, active_calls=0, trunk=True) for _ in range(2)] == [None, RATE]
    assert core.decide(T0 + 0.05, active_calls=0, trunk=True) == RATE
    assert core.decide(T0 + 0.1, active_calls=0, trunk=True) is None


def test_a_refusal_for_calls_in_progress_spends_no_rate_token():
    core = admission(max_calls=1, rate=2)  # burst of 1
    assert core.decide(T0, active_calls=5, trunk=True) == MAX_CALLS
    assert core.decide(T0, active_calls=0, trunk=True) is None


def test_one_late_tick_is_not_overload():
    """A GC pause or a descheduled process: one tick late, then on time."""
    lag = LoopLag(threshold_seconds=0.1)
    _, samples = lag_ticks(lag, T0, [0.5, 0.0, 0.0])
    assert not any(s.overload_began for s in samples) and not lag.overloaded
    assert samples[0].lag_seconds == pytest.approx(0.5)


def test_overload_begins_after_consecutive_late_ticks_and_ends_after_as_many_on_time():
    lag = LoopLag(threshold_seconds=0.1)
    now, samples = lag_ticks(lag, T0, [0.15] * OVERLOAD_TICKS)
    assert [s.overload_began for s in samples] == [False] * (OVERLOAD_TICKS - 1) + [True]
    assert lag.overloaded and lag.busy
    _, samples = lag_ticks(lag, now, [0.07, 0.0, 0.0, 0.0])  # 70 ms: not under half the limit yet
    assert [s.overload_ended for s in samples] == [False, False, False, True]
    assert not lag.overloaded


def test_a_threshold_of_zero_watches_nothing():
    lag = LoopLag(threshold_seconds=0)
    lag_ticks(lag, T0, [5.0] * 10)
    assert not lag.overloaded and not lag.busy


def test_while_overloaded_every_new_call_is_refused_and_a_busy_loop_refuses_strangers_first():
    core = admission()
    now, _ = lag_ticks(core, T0, [0.06])  # busy: over half the 0.1 s limit, not overloaded
    assert core.decide(now, active_calls=0, trunk=False) == PRIORITY
    assert core.decide(now, active_calls=0, trunk=True) is None
    now, _ = lag_ticks(core, now, [0.2] * OVERLOAD_TICKS)
    assert core.decide(now, active_calls=0, trunk=True) == OVERLOAD


def test_overloaded_for_options_at_the_ceiling_while_the_loop_lags_and_just_after_rate_refusals():
    core = admission(max_calls=2, rate=2)
    assert not core.overloaded(T0, active_calls=1)
    assert core.overloaded(T0, active_calls=2)
    core.decide(T0, active_calls=0, trunk=True)
    assert core.decide(T0, active_calls=0, trunk=True) == RATE
    assert core.overloaded(T0 + 0.5, active_calls=0)
    assert not core.overloaded(T0 + 1.5, active_calls=0)


def test_reconfigure_changes_the_ceilings_and_the_lag_limit():
    core = admission(max_calls=1)
    assert core.decide(T0, active_calls=1, trunk=True) == MAX_CALLS
    core.reconfigure(Ceilings(max_calls=5, new_calls_per_second=0, overload_loop_lag_seconds=0))
    assert core.decide(T0, active_calls=1, trunk=True) is None
    assert core.lag.threshold_seconds == 0


def test_summaries_come_at_most_once_a_second_with_counts_by_reason():
    core = admission(max_calls=1)
    core.decide(T0, active_calls=0, trunk=True)
    core.decide(T0, active_calls=1, trunk=True)
    first = core.summary(T0)
    assert first is not None and first.refused == ((MAX_CALLS, 1),) and first.admitted == 1
    for n in range(100):
        core.decide(T0 + n * 0.005, active_calls=1, trunk=True)
        core.refusal_resent()
        assert core.summary(T0 + n * 0.005) is None
    second = core.summary(T0 + SUMMARY_SECONDS)
    assert second.refused == ((MAX_CALLS, 100),) and second.refused_total == 100 and second.resent == 100
    assert core.summary(T0 + 5 * SUMMARY_SECONDS) is None  # nothing refused since


def test_a_quiet_hour_does_not_stretch_the_next_summary():
    core = admission(max_calls=1)
    core.summary(T0 + 3600)
    core.decide(T0 + 3600.5, active_calls=1, trunk=True)
    summary = core.summary(T0 + 3600.5)
    assert summary is not None and summary.seconds <= SUMMARY_SECONDS + 0.5


@pytest.mark.parametrize("bad", [dict(max_calls=0), dict(new_calls_per_second=-1),
                                 dict(overload_loop_lag_seconds=-0.1)])
def test_ceilings_refuse_impossible_values(bad):
    values = dict(max_calls=1, new_calls_per_second=0, overload_loop_lag_seconds=0) | bad
    with pytest.raises(ValueError):
        Ceilings(**values)


def test_the_refusal_cache_answers_the_same_bytes_until_its_lifetime_ends():
    cache = RefusalCache(lifetime_seconds=32)
    cache.put(("c1", b"b1", b"1"), b"503 bytes", T0)
    assert cache.get(("c1", b"b1", b"1"), T0 + 31.9) == b"503 bytes"
    assert cache.get(("c1", b"b2", b"1"), T0) is None
    assert cache.get(("c1", b"b1", b"1"), T0 + 32) is None and len(cache) == 0


def test_the_refusal_cache_forgets_the_oldest_beyond_its_size():
    cache = RefusalCache(lifetime_seconds=32, max_entries=3)
    for n in range(5):
        cache.put(n, b"%d" % n, T0 + n)
    assert len(cache) == 3 and cache.get(0, T0 + 5) is None and cache.get(4, T0 + 5) == b"4"
