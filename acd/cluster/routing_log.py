"""The routing log's replica: a routing engine rebuilt, entry by entry, from the leader's log.

Rules of this file:
- The log is a sequence of `LogEntry(epoch, seq, kind, payload)`, seq 1, 2, 3... without holes.
  `kind` is "event" (an engine input at a time: an event or `TimersDue`), "decision" (the leader's
  decisions for the event entry `for_seq`, or the routing error it raised) or "snapshot" (the
  engine's whole state after every entry before it).
- A replica applies entries strictly in order: a seq beyond the next is a `LogGap` (read the missing
  ones first), one already applied is a `LogError`, an epoch lower than one already seen is a
  `StaleEpoch` (a deposed leader's late append). The replica is unchanged after any of them.
- The engine is pure, so every replica computes the leader's decisions itself; a decision entry
  must equal what the replica computed, or `ReplicaDiverged` says the nodes run different code or
  config. Decision entries are what nodes act on (each for the calls and agents it hosts).
- The leader writes through the same replica (`record`): its entries are applied locally before they
  are appended, so when an append is refused (fenced out) the leader's replica is ahead of the log
  and must be thrown away and rebuilt with `replay`.
- Times never go backwards in the log: `record` uses max(now, the last entry's time), since a new
  leader's clock may lag the old one's by a little.
- Every replica knows which node hosts each call the engine holds (`hosts`): the `origin` of the
  event entry whose `CallArrived` the engine took. It is part of the replicated state (snapshot
  entries carry it), so any new leader can end the calls of a node that died (`calls_hosted_by`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from acd.routing.config import RoutingConfig
from acd.routing.decisions import CallRefused, Decision
from acd.routing.engine import RoutingEngine
from acd.routing.errors import RoutingError
from acd.routing.events import CallArrived, CallEnded

from .snapshot import SnapshotError, dump_engine, load_config, load_engine
from .wire import Reconfigured, TimersDue, decode_decisions, decode_event, encode_decisions, encode_event

__all__ = [
    "KINDS",
    "LogEntry",
    "Outcome",
    "LogError",
    "LogGap",
    "StaleEpoch",
    "ReplicaDiverged",
    "RoutingReplica",
    "replay",
]

KINDS = ("event", "decision", "snapshot")


class LogError(Exception):
    """A log entry this replica cannot apply; the replica is unchanged."""


class LogGap(LogError):
    """Entries are missing before this one: read from `expected` on and apply them in order."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"routing log gap: expected seq {expected}, got {got}; read the missing entries first")
        self.expected = expected
        self.got = got


class StaleEpoch(LogError):
    """An entry from an epoch older than one already applied: a deposed leader's append."""


class ReplicaDiverged(LogError):
    """The leader's decisions differ from this replica's: the nodes run different code or config."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One routing-log entry: `epoch` is the lease epoch (fencing token) of the leader that wrote it."""

    epoch: int
    seq: int
    kind: str
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        for name in ("epoch", "seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LogError(f"LogEntry.{name} must be a positive integer, got {value!r}")
        if self.kind not in KINDS:
            raise LogError(f"LogEntry.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.payload, dict):
            raise LogError(f"LogEntry.payload must be a JSON object, got {type(self.payload).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the engine did with the event entry `seq`: its decisions, or the routing error it raised
    (`error_id`, the engine unchanged)."""

    seq: int
    decisions: list[Decision] = field(default_factory=list)
    error_id: str | None = None
    error: str | None = None

    def payload(self) -> dict[str, Any]:
        """The decision entry's payload for this outcome."""
        failure = None if self.error_id is None else {"error_id": self.error_id, "message": self.error}
        return {"for_seq": self.seq, "decisions": encode_decisions(self.decisions), "error": failure}


class RoutingReplica:
    """A routing engine kept equal to the leader's by applying its log. Build one empty (the log from
    seq 1) or with `replay`; `apply` each new entry; the leader uses `record` and `snapshot`."""

    def __init__(self, config: RoutingConfig) -> None:
        self.engine = RoutingEngine(config)
        self.last_seq = 0
        self.epoch = 0
        self.last_at = float("-inf")
        self.last_snapshot_seq = 0  # the seq of the last snapshot entry applied (0: none)
        self._unconfirmed: dict[int, Outcome] = {}  # event seq -> outcome, until its decision entry
        self.hosts: dict[str, str] = {}  # call id -> the node hosting it, for the calls the engine holds

    def calls_hosted_by(self, node_id: str) -> list[str]:
        """The calls the engine holds that `node_id` hosts, in arrival order."""
        return [call_id for call_id, host in self.hosts.items() if host == node_id]

    def _track_host(self, event: Any, origin: Any, outcome: Outcome) -> None:
        """Keep `hosts` equal to the engine's calls: a call taken in is hosted by its event's origin."""
        if outcome.error_id is not None:
            return
        if isinstance(event, CallArrived):
            taken = not any(isinstance(decision, CallRefused) for decision in outcome.decisions)
            if taken and isinstance(origin, str) and origin:
                self.hosts[event.call_id] = origin
        elif isinstance(event, CallEnded):
            self.hosts.pop(event.call_id, None)

    def unconfirmed(self) -> list[Outcome]:
        """Event entries with no decision entry yet, oldest first: after a leader died between the two,
        the next leader appends these (and the nodes act on them)."""
        return [self._unconfirmed[seq] for seq in sorted(self._unconfirmed)]

    def _check_order(self, entry: LogEntry) -> None:
        if entry.seq <= self.last_seq:
            raise LogError(f"routing log entry {entry.seq} is already applied (at {self.last_seq})")
        if entry.seq != self.last_seq + 1:
            raise LogGap(self.last_seq + 1, entry.seq)
        if entry.epoch < self.epoch:
            raise StaleEpoch(f"routing log entry {entry.seq} is from epoch {entry.epoch}, older than "
                             f"epoch {self.epoch} already applied: a deposed leader's append")

    def apply(self, entry: LogEntry) -> Outcome | None:
        """Apply the next entry. An event entry returns the engine's `Outcome`; the others None."""
        self._check_order(entry)
        payload = entry.payload
        outcome = None
        if entry.kind == "event":
            event = decode_event(payload.get("input"))
            at = payload.get("at")
            if isinstance(at, bool) or not isinstance(at, (int, float)):
                raise LogError(f"routing log event entry {entry.seq} has no numeric 'at'")
            outcome = self._run(entry.seq, event, float(at))
            self._track_host(event, payload.get("origin"), outcome)
            self._unconfirmed[entry.seq] = outcome
            self.last_at = max(self.last_at, float(at))
        elif entry.kind == "decision":
            self._confirm(entry)
        else:
            applied = payload.get("applied_seq")
            if applied != self.last_seq:
                raise LogError(f"routing snapshot at seq {entry.seq} follows seq {applied!r}, "
                               f"this replica is at {self.last_seq}")
            self.last_snapshot_seq = entry.seq
        self.last_seq = entry.seq
        self.epoch = entry.epoch
        return outcome

    def _run(self, seq: int, event: Any, at: float) -> Outcome:
        try:
            if isinstance(event, TimersDue):
                decisions = self.engine.handle_timers(at)
            elif isinstance(event, Reconfigured):
                decisions = self.engine.reconfigure(load_config(event.routing), at)
            else:
                decisions = self.engine.handle(event, at)
        except RoutingError as error:
            return Outcome(seq=seq, error_id=error.error_id, error=str(error))
        except SnapshotError as error:  # the same on every replica: refused, the engine unchanged
            return Outcome(seq=seq, error_id="bad-routing-config", error=str(error))
        return Outcome(seq=seq, decisions=decisions)

    def _confirm(self, entry: LogEntry) -> None:
        for_seq = entry.payload.get("for_seq")
        outcome = self._unconfirmed.get(for_seq)  # type: ignore[arg-type]
        if outcome is None:
            raise LogError(f"routing decision entry {entry.seq} answers seq {for_seq!r}, "
                           "which is no unconfirmed event entry")
        failure = entry.payload.get("error")
        error_id = failure.get("error_id") if isinstance(failure, dict) else None
        decisions = decode_decisions(entry.payload.get("decisions"))
        if decisions != outcome.decisions or error_id != outcome.error_id:
            raise ReplicaDiverged(f"routing decision entry {entry.seq} for seq {for_seq} differs from this "
                                  "replica's: every node must run the same version and routing config")
        del self._unconfirmed[for_seq]  # type: ignore[arg-type]

    def record(self, event: Any, now: float, epoch: int, origin: str | None = None,
               cause: str | None = None) -> tuple[list[LogEntry], Outcome]:
        """Leader side: apply `event` (or `TimersDue()`) at `now` and return the event and decision
        entries to append, in order, with the outcome to act on. `origin`: the node that submitted
        the event (a `CallArrived`'s origin hosts the call: `hosts`). `cause`: why the leader routed
        it on its own ("interrupted: node X died"), kept in the entry for the logs."""
        at = max(now, self.last_at)
        payload: dict[str, Any] = {"at": at, "input": encode_event(event)}
        if origin is not None:
            payload["origin"] = origin
        if cause is not None:
            payload["cause"] = cause
        event_entry = LogEntry(epoch=epoch, seq=self.last_seq + 1, kind="event", payload=payload)
        outcome = self.apply(event_entry)
        assert outcome is not None
        decision_entry = LogEntry(epoch=epoch, seq=self.last_seq + 1, kind="decision", payload=outcome.payload())
        self.apply(decision_entry)
        return [event_entry, decision_entry], outcome

    def confirm_unconfirmed(self, epoch: int) -> list[LogEntry]:
        """New leader side: decision entries for the events the previous leader left unanswered."""
        entries = []
        for outcome in self.unconfirmed():
            entry = LogEntry(epoch=epoch, seq=self.last_seq + 1, kind="decision", payload=outcome.payload())
            self.apply(entry)
            entries.append(entry)
        return entries

    def snapshot(self, epoch: int) -> LogEntry:
        """Leader side: a snapshot entry of the engine as it is now, applied; append it to the log."""
        if self._unconfirmed:
            raise LogError("a routing snapshot needs every event entry answered first (confirm_unconfirmed)")
        entry = LogEntry(epoch=epoch, seq=self.last_seq + 1, kind="snapshot",
                         payload={"applied_seq": self.last_seq, "at": self.last_at,
                                  "engine": dump_engine(self.engine), "hosts": dict(self.hosts)})
        self.apply(entry)
        return entry

    @classmethod
    def from_snapshot(cls, entry: LogEntry) -> "RoutingReplica":
        """A replica starting at a snapshot entry (the entries after it still to apply)."""
        if entry.kind != "snapshot":
            raise LogError(f"routing log entry {entry.seq} is a {entry.kind}, not a snapshot")
        engine = load_engine(entry.payload.get("engine"))
        replica = cls.__new__(cls)
        replica.engine = engine
        replica.last_seq = entry.seq
        replica.epoch = entry.epoch
        at = entry.payload.get("at")
        replica.last_at = float(at) if isinstance(at, (int, float)) else float("-inf")
        replica.last_snapshot_seq = entry.seq
        replica._unconfirmed = {}
        hosts = entry.payload.get("hosts", {})  # absent from snapshots written before hosts were kept
        if not isinstance(hosts, dict) or not all(isinstance(key, str) and isinstance(value, str)
                                                  for key, value in hosts.items()):
            raise LogError(f"routing snapshot at seq {entry.seq}: 'hosts' must map call ids to node ids")
        replica.hosts = dict(hosts)
        return replica


def replay(config: RoutingConfig, entries: Iterable[LogEntry]) -> RoutingReplica:
    """A replica rebuilt from log entries in seq order: from the last snapshot among them (when any)
    plus the entries after it, else from an empty engine built from `config` and seq 1. A snapshot
    carries the engine's config, which then wins over `config`."""
    ordered = list(entries)
    start = None
    for position in range(len(ordered) - 1, -1, -1):
        if ordered[position].kind == "snapshot":
            start = position
            break
    if start is None:
        replica = RoutingReplica(config)
        rest = ordered
    else:
        replica = RoutingReplica.from_snapshot(ordered[start])
        rest = ordered[start + 1:]
    for entry in rest:
        replica.apply(entry)
    return replica
