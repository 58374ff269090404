"""ClusterLife, node membership and node loss on a cluster node's routing thread, with a real
PostgreSQL (a schema per test) and real records stores: two nodes in this process, each a
ClusterRouting with its threads and a stand-in reactor the test pumps (tests/shell/test_cluster_routing.py).

Checked: both nodes list each other up (/api/cluster's members, acd_cluster_members), one of them
only restores the agents (the one that began the routing log); a node that
stops without a word (a crash: its routing thread ends, its row is left as it was) is declared dead
by the survivor, which ends its call in the engine, closes its record "interrupted" and frees its
agent; a crashed node back before the timeout ends its previous calls itself; a node declared dead
while alive hangs up its calls and rejoins as a new incarnation; a drain and a clean stop show in
`cluster_nodes` and on the other node.
"""

from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client import CollectorRegistry

from acd.calls.cluster_life import ClusterLife
from acd.config.cluster_settings import ClusterSettings
from acd.routing import AgentLoggedIn, AgentState, CallArrived, CallConnected, OfferAnswered
from acd.store.records_pg import PgRecordStore
from tests.store_backends import read_rows

from .test_cluster_routing import LEASE_SECONDS, Node, pump_until

NODE_TIMEOUT_SECONDS = 1.0


class LiveNode(Node):
    """A Node whose routing runs membership: its records store, what it was told to hang up."""

    def __init__(self, pg_url: str, name: str, channel: str) -> None:
        super().__init__(pg_url, name, channel)
        self.channel = channel
        settings = ClusterSettings(node_id=name, lease_seconds=LEASE_SECONDS, node_timeout_seconds=NODE_TIMEOUT_SECONDS)
        self.records = PgRecordStore(pg_url, node=name)
        self.hung_up: list[tuple[str, float]] = []
        self.registry = CollectorRegistry()
        self.life = ClusterLife(conninfo=pg_url, settings=settings, address=f"{name}:5060", records=self.records,
                                reactor=self.reactor, clock=self.routing.clock,
                                end_hosted_calls=lambda why, at: self.hung_up.append((why, at)))
        self.life.register_metrics(self.registry)
        self.routing.life = self.life
        self.first_leader: list[str] = []  # the agent restore of an empty log's first leader
        self.routing.on_first_leader = lambda: self.first_leader.append(name)

    def member(self, node_id: str) -> dict:
        return next((m for m in self.routing.status_dict()["members"] if m["node_id"] == node_id), {})

    def members(self, state: str) -> float:
        return self.registry.get_sample_value("acd_cluster_members", {"state": state})


@pytest.fixture
def nodes(pg_url):
    channel = f"routing_log_{uuid.uuid4().hex[:12]}"
    made = [LiveNode(pg_url, "node-a", channel), LiveNode(pg_url, "node-b", channel)]
    for node in made:
        node.routing.start()
    yield made
    for node in made:
        node.routing.stop()
        node.routing.node.log.close()
        node.records.close()


def test_members_are_listed_and_a_crashed_node_is_declared_dead_its_call_and_agent_freed(nodes, pg_url):
    survivor, crashed = nodes
    pump_until(nodes, lambda: all(n.member(other.routing.node_id).get("state") == "up" for n in nodes
                                  for other in nodes), "both nodes up on both")
    assert survivor.members("up") == 2 and survivor.members("dead") == 0
    assert len(survivor.first_leader + crashed.first_leader) == 1  # one node restores the agents, not each
    assert survivor.member("node-b")["incarnation"] == 1 and survivor.member("node-b")["address"] == "node-b:5060"

    # node-b hosts a call connected to alice (its record and alice's presence written by node-b).
    crashed.routing.feed(AgentLoggedIn(agent_id="alice", queues={"support": 0}), time.time())
    crashed.routing.feed(CallArrived(call_id="c1", queue="support"), time.time())
    crashed.records.call_arrived("c1", trunk="t", caller="555", dialled="3000", at=time.time())
    crashed.routing.feed(OfferAnswered(call_id="c1", agent_id="alice"), time.time())
    crashed.records.call_connected("c1", agent="alice", at=time.time(), queue="support")
    crashed.records.agent_presence("alice", state="on_call", queues={"support": 0}, reason="answered c1",
                                   at=time.time())
    assert crashed.records.flush()
    pump_until(nodes, lambda: survivor.decisions(CallConnected), "the call connected in the survivor's replica")

    crashed.life.leave = lambda: None  # a crash: the routing thread ends, the row is left up
    crashed.routing.stop()
    stopped = time.monotonic()
    pump_until([survivor], lambda: survivor.member("node-b").get("state") == "dead", "node-b dead", 6.0)
    print(f"node-b declared dead {time.monotonic() - stopped:.2f} s after its last step (node timeout 1 s)")
    assert survivor.members("dead") == 1 and survivor.members("up") == 1
    pump_until([survivor], lambda: survivor.routing.status.role == "leader", "the survivor to lead", 5.0)
    pump_until([survivor], lambda: survivor.routing.engine.call_ids() == [], "c1 ended in the survivor's engine")
    assert survivor.routing.engine.agent_view("alice").state in (AgentState.WRAP_UP, AgentState.AVAILABLE)
    assert survivor.records.flush()
    (call,) = read_rows(pg_url, "SELECT node, outcome FROM calls WHERE call_id = 'c1'")
    assert call == {"node": "node-b", "outcome": "interrupted"}
    assert read_rows(pg_url, "SELECT state FROM agent_presence WHERE agent_id = 'alice'") == [{"state": "available"}]
    assert survivor.hung_up == [] and crashed.hung_up == []


def test_a_node_declared_dead_while_alive_hangs_up_its_calls_and_rejoins(nodes, pg_url):
    victim, other = nodes
    pump_until(nodes, lambda: victim.member("node-b").get("state") == "up" and other.member("node-a").get("state")
               == "up", "both up")
    victim.routing.feed(CallArrived(call_id="c2", queue="support"), time.time())
    pump_until(nodes, lambda: "c2" in victim.routing.engine.call_ids(), "c2 in the victim's replica")
    # What the others do when this node stalls past the timeout: its row says dead.
    victim.routing.node.log.connection.execute(
        "UPDATE cluster_nodes SET state = 'dead', stopped_by = 'node-b' WHERE node_id = 'node-a'")
    assert victim.records.incarnation == 1  # written with each of its calls
    (why, _at), = pump_until([victim], lambda: victim.hung_up, "the victim to hang up its calls", 5.0)
    assert why == "node node-a was declared dead by the other nodes"
    assert victim.records.incarnation == 2  # from the hang-up on: the calls taken next are the rejoin's
    pump_until(nodes, lambda: victim.member("node-a").get("incarnation") == 2
               and victim.member("node-a").get("state") == "up", "the victim rejoined as incarnation 2")
    pump_until(nodes, lambda: "c2" not in victim.routing.engine.call_ids(), "its previous calls ended in the engine")
    pump_until(nodes, lambda: other.member("node-a").get("incarnation") == 2, "the other node sees it back")
    assert read_rows(pg_url, "SELECT state, incarnation FROM cluster_nodes WHERE node_id = 'node-a'") == [
        {"state": "up", "incarnation": 2}]
    assert victim.life.declared_dead_count == 1


def test_a_drain_then_a_clean_stop_show_in_cluster_nodes_and_on_the_other_node(nodes, pg_url):
    leaving, staying = nodes
    pump_until(nodes, lambda: staying.member("node-a").get("state") == "up", "node-a up")
    refused: list[int] = []

    class Sip:
        def refuse_new_calls(self, retry_after_seconds: int) -> None:
            refused.append(retry_after_seconds)

    leaving.life.admission(Sip()).refuse_new_calls(30)
    assert refused == [30]
    pump_until(nodes, lambda: staying.member("node-a").get("state") == "draining", "node-a draining on node-b")
    assert read_rows(pg_url, "SELECT state FROM cluster_nodes WHERE node_id = 'node-a'") == [{"state": "draining"}]
    assert staying.members("draining") == 1
    leaving.routing.stop()
    assert read_rows(pg_url, "SELECT state FROM cluster_nodes WHERE node_id = 'node-a'") == [{"state": "stopped"}]
    pump_until([staying], lambda: staying.member("node-a").get("state") == "stopped", "node-a stopped on node-b")
    assert staying.members("stopped") == 1 and staying.members("dead") == 0


def test_a_crashed_node_restarted_at_once_ends_its_previous_calls_itself(nodes, pg_url):
    """Back before the others declared it dead: a new incarnation (the others see a restart, not a
    death), and its start ends the calls its previous incarnation left in the engine."""
    other, crashed = nodes
    pump_until(nodes, lambda: other.member("node-b").get("state") == "up", "node-b up")
    crashed.routing.feed(CallArrived(call_id="c3", queue="support"), time.time())
    pump_until(nodes, lambda: "c3" in other.routing.engine.call_ids(), "c3 in the engine")
    crashed.life.leave = lambda: None  # a crash: the row is left up
    crashed.routing.stop()
    crashed.routing.node.log.close()
    crashed.records.close()
    again = LiveNode(pg_url, "node-b", crashed.channel)
    nodes[1] = again  # the fixture stops it
    again.routing.start()
    pump_until([other, again], lambda: other.member("node-b").get("incarnation") == 2, "node-b's new incarnation")
    assert again.records.incarnation == 2
    pump_until([other, again], lambda: "c3" not in other.routing.engine.call_ids(), "c3 ended by node-b itself")
    assert other.member("node-b")["state"] == "up" and other.members("dead") == 0
