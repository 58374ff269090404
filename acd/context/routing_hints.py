"""What a customer record asks of routing: the tier's priority bonus, the sticky agent, the language.

Pure functions over plain data (the clock passed in), used by the shell when a call joins a queue.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["DEFAULT_STICKY_SECONDS", "LAST_AGENT_MEMORY_SECONDS", "MAX_PRIORITY", "priority_source", "TIER_PRIORITY_BONUS",
           "caller_priority", "language_requirement", "preferred_agent", "queue_requirements"]

# Customer tier → priority added to the queue step's (0-9, capped): VIPs jump ahead of standard
# callers, aging still lets a long-waiting caller through (RoutingConfig.priority_aging_seconds).
# The default of `tier_priority` in conf/agents.yaml.
TIER_PRIORITY_BONUS = {"vip": 5, "gold": 3, "silver": 1}
MAX_PRIORITY = 9
# A returning customer's last agent is preferred for 30 days; the queue's sticky_seconds (or 20 s)
# is how long the call waits for that agent before anyone qualified may take it.
LAST_AGENT_MEMORY_SECONDS = 30 * 86400
DEFAULT_STICKY_SECONDS = 20.0


def caller_priority(step_priority: int, customer: Mapping[str, Any],
                    tier_priority: Mapping[str, int] = TIER_PRIORITY_BONUS) -> int:
    """The queue step's priority plus the customer's tier bonus (`tier_priority`: tier → bonus),
    capped at MAX_PRIORITY."""
    return min(MAX_PRIORITY, step_priority + tier_priority.get(str(customer.get("tier") or ""), 0))


def priority_source(step_priority: int, priority: int) -> str:
    """What set a call's priority, for its record: "customer tier" when the tier bonus raised the
    queue step's priority, else "flow"."""
    return "customer tier" if priority > step_priority else "flow"


def preferred_agent(customer: Mapping[str, Any], queue: str, agent_queues: Mapping[str, Iterable[str]],
                    now: float) -> str | None:
    """The customer's last agent (if within LAST_AGENT_MEMORY_SECONDS) or account owner, when that
    agent works `queue` (`agent_queues`: agent id → the queues they are members of)."""
    candidates = []
    last_at = customer.get("last_agent_at")
    if customer.get("last_agent") and (last_at is None or now - float(last_at) < LAST_AGENT_MEMORY_SECONDS):
        candidates.append(customer["last_agent"])
    if customer.get("account_owner"):
        candidates.append(customer["account_owner"])
    for agent_id in candidates:
        if queue in agent_queues.get(agent_id, ()):
            return agent_id
    return None


def language_requirement(customer: Mapping[str, Any], language_skills: Mapping[str, str],
                         queue_agent_skills: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """{skill: 1} when the customer's language maps to a skill some agent of the queue has; else {}.

    `queue_agent_skills`: the skills of the queue's members who could take the call, i.e. logged
    in with a reachable phone (paused ones included); a logged-out or unreachable speaker does not
    count (`RoutingEngine.member_skills`). A language nobody there speaks is not required: the
    caller is better served in another language than not at all.
    """
    skill = language_skills.get(str(customer.get("language") or ""))
    if not skill:
        return {}
    if any(skills.get(skill, 0) >= 1 for skills in queue_agent_skills):
        return {skill: 1}
    return {}


def queue_requirements(step_skills: Mapping[str, int], customer: Mapping[str, Any],
                       language_skills: Mapping[str, str],
                       queue_agent_skills: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The skills a call needs: the queue step's, plus the customer's language when the queue has a speaker."""
    requirements = dict(step_skills)
    if customer:
        for skill, level in language_requirement(customer, language_skills, queue_agent_skills).items():
            requirements.setdefault(skill, level)
    return requirements
