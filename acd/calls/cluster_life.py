"""ClusterLife: node membership and node loss wired into a running cluster node (issue 20).

`ClusterRouting` (cluster_routing.py) drives the routing log; this drives, on the same routing
thread, the node's membership (`acd/cluster/pg_members.py`: heartbeats into `cluster_nodes`, the
others' rows read, deaths claimed) and the reaction to a death (`acd/cluster/node_loss.py`), as
acd/cluster/README.md ("What a node's loop calls") asks:

- Start-up (`start`, before the routing thread runs and before any call): join as a new
  incarnation (`members.start`), which the records then write with each call
  (`records.incarnation`: a survivor closing a dead incarnation's records leaves the next one's
  alone, acd/cluster/node_loss.py), and end the calls the previous incarnation of this node left in
  the routing engine (`ClusterNode.end_previous_calls`: submitted to the leader, whoever it is).
  The composition root has already closed this node's own open call records
  (`records.close_interrupted`, which in a cluster touches only this node's calls).
- Each routing step (`tick`): on `BecameLeader`, `NodeLoss.became_leader` asks for the calls of
  every node known dead to be ended in the engine; that sweep waits for a read of `cluster_nodes`
  made after the step's routing (forced at once, tried again at each step until one succeeds), so
  that a node restarted meanwhile is seen up and its new calls are not ended. At the membership's
  deadline, heartbeat, read the others, claim deaths and react (`NodeLoss.membership_events`). The
  outcomes returned join the routing step's, acted on like any routing outcome.
- Declared dead by the others (`SelfDeclaredDead`: a long stall, or cut from PostgreSQL while the
  others were not): they closed this node's call records and freed its agents, so every call it
  hosts is hung up at once (else an agent on one of them could be offered a second call), its
  records closed, and the node rejoins as a new incarnation. Logged at ERROR with what to check.
  In the same reactor turn as the hang-up, the records start writing the next incarnation (the
  dead one's plus one, what the rejoin gives) with each call: a call taken after the hang-up is
  the next incarnation's even when the rejoin is still under way, and the survivor's close of the
  dead incarnation, however late, leaves it open.
- Drain (graceful shutdown): the row says draining at the next step; clean stop: `stopped`
  (`leave`), so the others see a departure, not a death.

Threads: everything on `cluster_nodes` runs on the routing thread. What touches the shell (the
records writer, calls to hang up) goes to the reactor with `callFromThread`, in order with the
routing entries handed over there. `/api/cluster` and the metrics read `members_view`, an immutable
tuple the routing thread replaces after each membership step.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable

import psycopg
from prometheus_client import CollectorRegistry, Gauge

from ..cluster.lease import BecameLeader
from ..cluster.membership import Membership, NodeDied, NodeJoined, NodeLeft, NodeRestarted, NodeSeen, SelfDeclaredDead
from ..cluster.node import ClusterNode
from ..cluster.node_loss import NodeLoss
from ..cluster.pg_members import ClusterMembers, PgMembers
from ..cluster.routing_log import Outcome
from ..config.cluster_settings import ClusterSettings
from .leg_states import EndReason

__all__ = ["MemberView", "ClusterLife", "MEMBER_STATES"]

log = logging.getLogger("acd.cluster")

MEMBER_STATES = ("up", "draining", "suspect", "dead", "stopped")  # acd_cluster_members{state}
REJOIN_RETRY_SECONDS = 0.5  # a rejoin the store refused is tried again this often


@dataclass(frozen=True, slots=True)
class MemberView:
    """One node of the cluster as this node sees it, for /api/cluster."""

    node_id: str
    state: str  # up, draining, suspect, dead, stopped (this node: up or draining)
    heartbeat_age_seconds: float  # on the store's clock when read, plus the time since the read
    incarnation: int
    address: str

    def as_dict(self) -> dict[str, Any]:
        """For the API."""
        return asdict(self)


class _RememberingStore(PgMembers):
    """PgMembers that keeps its last read of `cluster_nodes` (and when, on this node's clock) for the API."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock
        self.rows: tuple[NodeSeen, ...] = ()
        self.read_at = 0.0

    def read(self) -> list[NodeSeen]:
        """Every node's row (kept)."""
        rows = super().read()
        self.rows, self.read_at = tuple(rows), self._clock()
        return rows


class _RecordsOnReactor:
    """`records.close_node_calls` called from the routing thread, run on the reactor (the records
    writer's buffer and its shipping timer belong to the reactor thread)."""

    def __init__(self, records: Any, reactor) -> None:
        self.records = records
        self.reactor = reactor

    def close_node_calls(self, node: str, *, at: float, reason: str | None = None,
                         incarnation: int | None = None) -> None:
        """See CallRecords.close_node_calls."""
        self.reactor.callFromThread(self.records.close_node_calls, node, at=at, reason=reason, incarnation=incarnation)


class ClusterLife:
    """One node's membership and reaction to node loss, on its routing thread (module docstring).
    `end_hosted_calls(why, at)` runs on the reactor when this node was declared dead: hang up every
    call it hosts and close their records."""

    def __init__(self, *, conninfo: str, settings: ClusterSettings, address: str, records: Any, reactor,
                 end_hosted_calls: Callable[[str, float], None], clock: Callable[[], float]) -> None:
        """`address`: this node's SIP host:port, as written in its `cluster_nodes` row. `clock`: the
        routing thread's monotonic clock (ClusterRouting's)."""
        timeout = settings.node_timeout_seconds
        self.node_id = settings.node_id
        self.reactor = reactor
        self.records = records
        self.end_hosted_calls = end_hosted_calls
        self._clock = clock
        # Each statement bounded to a third of the timeout: a slow store is a failed heartbeat, noticed
        # and retried, well before the others would call this node dead.
        self.store = _RememberingStore(conninfo, settings.node_id, address, clock=clock,
                                       statement_timeout_seconds=min(1.0, timeout / 3))
        self.members = ClusterMembers(self.store, Membership(settings.node_id, node_timeout_seconds=timeout))
        self.loss: NodeLoss | None = None
        self.members_view: tuple[MemberView, ...] = ()
        self.declared_dead_count = 0
        self._drain_asked = threading.Event()
        self._drained = False
        self._rejoin_at: float | None = None  # declared dead: when to try joining again
        self._gauge: Gauge | None = None

    # ---- the reactor side ----------------------------------------------------------------------
    def drain(self) -> None:
        """Graceful shutdown began (any thread): the row says draining at the next routing step."""
        self._drain_asked.set()

    def admission(self, admission: Any) -> Any:
        """`admission` (the SipServer: `refuse_new_calls`) that also marks this node draining, for
        GracefulShutdown."""
        return _DrainingAdmission(admission, self)

    def status(self) -> list[dict[str, Any]]:
        """The members as last read, for GET /api/cluster (any thread)."""
        return [member.as_dict() for member in self.members_view]

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """acd_cluster_members{state}: nodes by state as this node sees them (itself included)."""
        self._gauge = Gauge("acd_cluster_members", "Cluster nodes by state as this node sees them (itself included)",
                            ["state"], registry=registry)
        for state in MEMBER_STATES:
            self._gauge.labels(state=state).set(0)

    # ---- the routing thread ----------------------------------------------------------------------
    def start(self, node: ClusterNode, now: float, routing_now: float) -> None:
        """Before the routing thread starts: join (raises RuntimeError when the store refuses: a node
        that cannot join takes no calls), then end the previous incarnation's calls in the engine."""
        self.loss = NodeLoss(node, _RecordsOnReactor(self.records, self.reactor), self.members.membership.dead_nodes)
        try:
            events = self.members.start(now)
        except psycopg.Error as error:
            raise RuntimeError(f"cluster: node {self.node_id} cannot join the cluster (cluster_nodes): {error} "
                               "(is PostgreSQL running, and `store:` in conf/acd.yaml right?)") from error
        self.records.incarnation = self.members.membership.incarnation  # the reactor does not run yet
        self._log_events(events)
        self._end_previous_calls(node, routing_now)
        self._publish(now)
        log.info("cluster node %s joined as incarnation %d; node timeout %g s", self.node_id,
                 self.members.membership.incarnation, self.members.membership.node_timeout_seconds)

    def next_deadline(self) -> float | None:
        """When `tick` is next due (monotonic), besides the routing loop's own deadlines."""
        deadlines = [d for d in (self.members.next_deadline(), self._rejoin_at) if d is not None]
        return min(deadlines) if deadlines else None

    def tick(self, node: ClusterNode, now: float, routing_now: float, actions: list) -> list[Outcome]:
        """After a routing step's `node.tick` (`actions`: its lease actions): the node-loss
        reactions due; the routing outcomes they gave."""
        outcomes: list[Outcome] = []
        loss = self.loss
        if loss is None:
            return outcomes
        if any(isinstance(action, BecameLeader) for action in actions):
            loss.became_leader(routing_now)
        if self._rejoin_at is not None and now >= self._rejoin_at:
            self._rejoin(node, now, routing_now)
        events: list = []
        if self._drain_asked.is_set() and not self._drained:
            self._drained = True
            events.extend(self.members.drain(now))
            log.info("cluster node %s: draining (its row in cluster_nodes says so)", self.node_id)
        deadline = self.members.next_deadline()
        if deadline is not None and now >= deadline:
            events.extend(self.members.tick(now))
        read = False
        if loss.sweep_due and node.is_leader:  # a current view of the dead, after this step's routing
            fresh = self.members.read(now)
            if fresh is not None:
                events.extend(fresh)
                read = True
        if events or read:
            self._log_events(events)
            outcomes.extend(loss.membership_events(events, routing_now, read=read))
            if any(isinstance(event, SelfDeclaredDead) for event in events):
                self._declared_dead(node, now, routing_now)
        self._publish(now)
        return outcomes

    def leave(self) -> None:
        """A clean stop (routing thread, at its end): the row says stopped."""
        try:
            if self.members.leave():
                log.info("cluster node %s left the cluster (stopped)", self.node_id)
        except psycopg.Error as error:
            log.warning("cluster node %s could not mark itself stopped: %s; the others will declare it dead "
                        "after %g s", self.node_id, error, self.members.membership.node_timeout_seconds)
        finally:
            self.store.close()

    def _declared_dead(self, node: ClusterNode, now: float, routing_now: float) -> None:
        self.declared_dead_count += 1
        timeout = self.members.membership.node_timeout_seconds
        why = f"node {self.node_id} was declared dead by the other nodes"
        log.error("cluster node %s was declared dead by the other nodes: none of its heartbeats reached PostgreSQL "
                  "for %g s (a stall of this process or machine, or a network cut from PostgreSQL). They closed "
                  "its calls as interrupted and freed its agents: hanging up every call it hosts, then rejoining. "
                  "If this repeats, check this machine's load and its network to PostgreSQL, or raise "
                  "cluster.node_timeout_seconds in conf/acd.yaml", self.node_id, timeout)
        self.reactor.callFromThread(self._end_incarnation, why, routing_now, self.members.membership.incarnation + 1)
        self._rejoin_at = now
        self._rejoin(node, now, routing_now)

    def _end_incarnation(self, why: str, at: float, next_incarnation: int) -> None:
        """On the reactor, declared dead: hang up every call and close their records
        (`end_hosted_calls`), and write the next incarnation with the calls from now on."""
        self.records.incarnation = next_incarnation
        self.end_hosted_calls(why, at)

    def _rejoin(self, node: ClusterNode, now: float, routing_now: float) -> None:
        try:
            events = self.members.start(now)
        except psycopg.Error as error:
            log.warning("cluster node %s: rejoining failed (%s); trying again in %g s", self.node_id, error,
                        REJOIN_RETRY_SECONDS)
            self.store.close()
            self._rejoin_at = now + REJOIN_RETRY_SECONDS
            return
        self._rejoin_at = None
        self._drained = False  # a drain asked meanwhile is said again at the next step
        incarnation = self.members.membership.incarnation
        # Normally the incarnation `_end_incarnation` set already (the dead one's plus one).
        self.reactor.callFromThread(setattr, self.records, "incarnation", incarnation)
        log.warning("cluster node %s rejoined as incarnation %d", self.node_id, incarnation)
        self._log_events(events)
        self._end_previous_calls(node, routing_now)

    def _end_previous_calls(self, node: ClusterNode, routing_now: float) -> None:
        try:
            ended = node.end_previous_calls(routing_now)
        except psycopg.Error as error:  # the leader's node_died (or a new incarnation's) catches them later
            log.warning("cluster node %s: previous calls not ended in the engine: %s", self.node_id, error)
            return
        if ended:
            log.warning("cluster node %s: ended %d call(s) of its previous incarnation: %s", self.node_id, len(ended),
                        " ".join(ended))

    def _log_events(self, events: list) -> None:
        for event in events:
            if isinstance(event, (NodeJoined, NodeRestarted)):
                log.info("cluster: node %s (incarnation %d) joined at %s", event.node_id, event.incarnation,
                         event.address)
            elif isinstance(event, NodeLeft):
                log.info("cluster: node %s (incarnation %d) left (stopped)", event.node_id, event.incarnation)
            elif not isinstance(event, (NodeDied, SelfDeclaredDead)):  # those two: NodeLoss and _declared_dead
                log.info("cluster: %s", event)

    def _publish(self, now: float) -> None:
        membership = self.members.membership
        since = max(0.0, now - self.store.read_at)
        views = []
        for row in sorted(self.store.rows, key=lambda seen: seen.node_id):
            if row.node_id == self.node_id:
                state = "dead" if membership.declared_dead else ("draining" if membership.draining else "up")
            else:
                state = membership.status(row.node_id).value
                if state == "unknown":
                    state = row.state
            views.append(MemberView(node_id=row.node_id, state=state, incarnation=row.incarnation,
                                    heartbeat_age_seconds=round(row.heartbeat_age_seconds + since, 3),
                                    address=row.address))
        self.members_view = tuple(views)
        if self._gauge is not None:
            for state in MEMBER_STATES:
                self._gauge.labels(state=state).set(sum(1 for view in views if view.state == state))


class _DrainingAdmission:
    """The SipServer's admission switch, which also tells the cluster this node drains."""

    def __init__(self, admission: Any, life: ClusterLife) -> None:
        self._admission = admission
        self._life = life

    def refuse_new_calls(self, retry_after_seconds: int) -> None:
        """New calls refused (503) from now on, and this node's row says draining."""
        self._admission.refuse_new_calls(retry_after_seconds)
        self._life.drain()


def end_hosted_calls(acd: Any, calls: Any, records: Any, why: str, at: float) -> None:
    """What a node declared dead does on its reactor (`ClusterLife.end_hosted_calls`): the ACD lets
    go of every call it holds (offers cancelled, agents' legs ended), every caller gets BYE, every
    other leg of ours is ended, and the records of this node's calls still open are closed as
    "interrupted" at `at` (the others closed those they knew of). The ACD then takes calls again."""
    released = acd.release_all(why)
    acd.releasing = False  # release_all is a shutdown's: this node goes on once it has rejoined
    sessions = list(calls.sessions.values())
    for session in sessions:
        session.hang_up(EndReason.HUNG_UP, why)
    for leg in list(calls.placed.values()):
        leg.cancel(why)
    records.close_interrupted(at=at, reason=why)
    log.error("cluster: %s: %d caller(s) hung up, %d call(s) released by the ACD", why, len(sessions), len(released))
