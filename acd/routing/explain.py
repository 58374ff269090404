"""One-line explanations of routing decisions, for logs, the API and the wallboard.

An offer explanation names the chosen agent and what won (penalty, proficiency, idle time,
calls handled, rotation), the runner-up and the first score component it lost on, how many
agents were skipped because they missed this call, and how many members were busy.
"""

from __future__ import annotations

from .index import QueueIndex
from .matching import Selection, describe_unavailable
from .records import AgentRecord, CallRecord

__all__ = ["explain_offer", "explain_order", "explain_position", "explain_waiting"]

# Calls ahead of the chosen one named in the order explanation; the rest are counted.
PASSED_OVER_NAMED = 3


def _requirements_text(requirements: dict[str, int]) -> str:
    return ", ".join(f"{skill}>={minimum}" for skill, minimum in requirements.items())


def _component(label: str, value: object, now: float) -> str:
    if label == "idle since":
        return f"idle {max(0.0, now - float(value)):.0f}s"  # type: ignore[arg-type]
    if label == "proficiency":
        return f"level {-value}"  # type: ignore[operator]
    return f"{label} {value}"


def _merits(
    agent: AgentRecord, call: CallRecord, index: QueueIndex, entry: tuple, now: float
) -> str:
    labels = index.labels
    parts = []
    for label, value in zip(labels[:-1], entry[:-1]):
        if label == "penalty" and not value:
            continue
        if label == "proficiency" and call.requirements:
            skill = next(iter(call.requirements))
            parts.append(f"{skill} {agent.skills.get(skill, 0)}")
            continue
        parts.append(_component(label, value, now))
    return ", ".join(parts) if parts else "first in order"


def _lost_on(index: QueueIndex, winner: tuple, loser: tuple, now: float) -> str:
    labels = index.labels
    for label, won, lost in zip(labels, winner, loser):
        if won != lost:
            return f"{_component(label, lost, now)} vs {_component(label, won, now)}"
    return "same score"


def explain_offer(
    selection: Selection,
    call: CallRecord,
    queues: dict[str, QueueIndex],
    agents: dict[str, AgentRecord],
    now: float,
) -> str:
    """Why `selection` was made for `call`, naming every chosen agent (ring-all lists them)."""
    index = queues[selection.queue]
    first = selection.chosen[0]
    chosen_id = first[-1]
    if selection.sticky:
        left = (call.sticky_until or now) - now
        return f"{chosen_id}: preferred agent of this caller (sticky {left:.0f}s more)"
    needs = f" needing {_requirements_text(call.requirements)}" if call.requirements else ""
    via = "" if selection.queue == call.queue else f" (overflow from {call.queue})"
    if index.strategy.rings_all:
        names = ", ".join(entry[-1] for entry in selection.chosen)
        text = f"ringing {len(selection.chosen)} in {selection.queue}{via}{needs}: {names}"
    else:
        merits = _merits(agents[chosen_id], call, index, first, now)
        text = f"{chosen_id} in {selection.queue}{via} by {index.strategy.name}{needs}: {merits}"
    if selection.runner_up is not None:
        loser = selection.runner_up
        text += f"; next {loser[-1]} lost on {_lost_on(index, selection.chosen[-1], loser, now)}"
    else:
        text += "; no other qualifying agent available"
    avoided = sum(1 for until in call.excluded.values() if until > now)
    if avoided:
        text += f"; {avoided} skipped after missing this call"
    return f"{text}; busy: {describe_unavailable(index)}"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _why_not(ahead: CallRecord, agent: AgentRecord, now: float) -> str:
    """Why `agent` did not take `ahead`, a call before the chosen one in line."""
    if ahead.sticky_until is not None and ahead.sticky_until > now and ahead.preferred_agent != agent.agent_id:
        return f"held for its preferred agent {ahead.preferred_agent} ({ahead.sticky_until - now:.0f}s more)"
    for skill, minimum in ahead.requirements.items():
        level = agent.skills.get(skill, 0)
        if level < minimum:
            return f"needs {skill}>={minimum}, {agent.agent_id} has {level or 'none'}"
    if ahead.avoids(agent.agent_id, now):
        return f"{agent.agent_id} missed it {ahead.excluded[agent.agent_id] - now:.0f}s before it may retry"
    if ahead.state != "waiting":
        return "already ringing another agent"
    return "not for this agent's queues"


def _beats(call: CallRecord, behind: CallRecord, aging: float | None, now: float) -> str:
    """Why `call` ranks before `behind` (the line rule in words)."""
    if call.priority != behind.priority:
        if aging is None:
            return f"priority {call.priority} > {behind.priority} (strict priority tiers)"
        if call.arrived_at > behind.arrived_at:
            worth = (call.priority - behind.priority) * aging
            return (f"priority {call.priority} > {behind.priority}: worth {worth:.0f}s of waiting "
                    f"({aging:.0f}s per level), more than the {call.arrived_at - behind.arrived_at:.0f}s "
                    f"{behind.call_id} waited longer")
        return f"waited {behind.arrived_at - call.arrived_at:.0f}s longer"
    if call.arrived_at < behind.arrived_at:
        return f"same priority, waited {behind.arrived_at - call.arrived_at:.0f}s longer"
    return "same priority and arrival, earlier in sequence"


def explain_order(
    call: CallRecord,
    agent: AgentRecord,
    index: QueueIndex,
    calls: dict[str, CallRecord],
    aging: float | None,
    now: float,
) -> str:
    """Why `call`, among the calls waiting in `index`'s line, is the one offered to `agent` now:
    its rank and priority, the calls ahead it passed and why `agent` could not take them, and the
    rule that put it before the next call. Reads a handful of entries around the call's rank."""
    line = index.line
    rank = line.rank(call.key)
    if rank >= len(line) or line[rank] != call.key:
        return f"priority {call.priority}, waited {now - call.arrived_at:.0f}s"
    text = _place(call, index, rank, now)
    if rank:
        text += "; passed over " + _ahead(line, rank, calls, lambda ahead: _why_not(ahead, agent, now))
    if rank + 1 < len(line):
        behind = calls[line[rank + 1][-1]]
        text += f"; before {behind.call_id}: {_beats(call, behind, aging, now)}"
    return text


def explain_position(
    call: CallRecord, index: QueueIndex, calls: dict[str, CallRecord], aging: float | None, now: float
) -> str:
    """Where a waiting `call` stands in its queue's line and why the first calls ahead are ahead."""
    rank = index.line.rank(call.key)
    text = _place(call, index, rank, now)
    if rank:
        text += "; behind " + _ahead(index.line, rank, calls, lambda ahead: _beats(ahead, call, aging, now))
    return text


def _place(call: CallRecord, index: QueueIndex, rank: int, now: float) -> str:
    return (f"{_ordinal(rank + 1)} of {len(index.line)} in line for {index.config.name}, "
            f"priority {call.priority}, waited {now - call.arrived_at:.0f}s")


def _ahead(line, rank: int, calls: dict[str, CallRecord], why) -> str:
    """The first calls before `rank` in `line`, each with `why(call)`, and how many more."""
    named = [f"{calls[entry[-1]].call_id} ({why(calls[entry[-1]])})" for entry in line[:min(rank, PASSED_OVER_NAMED)]]
    more = f" and {rank - len(named)} more" if rank > len(named) else ""
    return ", ".join(named) + more


def explain_waiting(call: CallRecord, queues: dict[str, QueueIndex], now: float) -> str:
    """Why `call` is waiting instead of ringing an agent."""
    if call.sticky_until is not None and call.sticky_until > now and call.preferred_agent:
        left = call.sticky_until - now
        return f"waiting for preferred agent {call.preferred_agent} ({left:.0f}s more)"
    needs = f" meeting {_requirements_text(call.requirements)}" if call.requirements else ""
    index = queues[call.queue]
    queues_text = "/".join(call.queues)
    return f"no available agent{needs} in {queues_text}; busy: {describe_unavailable(index)}"
