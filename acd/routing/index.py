"""Sorted indexes that keep every routing decision to a few binary searches.

Per queue, available agents whose phone is reachable (`AgentRecord.offerable`) are kept pre-sorted by their strategy score (see
`strategies.py`: a score is constant while the agent is available):
- `agents_all`: every available member, scored with level 0 (calls without requirements);
- `agents_by_skill[skill][level]`: members with that skill at that level, scored with that
  level; a call requiring skill >= m reads the heads of at most 10 - m + 1 buckets. Kept
  only for skills the queue's calls have asked for (`QueueIndex.index_skill`).
Waiting calls are kept sorted by line key (tier, virtual arrival, sequence, call id):
- `line`: every waiting call of the queue (position = binary search);
- `calls_plain`: calls without requirements; `calls_by_skill[skill][minimum]`: calls whose
  primary requirement is that skill at that minimum. A freed agent reads the heads of the
  buckets of the skills it has, at minimums it meets.
A call inside its sticky window sits in the preferred agent's `reserved` list instead of the
queue buckets (it keeps its line key and its place in `line`).

`SortedList` is a plain list kept in order with `bisect` (the standard library only: no
sortedcontainers). Finding a slot is O(log n); the insert or delete shifts pointers with one
memmove, linear but about 0.1 ns per element, so under a microsecond at 10,000 entries, and a
bucket rarely holds more than a few hundred.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .agent_states import AgentState
from .config import QueueConfig
from .events import MAX_LEVEL
from .sorted_list import SortedList
from .strategies import STRATEGIES, Candidate, compile_score

if TYPE_CHECKING:
    from .records import AgentRecord, CallRecord

__all__ = ["SortedList", "QueueIndex", "candidate_of", "place_agent", "place_call", "unplace"]


class QueueIndex:
    """One queue's indexes, member counts and statistics."""

    __slots__ = (
        "config",
        "strategy",
        "score",
        "labels",
        "agents_all",
        "agents_by_skill",
        "calls_plain",
        "calls_by_skill",
        "line",
        "members",
        "unreachable",
        "rotation_counter",
        "offered",
        "answered",
        "answered_within",
        "abandoned",
        "handle_times",
        "handle_sum",
    )

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.strategy = STRATEGIES[config.strategy]
        self.score = compile_score(self.strategy, config.tie_break)
        self.labels = self.strategy.labels(config.tie_break)  # names of the score components
        self.agents_all = SortedList()
        self.agents_by_skill: dict[str, list[SortedList | None]] = {}
        self.calls_plain = SortedList()
        self.calls_by_skill: dict[str, dict[int, SortedList]] = {}
        self.line = SortedList()
        # Logged-in members whose phone can be reached, by state; the others are only counted,
        # whatever their state: they can take no call, so they neither staff the queue nor keep
        # a `when_no_agents: refuse` queue open.
        self.members: dict[AgentState, int] = {state: 0 for state in AgentState}
        self.unreachable = 0
        self.rotation_counter = 0
        self.offered = 0
        self.answered = 0
        self.answered_within = 0
        self.abandoned = 0
        self.handle_times: deque[float] = deque()
        self.handle_sum = 0.0

    def index_skill(self, skill: str, agents: dict[str, AgentRecord]) -> None:
        """Start keeping `agents_by_skill[skill]`, filled from the available members.

        A queue only keeps level buckets for skills its calls have asked for (any
        requirement), so an agent becoming available touches a handful of buckets, not one per
        skill it has. The first call needing a new skill pays one pass over the members.
        """
        if skill in self.agents_by_skill:
            return
        levels: list[SortedList | None] = [None] * (MAX_LEVEL + 1)
        self.agents_by_skill[skill] = levels
        name = self.config.name
        for entry in self.agents_all:
            agent = agents[entry[-1]]
            level = agent.skills.get(skill)
            if level is not None:
                bucket = levels[level]
                if bucket is None:
                    bucket = levels[level] = SortedList()
                ranked = self.score(candidate_of(agent, name, level))
                bucket.add(ranked)
                agent.placement.append((bucket, ranked))

    def call_bucket(self, skill: str, minimum: int) -> SortedList:
        """The bucket of waiting calls whose primary requirement is `skill` >= `minimum`."""
        minimums = self.calls_by_skill.get(skill)
        if minimums is None:
            minimums = self.calls_by_skill[skill] = {}
        bucket = minimums.get(minimum)
        if bucket is None:
            bucket = minimums[minimum] = SortedList()
        return bucket

    @property
    def staffed(self) -> int:
        """Reachable members logged in and not paused (available, ringing, on a call or wrapping up)."""
        members = self.members
        return (
            members[AgentState.AVAILABLE]
            + members[AgentState.OFFERED]
            + members[AgentState.ON_CALL]
            + members[AgentState.WRAP_UP]
        )

    @property
    def present(self) -> int:
        """Reachable members logged in, paused ones included (who `when_no_agents` counts)."""
        return sum(self.members.values())

    def count(self, agent: AgentRecord, state: AgentState, delta: int) -> None:
        """Count `agent` (a member) in or out (`delta` +1 / -1) as being in `state`."""
        if state is AgentState.LOGGED_OUT:
            return
        if agent.reachable:
            self.members[state] += delta
        else:
            self.unreachable += delta

    def average_handle_seconds(self) -> float:
        """Rolling mean of the last `handle_time_window` agent occupations (offer to ready)."""
        if not self.handle_times:
            return self.config.initial_handle_seconds
        return self.handle_sum / len(self.handle_times)

    def record_handle_time(self, seconds: float) -> None:
        """Add one occupation sample to the rolling window."""
        self.handle_times.append(seconds)
        self.handle_sum += seconds
        if len(self.handle_times) > self.config.handle_time_window:
            self.handle_sum -= self.handle_times.popleft()


def candidate_of(agent: AgentRecord, queue: str, level: int) -> Candidate:
    """How `queue` sees the available `agent` for a call whose primary skill is at `level`."""
    return Candidate(
        agent.agent_id,
        agent.queues[queue],
        level,
        agent.idle_since,
        agent.calls_handled,
        agent.rotation[queue],
    )


def place_agent(agent: AgentRecord, queues: dict[str, QueueIndex]) -> None:
    """Put an available, reachable agent into every bucket of every queue it belongs to."""
    placement = agent.placement
    for name in agent.queues:
        index = queues[name]
        score = index.score
        entry = score(candidate_of(agent, name, 0))
        index.agents_all.add(entry)
        placement.append((index.agents_all, entry))
        by_skill = index.agents_by_skill
        for skill, level in agent.skills.items():
            levels = by_skill.get(skill)
            if levels is None:
                continue
            bucket = levels[level]
            if bucket is None:
                bucket = levels[level] = SortedList()
            entry = score(candidate_of(agent, name, level))
            bucket.add(entry)
            placement.append((bucket, entry))


def place_call(
    call: CallRecord, queues: dict[str, QueueIndex], agents: dict[str, AgentRecord], now: float
) -> None:
    """Put a waiting call in line in each of its queues, and where agents will look for it."""
    entry = call.key
    placement = call.placement
    for skill in call.requirements:
        for name in call.queues:
            queues[name].index_skill(skill, agents)
    for name in call.queues:
        index = queues[name]
        index.line.add(entry)
        placement.append((index.line, entry))
    preferred = agents.get(call.preferred_agent) if call.preferred_agent else None
    if preferred is not None and call.sticky_until is not None and call.sticky_until > now:
        preferred.reserved.add(entry)
        placement.append((preferred.reserved, entry))
        return
    if call.requirements:
        skill, minimum = next(iter(call.requirements.items()))
        for name in call.queues:
            bucket = queues[name].call_bucket(skill, minimum)
            bucket.add(entry)
            placement.append((bucket, entry))
    else:
        for name in call.queues:
            bucket = queues[name].calls_plain
            bucket.add(entry)
            placement.append((bucket, entry))


def unplace(record: AgentRecord | CallRecord) -> None:
    """Remove a record from every index it sits in."""
    for bucket, entry in record.placement:
        bucket.remove(entry)
    record.placement.clear()
