"""Cluster membership in PostgreSQL (psycopg 3): the `cluster_nodes` table, and the driver that runs
`membership.Membership`'s actions against it.

Rules of this file:
- One row per node id: its SIP address, state (up, draining, stopped, dead), incarnation, when that
  incarnation started and its last heartbeat, all times from the server's `now()`: one clock judges.
- `join` is an upsert that increments the incarnation: every start of a node is a new incarnation,
  and the previous one's heartbeats are refused from then on.
- A heartbeat is an UPDATE that succeeds only at our incarnation while our row is up or draining:
  once another node declared us dead (or we were restarted), it updates nothing.
- `claim_death` is one UPDATE ... RETURNING that succeeds only while the row is up or draining, at
  the incarnation the claimer saw, with a heartbeat older than the timeout on the server's clock:
  of several survivors claiming at once, row locking lets exactly one through (the others re-check
  the row after the winner commits and find it dead).
- Every statement runs in autocommit; a failed one raises `psycopg.Error` (`ClusterMembers` reports
  it to the membership machine as `store_lost`).
"""

from __future__ import annotations

import logging

import psycopg

from ..store.pg_schema import SCHEMA_LOCK_KEY, SCHEMA_LOCK_WAIT_MS
from .membership import (
    ClaimDeath,
    Membership,
    NodeSeen,
    ReadNodes,
    WriteHeartbeat,
)

__all__ = ["SCHEMA", "PgMembers", "ClusterMembers"]

log = logging.getLogger("acd.cluster")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id text PRIMARY KEY,
    address text NOT NULL,
    state text NOT NULL CHECK (state IN ('up', 'draining', 'stopped', 'dead')),
    incarnation bigint NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at timestamptz,
    stopped_by text
);
"""
JOIN = """
INSERT INTO cluster_nodes AS node (node_id, address, state, incarnation, started_at, heartbeat_at)
VALUES (%(node)s, %(address)s, 'up', 1, now(), now())
ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, state = 'up', incarnation = node.incarnation + 1,
       started_at = now(), heartbeat_at = now(), stopped_at = NULL, stopped_by = NULL
RETURNING incarnation
"""
HEARTBEAT = """
UPDATE cluster_nodes SET heartbeat_at = now(), state = %(state)s
 WHERE node_id = %(node)s AND incarnation = %(incarnation)s AND state IN ('up', 'draining')
RETURNING 1
"""
READ = """
SELECT node_id, address, state, incarnation, greatest(extract(epoch FROM now() - heartbeat_at), 0)::float8
  FROM cluster_nodes
"""
CLAIM = """
UPDATE cluster_nodes SET state = 'dead', stopped_at = now(), stopped_by = %(claimer)s
 WHERE node_id = %(node)s AND incarnation = %(incarnation)s AND state IN ('up', 'draining')
   AND heartbeat_at <= now() - make_interval(secs => %(timeout)s)
RETURNING 1
"""
LEAVE = """
UPDATE cluster_nodes SET state = 'stopped', stopped_at = now(), stopped_by = %(node)s
 WHERE node_id = %(node)s AND incarnation = %(incarnation)s AND state IN ('up', 'draining')
RETURNING 1
"""


class PgMembers:
    """One node's statements on `cluster_nodes`. Blocking: run them off the reactor thread."""

    def __init__(self, conninfo: str, node_id: str, address: str, *, statement_timeout_seconds: float = 1.0) -> None:
        """`address`: this node's SIP address (host:port) as the other nodes and Kamailio reach it.
        `statement_timeout_seconds`: a statement slower than this fails (1 s: a third of the 3 s
        node timeout, so a slow store is noticed before a peer would suspect this node)."""
        self.conninfo = conninfo
        self.node_id = node_id
        self.address = address
        self.statement_timeout_seconds = statement_timeout_seconds
        self.connection: psycopg.Connection | None = None

    def connect(self) -> "PgMembers":
        """Open (or reopen) the connection and create the table when missing."""
        self.close()
        self.connection = psycopg.connect(self.conninfo, autocommit=True)
        self.connection.execute(f"SET statement_timeout = {int(self.statement_timeout_seconds * 1000)}")
        with self.connection.transaction():  # nodes starting together would race on CREATE TABLE IF NOT EXISTS
            self.connection.execute(f"SET LOCAL statement_timeout = {SCHEMA_LOCK_WAIT_MS}")  # a migration may hold it
            self.connection.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
            self.connection.execute(SCHEMA)
        return self

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _conn(self) -> psycopg.Connection:
        if self.connection is None or self.connection.closed:
            raise psycopg.OperationalError("cluster membership connection is closed: call connect()")
        return self.connection

    def join(self) -> int:
        """Write this node's row as up, as a new incarnation; that incarnation."""
        return int(self._conn().execute(JOIN, {"node": self.node_id, "address": self.address}).fetchone()[0])

    def heartbeat(self, incarnation: int, state: str = "up") -> bool:
        """Refresh our heartbeat (state up or draining); False when our row no longer takes it."""
        if state not in ("up", "draining"):
            raise ValueError(f"a heartbeat's state is up or draining, not {state!r}")
        row = self._conn().execute(HEARTBEAT, {"node": self.node_id, "incarnation": incarnation,
                                                "state": state}).fetchone()
        return row is not None

    def read(self) -> list[NodeSeen]:
        """Every node's row, heartbeat ages on the server's clock."""
        return [NodeSeen(node_id=node_id, address=address, state=state, incarnation=int(incarnation),
                         heartbeat_age_seconds=float(age))
                for node_id, address, state, incarnation, age in self._conn().execute(READ).fetchall()]

    def read_one(self, node_id: str) -> NodeSeen | None:
        """One node's row, or None."""
        for seen in self.read():
            if seen.node_id == node_id:
                return seen
        return None

    def claim_death(self, node_id: str, incarnation: int, timeout_seconds: float) -> bool:
        """Declare `node_id` at `incarnation` dead when its heartbeat is `timeout_seconds` old; True
        only for the one claimer the store let through."""
        row = self._conn().execute(CLAIM, {"node": node_id, "incarnation": incarnation, "claimer": self.node_id,
                                           "timeout": timeout_seconds}).fetchone()
        return row is not None

    def leave(self, incarnation: int) -> bool:
        """Mark our row stopped (a clean stop); False when it was declared dead before."""
        return self._conn().execute(LEAVE, {"node": self.node_id, "incarnation": incarnation}).fetchone() is not None


class ClusterMembers:
    """`Membership` driven against `PgMembers`, synchronously: `start(now)` once, then `tick(now)` at
    `next_deadline()` (or more often); each returns the membership events to act on (`NodeJoined`,
    `NodeDraining`, `NodeLeft`, `NodeDied`, `NodeRestarted`, `SelfDeclaredDead`). A failed statement
    is reported to the machine (`store_lost`: no death claimed until the store has been back a
    whole timeout) and the connection opened again at the next tick; `start` raises it (a node
    that cannot join takes no calls)."""

    def __init__(self, store: PgMembers, membership: Membership) -> None:
        if store.node_id != membership.node_id:
            raise ValueError(f"store node {store.node_id!r} and membership node {membership.node_id!r} differ")
        self.store = store
        self.membership = membership

    def next_deadline(self) -> float | None:
        """When `tick` must next be called (this node's clock)."""
        return self.membership.next_deadline()

    def start(self, now: float) -> list:
        """Join as a new incarnation and read the other nodes; the events of what was read."""
        if self.store.connection is None or self.store.connection.closed:
            self.store.connect()
        events: list = []
        self._run(self.membership.joined(self.store.join(), now), now, events)
        return events

    def tick(self, now: float) -> list:
        """Heartbeat, read and claim deaths as due at `now`; the events."""
        return self._guarded(self.membership.handle_timers(now), now)

    def drain(self, now: float) -> list:
        """Say at once that this node takes no new calls; the events read meanwhile."""
        return self._guarded(self.membership.drain(now), now)

    def read(self, now: float) -> list | None:
        """Read every row now (a new leader needs a current view of the dead before it ends their
        calls: acd/cluster/node_loss.py); the events, or None when the store failed."""
        events: list = []
        return events if self._attempt([ReadNodes()], now, events) else None

    def _guarded(self, pending: list, now: float) -> list:
        events: list = []
        self._attempt(pending, now, events)
        return events

    def _attempt(self, pending: list, now: float, events: list) -> bool:
        """Carry out `pending`, collecting the events in `events`; False when a statement failed
        (reported to the machine as `store_lost`, whose events are collected too)."""
        try:
            if self.store.connection is None or self.store.connection.closed:
                self.store.connect()
            self._run(pending, now, events)
        except psycopg.Error as error:
            log.warning("cluster: membership store request failed (%s: %s); no death is claimed until it has "
                        "been back for %g s", type(error).__name__, str(error).strip(),
                        self.membership.node_timeout_seconds)
            self.store.close()
            events.extend(self.membership.store_lost(now))
            return False
        return True

    def leave(self) -> bool:
        """Mark this node stopped (the normal shutdown path); False when it was declared dead."""
        incarnation = self.membership.incarnation
        return incarnation is not None and self.store.leave(incarnation)

    def _run(self, pending: list, now: float, events: list) -> None:
        """Carry out `pending` actions in order (and those they bring), collecting the events in `events`."""
        membership = self.membership
        while pending:
            item = pending.pop(0)
            if isinstance(item, WriteHeartbeat):
                pending.extend(membership.heartbeat_written(self.store.heartbeat(item.incarnation, item.state), now))
            elif isinstance(item, ReadNodes):
                pending.extend(membership.observe(self.store.read(), now))
            elif isinstance(item, ClaimDeath):
                won = self.store.claim_death(item.node_id, item.incarnation, membership.node_timeout_seconds)
                row = None if won else self.store.read_one(item.node_id)
                pending.extend(membership.claim_answered(item.node_id, won, row, now))
            else:
                events.append(item)
