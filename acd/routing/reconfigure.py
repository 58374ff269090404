"""Reconfiguring a running engine (a mixin of `RoutingEngine`; `self` is the engine, left
unannotated so that this module does not import `engine.py`, which imports it).

`reconfigure(config, now)` puts a new `RoutingConfig` in force between two events:
- A queue added starts empty. A queue changed keeps its line, its statistics and its members;
  its new strategy, tie-break, timers, limits, skills and overflow apply to the next decision.
  Waiting calls keep their place (line key); they are re-keyed from their arrival time only
  when the priority aging rule itself changed. Ringing offers keep their ring deadline, agents
  in wrap-up their wrap-up deadline: what is under way is untouched.
- A removed queue takes no new calls. Its waiting callers move to the queues its overflow steps
  name, keeping their place, when any of those still exists. Otherwise the queue is *retired*:
  its callers stay in line until one of its former members serves them or they leave, and the
  queue is dropped once no call and no agent refers to it (an agent left with no queue then is
  logged out). `QueueRemoved` says which happened.
- With `config.agents` given, logged-in agents take their new memberships, penalties and
  skills at once. An agent no longer configured, or configured with no queue, is logged out —
  after the call and its wrap-up when on a call; a ringing offer to it is withdrawn.
- Then every index is rebuilt, and each waiting call, in line order, is matched again: the
  engine's invariant (no available agent can take a waiting call) holds under the new config,
  and reconfiguring to the same config decides nothing.
"""

from __future__ import annotations

from .agent_handlers import cancelled
from .agent_states import AgentState, Trigger
from .config import RoutingConfig
from .decisions import Decision, QueueRemoved
from .index import QueueIndex, place_agent, place_call, unplace
from .records import AgentRecord

__all__ = ["Reconfiguration", "carry_over"]

Out = list[Decision]


def carry_over(previous: QueueIndex, config) -> QueueIndex:
    """A fresh index for `config` keeping `previous`'s statistics and rotation counter."""
    index = QueueIndex(config)
    index.rotation_counter = previous.rotation_counter
    index.offered = previous.offered
    index.answered = previous.answered
    index.answered_within = previous.answered_within
    index.abandoned = previous.abandoned
    samples = list(previous.handle_times)[-config.handle_time_window:]
    index.handle_times.extend(samples)
    index.handle_sum = sum(samples)
    return index


def _overflow_targets(config, known: set[str]) -> list[str]:
    targets: list[str] = []
    for step in config.overflow:
        for name in step.add_queues:
            if name in known and name not in targets:
                targets.append(name)
    return targets


class Reconfiguration:
    """`reconfigure` and the retired-queue bookkeeping it needs."""

    def reconfigure(self, config: RoutingConfig, now: float) -> list[Decision]:
        """Put `config` in force at time `now`; return the decisions to act on, in order."""
        out: Out = []
        names = {queue.name for queue in config.queues}
        profiles = None if config.agents is None else {p.agent_id: p for p in config.agents}
        removed = [name for name in self._queues if name not in names and name not in self._retired]
        for agent in list(self._agents.values()):
            why = self._leaving_reason(agent, profiles)
            if why is not None:
                self._leave(agent, why, now, out)
        waiting = [call for call in self._calls.values() if call.state == "waiting"]
        for call in waiting:
            unplace(call)
        for agent in self._agents.values():
            if agent.offerable:
                unplace(agent)
        aging_changed = config.priority_aging_seconds != self._config.priority_aging_seconds
        old_configs = {name: index.config for name, index in self._queues.items()}
        self._rebuild_queues(config, names)
        self._config = config
        self._update_agents(profiles)
        moved = self._update_calls(removed, old_configs, names, aging_changed)
        for name in removed:
            self._report_removed(name, old_configs[name], moved, out)
        for agent in self._agents.values():
            if agent.offerable:
                place_agent(agent, self._queues)
        waiting.sort(key=lambda call: call.key)
        for call in waiting:
            place_call(call, self._queues, self._agents, now)
        for call in waiting:
            if call.state == "waiting":
                self._dispatch_call(call, now, out)
        for call in waiting:
            if call.call_id in moved and call.state == "waiting":
                out.append(self._waiting(call, now))
        self._drop_retired(now, out)
        return out

    def retired_queues(self) -> list[str]:
        """Queues removed from the config that still hold calls (sorted)."""
        return sorted(self._retired)

    # -- the steps ----------------------------------------------------------------------

    def _leaving_reason(self, agent: AgentRecord, profiles) -> str | None:
        if profiles is None or agent.pending == "logout":
            return None
        profile = profiles.get(agent.agent_id)
        if profile is None:
            return "removed from the configuration"
        if not profile.queues:
            return "no queue left in the configuration"
        return None

    def _leave(self, agent: AgentRecord, why: str, now: float, out: Out) -> None:
        """Log out an agent the new config drops (after its call and wrap-up when on a call)."""
        if agent.state is AgentState.ON_CALL:
            agent.pending, agent.pending_reason = "logout", f"{why} (after the call)"
            return
        call = self._ringing_call(agent)
        if call is not None:
            out.append(cancelled(call, agent, "agent-removed"))
            self._detach_offer(call, agent)
            if call.preferred_agent == agent.agent_id:
                call.sticky_until = None
            if not call.offers:
                call.state = "waiting"
                call.ring_deadline = None
        self._close_occupation(agent, now)
        self._move(agent, Trigger.LOG_OUT, why, out)
        del self._agents[agent.agent_id]
        for entry in agent.reserved:
            self._calls[entry[-1]].sticky_until = None

    def _rebuild_queues(self, config: RoutingConfig, names: set[str]) -> None:
        queues: dict[str, QueueIndex] = {}
        for queue in config.queues:
            previous = self._queues.get(queue.name)
            queues[queue.name] = QueueIndex(queue) if previous is None else carry_over(previous, queue)
        retired: set[str] = set()
        for name, index in self._queues.items():
            if name not in names:
                queues[name] = carry_over(index, index.config)
                retired.add(name)
        self._queues = queues
        self._retired = retired

    def _update_agents(self, profiles) -> None:
        """New memberships, penalties and skills; retired memberships kept; member counts."""
        for agent in self._agents.values():
            profile = profiles.get(agent.agent_id) if profiles is not None else None
            if profile is not None and agent.pending != "logout":
                memberships = dict(profile.queues)
                agent.skills = dict(profile.skills)
            else:
                memberships = {name: p for name, p in agent.queues.items() if name in self._queues}
            for name, penalty in agent.queues.items():
                if name in self._retired and name not in memberships:
                    memberships[name] = penalty
            rotation = {}
            for name in memberships:
                if name in agent.rotation:
                    rotation[name] = agent.rotation[name]
                else:
                    index = self._queues[name]
                    index.rotation_counter += 1
                    rotation[name] = index.rotation_counter
            agent.queues = memberships
            agent.rotation = rotation
            for name in memberships:
                self._queues[name].count(agent, agent.state, +1)

    def _update_calls(
        self, removed: list[str], old_configs: dict, names: set[str], aging_changed: bool
    ) -> dict[str, str]:
        """Move the waiting calls of removed queues, re-key, re-arm overflow.

        Returns the moved calls: call id -> the removed queue it left."""
        moved: dict[str, str] = {}
        for call in self._calls.values():
            home_before = call.queue
            if call.state == "waiting" and call.queue in removed:
                targets = _overflow_targets(old_configs[call.queue], names)
                if targets:
                    moved[call.call_id] = call.queue
                    call.queue = targets[0]
                    call.overflow_step = 0
                    call.queues = targets + [name for name in call.queues if name not in targets]
            if call.state == "waiting":
                call.queues = [name for name in call.queues if name in names or name == call.queue]
            if aging_changed and call.state != "connected":
                call.key = self._line_key(call.priority, call.arrived_at, call.key[2], call.call_id)
            old = old_configs.get(home_before)
            if call.queue != home_before or old.overflow != self._queues[call.queue].config.overflow:
                self._schedule_overflow(call)
        return moved

    def _report_removed(self, name: str, old, moved: dict[str, str], out: Out) -> None:
        names = {queue.name for queue in self._config.queues}
        targets = tuple(_overflow_targets(old, names))
        moved_here = sum(1 for source in moved.values() if source == name)
        staying = sum(
            1 for call in self._calls.values() if call.queue == name and call.state == "waiting"
        )
        if moved_here:
            explanation = (
                f"queue {name!r} removed: {moved_here} waiting caller(s) moved to its overflow "
                f"queue(s) {', '.join(targets)}, keeping their place"
            )
        elif staying:
            explanation = (
                f"queue {name!r} removed: it takes no new calls; its {staying} waiting caller(s) "
                "stay until a former member serves them or they leave (it has no overflow queue "
                "to move them to)"
            )
        else:
            explanation = f"queue {name!r} removed: no caller was waiting; it takes no new calls"
        out.append(
            QueueRemoved(
                queue=name,
                waiting=moved_here or staying,
                moved_to=targets if moved_here else (),
                explanation=explanation,
            )
        )

    def _refers_to(self, name: str) -> bool:
        for call in self._calls.values():
            if call.queue == name or name in call.queues or name in call.offers.values():
                return True
        return any(agent.offer_queue == name for agent in self._agents.values())

    def _drop_retired(self, now: float, out: Out) -> None:
        """Forget retired queues nothing refers to; log out agents left with no queue."""
        for name in sorted(self._retired):
            if self._refers_to(name):
                continue
            self._retired.discard(name)
            why = f"its last queue {name!r} was removed from the configuration"
            for agent in list(self._agents.values()):
                if name not in agent.queues:
                    continue
                last = all(other == name for other in agent.queues)
                if last and agent.state is not AgentState.ON_CALL:
                    self._close_occupation(agent, now)
                    self._move(agent, Trigger.LOG_OUT, why, out)
                    del self._agents[agent.agent_id]
                    for entry in agent.reserved:
                        self._calls[entry[-1]].sticky_until = None
                    continue
                if last:
                    agent.pending, agent.pending_reason = "logout", f"{why} (after the call)"
                available = agent.offerable
                if available:
                    unplace(agent)
                del agent.queues[name]
                agent.rotation.pop(name, None)
                if available:
                    place_agent(agent, self._queues)
            del self._queues[name]
