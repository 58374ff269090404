"""Queue strategies: a name table plus one pure scoring function per strategy.

A score is a tuple; the lowest score wins. Rules of this file:
- A score depends only on the `Candidate` (and the queue's tie-break list): no clock, no RNG,
  no global state. Every score ends with the agent id, so there are no ties and every choice
  is deterministic.
- Every component of a candidate is constant while the agent is available (idle-since is set
  when the agent becomes available, calls-handled changes at hang-up, the rotation stamp at
  offer time). That is what lets `index.py` keep available agents pre-sorted by score, so a
  decision reads the head of a few sorted buckets instead of scoring every agent.
- Penalty comes first in every strategy: a higher-penalty agent in a queue is a backup tier.
- "skills" ranks by the proficiency on the call's primary skill (the first requirement), best
  first, then by the configured tie-break list (default: longest idle).
- "ring-all" rings every qualifying agent (up to the queue's max_concurrent_offers, longest
  idle first); the first to answer wins.
- "round-robin" is round robin with memory: the agent this queue offered to least recently
  goes next; a new member joins at the back of the rotation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "Candidate",
    "compile_score",
    "Strategy",
    "STRATEGIES",
    "TIE_BREAKS",
    "score_longest_idle",
    "score_fewest_calls",
    "score_round_robin",
    "score_skills",
]


class Candidate(NamedTuple):
    """What a strategy may look at: one available agent as seen from one queue."""

    agent_id: str
    penalty: int
    level: int  # proficiency on the call's primary skill; 0 when the call requires none
    idle_since: float
    calls_handled: int
    rotation: int  # when this queue last offered the agent a call (a queue-local counter)


Score = tuple


TIE_BREAKS: dict[str, Callable[[Candidate], float]] = {
    "longest-idle": lambda c: c.idle_since,
    "fewest-calls": lambda c: c.calls_handled,
    "round-robin": lambda c: c.rotation,
}

TIE_BREAK_LABELS = {
    "longest-idle": "idle since",
    "fewest-calls": "calls handled",
    "round-robin": "rotation",
}


def score_longest_idle(c: Candidate, tie_break: tuple[str, ...] = ()) -> Score:
    """Longest-idle agent first."""
    return (c.penalty, c.idle_since, c.agent_id)


def score_fewest_calls(c: Candidate, tie_break: tuple[str, ...] = ()) -> Score:
    """Fewest calls handled since login first, then longest idle."""
    return (c.penalty, c.calls_handled, c.idle_since, c.agent_id)


def score_round_robin(c: Candidate, tie_break: tuple[str, ...] = ()) -> Score:
    """The agent this queue offered a call to least recently first."""
    return (c.penalty, c.rotation, c.agent_id)


def score_skills(c: Candidate, tie_break: tuple[str, ...] = ("longest-idle",)) -> Score:
    """Best proficiency on the primary skill first, then the tie-break list."""
    return (c.penalty, -c.level, *(TIE_BREAKS[name](c) for name in tie_break), c.agent_id)


@dataclass(frozen=True, slots=True)
class Strategy:
    """A strategy: its scoring function and how to read a score back for explanations."""

    name: str
    score: Callable[[Candidate, tuple[str, ...]], Score]
    labels: Callable[[tuple[str, ...]], tuple[str, ...]]
    uses_proficiency: bool = False
    rings_all: bool = False


def _skills_labels(tie_break: tuple[str, ...]) -> tuple[str, ...]:
    return ("penalty", "proficiency", *(TIE_BREAK_LABELS[n] for n in tie_break), "agent id")


STRATEGIES: dict[str, Strategy] = {
    "longest-idle": Strategy(
        "longest-idle", score_longest_idle, lambda tb: ("penalty", "idle since", "agent id")
    ),
    "fewest-calls": Strategy(
        "fewest-calls",
        score_fewest_calls,
        lambda tb: ("penalty", "calls handled", "idle since", "agent id"),
    ),
    "round-robin": Strategy(
        "round-robin", score_round_robin, lambda tb: ("penalty", "rotation", "agent id")
    ),
    "ring-all": Strategy(
        "ring-all",
        score_longest_idle,
        lambda tb: ("penalty", "idle since", "agent id"),
        rings_all=True,
    ),
    "skills": Strategy("skills", score_skills, _skills_labels, uses_proficiency=True),
}


_FIELDS = {"longest-idle": "idle_since", "fewest-calls": "calls_handled", "round-robin": "rotation"}


def compile_score(strategy: Strategy, tie_break: tuple[str, ...]) -> Callable[[Candidate], Score]:
    """A one-argument scorer equal to `strategy.score(c, tie_break)`, built once per queue.

    The indexes score every available agent once per skill bucket; a closure with the
    tie-break resolved is about twice as fast as the generic generator expression.
    """
    if strategy.score is not score_skills:
        return lambda c: strategy.score(c, tie_break)
    getters = [_FIELDS[name] for name in tie_break]
    if getters == ["idle_since"]:
        return lambda c: (c.penalty, -c.level, c.idle_since, c.agent_id)
    if getters == ["calls_handled", "idle_since"]:
        return lambda c: (c.penalty, -c.level, c.calls_handled, c.idle_since, c.agent_id)
    return lambda c: score_skills(c, tie_break)
