"""Who may call what on /api: the API token and supervisors everything, an agent their own desk. Pure.

An agent signed in to the web may read their own state, calls today, callbacks and event stream,
and change only their own state (login, logout, pause, ready, disposition). Another agent's
anything is 403 `not-your-agent`; endpoints outside the desk (queues, reload, call commands,
memberships, the wallboard stream) are 403 `supervisors-only`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NotYourAgent, SupervisorsOnly

__all__ = ["AGENT_ACTIONS", "AGENT_READS", "Principal", "check_access"]

# What an agent may do to their own desk (POST /api/agents/{self}/{action}).
AGENT_ACTIONS = frozenset({"login", "logout", "pause", "ready", "disposition"})
# What an agent may read of their own (GET /api/agents/{self}/{what}; GET /api/agents/{self} too).
AGENT_READS = frozenset({"calls", "callbacks"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: `role` "automation" (the API token), "supervisor" or "agent"."""

    user: str
    role: str
    name: str = ""


def check_access(principal: Principal, method: str, parts: list[str]) -> None:
    """Raise Forbidden unless `principal` may `method` the API path `parts` (without "api")."""
    if principal.role in ("automation", "supervisor"):
        return
    if parts in (["me"], ["calls"], ["config"]) and method == "GET":
        return  # /calls is filtered to the agent's own calls by the caller
    if len(parts) == 2 and parts[0] == "events" and method == "GET":
        if parts[1] == f"agent-{principal.user}":
            return
        if parts[1].startswith("agent-"):
            raise NotYourAgent(f"agent {principal.user} may read only their own event stream")
    if len(parts) >= 2 and parts[0] == "agents":
        if parts[1] != principal.user:
            raise NotYourAgent(f"agent {principal.user} may see and change only their own desk, not agent "
                               f"{parts[1]}'s", agent_id=parts[1])
        if len(parts) == 2 and method == "GET":
            return
        if len(parts) == 3 and ((method == "POST" and parts[2] in AGENT_ACTIONS)
                                or (method == "GET" and parts[2] in AGENT_READS)):
            return
    raise SupervisorsOnly(f"/{'/'.join(['api', *parts])} is for supervisors (signed in as agent {principal.user})")
