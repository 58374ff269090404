"""The routing log and lease in a real (throwaway) PostgreSQL: two nodes in one process, one leads
and one tails; the leader's connection is killed, the follower takes over, the deposed leader's
late append is refused, and every replica ends equal."""

from __future__ import annotations

import time
import uuid

import pytest

from acd.cluster.lease import BecameLeader, LeaseMachine, Role, SteppedDown
from acd.cluster.node import ClusterNode
from acd.cluster.pg_log import FencedOut, PgRoutingLog
from acd.cluster.routing_log import LogEntry, replay
from acd.routing import AgentLoggedIn, CallArrived, CallConnected, CallEnded, Offer, OfferAnswered, QueueConfig, RoutingConfig

LEASE_SECONDS = 1.0  # short, so a takeover test waits about a second
CONFIG = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=2.0),), skills={"billing"})


def node(pg_url: str, name: str, channel: str) -> ClusterNode:
    """A node on its own connection, whose lease machine asks for the lease at once."""
    log = PgRoutingLog(pg_url, name, lease_seconds=LEASE_SECONDS, channel=channel).connect()
    lease = LeaseMachine(name, lease_seconds=LEASE_SECONDS, safety_margin_seconds=0.1, start=time.monotonic())
    return ClusterNode(log, lease, CONFIG)


def view(cluster_node: ClusterNode) -> tuple:
    """What a node's replica shows: position in the log, agents, calls, queue figures, next deadline."""
    engine = cluster_node.replica.engine
    return (cluster_node.replica.last_seq, [engine.agent_view(a) for a in engine.agent_ids()],
            [engine.call_view(c) for c in engine.call_ids()], engine.queue_stats("support", 1e6),
            engine.next_deadline())


@pytest.fixture
def nodes(pg_url):
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"  # NOTIFY channels are database-wide
    made = [node(pg_url, "node-a", channel), node(pg_url, "node-b", channel)]
    yield made
    for each in made:
        each.log.close()


def test_one_node_leads_the_other_tails_and_takes_over_when_the_leader_dies(nodes, pg_url):
    import psycopg

    a, b = nodes
    actions, _ = a.tick(time.monotonic())
    assert BecameLeader(epoch=1) in actions
    b.tick(time.monotonic())
    assert b.lease.role is Role.FOLLOWER and b.lease.holder == "node-a"

    a.lead(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.monotonic())
    offer = a.lead(CallArrived(call_id="c1", queue="support"), time.monotonic())
    assert [type(d) for d in offer.decisions][0] is Offer
    assert b.log.wait(timeout_seconds=2.0) == "log"  # woken by the leader's append
    _, outcomes = b.tick(time.monotonic())
    assert outcomes[-1].decisions == offer.decisions  # the follower computed the leader's decisions
    assert view(b) == view(a)

    a.snapshot()
    connected = a.lead(OfferAnswered(call_id="c1", agent_id="alice"), time.monotonic())
    assert isinstance(connected.decisions[0], CallConnected)

    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [a.log.backend_pid()])
    killed_at = time.monotonic()
    while not b.is_leader:
        assert time.monotonic() - killed_at < LEASE_SECONDS + 3.0, "the follower never took over"
        b.tick(time.monotonic())
        time.sleep(0.02)
    took = time.monotonic() - killed_at
    assert b.lease.epoch == 2
    assert took < LEASE_SECONDS + 1.0  # a lease's worth, plus one tick of slack
    assert view(b)[0] == 7  # caught up to the end of the log (login, call, snapshot, answer)

    # The deposed leader, back on a new connection and not yet aware of its fate, appends late.
    a.log.connect()
    with pytest.raises(FencedOut):
        a.lead(CallArrived(call_id="late", queue="support"), time.monotonic())
    assert not a.is_leader
    assert a.log.read_after(7) == []  # nothing of it reached the log

    b.lead(CallEnded(call_id="c1"), time.monotonic())  # alice to wrap-up (2 s)
    b.lead(CallArrived(call_id="c2", queue="support"), time.monotonic())
    _, timed = b.tick(time.monotonic(), routing_now=time.monotonic() + 10.0)  # alice's wrap-up is over
    assert [(d.call_id, d.agent_id) for d in timed[-1].decisions if isinstance(d, Offer)] == [("c2", "alice")]
    a.tick(time.monotonic())
    assert view(a) == view(b)
    rebuilt = replay(CONFIG, b.log.read_from_last_snapshot())
    assert rebuilt.last_seq == b.replica.last_seq
    assert rebuilt.engine.agent_view("alice") == b.replica.engine.agent_view("alice")
    epochs = [(e.seq, e.epoch) for e in b.log.read_after(0)]
    assert epochs[-1] == (13, 2) and all(epoch == 1 for seq, epoch in epochs if seq <= 7)


def test_the_leader_renews_at_the_same_epoch_and_an_unexpired_lease_is_refused_to_others(nodes):
    a, b = nodes
    start = time.monotonic()
    a.tick(start)
    b.tick(start)
    renewals = 0
    while renewals < 2:
        deadline = a.lease.next_deadline()
        time.sleep(max(0.0, deadline - time.monotonic()))
        actions, _ = a.tick(time.monotonic())
        renewals += sum(1 for action in actions if type(action).__name__ == "RenewLease")
        assert not any(isinstance(action, SteppedDown) for action in actions)
    assert a.is_leader and a.lease.epoch == 1
    refused = b.log.acquire(time.monotonic())
    assert refused.holder == "node-a" and 0 < refused.remaining_seconds <= LEASE_SECONDS


def test_an_append_must_carry_the_current_epoch_and_the_next_free_seq(nodes):
    import psycopg

    a, _b = nodes
    a.tick(time.monotonic())
    entry = LogEntry(epoch=1, seq=1, kind="event", payload={"at": 0.0, "input": {"type": "TimersDue"}})
    with pytest.raises(FencedOut):
        a.log.append([LogEntry(epoch=9, seq=1, kind="event", payload=entry.payload)], epoch=9)
    assert a.log.append([entry], epoch=1) == 1
    with pytest.raises(psycopg.errors.UniqueViolation):
        a.log.append([entry], epoch=1)


def test_an_append_racing_a_change_of_holder_waits_for_it_and_is_refused(nodes, pg_url):
    """The append locks the lease row (FOR SHARE): while another node's takeover is uncommitted the
    append waits, then sees the new epoch and inserts nothing; so once a takeover commits, no entry
    of the old epoch can still arrive, and the new leader's catch-up reads a final log."""
    import threading

    import psycopg

    a, _b = nodes
    a.tick(time.monotonic())
    entry = LogEntry(epoch=1, seq=1, kind="event", payload={"at": 0.0, "input": {"type": "TimersDue"}})
    result: list[object] = []
    with psycopg.connect(pg_url) as takeover:  # a transaction, held open
        takeover.execute("UPDATE routing_lease SET holder = 'node-b', epoch = epoch + 1 WHERE id = 1")
        appender = threading.Thread(target=lambda: result.append(_append_or_error(a.log, entry)))
        appender.start()
        appender.join(timeout=0.3)
        assert appender.is_alive(), "the append did not wait for the uncommitted takeover"
        takeover.commit()
    appender.join(timeout=5.0)
    assert isinstance(result[0], FencedOut)
    assert a.log.read_after(0) == []


def _append_or_error(log: PgRoutingLog, entry: LogEntry) -> object:
    try:
        return log.append([entry], epoch=entry.epoch)
    except FencedOut as error:
        return error


def test_a_follower_submits_its_callers_and_the_leader_routes_them_exactly_once(nodes):
    """Events of calls hosted by any node reach the leader through the inbox; the leader's fenced
    append consumes the rows, so a deposed leader's attempt leaves them for its successor."""
    a, b = nodes
    a.tick(time.monotonic())
    b.tick(time.monotonic())
    a.lead(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.monotonic())
    b.submit(CallArrived(call_id="on-b", queue="support"))
    b.log.connection.execute("INSERT INTO routing_inbox (origin, payload) VALUES ('node-b', '{\"input\": {}}')")
    woken = [a.log.wait(timeout_seconds=2.0) for _ in range(2)]  # its own append's, then b's submission
    assert woken == ["log", "inbox"]
    outcomes, rejected = a.drain_inbox(time.monotonic())
    assert [(o.decisions[0].call_id, o.decisions[0].agent_id) for o in outcomes] == [("on-b", "alice")]
    assert [origin for _id, origin, _why in rejected] == ["node-b"]
    assert rejected[0][2].startswith("unknown routing event type")
    assert a.log.read_inbox() == []
    assert a.drain_inbox(time.monotonic()) == ([], [])
    _, seen = b.tick(time.monotonic())
    assert seen[-1].decisions == outcomes[0].decisions  # node-b learns its caller was offered to alice
    assert b.log.read_after(0)[-2].payload["origin"] == "node-b"

    b.submit(CallArrived(call_id="on-b-2", queue="support"))
    with pytest.raises(FencedOut):  # the lease moved on: nothing consumed, nothing appended
        a.log.connection.execute("UPDATE routing_lease SET epoch = epoch + 1, holder = 'node-c'")
        a.drain_inbox(time.monotonic())
    assert [payload["input"]["call_id"] for _i, _o, payload in a.log.read_inbox()] == ["on-b-2"]
    assert view(a) == view(b)


def test_the_leader_snapshots_once_enough_entries_follow_the_last_snapshot(nodes):
    a, b = nodes
    a.snapshot_every_entries = 4
    a.tick(time.monotonic())
    a.lead(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.monotonic())
    a.tick(time.monotonic())
    assert a.replica.last_snapshot_seq == 0  # 2 entries: not yet
    a.lead(CallArrived(call_id="c1", queue="support"), time.monotonic())
    a.tick(time.monotonic())
    assert a.replica.last_snapshot_seq == 5
    assert [e.kind for e in b.log.read_from_last_snapshot()] == ["snapshot"]
