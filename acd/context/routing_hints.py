"""What a customer record asks of routing: the tier's priority bonus, the sticky agent, the language.

Pure functions over plain data, used by the shell when a call joins a queue.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["language_requirement"]


def language_requirement(customer: Mapping[str, Any], language_skills: Mapping[str, str],
                         queue_agent_skills: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """{skill: 1} when the customer's language maps to a skill some agent of the queue has; else {}.

    A language nobody in the queue speaks is not required: the caller is better served in another
    language than not at all (the log says so).
    """
    skill = language_skills.get(str(customer.get("language") or ""))
    if not skill:
        return {}
    if any(skills.get(skill, 0) >= 1 for skills in queue_agent_skills):
        return {skill: 1}
    return {}
