"""Cluster benchmark (issue 20): the full path (caller → demo IVR → key 2 → support queue → SIPp agent)
on 1, 2 and 3 nodes, and the single routing authority's decisions/s with and without its PostgreSQL log.

    .venv/bin/python scripts/bench/cluster.py --out bench-cluster.json                 # everything
    .venv/bin/python scripts/bench/cluster.py rate --nodes 3 --rates 40,60,80          # one part
    .venv/bin/python scripts/bench/cluster.py authority --calls 5000

`rate`: for each node count a fresh throwaway PostgreSQL database, the nodes (127.0.0.11-13, the
shipped demo IVR, `store: postgresql://...`) and `--agents` SIPp agents (one answering SIPp: ring
100 ms, talk 300 ms, hang up; registered and logged in with *45). Two or three nodes run in cluster
mode (`cluster:` per node) behind Kamailio on 127.0.0.10 (conf/kamailio/kamailio.cfg), agents and
callers through it. One node runs without `cluster:` (its own routing engine, today's server) and
takes callers and agents directly (`--one-node-front kamailio`: through Kamailio too). Each rate
in `--rates` runs `--step-seconds` of callers (tests/e2e/scenarios/front_ivr_queue_caller.xml: the
call fails unless answered within 5 s and ended by its agent within 10 s); the node count's result is
the highest rate before the first step with a failure (a SIPp failed call, a call without a record,
a record left open). Routing latency per step: from the records, each call's "queued in" routing
event to its first "offered to" (the same on one node and in a cluster: arrival in the queue to
the offer sent), p50/p99; in cluster mode also acd_cluster_routing_seconds (an event handed to the
leader until its decisions are applied on the submitting node), summed over the nodes, p50/p99 by
interpolation in its buckets. CPU seconds per second of the nodes and of Kamailio over each step.

`authority`: in this process, one routing engine with `--agents` agents and a cycle of calls (call
arrives → offer → answered → call ends, wrap-up 0; `--concurrent` calls in progress): events/s of the
bare engine, of `ClusterNode.lead()` (one event per fenced append to the `routing_log` table, a
commit each), and of `ClusterNode.drain_inbox()` (the server's path: events submitted to the inbox,
the leader routes up to 100 per append). One "event" is one engine call, as in routing.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from acd.cluster.lease import LeaseMachine  # noqa: E402
from acd.cluster.node import ClusterNode  # noqa: E402
from acd.cluster.pg_log import PgRoutingLog  # noqa: E402
from acd.devtools.kamailio_front import KamailioFront  # noqa: E402
from acd.devtools.pg_cluster import PgCluster  # noqa: E402
from acd.routing import (AgentLoggedIn, CallArrived, CallEnded, Offer, OfferAnswered, QueueConfig,  # noqa: E402
                         RoutingConfig, RoutingEngine)
from tests.e2e.front_cluster import (FRONT_HOST, NODE_HOSTS, Node, answering_agents, callers, finish,  # noqa: E402
                                     read_records, sipp_screen_counts, stop_process, support_agents_yaml)
from tests.e2e.harness import SCENARIOS, free_port, run_sipp, wait_until  # noqa: E402

CALLER = SCENARIOS / "front_ivr_queue_caller.xml"


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone); with `children`, plus its
    live child processes' (Kamailio's main process only forks: its children do the SIP work)."""
    def own(stat_path: str) -> tuple[int, float]:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / 100.0
    try:
        total = own(f"/proc/{pid}/stat")[1]
    except OSError:
        return 0.0
    if children:
        for stat_path in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent, seconds = own(str(stat_path))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == pid:
                total += seconds
    return total


def percentile(values: list[float], fraction: float) -> float | None:
    """The value at `fraction` of the sorted values (nearest rank); None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * (len(ordered) - 1) + 0.5))]


def histogram(metrics_text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts {le: count} of a Prometheus histogram in /metrics text."""
    found = re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics_text, re.MULTILINE)
    return {float(le): float(count) for le, count in found}


def histogram_quantile(buckets: dict[float, float], fraction: float) -> float | None:
    """As PromQL's histogram_quantile: linear interpolation inside the bucket holding the rank."""
    if not buckets or max(buckets.values()) <= 0:
        return None
    total = buckets[max(buckets)]
    rank, lower, below = fraction * total, 0.0, 0.0
    for le in sorted(buckets):
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * ((rank - below) / (count - below) if count > below else 0)
        lower, below = le, count
    return lower


def scrape(node: Node) -> str:
    """A node's /metrics text ("" when it does not answer)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{node.host}:{node.http_port}/metrics", timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return ""


# Each node's RTP range (on its own address): 4,000 ports hold 2,000 legs, so admission's max_calls
# (auto: 3/4 of the legs, at most 500) is not what limits a step; the test's 400 capped one node at
# 150 calls in progress, ~60 calls/s of this path.
NODE_RTP_PORTS = 4000

class Cluster:
    """`count` nodes (cluster mode when `cluster`), Kamailio in front when `front`, `agents` logged in."""

    def __init__(self, work: Path, database: PgCluster, count: int, *, cluster: bool, front: bool, agents: int,
                 rtp_workers: str | None) -> None:
        self.work, self.count, self.cluster_mode, self.with_front = work, count, cluster, front
        self.url = database.create_database(f"bench_{count}_{uuid.uuid4().hex[:8]}")
        self.agent_ids = [str(60000 + n) for n in range(agents)]
        secret = secrets.token_bytes(32)
        files = {"conf/agents.yaml": support_agents_yaml(self.agent_ids)}
        self.nodes = [Node(work / f"node{n}", host, self.url, secret, files=files, http_port=free_port(both=False),
                           node_id=f"node{n}", rtp_workers=rtp_workers, rtp_ports=NODE_RTP_PORTS,
                           main_extra=f"cluster:\n  node_id: node{n}\n" if cluster else "")
                      for n, host in enumerate(NODE_HOSTS[:count], start=1)]
        self.front: KamailioFront | None = None
        self.answering = None

    @property
    def target(self):
        """Where callers and agents send their requests: Kamailio, or the one node."""
        return self.front if self.front is not None else self.nodes[0].server

    def start(self) -> None:
        """Start the nodes (together), Kamailio, the answering agents; register and log in the agents."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(Node.start, self.nodes))
        if self.with_front:
            self.front = KamailioFront(self.work / "kamailio", FRONT_HOST, free_port(),
                                       [(n.host, n.port) for n in self.nodes], ping_interval_seconds=1,
                                       fr_timer_ms=2000).start()
            wait_until(lambda: self.front.active_nodes() == {n.uri for n in self.nodes}, 15,
                       "Kamailio sees every node up")
        port = free_port(both=False)
        self.answering = answering_agents(self.work / "agents", self.target, port, timeout_seconds=3600)
        csv = self.work / "agents.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(f"{a};[authentication username={a} password=pw-{a}];{port}\n"
                                                for a in self.agent_ids))
        run_sipp(self.work / "login", self.target.target, "-inf", str(csv), scenario="front_agents_login.xml",
                 calls=len(self.agent_ids), rate=50, limit=50, timeout=120).assert_ok()
        wait_until(lambda: read_records(self.url, "SELECT COUNT(*) AS n FROM agent_presence WHERE state = "
                                                  "'available'")[0]["n"] == len(self.agent_ids), 30,
                   "every agent available in the records")

    def stop(self) -> None:
        """Stop everything this cluster started."""
        if self.answering is not None:
            stop_process(self.answering)
        if self.front is not None:
            self.front.stop()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(Node.stop, self.nodes))

    def step(self, rate: float, seconds: float, index: int) -> dict:
        """`rate` calls/s for `seconds`; what happened, from SIPp, the records and /metrics."""
        calls = int(rate * seconds)
        workdir = self.work / f"step{index}-{rate:g}"
        before = [histogram(scrape(node), "acd_cluster_routing_seconds") for node in self.nodes]
        pids = {node.node_id: node.server.process.pid for node in self.nodes}
        if self.front is not None:
            pids["kamailio"] = self.front.process.pid
        cpu_before = {name: cpu_seconds(pid, children=name == "kamailio") for name, pid in pids.items()}
        started_wall, started = time.time(), time.monotonic()
        caller = callers(workdir, self.target, calls=calls, rate=rate, scenario=CALLER,
                         timeout_seconds=int(seconds) + 60)
        code = finish(caller, seconds + 90)
        elapsed = time.monotonic() - started
        cpu = {name: round((cpu_seconds(pid, children=name == "kamailio") - cpu_before[name]) / elapsed, 3)
               for name, pid in pids.items()}
        try:
            wait_until(lambda: not read_records(self.url, "SELECT 1 FROM calls WHERE ended_at IS NULL LIMIT 1"), 15,
                       "every call record closed")
            open_records = 0
        except AssertionError:
            open_records = read_records(self.url, "SELECT COUNT(*) AS n FROM calls WHERE ended_at IS NULL")[0]["n"]
        successful, failed = sipp_screen_counts(workdir)
        rows = read_records(self.url, "SELECT call_id, connected_at FROM calls WHERE arrived_at >= ?", started_wall)
        events = read_records(self.url, "SELECT r.call_id, r.at, r.what FROM routing_events r JOIN calls c "
                                        "ON c.call_id = r.call_id WHERE c.arrived_at >= ? ORDER BY r.at", started_wall)
        queued: dict[str, float] = {}
        offered: dict[str, float] = {}
        for event in events:
            if event["what"].startswith("queued in "):
                queued.setdefault(event["call_id"], event["at"])
            elif event["what"].startswith("offered to "):
                offered.setdefault(event["call_id"], event["at"])
        latencies = [(offered[c] - queued[c]) * 1000 for c in offered if c in queued]
        after = [histogram(scrape(node), "acd_cluster_routing_seconds") for node in self.nodes]
        summed: dict[float, float] = {}
        for old, new in zip(before, after):
            for le, count in new.items():
                summed[le] = summed.get(le, 0.0) + count - old.get(le, 0.0)
        cluster_p50, cluster_p99 = (histogram_quantile(summed, q) for q in (0.5, 0.99))
        result = {
            "rate": rate, "seconds": seconds, "calls": calls, "sipp_exit": code, "successful": successful,
            "failed": failed, "records": len(rows), "connected_to_agent": sum(1 for r in rows if r["connected_at"]),
            "open_records": open_records,
            "routing_ms_p50": round(percentile(latencies, 0.5), 2) if latencies else None,
            "routing_ms_p99": round(percentile(latencies, 0.99), 2) if latencies else None,
            "routing_samples": len(latencies),
            "cluster_routing_ms_p50": round(cluster_p50 * 1000, 2) if cluster_p50 is not None else None,
            "cluster_routing_ms_p99": round(cluster_p99 * 1000, 2) if cluster_p99 is not None else None,
            "cpu_per_second": cpu, "elapsed_s": round(elapsed, 1),
        }
        result["ok"] = (code == 0 and failed == 0 and successful == calls and len(rows) == calls
                        and result["connected_to_agent"] == calls and open_records == 0)
        return result


def bench_rate(database: PgCluster, work: Path, count: int, args: argparse.Namespace) -> dict:
    """The steps of one node count, up to the first failing one."""
    cluster_mode = count > 1 or args.one_node_cluster
    front = count > 1 or args.one_node_front == "kamailio"
    cluster = Cluster(work / f"nodes{count}", database, count, cluster=cluster_mode, front=front,
                      agents=args.agents, rtp_workers=args.rtp_workers)
    steps = []
    try:
        cluster.start()
        time.sleep(args.settle_seconds)
        for index, rate in enumerate(args.rates):
            step = cluster.step(rate, args.step_seconds, index)
            steps.append(step)
            print_step(count, step)
            if not step["ok"]:
                break
            time.sleep(args.settle_seconds)
    finally:
        cluster.stop()
    clean = [step["rate"] for step in steps if step["ok"]]
    return {"nodes": count, "cluster_mode": cluster_mode, "through": "kamailio" if front else "direct",
            "agents": args.agents, "best_rate": max(clean) if clean else None, "steps": steps}


def print_step(count: int, step: dict) -> None:
    cpu = " ".join(f"{name}={value:.2f}" for name, value in step["cpu_per_second"].items())
    print(f"{count} node(s) {step['rate']:>6g}/s: {'ok  ' if step['ok'] else 'FAIL'} {step['successful']}/"
          f"{step['calls']} ok, {step['failed']} failed, {step['records']} records, {step['connected_to_agent']} to an "
          f"agent; routing p50/p99 {step['routing_ms_p50']}/{step['routing_ms_p99']} ms (cluster histogram "
          f"{step['cluster_routing_ms_p50']}/{step['cluster_routing_ms_p99']} ms); CPU s/s {cpu}", flush=True)


# ---- the routing authority in-process -------------------------------------------------------------------

def call_cycle(calls: int, concurrent: int):
    """The events of `calls` calls with `concurrent` in progress: (kind, call id); the agent of an
    OfferAnswered comes from the offer the engine made."""
    for n in range(calls + concurrent):
        if n < calls:
            yield "arrive", f"c{n}"
        if n >= concurrent:
            yield "answer", f"c{n - concurrent}"
            yield "end", f"c{n - concurrent}"


def run_cycle(handle, calls: int, concurrent: int) -> tuple[int, int, float]:
    """Feed the cycle through `handle(event) -> decisions`; (events, decisions, seconds)."""
    offered: dict[str, str] = {}
    events = decisions = 0
    started = time.perf_counter()
    for kind, call_id in call_cycle(calls, concurrent):
        if kind == "arrive":
            event = CallArrived(call_id=call_id, queue="q")
        elif kind == "answer":
            event = OfferAnswered(call_id=call_id, agent_id=offered.pop(call_id))
        else:
            event = CallEnded(call_id=call_id)
        found = handle(event)
        events += 1
        decisions += len(found)
        for decision in found:
            if isinstance(decision, Offer):
                offered[decision.call_id] = decision.agent_id
    return events, decisions, time.perf_counter() - started


def bench_authority(database: PgCluster, args: argparse.Namespace) -> dict:
    """Events/s of the bare engine, of lead() (an append per event) and of drain_inbox() (batches)."""
    config = RoutingConfig(queues=(QueueConfig(name="q", wrap_up_seconds=0, max_waiting=100_000),))
    logins = [AgentLoggedIn(agent_id=f"a{n}", queues={"q": 0}) for n in range(args.agents)]
    results = {}

    engine = RoutingEngine(config)
    for login in logins:
        engine.handle(login, time.time())
    events, decisions, seconds = run_cycle(lambda event: engine.handle(event, time.time()), args.calls,
                                           args.concurrent)
    results["engine"] = rate_entry(events, decisions, seconds)

    url = database.create_database(f"authority_{uuid.uuid4().hex[:8]}")
    log = PgRoutingLog(url, "bench", channel=f"bench_{uuid.uuid4().hex[:8]}").connect()
    try:
        node = ClusterNode(log, LeaseMachine("bench", start=time.monotonic()), config)
        wait_until(lambda: node.tick(time.monotonic(), time.time()) and node.is_leader, 10, "the bench node leads")
        for login in logins:
            node.lead(login, time.time())
        renewed = [time.monotonic()]

        def lead(event):
            if time.monotonic() - renewed[0] > 0.5:  # keep the lease (a tick renews it when due)
                node.tick(time.monotonic(), time.time())
                renewed[0] = time.monotonic()
            return node.lead(event, time.time()).decisions

        events, decisions, seconds = run_cycle(lead, args.calls, args.concurrent)
        results["lead_per_event"] = rate_entry(events, decisions, seconds)
        results["inbox_batches"] = bench_inbox(node, args)
    finally:
        log.close()
    return {"agents": args.agents, "calls": args.calls, "concurrent": args.concurrent, **results}


def bench_inbox(node: ClusterNode, args: argparse.Namespace) -> dict:
    """Waves of `--batch` calls: submit their events (as the hosting nodes would), the leader drains
    them 100 at a time; events/s of the draining alone and with the submissions. A call not offered
    at once (every agent busy) is offered when an earlier one ends, and answered in the next wave."""
    timing = {"drain": 0.0, "submit": 0.0}
    counts = {"events": 0, "decisions": 0}
    offered: dict[str, str] = {}

    def submit(events: list) -> None:
        started = time.perf_counter()
        for event in events:
            node.submit(event)
        timing["submit"] += time.perf_counter() - started
        node.tick(time.monotonic(), time.time())  # keeps the lease
        started = time.perf_counter()
        while True:
            outcomes, _ = node.drain_inbox(time.time(), limit=100)
            if not outcomes:
                break
            for outcome in outcomes:
                counts["events"] += 1
                counts["decisions"] += len(outcome.decisions)
                offered.update((d.call_id, d.agent_id) for d in outcome.decisions if isinstance(d, Offer))
        timing["drain"] += time.perf_counter() - started

    for first in range(0, args.calls, args.batch):
        pending = {f"i{n}" for n in range(first, min(args.calls, first + args.batch))}
        submit([CallArrived(call_id=call_id, queue="q") for call_id in sorted(pending)])
        while pending:
            ready = sorted(call_id for call_id in offered if call_id in pending)
            if not ready:
                raise RuntimeError(f"calls waiting with no offer and none to end: {sorted(pending)[:5]}")
            submit([OfferAnswered(call_id=call_id, agent_id=offered.pop(call_id)) for call_id in ready])
            submit([CallEnded(call_id=call_id) for call_id in ready])
            pending.difference_update(ready)
    entry = rate_entry(counts["events"], counts["decisions"], timing["drain"])
    entry["with_submits_events_per_s"] = round(counts["events"] / (timing["drain"] + timing["submit"]), 1)
    return entry


def rate_entry(events: int, decisions: int, seconds: float) -> dict:
    return {"events": events, "decisions": decisions, "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds, 1), "decisions_per_s": round(decisions / seconds, 1),
            "calls_per_s": round(events / 3 / seconds, 1)}


def print_authority(result: dict) -> None:
    print(f"routing authority ({result['agents']} agents, {result['concurrent']} calls in progress, "
          f"3 events per call):")
    print(f"{'':>24} {'events/s':>10} {'decisions/s':>12} {'calls/s':>9}")
    for name in ("engine", "lead_per_event", "inbox_batches"):
        entry = result[name]
        print(f"{name:>24} {entry['events_per_s']:>10} {entry['decisions_per_s']:>12} {entry['calls_per_s']:>9}")
    print(f"{'inbox with submits':>24} {result['inbox_batches']['with_submits_events_per_s']:>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("all", "rate", "authority"), default="all")
    parser.add_argument("--nodes", default="1,2,3", help="node counts for `rate` (default 1,2,3)")
    parser.add_argument("--rates", default="20,40,60,80,100,120,150",
                        help="calls/s steps, increasing (default 20,...,150)")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--settle-seconds", type=float, default=3.0, help="pause before and between steps")
    parser.add_argument("--agents", type=int, default=200, help="SIPp agents (rate) / engine agents (authority)")
    parser.add_argument("--one-node-front", choices=("direct", "kamailio"), default="direct")
    parser.add_argument("--one-node-cluster", action="store_true", help="run the one node with `cluster:` too")
    parser.add_argument("--rtp-workers", default=None, help="rtp: workers: of every node (default: the shipped)")
    parser.add_argument("--calls", type=int, default=5000, help="authority: calls in the cycle")
    parser.add_argument("--concurrent", type=int, default=100, help="authority: calls in progress")
    parser.add_argument("--batch", type=int, default=100, help="authority: calls per inbox wave")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' and Kamailio's logs (a temp dir)")
    parser.add_argument("--out", default="bench-cluster.json")
    args = parser.parse_args(argv)
    args.rates = [float(rate) for rate in args.rates.split(",")]
    report: dict = {"machine": platform.platform(), "python": platform.python_version(),
                    "command": " ".join(sys.argv)}
    database = PgCluster().start()  # fsync on: the commits cost what they cost in production
    work = Path(tempfile.mkdtemp(prefix="acd-bench-cluster-"))
    try:
        if args.part in ("all", "authority"):
            report["authority"] = bench_authority(database, args)
            print_authority(report["authority"])
        if args.part in ("all", "rate"):
            report["rate"] = [bench_rate(database, work, int(count), args) for count in args.nodes.split(",")]
            print(f"\n{'nodes':>5} {'through':>9} {'best rate':>10} {'routing p50/p99 ms at it':>26} "
                  f"{'cluster histogram p50/p99':>26}")
            for entry in report["rate"]:
                best = next((s for s in entry["steps"] if s["rate"] == entry["best_rate"]), None)
                print(f"{entry['nodes']:>5} {entry['through']:>9} {entry['best_rate'] or '-':>10} "
                      f"{(str(best['routing_ms_p50']) + '/' + str(best['routing_ms_p99'])) if best else '-':>26} "
                      f"{(str(best['cluster_routing_ms_p50']) + '/' + str(best['cluster_routing_ms_p99'])) if best else '-':>26}")
    finally:
        database.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}" + (f" (logs in {work})" if args.keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
