#!/usr/bin/env python3
"""Records store micro-benchmark: the window between a call event and its durable commit.

Feeds the real `RecordStore` the events of whole calls (arrival, answer, IVR steps, queue, queue
log, agent states, connect, end: 16 writes a call) at a steady call rate from the main thread, as
the reactor would, and reports per commit the delay of its oldest event (enqueue to COMMIT
returned), the batch sizes, and whether the writer kept up. The database is a fresh file in
`--dir` (default: a temp dir on the same disk as the repository's data/).

    .venv/bin/python scripts/bench/records_commit.py --rates 100,300,700 --seconds 30 --out /tmp/rc.json
    .venv/bin/python scripts/bench/records_commit.py --synchronous NORMAL ...   # what FULL costs
    .venv/bin/python scripts/bench/records_commit.py --store postgresql ...     # a throwaway local cluster
    .venv/bin/python scripts/bench/records_commit.py --store postgresql://acd@db:5432/acd ...

`--store postgresql` starts a throwaway cluster (acd/devtools/pg_cluster.py, fsync on, as a real
server runs) and removes it at the end; a `postgresql://` URL uses that database, each step in a
new schema (`bench_<random>`, left there). SQLite's FULL is PostgreSQL's `synchronous_commit = on`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from acd.store.backends import open_record_store  # noqa: E402
from acd.store.records import RecordStore  # noqa: E402

WRITES_PER_CALL = 16


def _call_events(store: RecordStore, call_id: str, at: float) -> None:
    store.call_arrived(call_id, trunk="demo", caller="+447700900123", dialled="9000", at=at)
    store.call_answered(call_id, at=at)
    for step in ("welcome", "menu", "account"):
        store.ivr_step(call_id, flow="main", step=step, at=at)
    store.call_queued(call_id, queue="sales", at=at)
    store.queue_log(at=at, call_id=call_id, queue="sales", agent="", event="ENTERQUEUE", data2="+447700900123", data3="1")
    store.routing_event(call_id, at=at, what="offered to 1001: longest idle")
    store.agent_state("1001", state="ringing", reason="", at=at)
    store.call_connected(call_id, agent="1001", at=at, queue="sales")
    store.queue_log(at=at, call_id=call_id, queue="sales", agent="1001", event="CONNECT", data1="1", data2="leg", data3="1")
    store.agent_state("1001", state="on_call", reason="", at=at)
    store.talk_ended(call_id, at=at)
    store.queue_log(at=at, call_id=call_id, queue="sales", agent="1001", event="COMPLETECALLER", data1="1", data2="2", data3="1")
    store.call_ended(call_id, outcome="answered", reason="caller hung up", at=at)
    store.agent_state("1001", state="available", reason="", at=at)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _fresh_location(directory: Path, store: str, rate: float, synchronous: str) -> str | Path:
    """A new, empty store for one step: a SQLite file, or a new schema in the PostgreSQL database `store`."""
    if store == "sqlite":
        path = directory / f"records-{synchronous}-{rate:g}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return path
    import uuid

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(store, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{store}{'&' if '?' in store else '?'}options=-csearch_path%3D{schema}"


def measure(directory: Path, rate: float, seconds: float, synchronous: str, store_at: str = "sqlite") -> dict:
    """One step: `rate` calls/s for `seconds` into a fresh store; delays in milliseconds."""
    delays: list[float] = []
    location = _fresh_location(directory, store_at, rate, synchronous)
    store = open_record_store(location, in_process=True, commit_delay_observer=delays.append, synchronous=synchronous)
    started = time.perf_counter()
    calls = int(rate * seconds)
    max_backlog = 0
    for n in range(calls):
        due = started + n / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        _call_events(store, f"bench-{n}", at=due)
        max_backlog = max(max_backlog, store.backlog)
    fed = time.perf_counter() - started
    assert store.flush(120), "the writer did not catch up within 120 s"
    drained = time.perf_counter() - started
    store.close()
    writes = calls * WRITES_PER_CALL
    return {
        "store": "sqlite" if store_at == "sqlite" else "postgresql", "synchronous": synchronous, "rate_calls_per_s": rate, "seconds": seconds, "calls": calls,
        "events": writes, "commits": len(delays), "events_per_commit": round(writes / max(1, len(delays)), 1),
        "delay_ms_p50": round(1000 * statistics.median(delays), 3),
        "delay_ms_p99": round(1000 * _percentile(delays, 0.99), 3),
        "delay_ms_max": round(1000 * max(delays), 3),
        "max_backlog_events": max_backlog, "kept_up": drained - fed < 1.0,
        "drain_after_feed_s": round(drained - fed, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,300,700", help="calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL", "OFF"])
    parser.add_argument("--store", default="sqlite",
                        help="sqlite (default), postgresql (a throwaway local cluster) or a postgresql:// URL")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: temp dir under the repo's data/)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.dir is None:
        (REPO / "data").mkdir(exist_ok=True)
        holder = tempfile.TemporaryDirectory(dir=REPO / "data", prefix="bench-records-")
        directory = Path(holder.name)
    else:
        directory = args.dir
        directory.mkdir(parents=True, exist_ok=True)
    cluster = None
    store_at = args.store
    if store_at == "postgresql":
        from acd.devtools.pg_cluster import PgCluster

        cluster = PgCluster(fsync=True).start()
        store_at = cluster.create_database("bench")
    try:
        rows = [measure(directory, float(rate), args.seconds, args.synchronous, store_at)
                for rate in args.rates.split(",")]
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"store: {rows[0]['store']}")
    print(f"{'sync':<7}{'calls/s':>8}{'events':>9}{'commits':>9}{'ev/commit':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'max ms':>9}{'backlog':>9}  kept up")
    for row in rows:
        print(f"{row['synchronous']:<7}{row['rate_calls_per_s']:>8g}{row['events']:>9}{row['commits']:>9}"
              f"{row['events_per_commit']:>10}{row['delay_ms_p50']:>9}{row['delay_ms_p99']:>9}{row['delay_ms_max']:>9}"
              f"{row['max_backlog_events']:>9}  {'yes' if row['kept_up'] else 'NO'}")
    if args.out:
        args.out.write_text(json.dumps({"command": sys.argv, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
