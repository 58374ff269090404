"""Finding the best agent for a call and the best call for an agent, with the reason why.

Both directions read only the heads of a few sorted buckets (see `index.py`). They never
change state; the engine applies what they return.

Invariant kept by the engine (and relied on here): after every event, no available agent
can take any waiting call. So when a call arrives only it needs matching against available
agents, and when an agent frees up only it needs matching against waiting calls. That is
also why FIFO within a priority holds: a freed agent takes the first call in line it can serve.
"""

from __future__ import annotations

from bisect import insort
from typing import NamedTuple

from .agent_states import AgentState
from .events import MAX_LEVEL
from .index import QueueIndex, SortedList, candidate_of
from .records import AgentRecord, CallRecord

__all__ = ["Selection", "select_agents", "select_call", "describe_unavailable"]


class Selection(NamedTuple):
    """Agents chosen for a call in one queue, best first, plus the best one left out."""

    queue: str
    chosen: list[tuple]  # score entries, the agent id last
    runner_up: tuple | None
    sticky: bool


def _scan(
    bucket: SortedList,
    call: CallRecord,
    agents: dict[str, AgentRecord],
    secondaries: dict[str, int] | None,
    now: float,
    found: list[tuple],
    limit: int,
) -> None:
    """Merge into `found` (sorted, at most `limit`) the best entries of `bucket` that may
    take `call`. The scan stops at the first entry that cannot enter `found` any more."""
    excluded = call.excluded
    # One secondary requirement is the common multi-skill case: test it inline, since this
    # loop is where a two-skill call spends its time when few agents hold both skills.
    single = next(iter(secondaries.items())) if secondaries and len(secondaries) == 1 else None
    full = len(found) >= limit
    for entry in bucket:
        if full and entry >= found[-1]:
            return
        agent_id = entry[-1]
        if single is not None:
            if agents[agent_id].skills.get(single[0], 0) < single[1]:
                continue
        elif secondaries and not agents[agent_id].qualifies(secondaries):
            continue
        if excluded and call.avoids(agent_id, now):
            continue
        insort(found, entry)
        if len(found) > limit:
            found.pop()
        full = len(found) >= limit


def _holders(levels: list[SortedList | None], minimum: int) -> int:
    return sum(len(bucket) for bucket in levels[minimum:] if bucket)


def _select_in_queue(
    index: QueueIndex, call: CallRecord, agents: dict[str, AgentRecord], now: float, limit: int
) -> list[tuple]:
    """The best `limit` qualifying available agents of one queue, as sorted score entries.

    Agents are read from the primary skill's level buckets, best level first, each scan
    stopping as soon as it cannot improve the result. When another required skill is held by
    far fewer available agents (multi-skill calls), the scan walks that skill's buckets
    instead and scores each qualifying agent: cost bounded by the rarest skill's holders.
    """
    found: list[tuple] = []
    requirements = call.requirements
    if not requirements:
        _scan(index.agents_all, call, agents, None, now, found, limit)
        return found
    by_skill = index.agents_by_skill
    skill, minimum = next(iter(requirements.items()))
    levels = by_skill.get(skill)
    if levels is None:
        return found
    secondaries = None
    if len(requirements) > 1:
        secondaries = dict(requirements)
        del secondaries[skill]
        primary_holders = _holders(levels, minimum)
        for other, other_minimum in secondaries.items():
            other_levels = by_skill.get(other)
            if other_levels is None:
                return found
            if _holders(other_levels, other_minimum) * 4 < primary_holders:
                return _select_via_rare_skill(
                    index, call, agents, other_levels, other_minimum, now, limit
                )
    for level in range(MAX_LEVEL, minimum - 1, -1):
        bucket = levels[level]
        if bucket:
            _scan(bucket, call, agents, secondaries, now, found, limit)
    return found


def _select_via_rare_skill(
    index: QueueIndex,
    call: CallRecord,
    agents: dict[str, AgentRecord],
    levels: list[SortedList | None],
    minimum: int,
    now: float,
    limit: int,
) -> list[tuple]:
    primary = next(iter(call.requirements))
    name = index.config.name
    found = []
    for bucket in levels[minimum:]:
        for entry in bucket or ():
            agent = agents[entry[-1]]
            if agent.qualifies(call.requirements) and not call.avoids(agent.agent_id, now):
                candidate = candidate_of(agent, name, agent.skills[primary])
                found.append(index.score(candidate))
    found.sort()
    return found[:limit]


def select_agents(
    call: CallRecord,
    queues: dict[str, QueueIndex],
    agents: dict[str, AgentRecord],
    now: float,
) -> Selection | None:
    """The agents to offer `call` to now, or None if nobody qualifies.

    Inside the sticky window only the preferred agent may get the call. Otherwise the call's
    queues are tried in order (home queue first, then overflow queues); the first queue with
    a qualifying available agent decides, by its strategy.
    """
    preferred = agents.get(call.preferred_agent) if call.preferred_agent else None
    if preferred is not None and call.sticky_until is not None and call.sticky_until > now:
        if (
            preferred.offerable
            and preferred.qualifies(call.requirements)
            and not call.avoids(preferred.agent_id, now)
        ):
            queue = next((q for q in call.queues if q in preferred.queues), call.queue)
            return Selection(queue, [(preferred.agent_id,)], None, True)
        return None
    for name in call.queues:
        index = queues[name]
        wanted = index.config.max_concurrent_offers if index.strategy.rings_all else 1
        found = _select_in_queue(index, call, agents, now, wanted + 1)
        if found:
            runner_up = found[wanted] if len(found) > wanted else None
            return Selection(name, found[:wanted], runner_up, False)
    return None


def select_call(
    agent: AgentRecord,
    queues: dict[str, QueueIndex],
    calls: dict[str, CallRecord],
    now: float,
) -> CallRecord | None:
    """The first call in line, across the agent's queues, that this agent may take.

    Calls waiting for this agent in their sticky window come first; then the smallest line
    key among the heads of the buckets the agent qualifies for. A bucket scan stops as soon
    as it passes the best entry found so far.
    """
    agent_id = agent.agent_id
    for entry in agent.reserved:
        call = calls[entry[-1]]
        if agent.qualifies(call.requirements) and not call.avoids(agent_id, now):
            return call
    best: tuple | None = None
    for name in agent.queues:
        index = queues[name]
        for entry in index.calls_plain:
            if best is not None and entry >= best:
                break
            if not calls[entry[-1]].avoids(agent_id, now):
                best = entry
                break
        by_skill = index.calls_by_skill
        for skill, level in agent.skills.items():
            minimums = by_skill.get(skill)
            if not minimums:
                continue
            for minimum, bucket in minimums.items():
                if minimum > level:
                    continue
                for entry in bucket:
                    if best is not None and entry >= best:
                        break
                    call = calls[entry[-1]]
                    if len(call.requirements) > 1 and not agent.qualifies(call.requirements):
                        continue
                    if call.avoids(agent_id, now):
                        continue
                    best = entry
                    break
    return None if best is None else calls[best[-1]]


_BUSY_LABELS = (
    (AgentState.OFFERED, "ringing"),
    (AgentState.ON_CALL, "on call"),
    (AgentState.WRAP_UP, "in wrap-up"),
    (AgentState.PAUSED, "paused"),
)


def describe_unavailable(index: QueueIndex) -> str:
    """'3 on call, 1 paused, 1 unreachable' for the members of a queue who could not be chosen now."""
    members = index.members
    parts = [f"{members[state]} {label}" for state, label in _BUSY_LABELS if members[state]]
    if index.unreachable:
        parts.append(f"{index.unreachable} unreachable")
    return ", ".join(parts) if parts else "no other members"
