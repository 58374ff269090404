"""The routing authority port: where AcdService sends routing events and gets decisions from.

Two implementations, one shape (AcdService does not know which it has):
- `LocalRouting` (no `cluster:` section): the routing engine in this process, synchronous, as
  before: `feed` runs the engine at once, hands the decisions to the callback and returns whether
  the engine took the event; `next_deadline`/`timers` run its timers on the reactor.
- `ClusterRouting` (acd/calls/cluster_routing.py): events go to the cluster's leader through the
  routing log; decisions come back later, on the reactor thread, through the same callback.
  `feed` returns True when the event was handed on ("accepted"); a refusal comes back later
  through the callback (`Scope.error_id`).

`engine` is the engine to read views from (positions, agent views, wallboard, explain), on the
reactor thread only: the live engine in local mode, the reactor-side replica in cluster mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..routing import RoutingConfig, RoutingEngine, RoutingError

__all__ = ["Scope", "LOCAL", "OnDecisions", "RoutingAuthority", "LocalRouting"]

log = logging.getLogger("acd.acd")


@dataclass(frozen=True, slots=True)
class Scope:
    """How far this node acts on a batch of decisions (the rule: acd/calls/cluster_routing.py)."""

    agent_writes: bool = True  # this node writes the agent-level side effects to the shared store
    hosted_only: bool = False  # act only on decisions for calls this node holds (AcdService.calls)
    event: Any = None  # the event decided on, when this node submitted it (cluster mode)
    error_id: str | None = None  # the engine refused `event` (no decisions): its error id
    error: str | None = None  # ... and message


LOCAL = Scope()  # one node: every decision is this node's to act on

OnDecisions = Callable[[list, Scope], None]


class RoutingAuthority(Protocol):
    """What AcdService needs from the routing engine, wherever it runs."""

    synchronous: bool  # True: `feed`'s answer is the engine's; False: a refusal comes back later

    @property
    def engine(self) -> RoutingEngine:
        """The engine to read views from (reactor thread only)."""

    def attach(self, on_decisions: OnDecisions) -> None:
        """Where decisions go, on the reactor thread."""

    def feed(self, event: Any, now: float) -> bool:
        """Route `event` at `now`; False when refused at once."""

    def decide(self, event: Any, now: float) -> list:
        """Route `event` and return its decisions, raising the engine's RoutingError (local);
        cluster mode checks what it can on the replica, submits and returns []."""

    def next_deadline(self) -> float | None:
        """When `timers` must run on this reactor (None: not here)."""

    def timers(self, now: float) -> None:
        """Run the engine's timers due at `now`."""

    def reconfigure(self, config: RoutingConfig, now: float) -> None:
        """Put a new routing config in force."""


class LocalRouting:
    """The routing engine in this process (one node): synchronous, as before clustering."""

    synchronous = True

    def __init__(self, config: RoutingConfig) -> None:
        self.engine = RoutingEngine(config)
        self._on_decisions: OnDecisions = lambda decisions, scope: None

    def attach(self, on_decisions: OnDecisions) -> None:
        """Where decisions go (AcdService._apply)."""
        self._on_decisions = on_decisions

    def feed(self, event: Any, now: float) -> bool:
        """Run the engine now; its decisions go to the callback before this returns."""
        try:
            decisions = self.engine.handle(event, now)
        except RoutingError as error:
            log.warning("routing refused %s: %s (%s)", type(event).__name__, error, getattr(error, "error_id", ""))
            return False
        self._on_decisions(decisions, LOCAL)
        return True

    def decide(self, event: Any, now: float) -> list:
        """The engine's decisions for `event` (not handed to the callback); raises RoutingError."""
        return self.engine.handle(event, now)

    def next_deadline(self) -> float | None:
        """The engine's next timer."""
        return self.engine.next_deadline()

    def timers(self, now: float) -> None:
        """Run the due timers; their decisions go to the callback."""
        self._on_decisions(self.engine.handle_timers(now), LOCAL)

    def reconfigure(self, config: RoutingConfig, now: float) -> None:
        """Put `config` in force now; the decisions go to the callback."""
        self._on_decisions(self.engine.reconfigure(config, now), LOCAL)
