"""Micro-benchmark of the routing core: replay a synthetic call-center day, time every call.

    .venv/bin/python scripts/bench/routing.py                 # 100, 1,000 and 10,000 agents
    .venv/bin/python scripts/bench/routing.py --quick         # small and fast
    .venv/bin/python scripts/bench/routing.py --ewt           # estimated-wait accuracy trace
    .venv/bin/python scripts/bench/routing.py --reconfigure   # cost of a live reload at peak

The day: 100 skills, 10 queues (skills-based, longest-idle, fewest-calls, round-robin), each
agent in 1-3 queues with 3-6 skills, calls needing 0-2 skills. Load follows a morning ramp,
a peak above capacity (the backlog reaches about agents/2 callers, capped near 5,000), then
a quiet afternoon. Callers abandon, agents miss or decline some offers and come back from
auto-pause. Every `handle()` and `handle_timers()` call is timed (one "decision" = one engine
call, however many decisions it returns); the simulated callers and agents are not. Latency
is reported twice: wall clock (perf_counter), which on a shared machine includes the moments
the scheduler hands our core to a neighbour, and thread CPU time (thread_time), which is the
work the engine itself did. "offer" columns cover only the calls that produced an Offer.

This benchmark drives the pure core in-process, so the `--target host:port` that SIP
benchmarks take does not apply here.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from acd.routing import (
    AgentLoggedIn,
    AgentReadyRequested,
    AgentState,
    AgentStateChanged,
    CallArrived,
    CallConnected,
    CallEnded,
    CallWaiting,
    Offer,
    OfferAnswered,
    OfferCancelled,
    OfferDeclined,
    QueueConfig,
    RoutingConfig,
    RoutingEngine,
)
from acd.routing.estimate import erlang_c_wait

SKILLS = [f"skill{n:03d}" for n in range(100)]
STRATEGY_CYCLE = ["skills", "skills", "longest-idle", "skills", "fewest-calls", "round-robin"]
HANDLE_SECONDS = 240.0
WRAP_SECONDS = 10.0


def build_day(agents: int, seed: int, day_seconds: float):
    """The engine config and the list of (time, event) the simulated world starts with."""
    rng = random.Random(seed)
    pools = [rng.sample(SKILLS, 15) for _ in range(10)]
    queues = tuple(
        QueueConfig(
            name=f"queue{n}",
            strategy=STRATEGY_CYCLE[n % len(STRATEGY_CYCLE)],
            max_waiting=100_000,
            wrap_up_seconds=WRAP_SECONDS,
            ring_timeout_seconds=12,
            max_missed_offers=3,
        )
        for n in range(10)
    )
    config = RoutingConfig(queues=queues, skills=frozenset(SKILLS), priority_aging_seconds=60)
    logins = []
    for n in range(agents):
        member = rng.sample(range(10), rng.randint(1, 3))
        pool = sorted({s for q in member for s in pools[q]})
        skills = {s: rng.randint(1, 10) for s in rng.sample(pool, rng.randint(3, 6))}
        queues_of = {f"queue{q}": rng.choice((0, 0, 0, 1, 2)) for q in member}
        event = AgentLoggedIn(agent_id=f"agent{n:05d}", queues=queues_of, skills=skills)
        logins.append((rng.uniform(0, 0.1 * day_seconds), event))
    capacity = agents / (HANDLE_SECONDS + WRAP_SECONDS + 3)
    arrivals = []
    t, number = 0.0, 0
    while t < day_seconds:
        phase = t / day_seconds
        if phase < 0.15:
            load = 0.6
        elif phase < 0.5:
            load = 0.9
        elif phase < 0.7:
            load = 1.75
        else:
            load = 0.5
        t += rng.expovariate(capacity * load)
        queue = rng.randrange(10)
        roll = rng.random()
        if roll < 0.15:
            requirements = {}
        elif roll < 0.85:
            requirements = {rng.choice(pools[queue]): rng.randint(1, 6)}
        else:
            first, second = rng.sample(pools[queue], 2)
            requirements = {first: rng.randint(1, 6), second: rng.randint(1, 3)}
        priority = rng.choice((0, 0, 0, 0, 0, 0, 0, 1, 2, 3))
        number += 1
        event = CallArrived(
            call_id=f"call{number:07d}", queue=f"queue{queue}", priority=priority,
            requirements=requirements,
        )
        arrivals.append((t, event))
    return config, logins + arrivals


class World:
    """Simulated callers and agents reacting to the engine's decisions (not timed)."""

    def __init__(self, router: RoutingEngine, seed: int, patience: float) -> None:
        self.router = router
        self.rng = random.Random(seed + 1)
        self.patience = patience
        self.heap: list = []
        self.sequence = 0
        self.ringing: set[tuple[str, str]] = set()
        self.live: set[str] = set()
        self.connected: set[str] = set()
        self.latencies: list[int] = []
        self.offer_latencies: list[int] = []
        self.cpu_latencies: list[int] = []  # thread CPU time: immune to preemption by neighbours
        self.offer_cpu_latencies: list[int] = []
        self.decisions = 0
        self.waiting_peak = 0
        self.waits: dict[str, tuple[float, float | None]] = {}  # call -> (arrived, estimate)
        self.observed: list[tuple[float, float | None, float]] = []  # estimate, erlang, actual

    def push(self, when: float, event) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (when, self.sequence, event))

    def timed(self, call, now: float) -> list:
        cpu_start = time.thread_time_ns()
        start = time.perf_counter_ns()
        decisions = call()
        elapsed = time.perf_counter_ns() - start
        cpu = time.thread_time_ns() - cpu_start
        self.latencies.append(elapsed)
        self.cpu_latencies.append(cpu)
        if any(isinstance(d, Offer) for d in decisions):
            self.offer_latencies.append(elapsed)
            self.offer_cpu_latencies.append(cpu)
        self.decisions += len(decisions)
        self.react(decisions, now)
        return decisions

    def react(self, decisions, now: float) -> None:
        rng = self.rng
        for d in decisions:
            if isinstance(d, Offer):
                self.ringing.add((d.call_id, d.agent_id))
                roll = rng.random()
                if roll < 0.93:
                    self.push(now + rng.uniform(1, 5), OfferAnswered(call_id=d.call_id, agent_id=d.agent_id))
                elif roll < 0.95:
                    self.push(now + 1, OfferDeclined(call_id=d.call_id, agent_id=d.agent_id))
            elif isinstance(d, OfferCancelled):
                self.ringing.discard((d.call_id, d.agent_id))
            elif isinstance(d, CallConnected):
                self.ringing.discard((d.call_id, d.agent_id))
                self.connected.add(d.call_id)
                self.push(now + rng.expovariate(1 / HANDLE_SECONDS), CallEnded(call_id=d.call_id))
                arrived, estimate = self.waits.pop(d.call_id, (None, None))
                if arrived is not None:
                    self.observed.append((estimate, None, now - arrived))
            elif isinstance(d, CallWaiting) and d.call_id not in self.waits:
                self.waits[d.call_id] = (now, d.estimated_wait_seconds)
            elif isinstance(d, AgentStateChanged) and d.state is AgentState.PAUSED:
                self.push(now + 60, AgentReadyRequested(agent_id=d.agent_id))

    def run(self, events) -> None:
        for when, event in events:
            self.push(when, event)
        router = self.router
        while self.heap:
            when, _seq, event = heapq.heappop(self.heap)
            while (deadline := router.next_deadline()) is not None and deadline <= when:
                self.timed(lambda: router.handle_timers(deadline), deadline)
            if not self.still_relevant(event):
                continue
            if isinstance(event, CallArrived):
                self.live.add(event.call_id)
                self.push(when + self.rng.expovariate(1 / self.patience), CallEnded(call_id=event.call_id))
            elif isinstance(event, CallEnded):
                self.live.discard(event.call_id)
                self.connected.discard(event.call_id)
                self.waits.pop(event.call_id, None)
            self.timed(lambda: router.handle(event, when), when)
            if isinstance(event, CallArrived):
                waiting = len(self.live) - len(self.connected)
                self.waiting_peak = max(self.waiting_peak, waiting)

    def still_relevant(self, event) -> bool:
        if isinstance(event, (OfferAnswered, OfferDeclined)):
            return (event.call_id, event.agent_id) in self.ringing
        if isinstance(event, CallEnded):
            # A patience timer only fires for a caller still not talking to an agent.
            return event.call_id in self.live
        if isinstance(event, AgentReadyRequested):
            return event.agent_id in self.router.agent_ids()
        return True


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000.0


def bench(agents: int, seed: int, day_seconds: float) -> dict:
    config, events = build_day(agents, seed, day_seconds)
    # The pre-built day is a few hundred thousand objects the collector would re-scan on
    # every full collection; freeze them, as a server does after loading its config.
    gc.collect()
    gc.freeze()
    router = RoutingEngine(config)
    world = World(router, seed, patience=900.0)
    started = time.perf_counter()
    world.run(events)
    wall = time.perf_counter() - started
    engine_seconds = sum(world.latencies) / 1e9
    calls = sum(1 for _t, e in events if isinstance(e, CallArrived))
    gc.unfreeze()
    return {
        "agents": agents,
        "calls": calls,
        "engine_calls": len(world.latencies),
        "decisions_out": world.decisions,
        "waiting_peak": world.waiting_peak,
        "decisions_per_second": len(world.latencies) / engine_seconds,
        "p50_us": percentile(world.latencies, 0.50),
        "p99_us": percentile(world.latencies, 0.99),
        "max_us": max(world.latencies) / 1000.0,
        "offer_p50_us": percentile(world.offer_latencies, 0.50),
        "offer_p99_us": percentile(world.offer_latencies, 0.99),
        "cpu_p50_us": percentile(world.cpu_latencies, 0.50),
        "cpu_p99_us": percentile(world.cpu_latencies, 0.99),
        "offer_cpu_p99_us": percentile(world.offer_cpu_latencies, 0.99),
        "engine_seconds": engine_seconds,
        "wall_seconds": wall,
    }


def ewt_trace(seed: int, agents: int = 50, hours: float = 4.0, load: float = 0.95) -> dict:
    """Compare predicted and actual waits in one staffed queue with Poisson arrivals."""
    rng = random.Random(seed)
    queue = QueueConfig(name="main", wrap_up_seconds=WRAP_SECONDS, max_missed_offers=0, max_waiting=100_000)
    router = RoutingEngine(RoutingConfig(queues=(queue,)))
    service = HANDLE_SECONDS + WRAP_SECONDS + 3
    rate = load * agents / service
    events = [(0.0, AgentLoggedIn(agent_id=f"a{n}", queues={"main": 0})) for n in range(agents)]
    t, number = 1.0, 0
    while t < hours * 3600:
        t += rng.expovariate(rate)
        number += 1
        events.append((t, CallArrived(call_id=f"c{number}", queue="main")))
    world = World(router, seed, patience=1e12)
    world.run(events)
    erlang = erlang_c_wait(rate, service, agents) or float("nan")
    conditional = erlang / max(1e-9, _waiting_probability(rate, service, agents))
    warm = world.observed[len(world.observed) // 10 :]
    errors = [est - actual for est, _e, actual in warm if est is not None]
    actual = [actual for _est, _e, actual in warm]
    erlang_errors = [conditional - a for a in actual]
    return {
        "agents": agents,
        "load": load,
        "callers_who_waited": len(warm),
        "mean_actual_wait_s": statistics.fmean(actual),
        "position_mae_s": statistics.fmean(abs(e) for e in errors),
        "position_bias_s": statistics.fmean(errors),
        "position_median_abs_error_s": statistics.median(abs(e) for e in errors),
        "erlang_c_wait_if_queued_s": conditional,
        "erlang_c_mae_s": statistics.fmean(abs(e) for e in erlang_errors),
        "erlang_c_bias_s": statistics.fmean(erlang_errors),
    }


def reconfigure_cost(agents: int, seed: int, backlog: int, repeats: int = 5) -> dict:
    """How long `reconfigure` holds the event loop at a peak: every agent logged in (most ringing,
    some idle for lack of a matching call), `backlog` callers in line. Times a reload to the same
    config and one that rotates every queue's strategy; the median of `repeats`."""
    import dataclasses

    config, events = build_day(agents, seed, 3600.0)
    router = RoutingEngine(config)
    logins = [event for _t, event in events if isinstance(event, AgentLoggedIn)]
    arrivals = [event for _t, event in events if isinstance(event, CallArrived)][: agents + backlog]
    for event in logins:
        router.handle(event, 1.0)
    for event in arrivals:
        router.handle(event, 2.0)
    rotated = dataclasses.replace(config, queues=tuple(
        dataclasses.replace(queue, strategy=STRATEGY_CYCLE[(n + 1) % len(STRATEGY_CYCLE)], wrap_up_seconds=20.0)
        for n, queue in enumerate(config.queues)))
    timings: dict[str, list[float]] = {"same_config_ms": [], "changed_strategies_ms": []}
    for _ in range(repeats):
        for name, target in (("same_config_ms", config), ("changed_strategies_ms", rotated)):
            started = time.perf_counter()
            router.reconfigure(target, 3.0)
            timings[name].append((time.perf_counter() - started) * 1000)
    waiting = sum(1 for call in router.call_ids() if router.call_view(call).state == "waiting")
    return {"agents": agents, "calls_held": len(router.call_ids()), "waiting": waiting,
            **{name: statistics.median(values) for name, values in timings.items()}}


def _waiting_probability(rate: float, service: float, agents: int) -> float:
    from acd.routing.estimate import erlang_c_probability

    return erlang_c_probability(agents, rate * service)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1,000, a shorter day")
    parser.add_argument("--sizes", default=None, help="comma-separated agent counts")
    parser.add_argument("--day-seconds", type=float, default=None, help="simulated day length")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ewt", action="store_true", help="measure estimated-wait error instead")
    parser.add_argument("--reconfigure", action="store_true", help="time a live reload at peak instead")
    parser.add_argument("--out", default="bench-routing.json", help="JSON results path")
    args = parser.parse_args(argv)
    if args.reconfigure:
        print(f"{'agents':>7} {'calls held':>10} {'waiting':>8} {'same config ms':>14} {'new strategies ms':>17}")
        rows = []
        for agents, backlog in ((100, 1000), (1000, 5000), (10000, 5000)):
            row = reconfigure_cost(agents, args.seed, backlog)
            rows.append(row)
            print(f"{row['agents']:>7} {row['calls_held']:>10} {row['waiting']:>8} {row['same_config_ms']:>14.1f} "
                  f"{row['changed_strategies_ms']:>17.1f}", flush=True)
        Path(args.out).write_text(json.dumps({"benchmark": "routing-reconfigure", "results": rows}, indent=2))
        print(f"wrote {args.out}")
        return 0
    if args.ewt:
        result = {"ewt": [ewt_trace(args.seed, agents=n) for n in (10, 50, 200)]}
        for row in result["ewt"]:
            print(json.dumps(row))
        Path(args.out).write_text(json.dumps(result, indent=2))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [100, 1000] if args.quick else [100, 1000, 10000]
    )
    day = args.day_seconds or (600.0 if args.quick else 1800.0)
    rows = []
    header = (
        f"{'agents':>7} {'calls':>7} {'engine calls':>12} {'peak wait':>9} {'decisions/s':>11} "
        f"{'p50 µs':>7} {'p99 µs':>7} {'max µs':>8} {'offer p50':>9} {'offer p99':>9} "
        f"{'cpu p50':>7} {'cpu p99':>7} {'offer cpu p99':>13}"
    )
    print(header)
    for agents in sizes:
        row = bench(agents, args.seed, day)
        rows.append(row)
        print(
            f"{row['agents']:>7} {row['calls']:>7} {row['engine_calls']:>12} {row['waiting_peak']:>9} "
            f"{row['decisions_per_second']:>11,.0f} {row['p50_us']:>7.1f} {row['p99_us']:>7.1f} "
            f"{row['max_us']:>8.0f} {row['offer_p50_us']:>9.1f} {row['offer_p99_us']:>9.1f} "
            f"{row['cpu_p50_us']:>7.1f} {row['cpu_p99_us']:>7.1f} {row['offer_cpu_p99_us']:>13.1f}",
            flush=True,
        )
    result = {
        "benchmark": "routing",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "day_seconds": day,
        "seed": args.seed,
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
