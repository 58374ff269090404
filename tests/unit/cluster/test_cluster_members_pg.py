"""Cluster membership in a real (throwaway) PostgreSQL: heartbeats, incarnations, a silent node's
death claimed by exactly one survivor (racing claimers on their own connections), and the leader
ending the dead node's calls in the routing log, as every replica then sees."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from acd.cluster.lease import LeaseMachine
from acd.cluster.membership import Membership, NodeDied, NodeJoined, NodeLeft, SelfDeclaredDead
from acd.cluster.node import ClusterNode
from acd.cluster.pg_log import FencedOut, PgRoutingLog
from acd.cluster.pg_members import ClusterMembers, PgMembers
from acd.routing import (
    AgentLoggedIn,
    AgentState,
    AgentStateChanged,
    CallArrived,
    OfferAnswered,
    QueueConfig,
    RoutingConfig,
)

TIMEOUT = 0.6  # short, so a death is noticed within a second
CONFIG = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=2.0),))


def members(pg_url: str, name: str) -> ClusterMembers:
    """A node's membership on its own connection."""
    store = PgMembers(pg_url, name, f"127.0.0.{10 + int(name[-1])}:5060").connect()
    return ClusterMembers(store, Membership(name, node_timeout_seconds=TIMEOUT))


@pytest.fixture
def trio(pg_url):
    made = [members(pg_url, f"n{i}") for i in (1, 2, 3)]
    yield made
    for each in made:
        each.store.close()


def age_heartbeat(pg_url: str, node_id: str, seconds: float = 10.0) -> None:
    """Make a node look silent for `seconds` on the store's clock (instead of waiting for it)."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("UPDATE cluster_nodes SET heartbeat_at = now() - make_interval(secs => %s) WHERE node_id = %s",
                      [seconds, node_id])


def test_every_start_is_a_new_incarnation_and_the_old_ones_heartbeat_is_refused(pg_url):
    store = PgMembers(pg_url, "n1", "127.0.0.11:5060").connect()
    try:
        first = store.join()
        assert store.heartbeat(first)
        second = store.join()
        assert second == first + 1
        assert not store.heartbeat(first) and store.heartbeat(second, "draining")
        (seen,) = store.read()
        assert (seen.node_id, seen.state, seen.incarnation, seen.address) == ("n1", "draining", second,
                                                                             "127.0.0.11:5060")
        assert 0 <= seen.heartbeat_age_seconds < 1.0
        assert store.leave(second) and store.read()[0].state == "stopped"
        assert not store.heartbeat(second)
    finally:
        store.close()


def test_nodes_see_each_other_join_and_a_silent_one_is_declared_dead_by_exactly_one_survivor(trio, pg_url):
    n1, n2, n3 = trio
    start = time.monotonic()
    for each in trio:
        each.start(start)
    joined = n1.tick(start + 1.0)  # its heartbeat is due: it reads the others
    assert {event.node_id for event in joined if isinstance(event, NodeJoined)} == {"n2", "n3"}
    n3.tick(start + 1.0)

    age_heartbeat(pg_url, "n2")  # n2 stopped heartbeating long ago (kill -9)
    events = n1.tick(start + 2.0) + n3.tick(start + 2.0)
    events += n1.tick(start + 2.0 + TIMEOUT) + n3.tick(start + 2.0 + TIMEOUT)
    deaths = [event for event in events if isinstance(event, NodeDied)]
    assert sorted((d.node_id, d.claimed) for d in deaths) == [("n2", False), ("n2", True)]
    assert n1.membership.dead_nodes() == n3.membership.dead_nodes() == {"n2"}
    row = n1.store.read_one("n2")
    assert row.state == "dead"

    assert SelfDeclaredDead(node_id="n2", incarnation=1) in n2.tick(start + 2.5)  # the zombie finds out
    n2.start(start + 3.0)  # and rejoins as a new incarnation
    assert NodeJoined(node_id="n2", address="127.0.0.12:5060", incarnation=2) in n1.tick(start + 10.0)

    assert n3.leave()
    assert NodeLeft(node_id="n3", incarnation=1) in n1.tick(start + 11.0)


def test_two_survivors_claiming_one_death_at_once_one_wins(pg_url):
    """Both claims wait on the row, locked by a third transaction, then go at the same instant."""
    claimers = [PgMembers(pg_url, name, "127.0.0.1:5060").connect() for name in ("n1", "n3")]
    victim = PgMembers(pg_url, "n2", "127.0.0.12:5060").connect()
    try:
        for round_number in range(5):
            incarnation = victim.join()
            age_heartbeat(pg_url, "n2")
            results: list[bool] = []
            with psycopg.connect(pg_url) as holder:  # a transaction, held open
                holder.execute("SELECT 1 FROM cluster_nodes WHERE node_id = 'n2' FOR UPDATE")
                threads = [threading.Thread(target=lambda c=c: results.append(c.claim_death("n2", incarnation, 3.0)))
                           for c in claimers]
                for thread in threads:
                    thread.start()
                time.sleep(0.1)
                holder.commit()
            for thread in threads:
                thread.join(timeout=5.0)
            assert sorted(results) == [False, True], f"round {round_number}: {results}"
            assert victim.read_one("n2").state == "dead"
    finally:
        for store in claimers + [victim]:
            store.close()


def test_a_claim_is_refused_for_a_fresh_heartbeat_or_an_older_incarnation(pg_url):
    victim = PgMembers(pg_url, "n2", "127.0.0.12:5060").connect()
    claimer = PgMembers(pg_url, "n1", "127.0.0.11:5060").connect()
    try:
        first = victim.join()
        assert not claimer.claim_death("n2", first, 3.0)  # it heartbeats
        second = victim.join()  # restarted before anyone noticed
        age_heartbeat(pg_url, "n2")
        assert not claimer.claim_death("n2", first, 3.0)  # the old incarnation is not the row any more
        assert claimer.claim_death("n2", second, 3.0)
        assert not claimer.claim_death("n2", second, 3.0)  # once
    finally:
        victim.close()
        claimer.close()


def routing_node(pg_url: str, name: str, channel: str) -> ClusterNode:
    log = PgRoutingLog(pg_url, name, lease_seconds=1.0, channel=channel).connect()
    return ClusterNode(log, LeaseMachine(name, lease_seconds=1.0, safety_margin_seconds=0.1,
                                         start=time.monotonic()), CONFIG)


@pytest.fixture
def routing(pg_url):
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"
    made = [routing_node(pg_url, name, channel) for name in ("n1", "n2", "n3")]
    yield made
    for each in made:
        each.log.close()


def test_the_leader_ends_a_dead_nodes_calls_and_every_replica_sees_its_agent_freed(routing):
    leader, dead, follower = routing
    now = time.monotonic()
    for each in routing:
        each.tick(now)
    assert leader.is_leader
    leader.lead(AgentLoggedIn(agent_id="alice", queues={"support": 0}), now)
    leader.lead(AgentLoggedIn(agent_id="bob", queues={"support": 0}), now)
    dead.submit(CallArrived(call_id="on-n2", queue="support"))
    follower.submit(CallArrived(call_id="on-n3", queue="support"))
    outcomes, _ = leader.drain_inbox(now)
    agent_of = {o.decisions[0].call_id: o.decisions[0].agent_id for o in outcomes}
    leader.lead(OfferAnswered(call_id="on-n2", agent_id=agent_of["on-n2"]), now, origin="n2")
    leader.lead(CallArrived(call_id="on-n1", queue="support"), now)  # waits: both agents busy
    assert leader.replica.hosts == {"on-n2": "n2", "on-n3": "n3", "on-n1": "n1"}

    with pytest.raises(FencedOut):
        follower.node_died("n2", now)
    (ended,) = leader.node_died("n2", now + 1.0)
    assert AgentStateChanged(agent_id=agent_of["on-n2"], previous=AgentState.ON_CALL, state=AgentState.WRAP_UP,
                             reason="on-n2 ended") in ended.decisions
    assert leader.node_died("n2", now + 1.5) == []
    _, seen = follower.tick(time.monotonic())
    assert seen[-1].decisions == ended.decisions
    assert follower.replica.hosts == {"on-n3": "n3", "on-n1": "n1"}
    assert follower.replica.engine.call_ids() == ["on-n3", "on-n1"]
    event_entry = leader.log.read_after(0)[-2]
    assert event_entry.payload["cause"] == "interrupted: node n2 died"

    _, timed = leader.tick(time.monotonic(), routing_now=now + 10.0)  # the wrap-up is over: next call
    offers = [(d.call_id, d.agent_id) for outcome in timed for d in outcome.decisions if type(d).__name__ == "Offer"]
    assert offers == [("on-n1", agent_of["on-n2"])]


def test_a_restarted_node_ends_its_previous_incarnations_calls_through_the_leader(routing):
    leader, restarted, _ = routing
    now = time.monotonic()
    leader.tick(now)
    leader.lead(AgentLoggedIn(agent_id="alice", queues={"support": 0}), now)
    restarted.submit(CallArrived(call_id="before-restart", queue="support"))
    leader.drain_inbox(now)
    restarted.tick(now)
    assert restarted.end_previous_calls(now) == ["before-restart"]
    outcomes, _ = leader.drain_inbox(now + 1.0)
    assert outcomes[0].decisions[0].reason == "caller-abandoned"  # alice's offer withdrawn
    assert leader.replica.hosts == {} and leader.replica.engine.agent_view("alice").state is AgentState.AVAILABLE
    leader.lead(CallArrived(call_id="on-leader", queue="support"), now + 2.0)
    assert leader.end_previous_calls(now + 3.0) == ["on-leader"]  # a leader ends its own directly
    assert leader.replica.engine.call_ids() == []


def test_a_lost_store_connection_is_survived_and_claims_wait_until_the_store_was_back_a_timeout(trio, pg_url):
    n1, n2, _ = trio
    start = time.monotonic()
    n1.start(start)
    n2.start(start)
    n1.tick(start + 1.0)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [n1.store.connection.info.backend_pid])
    assert n1.tick(start + 2.0) == []  # the heartbeat failed: reported, not raised
    assert n1.membership.store_since is None
    age_heartbeat(pg_url, "n2")
    assert n1.tick(start + 3.0) == []  # connected again, n2 looks silent: but not claimable yet
    assert n1.membership.store_since == start + 3.0 and n1.store.read_one("n2").state == "up"
    deaths = n1.tick(start + 3.0 + TIMEOUT)
    assert [(d.node_id, d.claimed) for d in deaths if isinstance(d, NodeDied)] == [("n2", True)]
