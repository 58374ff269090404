"""Queue memberships changed at runtime (the REST API), laid over the config as loaded.

A supervisor adds an agent to a queue for the afternoon, or takes one out, without editing
conf/agents.yaml. The change is kept beside the loaded config and applied on top of it, now and
after every reload, so everything that reads memberships (the routing core, logins, the API, the
wallboard) sees one truth. Like Asterisk's dynamic queue members without `persistentmembers`, the
changes last until the server restarts: what must outlive a restart belongs in conf/agents.yaml.
A change for an agent or queue that a reload removed is dropped, and said so.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from .model import Config

__all__ = ["Memberships", "apply_memberships"]

# agent id -> queue -> penalty (None: not a member)
Memberships = dict[str, dict[str, int | None]]


def apply_memberships(config: Config, changes: Mapping[str, Mapping[str, int | None]]) -> tuple[Config, list[str]]:
    """`config` with each agent's queues changed as `changes` say, and the changes that no longer
    apply (unknown agent or queue), one line each."""
    agents = config.agents
    if agents is None or not changes:
        return config, [f"agent {agent}: no agents in the config" for agent in changes] if agents is None else []
    dropped: list[str] = []
    changed_agents = dict(agents.agents)
    for agent_id, queues in changes.items():
        agent = changed_agents.get(agent_id)
        if agent is None:
            dropped.append(f"agent {agent_id} is no longer in conf/agents.yaml")
            continue
        memberships = dict(agent.queues)
        for queue, penalty in queues.items():
            if queue not in agents.queues:
                dropped.append(f"agent {agent_id}: queue {queue} is no longer configured")
            elif penalty is None:
                memberships.pop(queue, None)
            else:
                memberships[queue] = penalty
        changed_agents[agent_id] = dataclasses.replace(agent, queues=memberships)
    return dataclasses.replace(config, agents=dataclasses.replace(agents, agents=changed_agents)), dropped
