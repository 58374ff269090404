"""A routing authority whose decisions come back late, as a cluster's leader sends them: the
timing of `ClusterRouting` (acd/calls/cluster_routing.py) on the one-node shell, without PostgreSQL.

`LateRouting` implements the `RoutingAuthority` port (acd/calls/routing_authority.py) around the
server's own engine, as ClusterRouting does around the leader's:
- `feed` only queues the event ("accepted", True) and returns; `synchronous` is False, so
  AcdService checks agent commands against the engine's view first, as a cluster node does;
- the queued events reach the engine a turn of the reactor later (`delay_seconds`), in the order
  fed, and their decisions go to the callback with the scope a cluster node hands its own events:
  `Scope(hosted_only=True, event=...)`, or a refusal with its `error_id` and no decisions;
- `hold()` keeps the events queued until `release()`: the test decides what happens on this node
  (an agent's BYE, a caller's key press) between an event and the decisions it leads to.

Views are read from the engine as events are applied (ClusterRouting's reactor replica), and the
engine's timers run here at their deadlines (the leader's `TimersDue`), after queued events.
"""

from __future__ import annotations

from typing import Any

from acd.calls.routing_authority import OnDecisions, Scope
from acd.routing import RoutingConfig, RoutingEngine, RoutingError

__all__ = ["LateRouting"]

DELAY_SECONDS = 0.005  # a leader's routing delay on a LAN: a few milliseconds


class LateRouting:
    """The engine of `engine`, answering `delay_seconds` after each event (or at `release`).
    `reactor`: IReactorTime (callLater, seconds)."""

    synchronous = False

    def __init__(self, engine: RoutingEngine, reactor, delay_seconds: float = DELAY_SECONDS) -> None:
        self.engine = engine
        self.reactor = reactor
        self.delay_seconds = delay_seconds
        self.inbox: list[Any] = []
        self.held = False
        self.answered: list[Any] = []  # the events the engine took, in order
        self.refused: list[tuple[Any, str]] = []  # (event, error id)
        self._call = None
        self._on_decisions: OnDecisions = lambda decisions, scope: None

    def attach(self, on_decisions: OnDecisions) -> None:
        """Where decisions go (AcdService._apply)."""
        self._on_decisions = on_decisions

    def feed(self, event: Any, now: float) -> bool:
        """Queue `event` for the engine; always accepted (a refusal comes back later)."""
        self.inbox.append(event)
        self._schedule()
        return True

    def decide(self, event: Any, now: float) -> list:
        """As ClusterRouting: submit, the decisions come back through the callback."""
        self.feed(event, now)
        return []

    def next_deadline(self) -> float | None:
        """The engine's next timer (the leader's, run on this reactor)."""
        return self.engine.next_deadline()

    def timers(self, now: float) -> None:
        """Run the engine's due timers, after the events queued before them (unless held)."""
        self._drain()
        self._on_decisions(self.engine.handle_timers(now), Scope(hosted_only=True))

    def reconfigure(self, config: RoutingConfig, now: float) -> None:
        """Put `config` in force now."""
        self._on_decisions(self.engine.reconfigure(config, now), Scope(hosted_only=True))

    # ---- the test's controls -------------------------------------------------------------------
    def hold(self) -> None:
        """Keep what is fed from now on queued until `release`."""
        self.held = True

    def release(self) -> None:
        """Let the queued events reach the engine now, in order; later ones flow again."""
        self.held = False
        self._drain()

    def _schedule(self) -> None:
        if not self.held and (self._call is None or not self._call.active()):
            self._call = self.reactor.callLater(self.delay_seconds, self._drain)

    def _drain(self) -> None:
        for _ in range(len(self.inbox)):  # what is fed meanwhile comes back on a later turn
            if self.held:
                return
            event = self.inbox.pop(0)
            try:
                decisions = self.engine.handle(event, self.reactor.seconds())
            except RoutingError as error:
                self.refused.append((event, error.error_id))
                self._on_decisions([], Scope(hosted_only=True, event=event, error_id=error.error_id,
                                             error=str(error)))
                continue
            self.answered.append(event)
            self._on_decisions(decisions, Scope(hosted_only=True, event=event))
