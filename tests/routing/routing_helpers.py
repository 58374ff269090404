"""Helpers shared by the routing tests: build engines, pick decisions out of a list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from acd.routing import (
    AgentLoggedIn,
    Decision,
    QueueConfig,
    RoutingConfig,
    RoutingEngine,
)

SKILLS = frozenset({"billing", "spanish", "french", "tech", "sales"})

D = TypeVar("D")


def engine(*queues: QueueConfig, aging: float | None = 60.0, **queue_options) -> RoutingEngine:
    """An engine with the given queues (default: one 'q' queue built from queue_options)."""
    if not queues:
        queues = (QueueConfig(name="q", **queue_options),)
    return RoutingEngine(RoutingConfig(queues=queues, skills=SKILLS, priority_aging_seconds=aging))


def login(router: RoutingEngine, agent_id: str, now: float, queues=None, skills=None, paused=None):
    """Log an agent in (to queue 'q' with penalty 0 unless told otherwise)."""
    return router.handle(
        AgentLoggedIn(
            agent_id=agent_id,
            queues=queues or {"q": 0},
            skills=skills or {},
            paused_reason=paused,
        ),
        now,
    )


def only(decisions: Iterable[Decision], kind: type[D]) -> list[D]:
    """The decisions of one type, in order."""
    return [d for d in decisions if isinstance(d, kind)]


def offered_to(decisions: Iterable[Decision]) -> list[tuple[str, str]]:
    """(call, agent) of every Offer, in order."""
    from acd.routing import Offer

    return [(d.call_id, d.agent_id) for d in decisions if isinstance(d, Offer)]
