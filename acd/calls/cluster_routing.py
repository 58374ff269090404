"""ClusterRouting: the routing authority of one node of a routing cluster (`cluster:` in conf/acd.yaml,
issue 20). Several `acd serve` sharing one PostgreSQL route as one contact centre: one leader feeds
the routing engine through the routing log (acd/cluster/), every node applies the log.

Who acts on what (the rule):
- A call's decisions (Offer, OfferCancelled, CallWaiting, CallConnected, CallRefused,
  CallOverflowed, CallbackOffered) are acted on by the node hosting the call, the one whose
  `AcdService.calls` holds it: it INVITEs the offered agent (its contact from its own registrar,
  else from the shared bindings table), bridges, answers the caller. Other nodes only apply them
  to their replica.
- Agent-level side effects written to the shared store (agent state history rows, presence rows,
  the queue log's agent lines) are written once: by the node that submitted the event (the log
  entry's `origin`), or, for entries without an origin (the engine's timers, `TimersDue`, written
  by the leader), by the node that led at that entry's epoch. Live events for desks and wallboards
  (EventHub) are published by every node, each to its own listeners.
- Entries already in the log when this node starts are history: applied, not acted on.
- The agents of the last run (agent_presence) are restored by one node only, the one that writes
  the first entry of an empty log (`on_first_leader`); once the log has entries, it holds the
  agents (a restarted node finds them in its replica), and nothing is restored.
- Synchronous answers: `feed` answers True once the event is encoded and queued for the inbox
  ("accepted"); AcdService checks agent commands (log-in, log-out, pause, ready) and call steering
  against the local replica first, so the usual refusals are still immediate. A refusal by the
  leader's engine comes back later, to the submitting node only (`Scope.error_id`): a refused
  CallArrived sends the call back to its flow, a refused OfferAnswered hangs the agent leg up;
  the others are logged. Nothing blocks the reactor waiting for the leader.
- Reconfiguration goes through the log: every replica must compute the same decisions, so every
  engine must change config at the same point. The first leader of an empty log writes its routing
  config first (a `Reconfigured` entry), so nodes started with different files still agree; after
  that, a reload (or a membership change from the API) on the leader writes a `Reconfigured` entry
  and every node applies it there. A reload on a follower changes only its local settings (prompts,
  CRM, SIP limits...), its routing config is logged as not in force: reload the leader
  (GET /api/cluster names it). A new leader does not impose its own file.

Threads:
- the routing thread drives the `ClusterNode` on its own connection (LISTEN/NOTIFY wakes it on new
  log entries and inbox rows): `tick` at the lease's and the engine's deadlines, `drain_inbox` on
  the leader, the optional `on_tick(node, now)` hook, and `life` (cluster_life.py: membership
  heartbeats and the reaction to a node's death, started by `start` before the threads);
- the submit thread INSERTs this node's events into `routing_inbox` on a second connection;
- the reactor thread keeps a replica of its own, fed (`callFromThread`) with the entries the
  routing thread applied (`ClusterNode.on_entries`), in log order, and acts on their outcomes.
  Why a second replica rather than a lock around the node's: views are read all over the shell
  (LiveView, QueueWait positions, presence rows), each read would need the lock, and a reader
  would wait behind the routing thread's PostgreSQL round trips. The price: the engine runs twice
  per node, which is microseconds per event.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import psycopg
from prometheus_client import CollectorRegistry, Gauge, Histogram

from ..cluster.lease import BecameLeader, LeaseMachine, SteppedDown
from ..cluster.node import ClusterNode
from ..cluster.pg_log import FencedOut, PgRoutingLog
from ..cluster.routing_log import LogEntry, LogError, Outcome, RoutingReplica
from ..cluster.snapshot import dump_config
from ..cluster.wire import Reconfigured, WireFormatError, decode_event, encode_event
from ..config.cluster_settings import ClusterSettings
from ..registrar.path import AgentContact, binding_contact
from ..routing import Offer, RoutingConfig, RoutingEngine, UnknownQueue, UnknownSkill
from .cluster_life import ClusterLife
from .routing_authority import OnDecisions, Scope

__all__ = ["ClusterStatus", "ClusterRouting"]

log = logging.getLogger("acd.cluster")

PERIODIC_READ_SECONDS = 1.0  # read the log and inbox at least this often: a NOTIFY can be lost on reconnect
SUBMIT_RETRY_SECONDS = 5.0  # a submission is retried (reconnecting) this long before it is given up
STOP_WAIT_SECONDS = 3.0
RELEASE = ("UPDATE routing_lease SET expires_at = now() - interval '1 second' "
           "WHERE id = 1 AND holder = %(holder)s AND epoch = %(epoch)s")
BINDINGS = ("SELECT aor, contact, source_host, source_port, transport, path FROM bindings "
            "WHERE aor = ANY(%(agents)s) AND expires_at > %(now)s ORDER BY aor, q DESC, updated_at DESC")
ROUTING_SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_STOP = object()


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """This node's view of the cluster, for /api/cluster and /metrics."""

    node_id: str
    role: str  # leader, follower or candidate
    leader: str | None  # the lease holder as last seen
    epoch: int  # the highest lease epoch seen
    log_seq: int  # the last routing-log entry applied on this node's reactor

    def as_dict(self) -> dict[str, Any]:
        """For the API."""
        return asdict(self)


class ClusterRouting:
    """A routing cluster node's authority: see the module docstring. `start()` before the reactor
    runs (it catches up the log), `stop()` at shutdown."""

    synchronous = False

    def __init__(self, *, conninfo: str, settings: ClusterSettings, config: RoutingConfig, reactor,
                 channel: str = "routing_log", clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        """`reactor`: IReactorThreads' callFromThread and IReactorTime's seconds (the wall clock).
        `clock`: the lease's monotonic clock; `wall`: the engine's clock, shared by every node."""
        self.node_id = settings.node_id
        self.conninfo = conninfo
        self.reactor = reactor
        self.replica = RoutingReplica(config)  # the reactor thread's
        self.node = ClusterNode(PgRoutingLog(conninfo, settings.node_id, lease_seconds=settings.lease_seconds,
                                             channel=channel),
                                LeaseMachine(settings.node_id, lease_seconds=settings.lease_seconds,
                                             start=clock()),
                                config, snapshot_every_entries=settings.snapshot_every_entries)
        self.node.on_entries = self._applied
        self.on_tick: Callable[[ClusterNode, float], None] | None = None  # routing thread, after each step
        self.life: ClusterLife | None = None  # membership and node loss (set before `start`)
        # Reactor thread, once: this node wrote the first entry of an empty routing log (the agent
        # restore of a cluster's first start runs there, and only there).
        self.on_first_leader: Callable[[], None] | None = None
        self.status = ClusterStatus(node_id=self.node_id, role="follower", leader=None, epoch=0, log_seq=0)
        self._channel = channel
        self._clock, self._wall = clock, wall
        self._on_decisions: OnDecisions = lambda decisions, scope: None
        self._submits: queue.SimpleQueue = queue.SimpleQueue()
        self._outbox: list[tuple[LogEntry, bool]] = []  # routing thread: applied entries to hand over
        self._led_epochs: set[int] = set()  # routing thread: epochs this node led
        self._contacts: dict[str, list[tuple[str, tuple[str, int], str]]] = {}  # reactor: other nodes' agents
        self._submitted: collections.deque = collections.deque(maxlen=10_000)  # reactor: (event, seconds)
        self._resync = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.routing_seconds: Histogram | None = None

    # ---- the port (reactor thread) ------------------------------------------------------------
    @property
    def engine(self) -> RoutingEngine:
        """This node's replica of the engine, for views (reactor thread only)."""
        return self.replica.engine

    def attach(self, on_decisions: OnDecisions) -> None:
        """Where decisions go (AcdService._apply)."""
        self._on_decisions = on_decisions

    def feed(self, event: Any, now: float) -> bool:
        """Hand `event` to the leader through the inbox; False only when it cannot be encoded."""
        try:
            payload = {"input": encode_event(event)}
        except WireFormatError as error:
            log.error("routing event %s cannot be sent to the leader: %s", type(event).__name__, error)
            return False
        self._submitted.append((event, time.perf_counter()))
        self._submits.put(payload)
        return True

    def decide(self, event: Any, now: float) -> list:
        """Check `event` against the replica (unknown call, queue or skill: the RoutingError at once,
        see `_check`), then submit it; its decisions come back through the callback."""
        self._check(event)
        self.feed(event, now)
        return []

    def next_deadline(self) -> float | None:
        """None: the leader's routing thread runs the engine's timers."""
        return None

    def timers(self, now: float) -> None:
        """Never called (no deadline on the reactor)."""

    def reconfigure(self, config: RoutingConfig, now: float) -> None:
        """On the leader: put `config` in force on every node through the log. On a follower: logged,
        not in force (module docstring)."""
        if config == self.replica.engine.config:  # already in force (the log's, whoever wrote it)
            return
        if self.status.role != "leader":
            log.warning("cluster node %s: the reloaded routing config (queues, memberships) is not put in force: "
                        "node %s leads routing; reload it there", self.node_id, self.status.leader or "(none yet)")
            return
        log.info("cluster node %s: the new routing config goes to every node through the routing log", self.node_id)
        self.feed(Reconfigured(routing=dump_config(config)), now)

    @property
    def clock(self) -> Callable[[], float]:
        """The routing thread's monotonic clock (the lease's, and membership's)."""
        return self._clock

    # ---- reads -----------------------------------------------------------------------------------
    def contacts(self, agent_id: str) -> list[AgentContact]:
        """Where an agent registered with another node is reached (the shared bindings, read when
        the agent was offered a call)."""
        return self._contacts.get(agent_id, [])

    def status_dict(self) -> dict[str, Any]:
        """GET /api/cluster (with `members` when membership runs)."""
        found = self.status.as_dict()
        if self.life is not None:
            found["members"] = self.life.status()
        return found

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """acd_cluster_is_leader, acd_cluster_log_seq, acd_cluster_lease_epoch (read at scrape time)
        and acd_cluster_routing_seconds (submit to decision applied on this node)."""
        Gauge("acd_cluster_is_leader", "1 while this node leads routing (holds the lease)",
              registry=registry).set_function(lambda: 1 if self.status.role == "leader" else 0)
        Gauge("acd_cluster_log_seq", "The last routing-log entry applied on this node",
              registry=registry).set_function(lambda: self.status.log_seq)
        Gauge("acd_cluster_lease_epoch", "The highest routing lease epoch this node has seen",
              registry=registry).set_function(lambda: self.status.epoch)
        self.routing_seconds = Histogram("acd_cluster_routing_seconds", "From an event handed to the leader to "
                                         "its decisions applied on the node that submitted it",
                                         buckets=ROUTING_SECONDS_BUCKETS, registry=registry)

    # ---- life cycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect, rebuild the replicas from the log (history: not acted on), start the threads.
        Blocking: call before the reactor runs. Raises RuntimeError when PostgreSQL is unreachable."""
        for attempt in range(3):  # nodes started together may race on CREATE TABLE IF NOT EXISTS: try again
            try:
                self.node.log.connect()
                self.node.rebuild()
                break
            except psycopg.Error as error:
                if attempt == 2:
                    raise RuntimeError(f"cluster: cannot read the routing log: {error} (is PostgreSQL running, "
                                       "and `store:` in conf/acd.yaml right?)") from error
                time.sleep(0.2)
        entries, self._outbox = self._outbox, []
        self._deliver(entries, {}, self._status(), history=True)
        log.info("cluster node %s: routing log read up to seq %d; lease %.1f s", self.node_id,
                 self.replica.last_seq, self.node.lease.lease_seconds)
        if self.life is not None:  # joins, and ends its previous incarnation's calls, before any new call
            self.life.start(self.node, self._clock(), self._wall())
        for target, name in ((self._route_loop, "acd-cluster-routing"), (self._submit_loop, "acd-cluster-submit")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Send the events still queued, route them when leading, give the lease back (the next
        leader need not wait for it to expire), stop both threads."""
        self._submits.put(_STOP)  # the submit thread sends what is queued, then wakes the routing thread
        for thread in self._threads[1:]:
            thread.join(STOP_WAIT_SECONDS)
        if self._threads:
            self._threads[0].join(STOP_WAIT_SECONDS)

    # ---- the reactor side ----------------------------------------------------------------------------
    def _deliver(self, entries: list[tuple[LogEntry, bool]], contacts: dict, status: ClusterStatus,
                 history: bool = False) -> None:
        self._contacts.update(contacts)
        for entry, mine in entries:
            if entry.seq <= self.replica.last_seq:
                continue  # repeated by a rebuild
            if entry.seq != self.replica.last_seq + 1:
                if entry.kind == "snapshot":
                    log.warning("cluster node %s: replica jumps from seq %d to the snapshot at %d",
                                self.node_id, self.replica.last_seq, entry.seq)
                    self.replica = RoutingReplica.from_snapshot(entry)
                else:
                    log.error("cluster node %s: routing log gap after seq %d (got %d): rebuilding",
                              self.node_id, self.replica.last_seq, entry.seq)
                    self._resync.set()
                continue
            try:
                outcome = self.replica.apply(entry)
            except LogError as error:
                log.error("cluster node %s: routing log entry %d not applied: %s", self.node_id, entry.seq, error)
                self._resync.set()
                continue
            if outcome is not None and not history:
                self._act(entry, outcome, mine)
        self.status = ClusterStatus(node_id=status.node_id, role=status.role, leader=status.leader,
                                    epoch=status.epoch, log_seq=self.replica.last_seq)

    def _act(self, entry: LogEntry, outcome: Outcome, mine: bool) -> None:
        event = None
        if mine and entry.payload.get("origin") == self.node_id:
            event = decode_event(entry.payload.get("input"))
            self._observe(event)
        if outcome.error_id is not None:
            if event is not None:
                self._on_decisions([], Scope(agent_writes=True, hosted_only=True, event=event,
                                             error_id=outcome.error_id, error=outcome.error))
            return
        if outcome.decisions:
            self._on_decisions(outcome.decisions, Scope(agent_writes=mine, hosted_only=True, event=event))

    def _observe(self, event: Any) -> None:
        """The routing delay of one of this node's events (they come back in the order sent)."""
        for _ in range(len(self._submitted)):
            sent, at = self._submitted.popleft()
            if sent == event:
                if self.routing_seconds is not None:
                    self.routing_seconds.observe(time.perf_counter() - at)
                log.debug("cluster node %s: %s routed in %.1f ms", self.node_id, type(event).__name__,
                          (time.perf_counter() - at) * 1000)
                return

    def _check(self, event: Any) -> None:
        """Raise the RoutingError the replica's engine would, for the checks that change nothing:
        the call is held by the router, a queue named is configured (not retired), skills asked
        for are known."""
        engine = self.replica.engine
        call_id = getattr(event, "call_id", None)
        if call_id is not None:
            engine.call_view(call_id)
        queue = getattr(event, "queue", None)
        if queue is not None and (engine.queue_config(queue) is None or queue in engine.retired_queues()):
            raise UnknownQueue(f"queue {queue!r} was removed from the configuration", queue=queue)
        for skill in dict(getattr(event, "requirements", None) or {}):
            if skill not in engine.config.skills:
                raise UnknownSkill(f"skill {skill!r} is not configured", skill=skill)

    # ---- the routing thread ----------------------------------------------------------------------------
    def _applied(self, entries: list[LogEntry]) -> None:
        token = self.node.lease.fencing_token
        if token is not None:
            self._led_epochs.add(token)
        for entry in entries:
            origin = entry.payload.get("origin")
            mine = origin == self.node_id if origin is not None else entry.epoch in self._led_epochs
            self._outbox.append((entry, mine))

    def _status(self) -> ClusterStatus:
        lease = self.node.lease
        return ClusterStatus(node_id=self.node_id, role=lease.role.value,
                             leader=self.node_id if lease.fencing_token is not None else lease.holder,
                             epoch=lease.epoch, log_seq=self.node.replica.last_seq)

    def _route_loop(self) -> None:
        last_status = None
        while not self._stopping.is_set():
            outcomes: list[Outcome] = []
            try:
                if self._resync.is_set():
                    self._resync.clear()
                    self.node.rebuild()
                outcomes = self._step()
            except Exception:  # noqa: BLE001 - the loop must survive anything; the lease then lapses
                log.exception("cluster node %s: routing step failed", self.node_id)
                time.sleep(0.2)
            contacts = self._contacts_for(outcomes)
            status = self._status()
            entries, self._outbox = self._outbox, []
            if entries or contacts or status != last_status:
                self.reactor.callFromThread(self._deliver, entries, contacts, status)
                last_status = status
            try:
                self.node.log.wait(self._wait_seconds())
            except psycopg.Error:
                time.sleep(min(self._wait_seconds(), 0.5))  # tick reconnects
        self._leave()

    def _leave(self) -> None:
        """Stopping: a leader routes what is left in the inbox and gives the lease back; the node's
        membership row says stopped."""
        epoch = self.node.lease.fencing_token
        if epoch is not None:
            try:
                self._step()
                self.node.log.connection.execute(RELEASE, {"holder": self.node_id, "epoch": epoch})
                log.info("cluster node %s gave the routing lease back (epoch %d)", self.node_id, epoch)
            except (psycopg.Error, AttributeError) as error:
                log.warning("cluster node %s could not give the routing lease back: %s", self.node_id, error)
        if self.life is not None:
            self.life.leave()

    def _step(self) -> list[Outcome]:
        now, wall = self._clock(), self._wall()
        actions, outcomes = self.node.tick(now, wall)
        for action in actions:
            if isinstance(action, BecameLeader):
                self._led_epochs.add(action.epoch)
                log.info("cluster node %s leads routing at epoch %d (log at seq %d)", self.node_id, action.epoch,
                         self.node.replica.last_seq)
                if self.node.is_leader and self.node.replica.last_seq == 0:  # the first: every replica takes its config
                    try:
                        outcomes.append(self.node.lead(Reconfigured(routing=dump_config(self.node.config)), wall))
                        if self.on_first_leader is not None:  # this node began the log: its agents to restore
                            self.reactor.callFromThread(self.on_first_leader)
                    except (FencedOut, psycopg.Error) as error:
                        log.warning("cluster node %s: routing config not written first: %s", self.node_id, error)
            elif isinstance(action, SteppedDown):
                log.warning("cluster node %s stopped leading (epoch %d): %s", self.node_id, action.epoch,
                            action.reason)
        while self.node.is_leader:
            try:
                routed, rejected = self.node.drain_inbox(self._wall())
            except FencedOut:
                break
            except psycopg.Error as error:
                log.warning("cluster node %s: reading the inbox failed: %s", self.node_id, error)
                break
            for inbox_id, origin, why in rejected:
                log.error("cluster node %s: inbox row %d from %s dropped: %s", self.node_id, inbox_id, origin, why)
            outcomes.extend(routed)
            if not routed and not rejected:
                break
        if self.life is not None:
            outcomes.extend(self.life.tick(self.node, now, wall, actions))
        if self.on_tick is not None:
            self.on_tick(self.node, now)
        return outcomes

    def _wait_seconds(self) -> float:
        now = self._clock()
        deadlines = [now + PERIODIC_READ_SECONDS]
        for deadline in (self.node.lease.next_deadline(), self.life.next_deadline() if self.life else None):
            if deadline is not None:
                deadlines.append(deadline)
        routing = self.node.routing_deadline()
        if routing is not None:
            deadlines.append(now + routing - self._wall())
        return max(0.0, min(deadlines) - now)

    def _contacts_for(self, outcomes: list[Outcome]) -> dict[str, list[AgentContact]]:
        """The shared bindings of the agents offered a call in `outcomes` (the hosting node may not
        be the one they registered with)."""
        agents = sorted({d.agent_id for outcome in outcomes for d in outcome.decisions if isinstance(d, Offer)})
        connection = self.node.log.connection
        if not agents or connection is None or connection.closed:
            return {}
        found: dict[str, list] = {agent: [] for agent in agents}
        try:
            rows = connection.execute(BINDINGS, {"agents": agents, "now": self._wall()}).fetchall()
        except psycopg.Error as error:  # no registrar (no table) or the store is gone
            log.debug("cluster node %s: shared bindings not read: %s", self.node_id, error)
            return {}
        for aor, contact, host, port, transport, path in rows:
            try:
                route = tuple(json.loads(path)) if path else ()
            except ValueError:
                route = ()
            found[aor].append(binding_contact(contact, (host, int(port)), transport, route))
        return found

    # ---- the submit thread ----------------------------------------------------------------------------
    def _submit_loop(self) -> None:
        submitter = PgRoutingLog(self.conninfo, self.node_id, channel=self._channel)
        while (payload := self._submits.get()) is not _STOP:
            give_up = time.monotonic() + SUBMIT_RETRY_SECONDS
            while True:
                try:
                    self._connect(submitter)
                    submitter.submit(payload)
                    break
                except psycopg.Error as error:
                    submitter.close()
                    if time.monotonic() >= give_up:
                        log.error("cluster node %s: routing event %s lost: the inbox cannot be reached (%s)",
                                  self.node_id, payload["input"].get("type"), error)
                        break
                    time.sleep(0.2)
        self._stopping.set()
        try:  # wake the routing thread (every node's, harmlessly) so that it stops now
            self._connect(submitter).execute("SELECT pg_notify(%s, 'stop')", (f"{self._channel}_inbox",))
        except psycopg.Error:
            pass
        submitter.close()

    def _connect(self, submitter: PgRoutingLog) -> psycopg.Connection:
        """The submit thread's connection (no LISTEN: it would pile up notifications no one reads)."""
        if submitter.connection is None or submitter.connection.closed:
            submitter.connection = psycopg.connect(self.conninfo, autocommit=True)
            submitter.connection.execute("SET statement_timeout = 1000")
        return submitter.connection

