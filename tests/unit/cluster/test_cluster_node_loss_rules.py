"""NodeLoss's rules (pure: the membership machine, a stand-in for the routing node, a list for the
records): a death is an incarnation's, the records' close names it; a new leader ends the dead
nodes' calls only after a read that follows its routing, so a node restarted meanwhile (its new
calls already in the log) is seen up and spared. The same with PostgreSQL, the routing log and the
records: tests/unit/cluster/test_cluster_node_loss_flow.py."""

from __future__ import annotations

from acd.cluster.membership import Membership, NodeDied, NodeJoined, NodeSeen
from acd.cluster.node_loss import NodeLoss

TIMEOUT = 3.0


class RoutingNode:
    """What NodeLoss uses of ClusterNode: `is_leader`, and `node_died`, here written down."""

    def __init__(self) -> None:
        self.is_leader = False
        self.ended: list[str] = []

    def node_died(self, node_id: str, now: float) -> list:
        self.ended.append(node_id)
        return []


class Records:
    """What NodeLoss uses of the records: `close_node_calls`, here written down."""

    def __init__(self) -> None:
        self.closed: list[tuple[str, int | None]] = []

    def close_node_calls(self, node: str, *, at: float, reason: str | None = None,
                         incarnation: int | None = None) -> None:
        self.closed.append((node, incarnation))


def seen(incarnation: int, *, state: str = "up", age: float = 0.0) -> list[NodeSeen]:
    return [NodeSeen(node_id="b", address="127.0.0.12:5060", state=state, incarnation=incarnation,
                     heartbeat_age_seconds=age)]


def b_claimed_dead() -> tuple[Membership, NodeLoss, RoutingNode, Records]:
    """Node "a" (a follower) sees "b" at incarnation 1, then wins the claim of its death."""
    membership = Membership("a", node_timeout_seconds=TIMEOUT)
    membership.joined(1, 0.0)
    node, records = RoutingNode(), Records()
    loss = NodeLoss(node, records, membership.dead_nodes)  # type: ignore[arg-type]
    membership.observe(seen(1), 4.0)
    out = membership.handle_timers(7.0)
    events = membership.claim_answered("b", True, None, 7.0)
    assert out and [(e.node_id, e.incarnation, e.claimed) for e in events if isinstance(e, NodeDied)] == [("b", 1, True)]
    assert loss.membership_events(events, 7.0) == []
    return membership, loss, node, records


def test_the_claimer_closes_the_records_of_the_incarnation_that_died():
    _membership, _loss, node, records = b_claimed_dead()
    assert records.closed == [("b", 1)]
    assert node.ended == []  # a follower: the leader ends the calls in the engine


def test_a_new_leader_ends_a_dead_nodes_calls_only_after_a_read_that_still_shows_it_dead():
    membership, loss, node, _records = b_claimed_dead()
    node.is_leader = True
    loss.became_leader(8.0)
    assert node.ended == [] and loss.sweep_due  # not from the dead set read before its routing
    assert loss.membership_events([], 8.0) == [] and node.ended == []
    events = membership.observe(seen(1, state="dead", age=5.0), 8.1)
    loss.membership_events(events, 8.1, read=True)
    assert node.ended == ["b"] and not loss.sweep_due
    loss.membership_events([], 9.0, read=True)
    assert node.ended == ["b"]  # one sweep per leadership


def test_a_new_leader_spares_a_dead_node_seen_restarted_at_the_read():
    """b came back as incarnation 2 (and took calls, in the log already) before a took over: the
    read after a's routing shows it up, so its calls, the new incarnation's, are not ended."""
    membership, loss, node, records = b_claimed_dead()
    node.is_leader = True
    loss.became_leader(8.0)
    assert membership.dead_nodes() == {"b"}  # stale
    events = membership.observe(seen(2), 8.1)
    assert [type(event) for event in events] == [NodeJoined] and membership.dead_nodes() == set()
    assert loss.membership_events(events, 8.1, read=True) == []
    assert node.ended == [] and records.closed == [("b", 1)]
