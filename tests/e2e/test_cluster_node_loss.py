"""Node loss with a real kill -9 (issue 20), before the cluster is wired into `acd serve`: a child
process runs node n2's membership (heartbeats), records (its call) and routing submissions, against
a real PostgreSQL; this test process is the leader n1. After `kill -9` of n2, n1 notices within
the node timeout (plus a tick), declares n2 dead, ends its call in the routing engine (the agent to
wrap-up) and closes its record as "interrupted" (the agent freed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from acd.cluster.lease import LeaseMachine
from acd.cluster.membership import Membership, NodeDied
from acd.cluster.node import ClusterNode
from acd.cluster.node_loss import NodeLoss
from acd.cluster.pg_log import PgRoutingLog
from acd.cluster.pg_members import ClusterMembers, PgMembers
from acd.routing import AgentLoggedIn, AgentState, OfferAnswered, QueueConfig, RoutingConfig
from acd.store.records_pg import PgRecordStore
from tests.store_backends import read_rows

from .harness import wait_until

NODE_TIMEOUT_SECONDS = 1.0
CONFIG = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=30.0),))

# Node n2: joins, writes its caller's record, submits the call to the leader, then heartbeats until killed.
CHILD = textwrap.dedent("""
    import sys, time
    from acd.cluster.membership import Membership
    from acd.cluster.pg_log import PgRoutingLog
    from acd.cluster.pg_members import ClusterMembers, PgMembers
    from acd.cluster.wire import encode_event
    from acd.routing import CallArrived
    from acd.store.records_pg import PgRecordStore

    url, channel, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    members = ClusterMembers(PgMembers(url, "n2", "127.0.0.12:5060"), Membership("n2", node_timeout_seconds=timeout))
    members.start(time.monotonic())
    records = PgRecordStore(url, node="n2")
    records.call_arrived("on-n2", trunk="t", caller="1", dialled="2", at=time.time())
    records.call_connected("on-n2", agent="alice", at=time.time(), queue="support")
    records.agent_presence("alice", state="on_call", queues={"support": 0}, reason="answered on-n2", at=time.time())
    assert records.flush()
    log = PgRoutingLog(url, "n2", channel=channel).connect()
    log.submit({"input": encode_event(CallArrived(call_id="on-n2", queue="support"))})
    print("ready", flush=True)
    while True:
        members.tick(time.monotonic())
        time.sleep(0.05)
""")


@pytest.fixture
def leader(pg_url):
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"
    log = PgRoutingLog(pg_url, "n1", channel=channel).connect()
    node = ClusterNode(log, LeaseMachine("n1", start=time.monotonic()), CONFIG)
    members = ClusterMembers(PgMembers(pg_url, "n1", "127.0.0.11:5060"),
                             Membership("n1", node_timeout_seconds=NODE_TIMEOUT_SECONDS))
    records = PgRecordStore(pg_url, node="n1")
    yield node, members, records, channel
    log.close()
    members.store.close()
    records.close()


def test_a_node_killed_9_is_declared_dead_its_call_ended_and_its_record_interrupted(leader, pg_url):
    node, members, records, channel = leader
    loss = NodeLoss(node, records, members.membership.dead_nodes)
    deaths: list[NodeDied] = []

    def tick() -> None:
        """n1's loop: routing, then membership (its heartbeats keep it alive in n2's eyes), reactions."""
        node.tick(time.monotonic(), time.time())
        events = members.tick(time.monotonic())
        deaths.extend(event for event in events if isinstance(event, NodeDied))
        loss.membership_events(events, time.time())

    def ticking_until(predicate, timeout: float, what: str):
        def check():
            tick()
            return predicate()
        return wait_until(check, timeout, what)

    members.start(time.monotonic())
    tick()
    assert node.is_leader
    node.lead(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.time())
    child = subprocess.Popen([sys.executable, "-c", CHILD, pg_url, channel, str(NODE_TIMEOUT_SECONDS)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        outcomes = ticking_until(lambda: node.drain_inbox(time.time())[0] or None, 10, "n2's call in the inbox")
        assert outcomes[0].decisions[0].agent_id == "alice"
        node.lead(OfferAnswered(call_id="on-n2", agent_id="alice"), time.time(), origin="n2")
        ticking_until(lambda: members.membership.status("n2").value == "up"
                      and time.monotonic() >= members.membership.store_since + NODE_TIMEOUT_SECONDS, 10,
                      "n2 seen up, and n1 connected to the store for a whole node timeout")

        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        ticking_until(lambda: deaths, NODE_TIMEOUT_SECONDS + 4.0, "n2's death declared")
        noticed = time.monotonic() - killed
        print(f"n2 declared dead {noticed:.2f} s after its kill -9")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert deaths == [NodeDied(node_id="n2", incarnation=1, claimed=True, reason="no heartbeat for 1 s")]
    assert noticed < NODE_TIMEOUT_SECONDS + 1.0, f"noticed {noticed:.2f} s after the kill"
    assert node.replica.engine.call_ids() == []
    assert node.replica.engine.agent_view("alice").state is AgentState.WRAP_UP
    assert records.flush()
    (call,) = read_rows(pg_url, "SELECT node, outcome, end_reason FROM calls")
    assert (call["node"], call["outcome"]) == ("n2", "interrupted")
    assert call["end_reason"] == "node n2 stopped unexpectedly (no heartbeat for 1 s)"
    assert read_rows(pg_url, "SELECT agent_id, state FROM agent_presence") == [{"agent_id": "alice",
                                                                                 "state": "available"}]
