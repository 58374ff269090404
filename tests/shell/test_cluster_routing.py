"""ClusterRouting, the routing authority of a cluster node, with a real PostgreSQL (the `pg_url`
fixture: a schema per test): two nodes in this process, each with its routing and submit threads
and a stand-in reactor that runs what the threads hand it when the test pumps it.

Checked: one leader; an event submitted on either node is routed once and every node's reactor
replica applies it in log order; the agent-level writes fall to the submitting node (or the leader
for timers); a refusal comes back to the submitter only; the shared bindings of an offered agent
reach the hosting node; the follower takes over when the leader dies.
"""

from __future__ import annotations

import queue
import time
import uuid

import pytest

from acd.registrar.path import AgentContact
from acd.calls.cluster_routing import ClusterRouting
from acd.config.cluster_settings import ClusterSettings
from acd.routing import (AgentLoggedIn, AgentStateChanged, CallArrived, CallChanged, CallConnected, CallEnded, Offer,
                         OfferAnswered, QueueConfig, RoutingConfig, RoutingError)

CONFIG = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=0.5),), skills=frozenset())
LEASE_SECONDS = 1.0


class ThreadedReactor:
    """What ClusterRouting needs of a reactor: callFromThread (queued here until `pump`) and seconds."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue = queue.SimpleQueue()

    def callFromThread(self, function, *args, **kwargs) -> None:  # noqa: N802 - Twisted API
        self.calls.put((function, args, kwargs))

    def seconds(self) -> float:
        return time.time()

    def pump(self) -> None:
        while True:
            try:
                function, args, kwargs = self.calls.get_nowait()
            except queue.Empty:
                return
            function(*args, **kwargs)


class Node:
    """One ClusterRouting, its reactor and what it was told to act on."""

    def __init__(self, pg_url: str, name: str, channel: str, config: RoutingConfig = CONFIG) -> None:
        self.reactor = ThreadedReactor()
        self.routing = ClusterRouting(conninfo=pg_url, settings=ClusterSettings(node_id=name,
                                                                                lease_seconds=LEASE_SECONDS),
                                      config=config, reactor=self.reactor, channel=channel)
        self.told: list[tuple[object, object]] = []  # (decision or None, scope)
        self.routing.attach(lambda decisions, scope: self.told.extend((d, scope) for d in decisions or [None]))

    def decisions(self, kind: type) -> list:
        return [(d, scope) for d, scope in self.told if isinstance(d, kind)]


def pump_until(nodes: list[Node], predicate, what: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            node.reactor.pump()
        result = predicate()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}: " + "; ".join(
        f"{n.routing.node_id}: {n.routing.status} told {[type(d).__name__ for d, _ in n.told]}" for n in nodes))


@pytest.fixture
def configs() -> tuple[RoutingConfig, RoutingConfig]:
    """The routing configs node-a and node-b start with."""
    return CONFIG, CONFIG


@pytest.fixture
def nodes(pg_url, configs):
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"  # NOTIFY channels are database-wide
    made = [Node(pg_url, "node-a", channel, configs[0]), Node(pg_url, "node-b", channel, configs[1])]
    for node in made:
        node.routing.start()
    yield made
    for node in made:
        node.routing.stop()
        node.routing.node.log.close()


def leader_and_follower(nodes: list[Node]) -> tuple[Node, Node]:
    leaders = pump_until(nodes, lambda: [n for n in nodes if n.routing.status.role == "leader"], "a leader", 5.0)
    assert len(leaders) == 1
    follower = next(n for n in nodes if n is not leaders[0])
    pump_until(nodes, lambda: follower.routing.status.leader == leaders[0].routing.node_id, "the follower to see it")
    return leaders[0], follower


def test_events_from_either_node_are_routed_once_and_acted_on_by_the_right_node(nodes, pg_url):
    leader, follower = leader_and_follower(nodes)
    follower.routing.node.log.connection.execute(
        "CREATE TABLE IF NOT EXISTS bindings (aor text, contact text, expires_at double precision, call_id text, "
        "cseq bigint, source_host text, source_port bigint, transport text, user_agent text, q double precision, "
        "updated_at double precision, path text NOT NULL DEFAULT '')")
    follower.routing.node.log.connection.execute(
        "INSERT INTO bindings VALUES ('alice', 'sip:alice@127.0.0.12:5099', %s, 'r1', 1, '127.0.0.12', 5099, 'UDP', "
        "'test', 1.0, 0, '')", (time.time() + 60,))

    # The follower hosts the agent's log-in: it writes the agent-level side effects, the leader does not.
    assert follower.routing.feed(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.time())
    pump_until(nodes, lambda: all(n.decisions(AgentStateChanged) for n in nodes), "the log-in on both nodes")
    assert [scope.agent_writes for _, scope in follower.decisions(AgentStateChanged)] == [True]
    assert [scope.agent_writes for _, scope in leader.decisions(AgentStateChanged)] == [False]

    # The leader hosts the caller: the offer names alice, whose contact comes from the shared bindings.
    assert leader.routing.feed(CallArrived(call_id="c1", queue="support"), time.time())
    offers = pump_until(nodes, lambda: leader.decisions(Offer), "the offer")
    (offer, scope), = offers
    assert (offer.call_id, offer.agent_id, scope.hosted_only) == ("c1", "alice", True)
    assert scope.event == CallArrived(call_id="c1", queue="support")
    assert leader.routing.contacts("alice") == [AgentContact("sip:alice@127.0.0.12:5099", ("127.0.0.12", 5099), "UDP")]
    pump_until(nodes, lambda: follower.decisions(Offer), "the follower's replica to apply the offer")
    assert follower.decisions(Offer)[0][1].event is None  # not its event

    leader.routing.feed(OfferAnswered(call_id="c1", agent_id="alice"), time.time())
    pump_until(nodes, lambda: all(n.decisions(CallConnected) for n in nodes), "the connection on both nodes")
    leader.routing.feed(CallEnded(call_id="c1"), time.time())
    # Wrap-up ends on the leader's timer (TimersDue): the leader writes that state change.
    ready = pump_until(nodes, lambda: [s for d, s in leader.decisions(AgentStateChanged) if d.state.value == "available"
                                       and d.previous.value == "wrap_up"], "the end of wrap-up")
    assert ready[0].agent_writes is True and ready[0].event is None
    pump_until(nodes, lambda: [s for d, s in follower.decisions(AgentStateChanged) if d.previous.value == "wrap_up"],
               "the follower to see it")
    assert [s.agent_writes for d, s in follower.decisions(AgentStateChanged) if d.previous.value == "wrap_up"] == [False]
    pump_until(nodes, lambda: leader.routing.status.log_seq == follower.routing.status.log_seq, "equal logs")
    views = [(n.routing.engine.agent_view("alice"), n.routing.engine.call_ids()) for n in nodes]
    assert views[0] == views[1]


def test_a_refusal_comes_back_to_the_submitting_node_only(nodes):
    leader, follower = leader_and_follower(nodes)
    assert follower.routing.feed(CallArrived(call_id="c9", queue="nowhere"), time.time())
    refused = pump_until(nodes, lambda: [s for _, s in follower.told if s.error_id], "the refusal")
    assert refused[0].error_id == "unknown-queue" and refused[0].event.call_id == "c9"
    pump_until(nodes, lambda: leader.routing.status.log_seq == follower.routing.status.log_seq, "equal logs")
    assert leader.told == []
    with pytest.raises(RoutingError) as caught:  # steering checks the replica first: an answer at once
        follower.routing.decide(CallChanged(call_id="c-unknown", priority=5), time.time())
    assert caught.value.error_id == "no-such-call"
    follower.routing.feed(CallArrived(call_id="c11", queue="support"), time.time())
    pump_until(nodes, lambda: "c11" in follower.routing.engine.call_ids(), "the call in the replica")
    for change, error_id in ((CallChanged(call_id="c11", queue="nowhere"), "unknown-queue"),
                             (CallChanged(call_id="c11", requirements={"klingon": 1}), "unknown-skill")):
        with pytest.raises(RoutingError) as caught:
            follower.routing.decide(change, time.time())
        assert caught.value.error_id == error_id


def test_the_follower_takes_over_when_the_leader_stops_and_routes_new_calls(nodes):
    """A clean stop gives the lease back (a kill -9 lets it expire: tests/e2e/test_cluster_routing.py)."""
    leader, follower = leader_and_follower(nodes)
    follower.routing.feed(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.time())
    pump_until(nodes, lambda: follower.decisions(AgentStateChanged), "the log-in")
    leader.routing.stop()
    started = time.monotonic()
    pump_until([follower], lambda: follower.routing.status.role == "leader", "the follower to lead", 5.0)
    assert time.monotonic() - started < 3 * LEASE_SECONDS
    follower.routing.feed(CallArrived(call_id="c2", queue="support"), time.time())
    offers = pump_until([follower], lambda: follower.decisions(Offer), "an offer from the new leader")
    assert offers[0][0].call_id == "c2" and offers[0][1].event is not None
    assert follower.routing.status.epoch > leader.routing.status.epoch


@pytest.mark.parametrize("configs", [(CONFIG, RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=7.0),),
                                                            skills=frozenset()))])
def test_routing_configs_change_through_the_log_on_every_node_at_once(nodes):
    """Nodes started with different files agree on the first leader's; a reload on the leader reaches
    every replica; one on a follower changes nothing (the leader's reload does)."""
    leader, follower = leader_and_follower(nodes)
    pump_until(nodes, lambda: leader.routing.status.log_seq == follower.routing.status.log_seq >= 2,
               "the first leader's config in the log")
    wrap_ups = {n.routing.engine.queue_config("support").wrap_up_seconds for n in nodes}
    assert wrap_ups == {leader.routing.node.config.queues[0].wrap_up_seconds}

    reloaded = RoutingConfig(queues=(QueueConfig(name="support"), QueueConfig(name="sales")), skills=frozenset())
    seq = leader.routing.status.log_seq
    leader.routing.reconfigure(reloaded, time.time())
    pump_until(nodes, lambda: all(n.routing.status.log_seq == seq + 2 for n in nodes), "the new config's entries")
    assert all(n.routing.engine.queue_config("sales") is not None for n in nodes)

    follower.routing.reconfigure(CONFIG, time.time())
    time.sleep(0.2)
    pump_until(nodes, lambda: True, "")
    assert all(n.routing.status.log_seq == seq + 2 for n in nodes)
    assert all(n.routing.engine.queue_config("sales") is not None for n in nodes)
