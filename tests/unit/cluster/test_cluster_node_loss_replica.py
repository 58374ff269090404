"""Node loss on the routing replica (pure): every replica knows which node hosts each call, through
replays and snapshots, and ending a dead node's calls withdraws their offers and sends their agents
to wrap-up, then available, leaving the other nodes' calls alone."""

from __future__ import annotations

import json

import pytest

from acd.cluster.routing_log import LogEntry, LogError, RoutingReplica, replay
from acd.cluster.wire import TimersDue
from acd.routing import (
    AgentLoggedIn,
    AgentState,
    AgentStateChanged,
    CallArrived,
    CallEnded,
    Offer,
    OfferAnswered,
    OfferCancelled,
    QueueConfig,
    RoutingConfig,
)

WRAP_UP_SECONDS = 5.0
CONFIG = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=WRAP_UP_SECONDS,
                                           when_no_agents="refuse"),))


def json_round_trip(entries: list[LogEntry]) -> list[LogEntry]:
    """The entries as PostgreSQL's jsonb gives them back."""
    return [LogEntry(epoch=e.epoch, seq=e.seq, kind=e.kind, payload=json.loads(json.dumps(e.payload)))
            for e in entries]


class Leader:
    """A leader's replica and the log it writes (what ClusterNode does, without the store)."""

    def __init__(self) -> None:
        self.replica = RoutingReplica(CONFIG)
        self.log: list[LogEntry] = []

    def route(self, event, now: float, origin: str | None = None, cause: str | None = None):
        entries, outcome = self.replica.record(event, now, 1, origin=origin, cause=cause)
        self.log.extend(entries)
        return outcome

    def node_died(self, node_id: str, now: float) -> list:
        """End every call `node_id` hosts, as `ClusterNode.node_died` does."""
        return [self.route(CallEnded(call_id=call_id), now, origin=node_id, cause=f"interrupted: node {node_id} died")
                for call_id in self.replica.calls_hosted_by(node_id)]


@pytest.fixture
def leader() -> Leader:
    """Two agents logged in; c1 (hosted by n2) talks with one, c2 (n3) rings the other, c3 (n2) waits."""
    leader = Leader()
    leader.route(AgentLoggedIn(agent_id="alice", queues={"support": 0}), 0.0, origin="n1")
    leader.route(AgentLoggedIn(agent_id="bob", queues={"support": 0}), 0.0, origin="n1")
    offer = leader.route(CallArrived(call_id="c1", queue="support"), 1.0, origin="n2").decisions[0]
    leader.route(OfferAnswered(call_id="c1", agent_id=offer.agent_id), 2.0, origin="n2")
    leader.route(CallArrived(call_id="c2", queue="support"), 3.0, origin="n3")
    leader.route(CallArrived(call_id="c3", queue="support"), 4.0, origin="n2")
    return leader


def test_each_call_is_hosted_by_the_node_its_arrival_came_from(leader):
    assert leader.replica.hosts == {"c1": "n2", "c2": "n3", "c3": "n2"}
    assert leader.replica.calls_hosted_by("n2") == ["c1", "c3"]
    assert leader.replica.calls_hosted_by("n1") == []


def test_a_call_refused_or_ended_is_hosted_by_nobody():
    leader = Leader()
    refused = leader.route(CallArrived(call_id="x", queue="support"), 0.0, origin="n2")
    assert type(refused.decisions[0]).__name__ == "CallRefused"
    leader.route(AgentLoggedIn(agent_id="alice", queues={"support": 0}), 1.0)
    leader.route(CallArrived(call_id="y", queue="support"), 2.0, origin="n2")
    assert leader.replica.hosts == {"y": "n2"}
    leader.route(CallEnded(call_id="y"), 3.0, origin="n2")
    assert leader.replica.hosts == {}
    failed = leader.route(CallArrived(call_id="z", queue="nowhere"), 4.0, origin="n2")  # an error: not taken
    assert failed.error_id is not None and leader.replica.hosts == {}


def test_a_dead_nodes_calls_end_their_agents_go_to_wrap_up_then_available_and_other_calls_stay(leader):
    talking_agent = leader.replica.engine.call_view("c1").agent_ids[0]
    ringing_agent = leader.replica.engine.call_view("c2").agent_ids[0]
    outcomes = leader.node_died("n2", now=10.0)
    decisions = [d for outcome in outcomes for d in outcome.decisions]
    assert AgentStateChanged(agent_id=talking_agent, previous=AgentState.ON_CALL, state=AgentState.WRAP_UP,
                             reason="c1 ended") in decisions
    engine = leader.replica.engine
    assert engine.call_ids() == ["c2"] and leader.replica.hosts == {"c2": "n3"}
    assert engine.call_view("c2").agent_ids == (ringing_agent,)  # n3's call still rings its agent
    assert engine.agent_view(talking_agent).state is AgentState.WRAP_UP
    assert leader.log[-2].payload["cause"] == "interrupted: node n2 died"
    assert leader.log[-2].payload["origin"] == "n2"

    assert engine.next_deadline() == pytest.approx(10.0 + WRAP_UP_SECONDS)
    after_wrap = leader.route(TimersDue(), 10.0 + WRAP_UP_SECONDS)
    assert AgentStateChanged(agent_id=talking_agent, previous=AgentState.WRAP_UP, state=AgentState.AVAILABLE,
                             reason="wrap-up over") in after_wrap.decisions
    assert engine.agent_view(talking_agent).state is AgentState.AVAILABLE
    assert leader.node_died("n2", now=20.0) == []  # nothing left: a second death report changes nothing


def test_an_offer_to_an_agent_for_a_dead_nodes_call_is_withdrawn_and_the_agent_is_offered_the_next_call():
    leader = Leader()
    leader.route(AgentLoggedIn(agent_id="alice", queues={"support": 0}), 0.0, origin="n1")
    leader.route(CallArrived(call_id="dead-call", queue="support"), 1.0, origin="n2")
    leader.route(CallArrived(call_id="live-call", queue="support"), 2.0, origin="n3")
    (outcome,) = leader.node_died("n2", now=3.0)
    assert outcome.decisions[0] == OfferCancelled(call_id="dead-call", agent_id="alice", reason="caller-abandoned")
    offers = [d for d in outcome.decisions if isinstance(d, Offer)]
    assert [(o.call_id, o.agent_id) for o in offers] == [("live-call", "alice")]


def test_a_follower_replaying_the_log_knows_the_hosts_and_computes_the_same_death(leader):
    follower = replay(CONFIG, json_round_trip(leader.log))
    assert follower.hosts == leader.replica.hosts
    start = len(leader.log)
    leader.node_died("n2", now=10.0)
    for entry in json_round_trip(leader.log[start:]):
        follower.apply(entry)
    assert follower.hosts == leader.replica.hosts == {"c2": "n3"}
    assert follower.engine.call_ids() == ["c2"]


def test_a_snapshot_carries_the_hosts_so_a_replica_started_from_it_can_end_a_dead_nodes_calls(leader):
    snapshot = leader.replica.snapshot(1)
    leader.log.append(snapshot)
    assert snapshot.payload["hosts"] == {"c1": "n2", "c2": "n3", "c3": "n2"}
    leader.route(CallArrived(call_id="c4", queue="support"), 5.0, origin="n3")
    rebuilt = replay(CONFIG, json_round_trip(leader.log))
    assert rebuilt.last_snapshot_seq == snapshot.seq
    assert rebuilt.hosts == {"c1": "n2", "c2": "n3", "c3": "n2", "c4": "n3"}
    assert rebuilt.calls_hosted_by("n2") == ["c1", "c3"]


def test_a_snapshot_written_before_hosts_were_kept_loads_with_no_hosts(leader):
    snapshot = leader.replica.snapshot(1)
    old = dict(snapshot.payload)
    del old["hosts"]
    rebuilt = RoutingReplica.from_snapshot(LogEntry(epoch=1, seq=snapshot.seq, kind="snapshot", payload=old))
    assert rebuilt.hosts == {} and rebuilt.engine.call_ids() == ["c1", "c2", "c3"]


def test_a_snapshot_with_malformed_hosts_is_refused(leader):
    snapshot = leader.replica.snapshot(1)
    bad = {**snapshot.payload, "hosts": {"c1": 7}}
    with pytest.raises(LogError, match="hosts"):
        RoutingReplica.from_snapshot(LogEntry(epoch=1, seq=snapshot.seq, kind="snapshot", payload=bad))
