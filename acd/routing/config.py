"""Routing configuration: frozen dataclasses the YAML loader fills, checked on construction.

Every limit is a named field with a default and the reason for it. A bad value raises
`InvalidConfig` naming the queue and field; the loader adds file:line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import InvalidConfig
from .events import MAX_LEVEL, Levels
from .strategies import STRATEGIES, TIE_BREAKS

__all__ = ["AgentProfile", "OverflowStep", "QueueConfig", "RoutingConfig", "NO_AGENTS_POLICIES"]

NO_AGENTS_POLICIES = ("join", "refuse")


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowStep:
    """After `after_seconds` of waiting, widen the call's chances.

    `relax` maps skill -> new minimum level (0 drops the requirement); `add_queues` lets the
    agents of other queues take the call (it keeps its arrival time there); `offer_callback`
    asks the IVR to offer a callback.
    """

    after_seconds: float
    relax: Levels = ()
    add_queues: tuple[str, ...] = ()
    offer_callback: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """One queue: strategy, limits and timers."""

    name: str
    strategy: str = "longest-idle"
    # Order of criteria after penalty (and proficiency, for "skills"); agent id always ends it,
    # so every choice is deterministic.
    tie_break: tuple[str, ...] = ("longest-idle",)
    # A bound on memory and on how long a caller may reasonably wait; Asterisk's `maxlen`
    # defaults to unlimited, which lets one flood fill the server.
    max_waiting: int = 1000
    # "join": wait even when no agent is logged in; "refuse": CallRefused(no-agents-logged-in).
    when_no_agents: str = "join"
    # 15 s is about three rings and Asterisk's default member `timeout`.
    ring_timeout_seconds: float = 15.0
    wrap_up_seconds: float = 10.0
    # Consecutive missed offers before an agent is auto-paused; 0 never pauses.
    max_missed_offers: int = 2
    # How long a call avoids an agent who missed it (Asterisk `retry` is 5 s per round; we keep
    # the agent out of this call longer so the next agent gets a real chance).
    reoffer_after_seconds: float = 30.0
    # Agents rung at once for one call by ring-all; other strategies ring exactly one.
    max_concurrent_offers: int = 20
    sticky_seconds: float = 0.0
    service_level_seconds: float = 20.0
    # Callers who hang up within this many seconds do not count against the service level.
    abandon_grace_seconds: float = 5.0
    # Handle time assumed before the first call completes, and the rolling window size.
    initial_handle_seconds: float = 180.0
    handle_time_window: int = 50
    overflow: tuple[OverflowStep, ...] = ()

    def __post_init__(self) -> None:
        where = f"queue {self.name!r}"
        if not self.name:
            raise InvalidConfig("queue name must not be empty", field="name")
        if self.strategy not in STRATEGIES:
            raise InvalidConfig(
                f"{where}: unknown strategy {self.strategy!r}; use one of {sorted(STRATEGIES)}",
                queue=self.name,
                field="strategy",
            )
        for name in self.tie_break:
            if name not in TIE_BREAKS:
                raise InvalidConfig(
                    f"{where}: unknown tie_break {name!r}; use any of {sorted(TIE_BREAKS)}",
                    queue=self.name,
                    field="tie_break",
                )
        if self.when_no_agents not in NO_AGENTS_POLICIES:
            raise InvalidConfig(
                f"{where}: when_no_agents must be one of {NO_AGENTS_POLICIES}",
                queue=self.name,
                field="when_no_agents",
            )
        positive = ("ring_timeout_seconds", "initial_handle_seconds", "service_level_seconds")
        for name in positive:
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise InvalidConfig(f"{where}: {name} must be > 0", queue=self.name, field=name)
        non_negative = (
            "wrap_up_seconds",
            "reoffer_after_seconds",
            "sticky_seconds",
            "abandon_grace_seconds",
            "max_missed_offers",
        )
        for name in non_negative:
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise InvalidConfig(f"{where}: {name} must be >= 0", queue=self.name, field=name)
        for name in ("max_waiting", "max_concurrent_offers", "handle_time_window"):
            if getattr(self, name) < 1:
                raise InvalidConfig(f"{where}: {name} must be >= 1", queue=self.name, field=name)
        previous = 0.0
        for index, step in enumerate(self.overflow):
            if not step.after_seconds > previous:
                raise InvalidConfig(
                    f"{where}: overflow step {index} after_seconds must be > 0 and increasing",
                    queue=self.name,
                    field="overflow",
                )
            previous = step.after_seconds
            for skill, level in step.relax:
                if not 0 <= level <= MAX_LEVEL:
                    raise InvalidConfig(
                        f"{where}: overflow step {index} relaxes {skill!r} to {level}; "
                        f"use 0 (drop) .. {MAX_LEVEL}",
                        queue=self.name,
                        field="overflow",
                    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentProfile:
    """One configured agent: queue -> penalty and skill -> level, as `AgentLoggedIn` carries them.

    Given to the engine in `RoutingConfig.agents` so that `reconfigure` can change the memberships,
    penalties and skills of agents already logged in.
    """

    agent_id: str
    queues: Levels = ()
    skills: Levels = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", tuple(dict(self.queues).items()))
        object.__setattr__(self, "skills", tuple(dict(self.skills).items()))
        for skill, level in self.skills:
            if not 1 <= level <= MAX_LEVEL:
                raise InvalidConfig(
                    f"agent {self.agent_id!r}: skill {skill!r} level {level} is not 1..{MAX_LEVEL}",
                    field="skills",
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingConfig:
    """All queues, the skill vocabulary, and the priority aging rule.

    `priority_aging_seconds`: one priority level is worth this many seconds of waiting, so a
    caller who waited that long outranks a fresh caller one tier above (anti-starvation).
    None gives strict priority tiers (a low tier can starve while high-tier calls keep coming).

    `agents`: the configured agents' profiles, or None when agents are not managed by the config
    (then `reconfigure` leaves logged-in agents' skills and memberships as their log-in set them).
    """

    queues: tuple[QueueConfig, ...]
    skills: frozenset[str] = field(default_factory=frozenset)
    priority_aging_seconds: float | None = 60.0
    agents: tuple[AgentProfile, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", frozenset(self.skills))
        names = [queue.name for queue in self.queues]
        if len(set(names)) != len(names):
            raise InvalidConfig("queue names must be unique", field="queues")
        if self.priority_aging_seconds is not None and not self.priority_aging_seconds > 0:
            raise InvalidConfig(
                "priority_aging_seconds must be > 0 or None", field="priority_aging_seconds"
            )
        known = set(names)
        for queue in self.queues:
            for index, step in enumerate(queue.overflow):
                for extra in step.add_queues:
                    if extra not in known or extra == queue.name:
                        raise InvalidConfig(
                            f"queue {queue.name!r}: overflow step {index} adds {extra!r}, "
                            "which is not another configured queue",
                            queue=queue.name,
                            field="overflow",
                        )
                for skill, _level in step.relax:
                    if skill not in self.skills:
                        raise InvalidConfig(
                            f"queue {queue.name!r}: overflow step {index} relaxes unknown "
                            f"skill {skill!r}",
                            queue=queue.name,
                            field="overflow",
                        )

        for agent in self.agents or ():
            for name, _penalty in agent.queues:
                if name not in known:
                    raise InvalidConfig(
                        f"agent {agent.agent_id!r} is a member of unknown queue {name!r}",
                        queue=name, field="agents",
                    )
            for skill, _level in agent.skills:
                if skill not in self.skills:
                    raise InvalidConfig(
                        f"agent {agent.agent_id!r} has unknown skill {skill!r}", field="agents"
                    )

    def agent(self, agent_id: str) -> AgentProfile | None:
        """The configured profile of `agent_id`, or None (also when agents are not managed)."""
        for agent in self.agents or ():
            if agent.agent_id == agent_id:
                return agent
        return None

    def queue(self, name: str) -> QueueConfig | None:
        """The queue named `name`, or None."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        return None
