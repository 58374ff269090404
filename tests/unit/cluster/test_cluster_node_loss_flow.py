"""Node loss end to end, in one process against a real (throwaway) PostgreSQL: three nodes with
their membership, routing log and records; a follower dies, then the leader. The survivors declare
each death once, the dead node's calls end in the engine (agent to wrap-up) and are closed as
"interrupted" in the records (agent freed), the other calls go on, and a new leader takes over."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from acd.cluster.lease import BecameLeader, LeaseMachine
from acd.cluster.membership import Membership, NodeDied
from acd.cluster.node import ClusterNode
from acd.cluster.node_loss import NodeLoss
from acd.cluster.pg_log import PgRoutingLog
from acd.cluster.pg_members import ClusterMembers, PgMembers
from acd.routing import AgentLoggedIn, AgentState, CallArrived, OfferAnswered, QueueConfig, RoutingConfig
from acd.store.records_pg import PgRecordStore
from tests.store_backends import read_rows

LEASE_SECONDS = 1.0
TIMEOUT = 0.6
CONFIG = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=30.0),))


class Node:
    """One cluster node's three parts and its reaction to deaths, as the server will wire them."""

    def __init__(self, pg_url: str, name: str, channel: str) -> None:
        log = PgRoutingLog(pg_url, name, lease_seconds=LEASE_SECONDS, channel=channel).connect()
        lease = LeaseMachine(name, lease_seconds=LEASE_SECONDS, safety_margin_seconds=0.1, start=time.monotonic())
        self.name = name
        self.routing = ClusterNode(log, lease, CONFIG)
        self.members = ClusterMembers(PgMembers(pg_url, name, f"127.0.0.1{name[-1]}:5060"),
                                      Membership(name, node_timeout_seconds=TIMEOUT))
        self.records = PgRecordStore(pg_url, node=name)
        self.loss = NodeLoss(self.routing, self.records, self.members.membership.dead_nodes)
        self.deaths: list[NodeDied] = []

    def tick(self, now: float) -> None:
        """The node's tick loop: routing (lease, log), then membership, then reactions."""
        actions, _ = self.routing.tick(now)
        if any(isinstance(action, BecameLeader) for action in actions):
            self.loss.became_leader(now)
        events = self.members.tick(now)
        fresh = self.members.read(now) if self.loss.sweep_due and self.routing.is_leader else None
        events += fresh or []  # a new leader ends the dead's calls after a read that follows its routing
        self.deaths.extend(event for event in events if isinstance(event, NodeDied))
        self.loss.membership_events(events, now, read=fresh is not None)

    def arrive(self, call_id: str, now: float) -> None:
        """A caller reaches the queue on this node: its record, then its routing event."""
        self.records.call_arrived(call_id, trunk="t", caller="1", dialled="2", at=now)
        self.routing.submit(CallArrived(call_id=call_id, queue="support"))

    def answered(self, call_id: str, agent: str, now: float) -> None:
        """The agent answered this node's call."""
        self.records.call_connected(call_id, agent=agent, at=now, queue="support")
        self.records.agent_presence(agent, state="on_call", queues={"support": 0}, reason="answered", at=now)
        self.routing.submit(OfferAnswered(call_id=call_id, agent_id=agent))

    def kill(self) -> None:
        """kill -9: its connections drop, it ticks no more."""
        self.routing.log.close()
        self.members.store.close()
        self.records.close()

    def close(self) -> None:
        self.routing.log.close()
        self.members.store.close()
        self.records.close()


def age_heartbeat(pg_url: str, node_id: str) -> None:
    """The node has been silent long enough (instead of waiting for it)."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("UPDATE cluster_nodes SET heartbeat_at = now() - interval '10 s' WHERE node_id = %s", [node_id])


@pytest.fixture
def cluster(pg_url):
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"
    nodes = [Node(pg_url, f"n{i}", channel) for i in (1, 2, 3)]
    yield nodes
    for node in nodes:
        node.close()


def test_a_follower_then_the_leader_die_and_the_survivors_clean_up_once(cluster, pg_url):
    n1, n2, n3 = cluster
    start = time.monotonic()
    for node in cluster:
        node.members.start(start)
        node.tick(start)
    assert n1.routing.is_leader
    for agent in ("alice", "bob", "carol"):
        n1.routing.lead(AgentLoggedIn(agent_id=agent, queues={"support": 0}), start)
    n2.arrive("on-n2", start)
    n3.arrive("on-n3", start)
    n1.arrive("on-n1", start)
    outcomes, _ = n1.routing.drain_inbox(start)
    agent_of = {o.decisions[0].call_id: o.decisions[0].agent_id for o in outcomes}
    n2.answered("on-n2", agent_of["on-n2"], start + 0.1)
    n3.answered("on-n3", agent_of["on-n3"], start + 0.1)
    n1.routing.drain_inbox(start + 0.1)

    n2.kill()
    age_heartbeat(pg_url, "n2")
    for node in (n1, n3):
        node.tick(start + 1.0)  # a heartbeat read: n2 is silent
    for node in (n1, n3):
        node.tick(start + 1.0 + TIMEOUT)  # its deadline: claimed
    assert sorted((d.node_id, d.claimed) for d in n1.deaths + n3.deaths) == [("n2", False), ("n2", True)]
    engine = n1.routing.replica.engine
    assert engine.call_ids() == ["on-n3", "on-n1"]
    assert engine.agent_view(agent_of["on-n2"]).state is AgentState.WRAP_UP
    for node in (n1, n3):
        assert node.records.flush()
    ended = {row["call_id"]: (row["node"], row["outcome"])
             for row in read_rows(pg_url, "SELECT call_id, node, outcome FROM calls")}
    assert ended == {"on-n2": ("n2", "interrupted"), "on-n3": ("n3", None), "on-n1": ("n1", None)}
    freed = read_rows(pg_url, "SELECT agent_id, state FROM agent_states")
    assert freed == [{"agent_id": agent_of["on-n2"], "state": "available"}]

    n1.kill()  # now the leader
    age_heartbeat(pg_url, "n1")
    deadline = time.monotonic() + LEASE_SECONDS + 3.0
    while not n3.routing.is_leader:
        assert time.monotonic() < deadline, "n3 never took over"
        time.sleep(0.05)
        n3.tick(time.monotonic())
    n3.tick(time.monotonic() + 2.0)  # its membership: n1 is silent, then claimed
    n3.tick(time.monotonic() + 2.0 + TIMEOUT)
    assert [(d.node_id, d.claimed) for d in n3.deaths][-1] == ("n1", True)
    assert n3.routing.replica.engine.call_ids() == ["on-n3"]
    assert n3.routing.replica.hosts == {"on-n3": "n3"}
    assert n3.records.flush()
    outcomes = {row["call_id"]: row["outcome"] for row in read_rows(pg_url, "SELECT call_id, outcome FROM calls")}
    assert outcomes == {"on-n2": "interrupted", "on-n3": None, "on-n1": "interrupted"}


class HeldRecords:
    """A survivor's records reached late: `close_node_calls` is held (the hop to the reactor and the
    records writer's queue, as in the server) until `release`."""

    def __init__(self, records: PgRecordStore) -> None:
        self.records = records
        self.held: list[tuple[tuple, dict]] = []

    def close_node_calls(self, *args, **kwargs) -> None:
        self.held.append((args, kwargs))

    def release(self) -> None:
        for args, kwargs in self.held:
            self.records.close_node_calls(*args, **kwargs)
        assert self.records.flush()


def test_a_death_claimed_before_a_quick_restart_spares_the_next_incarnations_calls(pg_url):
    """The race, deterministically: n2 (incarnation 1) dies with a call; n3 claims its death (a
    follower: it closes the records, late, and leaves the engine to the leader); n2 restarts at once
    as incarnation 2, ends its old call and takes a new one, which bob answers; then the leader n1
    dies before it heard of n2's death, and n3 takes over holding n2 dead as it last read it. Neither
    n3's late records close (incarnation 1) nor its sweep as the new leader (after a read that shows
    n2 back) touches the new call: it stays in the engine hosted by n2, bob on it, its record open."""
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"
    n1, n2, n3 = (Node(pg_url, f"n{i}", channel) for i in (1, 2, 3))
    held = HeldRecords(n3.records)
    n3.loss.records = held
    nodes = [n1, n2, n3]
    try:
        start = time.monotonic()
        for node in nodes:
            node.members.start(start)
            node.tick(start)
        assert n1.routing.is_leader
        for agent in ("alice", "bob"):
            n1.routing.lead(AgentLoggedIn(agent_id=agent, queues={"support": 0}), start)
        n2.arrive("old", start)
        (offered,), _ = n1.routing.drain_inbox(start)
        first_agent = offered.decisions[0].agent_id
        n2.answered("old", first_agent, start + 0.1)
        n1.routing.drain_inbox(start + 0.1)

        n2.kill()
        age_heartbeat(pg_url, "n2")
        n3.tick(start + 1.0)
        n3.tick(start + 1.0 + TIMEOUT)  # n3 wins the claim: a follower, it closes the records (held)
        assert [(d.node_id, d.incarnation, d.claimed) for d in n3.deaths] == [("n2", 1, True)]
        assert n3.members.membership.dead_nodes() == {"n2"}

        again = Node(pg_url, "n2", channel)  # restarted at once: incarnation 2, same id
        nodes.append(again)
        now = time.monotonic()
        again.members.start(now)
        again.records.incarnation = again.members.membership.incarnation  # as ClusterLife.start does
        assert again.records.incarnation == 2
        again.routing.tick(now)
        assert again.routing.end_previous_calls(now) == ["old"]
        again.arrive("new", now)
        n1.routing.tick(time.monotonic())
        outcomes, _ = n1.routing.drain_inbox(now)  # "old" ended, "new" offered to the other agent
        second_agent = outcomes[-1].decisions[0].agent_id
        assert second_agent != first_agent
        again.answered("new", second_agent, now + 0.1)
        n1.routing.drain_inbox(now + 0.1)
        assert n1.routing.replica.hosts == {"new": "n2"}
        assert again.records.flush()

        n1.kill()  # the leader dies before it heard of n2's death
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("UPDATE routing_lease SET expires_at = now() - interval '1 s'")
        later = now
        for _ in range(40):
            later += 0.5
            actions, _ = n3.routing.tick(later)
            if any(isinstance(action, BecameLeader) for action in actions):
                break
        assert n3.routing.is_leader and "new" in n3.routing.replica.engine.call_ids()
        n3.loss.became_leader(later)  # its dead set still says n2: read before n2 came back
        assert n3.members.membership.dead_nodes() == {"n2"}
        fresh = n3.members.read(later)
        assert fresh is not None and n3.members.membership.dead_nodes() == set()
        assert n3.loss.membership_events(fresh, later, read=True) == []
        engine = n3.routing.replica.engine
        assert engine.call_ids() == ["new"] and n3.routing.replica.hosts == {"new": "n2"}
        assert engine.agent_view(second_agent).state is AgentState.ON_CALL

        held.release()  # n3's close of incarnation 1 reaches the database only now
        assert [kwargs["incarnation"] for _args, kwargs in held.held] == [1]
        outcomes = {row["call_id"]: row["outcome"] for row in read_rows(pg_url, "SELECT call_id, outcome FROM calls")}
        assert outcomes == {"old": "interrupted", "new": None}
        presence = {row["agent_id"]: row["state"] for row in read_rows(pg_url, "SELECT * FROM agent_presence")}
        assert presence == {first_agent: "available", second_agent: "on_call"}
    finally:
        for node in nodes:
            node.close()
