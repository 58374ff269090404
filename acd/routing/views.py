"""Read-only snapshots of the engine's state, for the API, the wallboard and tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .agent_states import AgentState
from .decisions import AgentView, CallView, QueueStats
from .errors import UnknownAgent, UnknownCall, UnknownQueue
from .estimate import position_wait
from .explain import explain_position

if TYPE_CHECKING:
    from .config import RoutingConfig
    from .index import QueueIndex
    from .records import AgentRecord, CallRecord

__all__ = ["EngineViews"]


class EngineViews:
    """Query methods of `RoutingEngine` (kept apart from the event handlers)."""

    _config: RoutingConfig
    _queues: dict[str, QueueIndex]
    _agents: dict[str, AgentRecord]
    _calls: dict[str, CallRecord]

    @property
    def config(self) -> RoutingConfig:
        """The configuration the engine was built with."""
        return self._config

    def queue_config(self, queue: str):
        """The config a queue runs with now (a retired queue keeps its last one)."""
        index = self._queues.get(queue)
        if index is None:
            raise UnknownQueue(f"queue {queue!r} is not configured", queue=queue)
        return index.config

    def agent_ids(self) -> list[str]:
        """Ids of every logged-in agent, in login order."""
        return list(self._agents)

    def call_ids(self) -> list[str]:
        """Ids of every call the engine holds (waiting, offered or connected), by arrival."""
        return list(self._calls)

    def agent_view(self, agent_id: str) -> AgentView:
        """A snapshot of one logged-in agent; `UnknownAgent` otherwise."""
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"agent {agent_id} is not logged in", agent_id=agent_id)
        return AgentView(
            agent_id=agent.agent_id,
            state=agent.state,
            call_id=agent.call_id,
            queues=tuple(agent.queues.items()),
            skills=tuple(agent.skills.items()),
            pause_reason=agent.pause_reason,
            pending=agent.pending,
            missed_offers=agent.missed_offers,
            calls_handled=agent.calls_handled,
            idle_since=agent.idle_since if agent.state is AgentState.AVAILABLE else None,
            reachable=agent.reachable,
            consecutive_misses=agent.misses,
        )

    def member_skills(self, queue: str) -> Iterator[dict[str, int]]:
        """Skills of the members of `queue` who are logged in with a reachable phone (paused ones
        included: they may take the call later), for rules such as "a language is required only
        when someone who could take the call speaks it". Lazy: `any()` over it stops early."""
        return (
            dict(agent.skills)
            for agent in self._agents.values()
            if agent.reachable and queue in agent.queues
        )

    def explain_position(self, call_id: str, now: float) -> str:
        """Why a waiting call has its place: rank, priority, and why the calls ahead are ahead."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} is not held by the router", call_id=call_id)
        if call.state != "waiting":
            return f"{call.state} (not in line)"
        return explain_position(call, self._queues[call.queue], self._calls,
                                self._config.priority_aging_seconds, now)

    def call_view(self, call_id: str) -> CallView:
        """A snapshot of one call the engine holds; `UnknownCall` otherwise."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} is not held by the router", call_id=call_id)
        if call.state == "connected":
            agent_ids: tuple[str, ...] = (call.agent_id,)  # type: ignore[assignment]
        else:
            agent_ids = tuple(call.offers)
        return CallView(
            call_id=call.call_id,
            state=call.state,
            queue=call.queue,
            queues=tuple(call.queues),
            priority=call.priority,
            requirements=tuple(call.requirements.items()),
            arrived_at=call.arrived_at,
            agent_ids=agent_ids,
            preferred_agent=call.preferred_agent,
            sticky_until=call.sticky_until,
            callback=call.callback,
            overflow_step=call.overflow_step,
        )

    def queue_stats(self, queue: str, now: float) -> QueueStats:
        """Live figures for one queue. Longest wait is O(waiting); the rest is O(1)."""
        index = self._queues.get(queue)
        if index is None:
            raise UnknownQueue(f"queue {queue!r} is not configured", queue=queue)
        calls = self._calls
        longest = max((now - calls[entry[-1]].arrived_at for entry in index.line), default=0.0)
        counted = index.answered + index.abandoned
        return QueueStats(
            queue=queue,
            waiting=len(index.line),
            longest_wait_seconds=longest,
            agents={
                **{
                    state.value: count
                    for state, count in index.members.items()
                    if state is not AgentState.LOGGED_OUT
                },
                "unreachable": index.unreachable,
            },
            offered=index.offered,
            answered=index.answered,
            answered_within_service_level=index.answered_within,
            abandoned=index.abandoned,
            service_level=index.answered_within / counted if counted else None,
            average_handle_seconds=index.average_handle_seconds(),
            estimated_wait_seconds=position_wait(
                len(index.line) + 1, index.staffed, index.average_handle_seconds()
            ),
        )
