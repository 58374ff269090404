"""The cluster end to end (issue 20, "Must show"): Kamailio on 127.0.0.10 in front of three `acd
serve` nodes in cluster mode on 127.0.0.11-13 (lease 1 s, node timeout 2 s), one PostgreSQL.

40 SIPp agents (one answering SIPp process, one port) register and log in through Kamailio; callers
come through Kamailio at RATE calls/s into the demo IVR (1000), press 2 (support) during the
welcome and wait in the queue; an agent answers after 100 ms, talks 300 ms and hangs up. Mid-run
the leader is killed -9, later a follower. Then, from the records in PostgreSQL and Kamailio's log:

- no agent is ever offered two calls at once: in the routing log (PostgreSQL), in log order, the
  authority never offers a call to an agent that has not been available again since its previous
  offer; and every offer a node made (its records: routing_events "offered to") is one the
  authority decided, made once;
- no call is routed to a killed node more than 5 s after its kill (Kamailio logs each new INVITE's
  node, and each failover);
- new calls are answered again within 5 s of each kill: every call reaching Kamailio from the kill
  on is answered (IVR) within 5 s, and one of them reaches an agent within 5 s of the kill;
- every call has a record: each call Kamailio sent to a node that was up at the time;
- the calls open on a killed node are closed "interrupted" by the survivors.

In a network namespace of its own (own_netns.py): the test runs again in a new pytest started in
a fresh namespace with only `lo` up, so PostgreSQL (that pytest's own `pg_cluster`, on the
namespace's 127.0.0.1), Kamailio, the nodes and SIPp all run there: 127.0.0.10-13 are the test's
alone, and nothing in it can reach the machine's addresses (the inner run asserts `lo` is its only
interface). The outer run starts nothing but that pytest (skipped, saying why, when no namespace
can be made: not root, no iproute2). Serial: four busy processes plus SIPp at RATE calls/s fill
both cores for the run.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import time
from pathlib import Path

import pytest

from acd.cluster.wire import decode_decisions
from acd.devtools.kamailio_front import unavailable_reason
from acd.routing import AgentState, AgentStateChanged, Offer

from .front_cluster import (NODE_HOSTS, Node, front_door, answering_agents, api, callers, finish, outcomes,
                            read_records, sipp_screen_counts, stop_process, support_agents_yaml)
from .harness import SCENARIOS, free_port, run_sipp, wait_until
from .own_netns import inside_own_netns, run_inside_own_netns

pytestmark = [pytest.mark.serial,
              pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))]

RATE = 50  # calls/s through Kamailio
SECONDS = 16  # of calls: RATE * SECONDS calls
FIRST_KILL_AFTER_SECONDS = 5.0  # the leader
SECOND_KILL_AFTER_SECONDS = 10.0  # a follower
AGENTS = [str(2300 + n) for n in range(40)]
LEASE_SECONDS = 1
NODE_TIMEOUT_SECONDS = 2  # 1 s: a leader stalled by a busy 2-core box (this test at nice 19) was declared dead
# The nodes' admission gate refuses new calls (503, no record: issue 21) once the event loop runs
# 100 ms late 3 ticks running. Four busy processes on two cores stall a node's loop for 300-400 ms
# around a kill (the stall watch logs "not scheduled"), and one run had 20 calls refused so, each
# counted here as a call without a record. What is under test is the cluster, so the limit is 1 s.
NODE_SIP_EXTRA = "  admission:\n    overload_loop_lag_seconds: 1.0\n"
WITHIN_SECONDS = 5.0
# The records of calls a node took this shortly before its kill -9 may be lost with it. None: a
# call's first record item goes to the records writer before the caller hears an answer (SHIP_AT_ONCE
# in acd/store/records_process.py), and a call the node never answered fails over to another node.
RECORDS_AT_RISK_SECONDS = 0.0
INSIDE_TIMEOUT_SECONDS = 240  # the whole inner pytest (about 40 s): PostgreSQL, nodes, Kamailio, calls, checks


def kamailio_routes(log: str, sipp_pid: int) -> list[tuple[str, str, float]]:
    """(call id, node URI, POSIX time) of each new INVITE of the SIPp callers with process id
    `sipp_pid` (their Call-IDs end in -pid@host) Kamailio sent to a node, failovers included."""
    return [(call_id, node, float(at)) for call_id, node, at in
            re.findall(rf"INVITE call-id (\S+-{sipp_pid}@\S+) to node (\S+) at ([0-9.]+)", log)]


def authority_double_offers(url: str) -> tuple[int, list[str], dict[tuple[str, str], int]]:
    """The routing authority's decisions in the routing log, in log order: (offers decided, the
    offers made to an agent not available again since its previous offer, offers per (call, agent))."""
    busy: dict[str, str] = {}  # agent -> the call it was last offered, until it is available again
    found: list[str] = []
    offers: dict[tuple[str, str], int] = {}
    rows = read_records(url, "SELECT seq, epoch, payload FROM routing_log WHERE kind = 'decision' ORDER BY seq")
    for row in rows:
        for decision in decode_decisions(row["payload"]["decisions"]):
            if isinstance(decision, Offer):
                if decision.agent_id in busy:
                    found.append(f"seq {row['seq']} (epoch {row['epoch']}): {decision.call_id} offered to "
                                 f"{decision.agent_id}, still busy with {busy[decision.agent_id]}")
                busy[decision.agent_id] = decision.call_id
                key = (decision.call_id, decision.agent_id)
                offers[key] = offers.get(key, 0) + 1
            elif isinstance(decision, AgentStateChanged) and decision.state is AgentState.AVAILABLE:
                busy.pop(decision.agent_id, None)
    return sum(offers.values()), found, offers


def offers_made(url: str) -> dict[tuple[str, str], int]:
    """The offers the nodes made, from their records (routing_events "offered to"): per (call, agent)."""
    made: dict[tuple[str, str], int] = {}
    for row in read_records(url, "SELECT call_id, what FROM routing_events WHERE what LIKE 'offered to %'"):
        key = (row["call_id"], re.match(r"offered to (\S+?):", row["what"]).group(1))
        made[key] = made.get(key, 0) + 1
    return made


def dump_records(url: str, path: Path) -> None:
    """The tables the checks read, as JSON in the test's directory (to look into a failure)."""
    tables = {table: read_records(url, f"SELECT * FROM {table}")
              for table in ("calls", "routing_events", "queue_log", "agent_states", "routing_log")}
    path.write_text(json.dumps(tables, default=str))


@pytest.fixture
def cluster(pg_cluster, tmp_path):
    """Three cluster nodes (HTTP API on) and Kamailio probing them every second; all up."""
    url = pg_cluster.create_schema(f"e2e_{secrets.token_hex(6)}")
    secret = secrets.token_bytes(32)
    files = {"conf/agents.yaml": support_agents_yaml(AGENTS)}
    nodes = [Node(tmp_path / f"node{n}", host, url, secret, files=files, http_port=free_port(both=False),
                  node_id=f"node{n}", sip_extra=NODE_SIP_EXTRA,
                  main_extra=f"cluster:\n  node_id: node{n}\n  lease_seconds: {LEASE_SECONDS}\n"
                             f"  node_timeout_seconds: {NODE_TIMEOUT_SECONDS}\n")
             for n, host in enumerate(NODE_HOSTS, start=1)]
    with front_door(tmp_path / "kamailio", nodes, fr_timer_ms=1000) as front:
        yield front, nodes


def leader_of(nodes: list[Node]) -> Node:
    """The live node every live node names as the leader (waits for them to agree)."""
    def agreed():
        live = {node.node_id: node for node in nodes if node.server.alive()}
        named = {api(node, "/api/cluster")["leader"] for node in live.values()}
        return len(named) == 1 and live.get(named.pop())
    return wait_until(agreed, 10, "the live nodes agree on a live leader")


def test_50_calls_a_second_through_kamailio_survive_the_kill_9_of_the_leader_then_a_follower(request, tmp_path):
    if not inside_own_netns():
        run_inside_own_netns(request, timeout_seconds=INSIDE_TIMEOUT_SECONDS)
        return
    front, nodes = request.getfixturevalue("cluster")
    agent_port = free_port(both=False)
    answering = answering_agents(tmp_path / "agents", front, agent_port)
    caller = None
    kills: list[tuple[Node, float]] = []
    try:
        csv = tmp_path / "agents.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(f"{a};[authentication username={a} password=pw-{a}];{agent_port}\n"
                                                for a in AGENTS))
        run_sipp(tmp_path / "login", front.target, "-inf", str(csv), scenario="front_agents_login.xml",
                 calls=len(AGENTS), rate=40, limit=len(AGENTS), timeout=30).assert_ok()
        wait_until(lambda: read_records(nodes[0].url, "SELECT COUNT(*) AS n FROM agent_presence "
                                                      "WHERE state = 'available'")[0]["n"] == len(AGENTS),
                   10, "every agent available in the shared records")
        leader = leader_of(nodes)
        caller = callers(tmp_path / "callers", front, calls=RATE * SECONDS, rate=RATE,
                         scenario=SCENARIOS / "front_ivr_queue_caller.xml", timeout_seconds=SECONDS + 30)
        started = time.monotonic()
        time.sleep(FIRST_KILL_AFTER_SECONDS)
        leader.server.process.send_signal(signal.SIGKILL)
        kills.append((leader, time.time()))
        leader.server.process.wait(timeout=5)
        new_leader = leader_of(nodes)
        time.sleep(max(0.0, SECOND_KILL_AFTER_SECONDS - (time.monotonic() - started)))
        follower = next(node for node in nodes if node.server.alive() and node is not new_leader)
        follower.server.process.send_signal(signal.SIGKILL)
        kills.append((follower, time.time()))
        follower.server.process.wait(timeout=5)
        code = finish(caller, SECONDS + 40)
        try:
            wait_until(lambda: not read_records(nodes[0].url, "SELECT 1 FROM calls WHERE ended_at IS NULL"), 10,
                       "every call record closed")
        except AssertionError:
            pass  # reported below, with the rest
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
            caller.wait(timeout=5)
        stop_process(answering)
    url = nodes[0].url
    dump_records(url, tmp_path / "records.json")
    successful, failed = sipp_screen_counts(tmp_path / "callers")
    routes = kamailio_routes(front.log(), caller.pid)
    calls = {row["call_id"]: row for row in read_records(
        url, "SELECT call_id, node, arrived_at, answered_at, connected_at, ended_at, outcome FROM calls")}
    report = [f"callers: {code=}, {successful} successful, {failed} failed of {RATE * SECONDS}; "
              f"records: {outcomes(url)}"]
    still_open = [(c, row["node"], row["arrived_at"]) for c, row in calls.items() if row["ended_at"] is None]
    report.append(f"records left open: {len(still_open)} {still_open[:5]}")

    decided, overlaps, decided_offers = authority_double_offers(url)
    made = offers_made(url)
    undecided = sorted(key for key, count in made.items() if count > decided_offers.get(key, 0))
    report.append(f"offers decided by the routing authority: {decided}, to an agent still busy: {len(overlaps)}; "
                  f"offers made by the nodes: {sum(made.values())}, not decided (or made twice): {len(undecided)}")

    first_route: dict[str, tuple[str, float]] = {}
    for call_id, node_uri, at in routes:
        first_route.setdefault(call_id, (node_uri, at))
    last_node = {call_id: (node_uri, at) for call_id, node_uri, at in routes}  # where each call ended up
    kill_time = {victim.uri: at for victim, at in kills}
    # Calls a node had taken when it was killed are that kill's casualties (closed "interrupted", or
    # without a record when taken in its last moments), not calls that failed to be answered after
    # an earlier kill.
    casualties = {call_id for call_id, (node_uri, at) in last_node.items()
                  if node_uri in kill_time and at <= kill_time[node_uri]}
    problems: list[str] = []
    for victim, killed_at in kills:
        late = [at - killed_at for _, node_uri, at in routes if node_uri == victim.uri and at > killed_at]
        after = [call_id for call_id, (_, at) in first_route.items() if at >= killed_at and call_id not in casualties]
        slow = [call_id for call_id in after if call_id in calls and calls[call_id]["answered_at"] is not None
                and calls[call_id]["answered_at"] - first_route[call_id][1] > WITHIN_SECONDS]
        unanswered = [call_id for call_id in after if calls.get(call_id, {}).get("answered_at") is None]
        connected = sorted(row["connected_at"] for call_id, row in calls.items()
                           if call_id in after and row["connected_at"] is not None)
        mine = [row for row in calls.values() if row["node"] == victim.node_id]
        open_at_kill = [row for row in mine if row["ended_at"] is None or row["ended_at"] > killed_at]
        interrupted = [row for row in open_at_kill if row["outcome"] == "interrupted"]
        report.append(
            f"kill -9 of {victim.node_id}: {len(late)} INVITEs sent to it after the kill (last "
            f"{max(late, default=0):.2f} s after); {len(after)} calls from then on, {len(unanswered)} unanswered, "
            f"{len(slow)} answered after more than {WITHIN_SECONDS:g} s; first one connected to an agent "
            f"{(connected[0] - killed_at) if connected else float('nan'):.2f} s after the kill; its calls open at "
            f"the kill: {len(open_at_kill)}, interrupted: {len(interrupted)}")
        if max(late, default=0) > WITHIN_SECONDS:
            problems.append(f"Kamailio sent calls to {victim.node_id} {max(late):.1f} s after its kill")
        if slow or unanswered:
            problems.append(f"after the kill of {victim.node_id}: unanswered {unanswered[:3]}, slow {slow[:3]}")
        if not connected or connected[0] - killed_at > WITHIN_SECONDS:
            problems.append(f"no call connected to an agent within {WITHIN_SECONDS:g} s of the kill of "
                            f"{victim.node_id}")
        if not open_at_kill or len(interrupted) != len(open_at_kill):
            problems.append(f"{victim.node_id}'s calls open at its kill not all interrupted: "
                            f"{[(r['call_id'], r['outcome']) for r in open_at_kill if r['outcome'] != 'interrupted'][:5]}")

    recordless = [call_id for call_id in last_node if call_id not in calls]
    # A kill -9 may take with it the records of the calls it got in its last moments (see the report).
    just_before = [call_id for call_id in recordless if last_node[call_id][0] in kill_time
                   and last_node[call_id][1] > kill_time[last_node[call_id][0]] - RECORDS_AT_RISK_SECONDS]
    recordless = [call_id for call_id in recordless if call_id not in just_before]
    report.append(f"calls through Kamailio: {len(last_node)}, with a record: {len(set(last_node) & set(calls))}; "
                  f"without: {len(recordless) + len(just_before)} ({len(just_before)} sent to a node less than "
                  f"{RECORDS_AT_RISK_SECONDS:g} s before its kill)")
    for call_id in recordless:
        node_uri, at = last_node[call_id]
        node = next(node for node in nodes if node.uri == node_uri)
        before = f"{kill_time[node_uri] - at:.3f} s before its kill" if node_uri in kill_time else "never killed"
        lines = [line for line in node.log().splitlines() if call_id in line or "records" in line]
        report.append(f"no record of {call_id}: sent to {node.node_id} {before}; its log says:\n  "
                      + "\n  ".join(lines[-12:]))
    print("\n".join(report))
    assert not overlaps, overlaps[:5]
    assert not undecided, undecided[:5]
    assert not recordless, "\n".join(report)
    assert not still_open, still_open[:5]
    assert not problems, "\n".join(problems + report)
    interrupted = outcomes(url).get("interrupted", 0)
    assert len(last_node) == RATE * SECONDS and successful + failed == RATE * SECONDS, report
    assert failed <= interrupted + len(just_before), \
        f"{failed} failed calls, only {interrupted} interrupted by the kills: {report}"
