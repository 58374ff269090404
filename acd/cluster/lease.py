"""The leader lease as a pure state machine: one node leads routing, the others follow.

Rules of this file:
- The store is the only judge: a node is LEADER only after the store granted it the lease (an
  UPDATE of the one lease row, see `pg_log.py`); the machine never assumes a grant.
- Time is an argument. A grant is counted from when its request was *sent* (`requested_at`), not
  when the answer came back, minus `safety_margin_seconds` for clock-rate drift between this node
  and the store: the leader's own idea of expiry always comes before the store's, so it stops
  leading before any other node can be granted the lease.
- A leader renews at 1/3 of the lease (two more tries fit before expiry) and gives up leadership
  when no renewal was confirmed before expiry (`SteppedDown`), without waiting for the store.
- The lease epoch is the fencing token: the store increments it at every change of holder; every
  entry a leader appends carries it, and the store and the replicas refuse an older one, so a
  deposed leader's late appends are refused even when it has not yet noticed it was deposed.
- `TRANSITIONS[role][trigger]` is the next role; a trigger with no entry raises `LeaseError` naming
  the trigger, the node and the role. `state_diagram()` renders the table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Role",
    "Trigger",
    "TRANSITIONS",
    "LeaseError",
    "LeaseGranted",
    "LeaseRefused",
    "StoreLost",
    "AcquireLease",
    "RenewLease",
    "BecameLeader",
    "SteppedDown",
    "LeaseMachine",
    "state_diagram",
]


class Role(enum.Enum):
    """A node's part in routing."""

    FOLLOWER = "follower"  # tails the log; tries for the lease when it expires
    CANDIDATE = "candidate"  # asked the store for the lease, waiting for the answer
    LEADER = "leader"  # holds the lease: feeds the engine and appends its decisions


class Trigger(enum.Enum):
    """What can happen to a node's lease."""

    TRY_DUE = "try_due"  # the lease as last seen has expired: ask for it
    GRANTED = "granted"  # the store granted (or renewed) the lease to this node
    REFUSED = "refused"  # the store answered: another node holds it
    RENEW_DUE = "renew_due"  # a third of the lease has passed since the last grant
    EXPIRED = "expired"  # no renewal confirmed before the lease ran out
    STORE_LOST = "store_lost"  # the store could not be reached or the request failed


R, T = Role, Trigger
TRANSITIONS: dict[Role, dict[Trigger, Role]] = {
    R.FOLLOWER: {T.TRY_DUE: R.CANDIDATE, T.REFUSED: R.FOLLOWER, T.STORE_LOST: R.FOLLOWER,
                 T.GRANTED: R.FOLLOWER},  # a grant answering a request sent while leader: too late
    R.CANDIDATE: {T.GRANTED: R.LEADER, T.REFUSED: R.FOLLOWER, T.STORE_LOST: R.FOLLOWER},
    R.LEADER: {T.RENEW_DUE: R.LEADER, T.GRANTED: R.LEADER, T.REFUSED: R.FOLLOWER,
               T.EXPIRED: R.FOLLOWER, T.STORE_LOST: R.FOLLOWER},
}
del R, T


class LeaseError(Exception):
    """An observation the lease machine cannot accept in its role (a bug in the shell feeding it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseGranted:
    """The store gave this node the lease at `epoch` (acquire or renewal), for the request sent at
    `requested_at` (the node's clock)."""

    epoch: int
    requested_at: float

    def __post_init__(self) -> None:
        if isinstance(self.epoch, bool) or not isinstance(self.epoch, int) or self.epoch < 1:
            raise LeaseError(f"LeaseGranted.epoch must be a positive integer, got {self.epoch!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRefused:
    """The store refused: `holder` holds the lease at `epoch` for `remaining_seconds` more (store clock)."""

    holder: str | None
    epoch: int
    remaining_seconds: float

    def __post_init__(self) -> None:
        if self.remaining_seconds < 0:
            raise LeaseError(f"LeaseRefused.remaining_seconds must be >= 0, got {self.remaining_seconds!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreLost:
    """The lease request failed (connection lost, timeout): nothing was confirmed."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AcquireLease:
    """Ask the store for the lease (given only when it expired, or was never held)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewLease:
    """Ask the store to extend this node's lease at `epoch`; answer with Granted/Refused/StoreLost."""

    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BecameLeader:
    """This node now leads routing: catch up the log to its end, then feed the engine at `epoch`."""

    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SteppedDown:
    """This node no longer leads (`reason` says why): stop appending, go back to tailing the log."""

    epoch: int
    reason: str


Observation = LeaseGranted | LeaseRefused | StoreLost
Action = AcquireLease | RenewLease | BecameLeader | SteppedDown


class LeaseMachine:
    """One node's view of the routing lease. Feed it the store's answers with `handle(observation,
    now)`, call `handle_timers(now)` at `next_deadline()`, and carry out the returned actions in order.

    A new machine is a FOLLOWER that asks for the lease at its first `handle_timers`.
    """

    def __init__(self, node_id: str, *, lease_seconds: float = 3.0, safety_margin_seconds: float = 0.25,
                 start: float = 0.0) -> None:
        """`lease_seconds`: how long a grant lasts (3 s: a dead leader is replaced within 5 s, the
        issue's bound for answering new calls again). `safety_margin_seconds`: clock-rate drift
        allowed between this node and the store over one lease (0.25 s is far above what NTP-kept
        clocks drift in 3 s, and leaves 2.75 s of lead)."""
        if not node_id:
            raise LeaseError("node_id must be a non-empty name (it is the lease holder in the store)")
        if not 0 <= safety_margin_seconds < lease_seconds / 3:
            raise LeaseError("safety_margin_seconds must be >= 0 and below a third of lease_seconds")
        self.node_id = node_id
        self.lease_seconds = lease_seconds
        self.safety_margin_seconds = safety_margin_seconds
        self.role = Role.FOLLOWER
        self.epoch = 0  # the highest epoch seen; ours while LEADER
        self.holder: str | None = None  # who holds the lease, as last seen
        self.try_at: float | None = start  # FOLLOWER: when the lease as last seen expires
        self.renew_at: float | None = None  # LEADER: when to renew next
        self.expires_at: float | None = None  # LEADER: when our lease ends, on our clock

    @property
    def fencing_token(self) -> int | None:
        """The epoch every append must carry while leading; None when not leading."""
        return self.epoch if self.role is Role.LEADER else None

    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called; None while waiting for the store's answer."""
        if self.role is Role.FOLLOWER:
            return self.try_at
        if self.role is Role.LEADER:
            return min(self.renew_at, self.expires_at)  # type: ignore[type-var]
        return None

    def _move(self, trigger: Trigger) -> Role:
        try:
            self.role = TRANSITIONS[self.role][trigger]
        except KeyError:
            raise LeaseError(
                f"node {self.node_id}: {trigger.value} is not allowed while {self.role.value}"
            ) from None
        return self.role

    def handle_timers(self, now: float) -> list[Action]:
        """Act on the deadlines due at `now`: ask for an expired lease, renew, or give up leading."""
        if self.role is Role.FOLLOWER and self.try_at is not None and now >= self.try_at:
            self._move(Trigger.TRY_DUE)
            self.try_at = None
            return [AcquireLease()]
        if self.role is not Role.LEADER:
            return []
        if now >= self.expires_at:  # type: ignore[operator]
            return self._step_down(Trigger.EXPIRED, "no renewal confirmed before the lease expired", now)
        if now >= self.renew_at:  # type: ignore[operator]
            self._move(Trigger.RENEW_DUE)
            # Retry every third of a lease until confirmed; the expiry check above ends the tries.
            self.renew_at = now + self.lease_seconds / 3
            return [RenewLease(epoch=self.epoch)]
        return []

    def handle(self, observation: Observation, now: float) -> list[Action]:
        """Apply the store's answer to the last request; return the actions to carry out."""
        if isinstance(observation, LeaseGranted):
            return self._granted(observation, now)
        if isinstance(observation, LeaseRefused):
            return self._refused(observation, now)
        if isinstance(observation, StoreLost):
            if self.role is Role.LEADER:
                return self._step_down(Trigger.STORE_LOST, f"store lost: {observation.reason}", now)
            self._move(Trigger.STORE_LOST)
            self.try_at = now + self.lease_seconds / 3  # ask again soon, the store may be back
            return []
        raise LeaseError(f"node {self.node_id}: not a lease observation: {type(observation).__name__}")

    def _granted(self, grant: LeaseGranted, now: float) -> list[Action]:
        if grant.epoch < self.epoch:
            raise LeaseError(f"node {self.node_id}: granted epoch {grant.epoch} is older than "
                             f"epoch {self.epoch} already seen: the store's epoch must only grow")
        previous = self.role
        self._move(Trigger.GRANTED)
        if self.role is Role.FOLLOWER:  # late answer to a renewal sent before stepping down
            return []
        if previous is Role.LEADER and grant.epoch != self.epoch:
            raise LeaseError(f"node {self.node_id}: a renewal may not change the epoch "
                             f"({self.epoch} -> {grant.epoch})")
        expires_at = grant.requested_at + self.lease_seconds - self.safety_margin_seconds
        if expires_at <= now:  # granted, but the answer came too late to use it safely
            self.role = Role.FOLLOWER
            self.epoch, self.holder = grant.epoch, self.node_id
            self.try_at = now
            if previous is Role.LEADER:
                return [SteppedDown(epoch=grant.epoch, reason="renewal confirmed after the lease expired")]
            return []
        self.epoch, self.holder = grant.epoch, self.node_id
        self.expires_at = expires_at
        self.renew_at = grant.requested_at + self.lease_seconds / 3
        self.try_at = None
        return [] if previous is Role.LEADER else [BecameLeader(epoch=grant.epoch)]

    def _refused(self, refusal: LeaseRefused, now: float) -> list[Action]:
        previous, epoch = self.role, self.epoch
        self._move(Trigger.REFUSED)
        self.epoch = max(self.epoch, refusal.epoch)
        self.holder = refusal.holder
        self.try_at = now + refusal.remaining_seconds
        self.renew_at = self.expires_at = None
        if previous is Role.LEADER:
            reason = (f"the store gave the lease to {refusal.holder}" if refusal.holder != self.node_id
                      else "the lease expired in the store before the renewal reached it")
            return [SteppedDown(epoch=epoch, reason=reason)]
        return []

    def _step_down(self, trigger: Trigger, reason: str, now: float) -> list[Action]:
        epoch = self.epoch
        self._move(trigger)
        self.renew_at = self.expires_at = None
        self.try_at = now
        return [SteppedDown(epoch=epoch, reason=reason)]


def state_diagram() -> str:
    """Render `TRANSITIONS` as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", "    [*] --> follower"]
    for role, edges in TRANSITIONS.items():
        for trigger, target in edges.items():
            lines.append(f"    {role.value} --> {target.value}: {trigger.value}")
    return "\n".join(lines)
