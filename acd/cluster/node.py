"""One cluster node's routing loop, synchronous: the lease machine, the replica and the PostgreSQL
log driven together. The server will run it off the reactor thread; tests drive it directly.

Rules of this file:
- Two clocks: the lease runs on this node's monotonic clock (`now`: immune to wall-clock steps,
  which could otherwise stretch a lease); the engine runs on wall-clock seconds (`routing_now`),
  the time base every node shares, since a deadline set by one leader fires on the next.
- `tick(now, routing_now)` is the one periodic call: lease deadlines (acquire, renew, give up),
  catching up the log, and, on the leader, the engine's due timers (a `TimersDue` entry). Arm it
  at the earlier of `lease.next_deadline()` and `routing_deadline()`, and on every NOTIFY. A node that becomes leader first catches up to the log's end (the old leader can no
  longer append), then answers events its predecessor left without decisions.
- `lead(event, now)` is for the leader only: the event is applied to the local replica, then its
  event and decision entries are appended in one fenced statement. When the append is refused the
  node steps down and rebuilds its replica from the log, and `FencedOut` tells the caller not to
  act on the outcome.
- Any node `submit`s the events of the calls and agents it hosts; the leader routes them with
  `drain_inbox` (in inbox order, one fenced append that also consumes the inbox rows).
- Outcomes returned by `tick`, `lead` and `drain_inbox` are what the node acts on (for the calls and agents it hosts).
- Node loss: when membership (`membership.py`) declares a node dead, the leader ends every call that
  node hosted and the engine still holds (`node_died`): offers to agents are withdrawn, agents on
  those calls go to wrap-up and then available, as after any hang-up. A restarted node ends its
  previous incarnation's calls itself (`end_previous_calls`), before it takes new ones.
"""

from __future__ import annotations

from typing import Any, Callable

import psycopg

from acd.routing.config import RoutingConfig
from acd.routing.events import CallEnded

from .lease import AcquireLease, Action, BecameLeader, LeaseMachine, RenewLease, StoreLost
from .pg_log import FencedOut, PgRoutingLog
from .routing_log import LogEntry, Outcome, RoutingReplica, replay
from .wire import TimersDue, WireFormatError, decode_event, encode_event

__all__ = ["ClusterNode"]


class ClusterNode:
    """A node of the routing cluster: follows the log, or leads and writes it."""

    def __init__(self, log: PgRoutingLog, lease: LeaseMachine, config: RoutingConfig, *,
                 snapshot_every_entries: int = 5000) -> None:
        """`snapshot_every_entries`: the leader appends a snapshot once this many entries follow the
        last one (5000: a replay of that many entries takes well under a second, and a snapshot of
        200 agents and 1000 waiting calls is about 330 KiB, so at 1000 events/s, two entries each,
        that is 330 KiB every 10 s)."""
        self.snapshot_every_entries = snapshot_every_entries
        self.log = log
        self.lease = lease
        self.config = config
        self.replica = RoutingReplica(config)
        self._replica_stale = False  # an append failed midway: the replica may be ahead of the log
        self._lease_now = 0.0  # the lease clock at the last tick (for a store loss seen when appending)
        # Told of the entries now in the log and applied here, in seq order (rebuilds repeat some):
        # the server keeps a replica on its reactor thread with them (acd/calls/cluster_routing.py).
        self.on_entries: Callable[[list[LogEntry]], None] | None = None

    @property
    def is_leader(self) -> bool:
        """True while this node holds the lease (as far as its clock can tell)."""
        return self.lease.fencing_token is not None

    def rebuild(self) -> None:
        """Throw the replica away and rebuild it from the log's last snapshot and what follows."""
        entries = self.log.read_from_last_snapshot()
        self.replica = replay(self.config, entries)
        self._replica_stale = False
        self._tell(entries)

    def routing_deadline(self) -> float | None:
        """Leader only: when the engine's next timer is due (wall clock); None on a follower."""
        return self.replica.engine.next_deadline() if self.is_leader else None

    def tick(self, now: float, routing_now: float | None = None) -> tuple[list[Action], list[Outcome]]:
        """Run the lease deadlines due at `now` (monotonic), catch up the log and, when leading, run
        the engine's timers due at `routing_now` (wall clock; `now` when not given). Returns the
        lease actions taken and the outcomes of the event entries newly applied or routed."""
        routing_now = now if routing_now is None else routing_now
        self._lease_now = now
        done: list[Action] = []
        if self.log.connection is None or self.log.connection.closed:
            try:
                self.log.connect()
            except psycopg.Error:
                pass  # the lease requests below report the store as lost
        pending = self.lease.handle_timers(now)
        while pending:
            action = pending.pop(0)
            done.append(action)
            if isinstance(action, AcquireLease):
                pending.extend(self.lease.handle(self.log.acquire(now), now))
            elif isinstance(action, RenewLease):
                pending.extend(self.lease.handle(self.log.renew(action.epoch, now), now))
        outcomes: list[Outcome] = []
        if self.log.connection is None or self.log.connection.closed:
            return done, outcomes
        try:
            if self._replica_stale:
                self.rebuild()
            outcomes = self.catch_up()
            if any(isinstance(action, BecameLeader) for action in done) and self.is_leader:
                self._append(self.replica.confirm_unconfirmed(self.lease.epoch))
            deadline = self.routing_deadline()
            if deadline is not None and deadline <= routing_now:
                outcomes.append(self.lead(TimersDue(), routing_now))
            replica = self.replica
            if (self.is_leader and not replica.unconfirmed()
                    and replica.last_seq - replica.last_snapshot_seq >= self.snapshot_every_entries):
                self.snapshot()
        except FencedOut:
            pass  # stepped down and rebuilt in `_append`
        except psycopg.Error as error:
            done.extend(self.lease.handle(StoreLost(reason=f"{type(error).__name__}: {error}"), now))
        return done, outcomes

    def catch_up(self) -> list[Outcome]:
        """Apply every log entry after the replica's last; the outcomes of the event entries."""
        outcomes = []
        while entries := self.log.read_after(self.replica.last_seq):
            applied = []
            try:
                for entry in entries:
                    outcome = self.replica.apply(entry)
                    applied.append(entry)
                    if outcome is not None:
                        outcomes.append(outcome)
            finally:
                self._tell(applied)
        return outcomes

    def lead(self, event: Any, now: float, origin: str | None = None) -> Outcome:
        """Leader only: route `event` at `now`, append it and the decisions; the outcome to act on.
        `origin`: the node hosting the event's call or agent (this node when not given)."""
        epoch = self.lease.fencing_token
        if epoch is None:
            raise FencedOut(f"node {self.log.node_id} does not lead routing: send the event to the leader")
        if origin is None and not isinstance(event, TimersDue):
            origin = self.log.node_id
        entries, outcome = self.replica.record(event, now, epoch, origin=origin)
        self._append(entries)
        return outcome

    def node_died(self, node_id: str, now: float, cause: str | None = None) -> list[Outcome]:
        """Leader only: end, at `now`, every call `node_id` hosted that the engine still holds (one
        `CallEnded` each, appended in one fenced statement); the outcomes to act on (offers
        withdrawn, agents to wrap-up). Idempotent: a second call finds nothing left to end."""
        epoch = self.lease.fencing_token
        if epoch is None:
            raise FencedOut(f"node {self.log.node_id} does not lead routing: only the leader ends a dead node's calls")
        why = cause or f"interrupted: node {node_id} died"
        entries: list[LogEntry] = []
        outcomes: list[Outcome] = []
        for call_id in self.replica.calls_hosted_by(node_id):
            written, outcome = self.replica.record(CallEnded(call_id=call_id), now, epoch, origin=node_id, cause=why)
            entries.extend(written)
            outcomes.append(outcome)
        self._append(entries)
        return outcomes

    def end_previous_calls(self, now: float) -> list[str]:
        """At start-up of a restarted node, after its first `tick` and before it takes calls: end the
        calls its previous incarnation hosted that the engine still holds (led when this node leads,
        submitted otherwise); their ids."""
        own = self.log.node_id
        calls = self.replica.calls_hosted_by(own)
        if self.is_leader:
            self.node_died(own, now, cause=f"interrupted: node {own} restarted")
        else:
            for call_id in calls:
                self.submit(CallEnded(call_id=call_id))
        return calls

    def submit(self, event: Any) -> int:
        """Any node: send an event of a call or agent it hosts to the leader; its inbox id."""
        return self.log.submit({"input": encode_event(event)})

    def drain_inbox(self, now: float, limit: int = 100) -> tuple[list[Outcome], list[tuple[int, str, str]]]:
        """Leader only: route up to `limit` submitted events at `now`, in inbox order, and append them
        with their decisions in one fenced statement that consumes their inbox rows. Returns the
        outcomes, and the submissions that did not decode (consumed, not routed): (id, origin, why)."""
        epoch = self.lease.fencing_token
        if epoch is None:
            raise FencedOut(f"node {self.log.node_id} does not lead routing: only the leader drains the inbox")
        entries: list[LogEntry] = []
        outcomes: list[Outcome] = []
        rejected: list[tuple[int, str, str]] = []
        consumed = []
        for inbox_id, origin, payload in self.log.read_inbox(limit):
            consumed.append(inbox_id)
            try:
                event = decode_event(payload.get("input") if isinstance(payload, dict) else None)
            except WireFormatError as error:
                rejected.append((inbox_id, origin, str(error)))
                continue
            written, outcome = self.replica.record(event, now, epoch, origin=origin)
            entries.extend(written)
            outcomes.append(outcome)
        if consumed:
            self._append(entries, consumed)
        return outcomes, rejected

    def snapshot(self) -> LogEntry:
        """Leader only: append a snapshot of the engine, so replays start from here."""
        epoch = self.lease.fencing_token
        if epoch is None:
            raise FencedOut(f"node {self.log.node_id} does not lead routing: only the leader snapshots")
        entry = self.replica.snapshot(epoch)
        self._append([entry])
        return entry

    def _append(self, entries: list[LogEntry], consumed: list[int] | None = None) -> None:
        if not entries and not consumed:
            return
        try:
            self.log.append(entries, self.lease.epoch, consumed or ())
        except FencedOut:
            self._lost("append fenced out: the lease is no longer ours at this epoch")
            self.rebuild()
            raise
        except psycopg.Error as error:  # committed or not, we cannot tell: rebuild from the log
            self._lost(f"append failed: {type(error).__name__}")
            self._replica_stale = True
            raise
        self._tell(entries)

    def _tell(self, entries: list[LogEntry]) -> None:
        if entries and self.on_entries is not None:
            self.on_entries(entries)

    def _lost(self, reason: str) -> None:
        if self.is_leader:
            self.lease.handle(StoreLost(reason=reason), self._lease_now)
