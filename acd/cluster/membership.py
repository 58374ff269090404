"""Cluster membership as a pure state machine: heartbeats in, "node X joined / drains / died" out.

Rules of this file:
- The store is the judge of time and of death: each node writes its heartbeat into its row of
  `cluster_nodes` (`pg_members.py`) with the store's `now()`, and the rows come back with their
  *age* on the store's clock (`NodeSeen.heartbeat_age_seconds`). A peer's local deadline is `now +
  node_timeout_seconds - age` on this node's clock, so no two nodes' clocks are ever compared.
- A peer whose heartbeat is `node_timeout_seconds` old is only *suspect*: the machine asks the store
  to claim its death (`ClaimDeath`), an UPDATE that succeeds only while the row is still `up` or
  `draining`, at the same incarnation, with a heartbeat that old on the store's clock. Exactly one
  survivor wins a claim (`NodeDied(claimed=True)`: it closes the dead incarnation's call records);
  the others learn the death from the row (`NodeDied(claimed=False)`).
- A restarted node is a new *incarnation* (the store counts them): a row seen with a higher
  incarnation than the one known is `NodeRestarted` (while it was live) or `NodeJoined` (after it
  died or stopped). The old incarnation's calls are its own business: a restarted node ends them
  itself before it takes new ones (`ClusterNode.end_previous_calls`); nobody else may, since the
  routing log names calls by node id, which the new incarnation shares.
- A node claims deaths only after it has itself reached the store without a break for a whole
  timeout (`store_since`): after the store was down or unreachable for a while, every heartbeat
  is old, and the first node back must not declare the others dead before they could write again.
  A node declared dead claims nothing.
- This node heartbeats every `heartbeat_interval_seconds` (a third of the timeout: two more tries
  fit before a peer would suspect it) and reads every row at the same time. When the store refuses
  its heartbeat (its row says dead, stopped, or a newer incarnation), `SelfDeclaredDead`: the node
  must stop taking calls and rejoin as a new incarnation.
- `TRANSITIONS[status][trigger]` is a peer's next status; a trigger with no entry raises
  `MembershipError` naming the trigger, the peer and the status. `state_diagram()` renders the table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Status",
    "Trigger",
    "TRANSITIONS",
    "ROW_STATES",
    "MembershipError",
    "NodeSeen",
    "WriteHeartbeat",
    "ReadNodes",
    "ClaimDeath",
    "NodeJoined",
    "NodeDraining",
    "NodeLeft",
    "NodeDied",
    "NodeRestarted",
    "SelfDeclaredDead",
    "Membership",
    "state_diagram",
]

ROW_STATES = ("up", "draining", "stopped", "dead")  # `cluster_nodes.state`


class Status(enum.Enum):
    """A peer as this node sees it."""

    UNKNOWN = "unknown"  # not seen yet
    UP = "up"  # heartbeats, takes calls
    DRAINING = "draining"  # heartbeats, takes no new calls (graceful stop or upgrade under way)
    SUSPECT = "suspect"  # silent for node_timeout_seconds: its death is being claimed
    DEAD = "dead"  # declared dead in the store (by this node or another)
    STOPPED = "stopped"  # stopped cleanly (its row says so)


class Trigger(enum.Enum):
    """What can be seen of a peer."""

    HEARTBEAT = "heartbeat"  # a fresh heartbeat, row state up
    DRAINING = "draining"  # a fresh heartbeat, row state draining
    SILENT = "silent"  # no heartbeat for node_timeout_seconds
    CLAIM_WON = "claim_won"  # the store took this node's claim of the peer's death
    DECLARED_DEAD = "declared_dead"  # the row says dead (another node's claim)
    STOPPED = "stopped"  # the row says stopped: a clean stop
    RESTARTED = "restarted"  # the row shows a newer incarnation


S, T = Status, Trigger
_LIVE = {T.HEARTBEAT: S.UP, T.DRAINING: S.DRAINING, T.SILENT: S.SUSPECT, T.DECLARED_DEAD: S.DEAD,
         T.STOPPED: S.STOPPED, T.RESTARTED: S.UP}
TRANSITIONS: dict[Status, dict[Trigger, Status]] = {
    S.UNKNOWN: {T.HEARTBEAT: S.UP, T.DRAINING: S.DRAINING, T.SILENT: S.SUSPECT, T.DECLARED_DEAD: S.DEAD,
                T.STOPPED: S.STOPPED},
    S.UP: dict(_LIVE),
    S.DRAINING: dict(_LIVE),
    # a claim lost shows the row as it is: fresh again (it was only slow), or claimed by another
    S.SUSPECT: {**_LIVE, T.CLAIM_WON: S.DEAD},
    # a heartbeat of the dead incarnation is a zombie's: it will find itself declared dead
    S.DEAD: {T.HEARTBEAT: S.DEAD, T.DRAINING: S.DEAD, T.DECLARED_DEAD: S.DEAD, T.STOPPED: S.DEAD,
             T.RESTARTED: S.UP},
    S.STOPPED: {T.STOPPED: S.STOPPED, T.RESTARTED: S.UP, T.HEARTBEAT: S.UP, T.DRAINING: S.DRAINING},
}
del S, T, _LIVE


class MembershipError(Exception):
    """An observation the membership machine cannot accept (a bug in the shell feeding it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSeen:
    """One row of `cluster_nodes` as read: `heartbeat_age_seconds` is measured on the store's clock."""

    node_id: str
    address: str
    state: str
    incarnation: int
    heartbeat_age_seconds: float

    def __post_init__(self) -> None:
        if not self.node_id:
            raise MembershipError("NodeSeen.node_id must be a non-empty name")
        if self.state not in ROW_STATES:
            raise MembershipError(f"NodeSeen.state must be one of {', '.join(ROW_STATES)}, got {self.state!r}")
        if isinstance(self.incarnation, bool) or not isinstance(self.incarnation, int) or self.incarnation < 1:
            raise MembershipError(f"NodeSeen.incarnation must be a positive integer, got {self.incarnation!r}")
        if self.heartbeat_age_seconds < 0:
            raise MembershipError(f"NodeSeen.heartbeat_age_seconds must be >= 0, got {self.heartbeat_age_seconds!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteHeartbeat:
    """Write this node's heartbeat (row state `state`) at `incarnation`; answer with `heartbeat_written`."""

    state: str
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadNodes:
    """Read every row of `cluster_nodes`; answer with `observe`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimDeath:
    """Ask the store to declare `node_id` (at `incarnation`) dead; answer with `claim_answered`."""

    node_id: str
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeJoined:
    """A node (or a new incarnation of one that had died or stopped) heartbeats: it may host calls."""

    node_id: str
    address: str
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDraining:
    """A node takes no new calls (graceful stop or upgrade); its calls in progress go on."""

    node_id: str
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLeft:
    """A node stopped cleanly: its calls ended on the normal path."""

    node_id: str
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDied:
    """A node's `incarnation` was declared dead. `claimed`: this node's claim won, so this node
    closes the call records of that incarnation (`records.close_node_calls`); the routing leader
    ends its calls in the engine either way (`ClusterNode.node_died`). A later incarnation of the
    same node id may already run when this is acted on: acd/cluster/node_loss.py."""

    node_id: str
    incarnation: int
    claimed: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRestarted:
    """A node came back as a new incarnation before anyone declared it dead; it ends the calls of its
    previous incarnation itself."""

    node_id: str
    address: str
    previous_incarnation: int
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfDeclaredDead:
    """The store refused this node's heartbeat: another node declared it dead (or a newer incarnation
    of it runs). Stop taking calls and rejoin as a new incarnation."""

    node_id: str
    incarnation: int


Action = WriteHeartbeat | ReadNodes | ClaimDeath
Event = NodeJoined | NodeDraining | NodeLeft | NodeDied | NodeRestarted | SelfDeclaredDead


@dataclass(slots=True)
class _Peer:
    status: Status
    address: str
    incarnation: int
    expires_at: float | None  # UP/DRAINING: when it becomes suspect, on this node's clock


class Membership:
    """One node's view of the cluster. Call `joined(incarnation, now)` once the store gave this node
    its row, `handle_timers(now)` at `next_deadline()`, feed the store's answers to `observe`,
    `heartbeat_written` and `claim_answered`, and carry out the actions returned (events are for the
    node to act on)."""

    def __init__(self, node_id: str, *, node_timeout_seconds: float = 3.0,
                 heartbeat_interval_seconds: float | None = None) -> None:
        """`node_timeout_seconds`: a node silent this long is declared dead (3 s, as the routing lease:
        new calls are answered again within the issue's 5 s of a kill). `heartbeat_interval_seconds`:
        a third of the timeout by default, so two lost heartbeats are survived."""
        if not node_id:
            raise MembershipError("node_id must be a non-empty name (it is the node's row in the store)")
        interval = node_timeout_seconds / 3 if heartbeat_interval_seconds is None else heartbeat_interval_seconds
        if not 0 < interval < node_timeout_seconds:
            raise MembershipError("heartbeat_interval_seconds must be > 0 and below node_timeout_seconds")
        self.node_id = node_id
        self.node_timeout_seconds = node_timeout_seconds
        self.heartbeat_interval_seconds = interval
        self.incarnation: int | None = None  # ours, once joined
        self.draining = False
        self.declared_dead = False
        self.heartbeat_at: float | None = None  # when our next heartbeat is due
        self.store_since: float | None = None  # since when every request to the store succeeded
        self.peers: dict[str, _Peer] = {}

    # -- queries ------------------------------------------------------------------------------

    def status(self, node_id: str) -> Status:
        """A peer's status (UNKNOWN when never seen)."""
        peer = self.peers.get(node_id)
        return Status.UNKNOWN if peer is None else peer.status

    def live_nodes(self) -> set[str]:
        """Peers up or draining (this node not included)."""
        return {name for name, peer in self.peers.items() if peer.status in (Status.UP, Status.DRAINING)}

    def dead_nodes(self) -> set[str]:
        """Peers declared dead (a new leader ends the calls they hosted that it still holds)."""
        return {name for name, peer in self.peers.items() if peer.status is Status.DEAD}

    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called: our next heartbeat or a peer's expiry."""
        deadlines = [peer.expires_at for peer in self.peers.values() if peer.expires_at is not None]
        if self.heartbeat_at is not None:
            deadlines.append(self.heartbeat_at)
        return min(deadlines) if deadlines else None

    # -- this node ----------------------------------------------------------------------------

    def joined(self, incarnation: int, now: float) -> list[Action]:
        """The store gave this node its row at `incarnation` (a join: a new incarnation at every start)."""
        if isinstance(incarnation, bool) or not isinstance(incarnation, int) or incarnation < 1:
            raise MembershipError(f"incarnation must be a positive integer, got {incarnation!r}")
        self.incarnation = incarnation
        self.declared_dead = False
        self.heartbeat_at = now + self.heartbeat_interval_seconds
        self.store_since = now
        return [ReadNodes()]

    def store_lost(self, now: float) -> list[Event]:
        """A request to the store failed (connection lost, timeout): no death is claimed until the
        store has been reached again for a whole timeout; the heartbeat is tried again when due."""
        self.store_since = None
        for peer in self.peers.values():
            if peer.expires_at is not None:
                peer.expires_at = None  # set again by the next read
        return []

    def _may_claim(self, now: float) -> bool:
        return (not self.declared_dead and self.store_since is not None
                and now >= self.store_since + self.node_timeout_seconds)

    def drain(self, now: float) -> list[Action]:
        """This node takes no new calls from now on: say so at once in its row."""
        self.draining = True
        return self._beat(now)

    def handle_timers(self, now: float) -> list[Action | Event]:
        """Claim the death of every peer silent for the timeout, and heartbeat when due (claims
        first: a read answered before a claim would settle the peer's fate before the claim's answer)."""
        out: list[Action | Event] = []
        for name, peer in sorted(self.peers.items()):
            if peer.expires_at is not None and now >= peer.expires_at:
                if self._may_claim(now):
                    out.extend(self._move(name, peer, Trigger.SILENT, peer.incarnation, peer.address))
                elif self.store_since is not None and not self.declared_dead:
                    peer.expires_at = self.store_since + self.node_timeout_seconds
                else:
                    peer.expires_at = None
        if self.heartbeat_at is not None and now >= self.heartbeat_at:
            out.extend(self._beat(now))
        return out

    def _beat(self, now: float) -> list[Action]:
        if self.incarnation is None or self.declared_dead:
            return []
        self.heartbeat_at = now + self.heartbeat_interval_seconds
        return [WriteHeartbeat(state="draining" if self.draining else "up", incarnation=self.incarnation),
                ReadNodes()]

    def heartbeat_written(self, written: bool, now: float) -> list[Event]:
        """The store's answer to `WriteHeartbeat`: False when our row no longer takes it (declared
        dead, stopped, or a newer incarnation of this node runs)."""
        if written and self.store_since is None:
            self.store_since = now
        if written or self.declared_dead or self.incarnation is None:
            return []
        self.declared_dead = True
        self.heartbeat_at = None
        return [SelfDeclaredDead(node_id=self.node_id, incarnation=self.incarnation)]

    # -- peers --------------------------------------------------------------------------------

    def observe(self, rows: list[NodeSeen], now: float) -> list[Action | Event]:
        """Every row of `cluster_nodes` as read at `now`: the events they imply, and death claims."""
        out: list[Action | Event] = []
        for row in sorted(rows, key=lambda seen: seen.node_id):
            if row.node_id == self.node_id:
                continue
            out.extend(self._observe_row(row, now))
        return out

    def claim_answered(self, node_id: str, won: bool, row: NodeSeen | None, now: float) -> list[Action | Event]:
        """The store's answer to `ClaimDeath`: `won`, or the row as it is now (None: it is gone).
        A refusal is read as the row it returns, whatever was read meanwhile."""
        peer = self.peers.get(node_id)
        if won:
            if peer is None or peer.status is not Status.SUSPECT:
                raise MembershipError(f"node {self.node_id}: a claim won for {node_id}, whose death "
                                      f"was not being claimed ({self.status(node_id).value})")
            return self._move(node_id, peer, Trigger.CLAIM_WON, peer.incarnation, peer.address)
        if row is None:  # the row was deleted: nothing to claim; forget the peer
            self.peers.pop(node_id, None)
            return []
        out = self._observe_row(row, now)
        peer = self.peers[node_id]
        if peer.status is Status.SUSPECT:  # still silent as the store sees it: claim again later, not now
            peer.expires_at = now + self.heartbeat_interval_seconds
            out = [item for item in out if not isinstance(item, ClaimDeath)]
        return out

    def _observe_row(self, row: NodeSeen, now: float) -> list[Action | Event]:
        peer = self.peers.get(row.node_id)
        if peer is not None and row.incarnation < peer.incarnation:
            return []  # an older read than one already applied
        if peer is not None and row.incarnation > peer.incarnation:
            trigger = Trigger.RESTARTED
        elif row.state == "dead":
            trigger = Trigger.DECLARED_DEAD
        elif row.state == "stopped":
            trigger = Trigger.STOPPED
        elif row.heartbeat_age_seconds >= self.node_timeout_seconds and self._may_claim(now):
            trigger = Trigger.SILENT
        else:
            trigger = Trigger.DRAINING if row.state == "draining" else Trigger.HEARTBEAT
        if peer is None:
            peer = self.peers[row.node_id] = _Peer(Status.UNKNOWN, row.address, row.incarnation, None)
        out = self._move(row.node_id, peer, trigger, row.incarnation, row.address)
        if peer.status in (Status.UP, Status.DRAINING):
            if row.state in ("up", "draining"):
                peer.expires_at = now + self.node_timeout_seconds - row.heartbeat_age_seconds
                if self.store_since is not None:  # no claim before this node has reached the store long enough
                    peer.expires_at = max(peer.expires_at, self.store_since + self.node_timeout_seconds)
            if trigger is Trigger.RESTARTED and row.state != "up":  # restarted, then already drained/stopped
                out.extend(self._observe_row(row, now))
        return out

    def _move(self, name: str, peer: _Peer, trigger: Trigger, incarnation: int, address: str) -> list[Action | Event]:
        before = peer.status
        try:
            after = TRANSITIONS[before][trigger]
        except KeyError:
            raise MembershipError(f"node {self.node_id}: peer {name} {trigger.value} is not allowed while "
                                  f"{before.value}") from None
        previous_incarnation = peer.incarnation
        peer.status, peer.incarnation, peer.address = after, incarnation, address
        if after not in (Status.UP, Status.DRAINING):
            peer.expires_at = None
        out: list[Action | Event] = []
        if trigger is Trigger.SILENT:
            out.append(ClaimDeath(node_id=name, incarnation=incarnation))
        elif trigger is Trigger.CLAIM_WON or (after is Status.DEAD and before is not Status.DEAD):
            claimed = trigger is Trigger.CLAIM_WON
            if before is not Status.UNKNOWN:  # a death older than our first look was handled then
                reason = (f"no heartbeat for {self.node_timeout_seconds:g} s" if claimed
                          else "declared dead by another node")
                out.append(NodeDied(node_id=name, incarnation=incarnation, claimed=claimed, reason=reason))
        elif trigger is Trigger.RESTARTED:
            if before in (Status.UP, Status.DRAINING, Status.SUSPECT):
                out.append(NodeRestarted(node_id=name, address=address, previous_incarnation=previous_incarnation,
                                         incarnation=incarnation))
            else:
                out.append(NodeJoined(node_id=name, address=address, incarnation=incarnation))
        elif after is Status.STOPPED and before is not Status.STOPPED:
            if before is not Status.UNKNOWN:
                out.append(NodeLeft(node_id=name, incarnation=incarnation))
        elif after in (Status.UP, Status.DRAINING) and before in (Status.UNKNOWN, Status.STOPPED):
            out.append(NodeJoined(node_id=name, address=address, incarnation=incarnation))
            if after is Status.DRAINING:
                out.append(NodeDraining(node_id=name, incarnation=incarnation))
        elif after is Status.DRAINING and before is not Status.DRAINING:
            out.append(NodeDraining(node_id=name, incarnation=incarnation))
        elif after is Status.UP and before is Status.DRAINING:
            out.append(NodeJoined(node_id=name, address=address, incarnation=incarnation))  # drain called off
        return out


def state_diagram() -> str:
    """Render `TRANSITIONS` as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", "    [*] --> unknown"]
    for status, edges in TRANSITIONS.items():
        for trigger, target in edges.items():
            lines.append(f"    {status.value} --> {target.value}: {trigger.value}")
    return "\n".join(lines)
