"""What a cluster node does when another dies: the glue between membership, routing and records.

Rules of this file:
- A death is an incarnation's (`NodeDied.incarnation`), not a node id's: a node restarted, or
  rejoining after it was declared dead, takes calls again under the same id as a new incarnation,
  possibly before the survivors' clean-up of the old one is done. That clean-up must leave the
  new incarnation's calls alone; the new incarnation ends the old one's calls itself anyway
  (`records.close_interrupted`, `ClusterNode.end_previous_calls`, or its `end_hosted_calls`).
- Records: the survivor whose death claim won (`NodeDied(claimed=True)`) closes the dead
  incarnation's call records and frees their agents (`records.close_node_calls(node,
  incarnation=...)`: the calls written at that incarnation or an earlier one, each call record
  carrying its node's incarnation); the others do nothing (the store's operation is race-safe
  anyway, so a lost claim costs nothing but is not repeated). The close is queued and may reach
  the database after the node's next incarnation took calls: the incarnation bound is what keeps
  those open.
- Routing: only the leader routes. It ends a dead node's calls in the engine when it hears of the
  death (`NodeDied`, claimed or not), and, once it became leader, for every node the membership
  holds dead (the previous leader may have died before it did). The engine's calls carry their
  host's id only (the `origin` of their arrival), so the rule is one of order: a node's calls are
  ended only when a read of `cluster_nodes` (or a claim) made after every routing step so far shows
  it dead. A call of a later incarnation enters the log only after that incarnation joined, so a
  read after the routing that brought it in shows the node restarted (up), not dead. A `NodeDied`
  comes from such a read or claim, in the routing thread's step after its routing; a new leader's
  dead set does not (it was read before the log was caught up), hence `became_leader` only asks
  for the sweep, and the sweep runs at the next `membership_events(..., read=True)`.
  `ClusterNode.node_died` is idempotent, so hearing of one death twice is harmless.
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
    `close_node_calls(node, at=, reason=, incarnation=)`); `dead_nodes` a callable giving the
    membership's dead nodes (`Membership.dead_nodes`)."""

    def __init__(self, node: ClusterNode, records: Any, dead_nodes: Any) -> None:
        self.node = node
        self.records = records
        self.dead_nodes = dead_nodes
        self.sweep_due = False  # became leader: end the dead nodes' calls after the next read

    def membership_events(self, events: list, routing_now: float, *, read: bool = False) -> list[Outcome]:
        """Act on the events of a membership step; the routing outcomes to act on (leader only).
        `read`: that step read every row of `cluster_nodes` and nothing was routed since (so the
        membership's dead set is current): the sweep `became_leader` asked for is done now."""
        outcomes: list[Outcome] = []
        for event in events:
            if not isinstance(event, NodeDied):
                continue
            log.warning("cluster: node %s (incarnation %d) died: %s%s", event.node_id, event.incarnation,
                        event.reason, "; closing its call records" if event.claimed else "")
            if event.claimed:
                self.records.close_node_calls(event.node_id, at=routing_now, incarnation=event.incarnation,
                                              reason=f"node {event.node_id} stopped unexpectedly ({event.reason})")
            outcomes.extend(self._end_calls(event.node_id, routing_now))
        if read and self.sweep_due:
            for node_id in sorted(self.dead_nodes()):
                outcomes.extend(self._end_calls(node_id, routing_now))
            self.sweep_due = False
        return outcomes

    def became_leader(self, routing_now: float) -> None:
        """This node just became leader: the calls still held of every node known dead are to be
        ended, at the next `membership_events(..., read=True)` (module docstring: the dead set known
        now may be older than a restart whose new calls are in the log already)."""
        self.sweep_due = True

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
