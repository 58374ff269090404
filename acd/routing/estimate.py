"""Estimated wait time: the position-based model the engine uses, and Erlang C for comparison.

Position model (used by `RoutingEngine`): a caller at position p in a queue staffed by N
agents (available, ringing, on a call or in wrap-up; not paused) waits for the p-th agent to
become free. With agent occupations (offer to ready again, wrap-up included) averaging AHT,
N agents free up at a rate of N / AHT, so the expected wait is p * AHT / N. AHT is the
rolling mean of the queue's last `handle_time_window` occupations. It uses what the engine
knows about this caller (their place in line) and reacts to staffing at once.

Erlang C (`erlang_c_wait`): the mean wait of an arriving caller in an M/M/N queue with
arrival rate lambda and mean handle time AHT. It ignores the caller's position, so it
describes a queue, not a caller; `scripts/bench/routing.py --ewt` measures both models
against the waits actually observed on a simulated trace (results in README.md).
"""

from __future__ import annotations

__all__ = ["position_wait", "erlang_c_probability", "erlang_c_wait"]


def position_wait(position: int, staffed: int, average_handle_seconds: float) -> float | None:
    """Expected wait of the caller at `position` (1-based); None when nobody staffs the queue."""
    if staffed <= 0:
        return None
    return position * average_handle_seconds / staffed


def erlang_c_probability(agents: int, offered_erlangs: float) -> float:
    """Probability that an arriving caller must wait (Erlang C), 1.0 when overloaded."""
    if agents <= 0 or offered_erlangs >= agents:
        return 1.0
    # Erlang B by the stable recurrence B(k) = A*B(k-1) / (k + A*B(k-1)), then C from B.
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = offered_erlangs * blocking / (k + offered_erlangs * blocking)
    utilisation = offered_erlangs / agents
    return blocking / (1.0 - utilisation + utilisation * blocking)


def erlang_c_wait(
    arrival_rate: float, average_handle_seconds: float, agents: int
) -> float | None:
    """Mean wait (seconds) of an arriving caller in M/M/N; None when the queue is overloaded."""
    offered = arrival_rate * average_handle_seconds
    if agents <= 0 or offered >= agents:
        return None
    waiting = erlang_c_probability(agents, offered)
    return waiting * average_handle_seconds / (agents - offered)
