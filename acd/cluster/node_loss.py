"""What a cluster node does when another dies: the glue between membership, routing and records.

Rules of this file:
- Records: the survivor whose death claim won (`NodeDied(claimed=True)`) closes the dead node's
  call records and frees its agents (`records.close_node_calls`); the others do nothing (the
  store's operation is race-safe anyway, so a lost claim costs nothing but is not repeated).
- Routing: only the leader routes. It ends a dead node's calls in the engine when it hears of the
  death (`NodeDied`, claimed or not) and, when it becomes leader, for every node the membership
  holds dead (the previous leader may have died before it did). `ClusterNode.node_died` is
  idempotent, so hearing of one death twice is harmless.
- Nothing here ends a dead node's calls on a `NodeRestarted`: the node's new incarnation shares
  its id, hence its calls' host, and ends its previous calls itself (`ClusterNode.end_previous_calls`).
- Times: `routing_now` is the engine's wall-clock time, also the records' `at`.
"""

from __future__ import annotations

import logging
from typing import Any

from .membership import NodeDied
from .node import ClusterNode
from .pg_log import FencedOut
from .routing_log import Outcome

__all__ = ["NodeLoss"]

log = logging.getLogger("acd.cluster")


class NodeLoss:
    """One node's reaction to node deaths. `records` is the server's `CallRecords` (anything with
    `close_node_calls(node, at=, reason=)`); `dead_nodes` a callable giving the membership's dead
    nodes (`Membership.dead_nodes`)."""

    def __init__(self, node: ClusterNode, records: Any, dead_nodes: Any) -> None:
        self.node = node
        self.records = records
        self.dead_nodes = dead_nodes

    def membership_events(self, events: list, routing_now: float) -> list[Outcome]:
        """Act on the events of a membership tick; the routing outcomes to act on (leader only)."""
        outcomes: list[Outcome] = []
        for event in events:
            if not isinstance(event, NodeDied):
                continue
            log.warning("cluster: node %s (incarnation %d) died: %s%s", event.node_id, event.incarnation,
                        event.reason, "; closing its call records" if event.claimed else "")
            if event.claimed:
                self.records.close_node_calls(event.node_id, at=routing_now,
                                              reason=f"node {event.node_id} stopped unexpectedly ({event.reason})")
            outcomes.extend(self._end_calls(event.node_id, routing_now))
        return outcomes

    def became_leader(self, routing_now: float) -> list[Outcome]:
        """This node just became leader: end the calls still held of every node known dead."""
        outcomes: list[Outcome] = []
        for node_id in sorted(self.dead_nodes()):
            outcomes.extend(self._end_calls(node_id, routing_now))
        return outcomes

    def _end_calls(self, node_id: str, routing_now: float) -> list[Outcome]:
        if not self.node.is_leader:
            return []
        try:
            outcomes = self.node.node_died(node_id, routing_now)
        except FencedOut:
            return []  # deposed meanwhile: the next leader ends them (`became_leader`)
        if outcomes:
            log.warning("cluster: ended %d call(s) of dead node %s", len(outcomes), node_id)
        return outcomes
