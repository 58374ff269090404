"""Agent-side event handlers of the routing engine (a mixin of `RoutingEngine`; `self` is the engine,
left unannotated so that this module does not import `engine.py`, which imports it).

Rules of this file:
- Agent states change only through `_move`, which applies the table in `agent_states.py`,
  keeps the per-queue member counts and the available-agent indexes in step, and reports
  `AgentStateChanged`. Every handler checks the transition is legal before changing anything.
- Reachability is a flag beside the state (`AgentRecord.reachable`): an unreachable agent keeps
  its state, is counted apart in each queue (`QueueIndex.count`) and sits in no index; only
  `_set_reachable` flips it (from `_lose_phone` and `_agent_reachable`).
- A freed agent (login, ready, wrap-up over, offer withdrawn, phone back) is served at once by
  `_serve_agent`: it finds the first call in line the agent can take, and that call then
  picks its best available agent by its queue's strategy.
- The call-side helpers used here (`_dispatch_call`, `_requeue`, `_replace_waiting`,
  `_detach_offer`, `_queue`, `_check_skill`) live in `engine.py`.
"""

from __future__ import annotations

from . import events as ev
from .agent_states import AgentState, Trigger, next_agent_state
from .decisions import AgentReachabilityChanged, AgentStateChanged, Decision, OfferCancelled
from .errors import AgentAlreadyLoggedIn, UnknownAgent
from .index import place_agent, unplace
from .matching import select_call
from .records import AgentRecord, CallRecord

__all__ = ["AgentHandlers", "cancelled"]

Out = list[Decision]
AVAILABLE = AgentState.AVAILABLE


def cancelled(call: CallRecord, agent: AgentRecord, reason: str) -> OfferCancelled:
    """The decision that stops ringing `agent` for `call`."""
    return OfferCancelled(call_id=call.call_id, agent_id=agent.agent_id, reason=reason)


class AgentHandlers:
    """Login, logout, pause, ready, wrap-up end, reachability, and serving a freed agent."""

    def _agent(self, agent_id: str) -> AgentRecord:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"agent {agent_id} is not logged in", agent_id=agent_id)
        return agent

    def _move(
        self, agent: AgentRecord, trigger: Trigger, reason: str, out: Out
    ) -> None:
        previous = agent.state
        state = next_agent_state(agent.agent_id, previous, trigger)
        if state is previous:
            return
        for name in agent.queues:
            index = self._queues[name]
            index.count(agent, previous, -1)
            index.count(agent, state, +1)
        if previous is AVAILABLE:
            unplace(agent)
        agent.state = state
        if agent.offerable:
            place_agent(agent, self._queues)
        out.append(
            AgentStateChanged(
                agent_id=agent.agent_id, previous=previous, state=state, reason=reason
            )
        )

    def _agent_logged_in(
        self, event: ev.AgentLoggedIn, now: float, out: Out
    ) -> None:
        if event.agent_id in self._agents:
            raise AgentAlreadyLoggedIn(
                f"agent {event.agent_id} is already logged in", agent_id=event.agent_id
            )
        for name, _penalty in event.queues:
            self._queue(name)
        for skill, _level in event.skills:
            self._check_skill(skill)
        agent = AgentRecord(event.agent_id, dict(event.queues), dict(event.skills))
        agent.reachable = event.reachable
        for name in agent.queues:
            index = self._queues[name]
            index.rotation_counter += 1
            agent.rotation[name] = index.rotation_counter
        agent.idle_since = now
        self._agents[agent.agent_id] = agent
        if event.paused_reason is not None:
            agent.pause_reason = event.paused_reason
            reason = f"logged in paused: {event.paused_reason}"
            self._move(agent, Trigger.LOG_IN_PAUSED, reason, out)
        else:
            self._move(agent, Trigger.LOG_IN, "logged in", out)
        if not agent.reachable:
            out.append(self._reachability(agent, "phone unreachable: not registered"))
        self._serve_agent(agent, now, out)

    def _agent_logged_out(
        self, event: ev.AgentLoggedOut, now: float, out: Out
    ) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.ON_CALL:
            next_agent_state(agent.agent_id, agent.state, Trigger.LOG_OUT)
            agent.pending, agent.pending_reason = "logout", None
            return
        self._log_out(agent, "logged out", now, out)

    def _log_out(
        self, agent: AgentRecord, reason: str, now: float, out: Out
    ) -> None:
        call = self._ringing_call(agent)
        if call is not None:
            out.append(cancelled(call, agent, "agent-logged-out"))
            self._detach_offer(call, agent)
            if call.preferred_agent == agent.agent_id:
                call.sticky_until = None
        self._close_occupation(agent, now)
        self._move(agent, Trigger.LOG_OUT, reason, out)
        del self._agents[agent.agent_id]
        released = [self._calls[entry[-1]] for entry in agent.reserved]
        for waiting in released:
            waiting.sticky_until = None
            self._replace_waiting(waiting, now, out)
        if call is not None and not call.offers:
            self._requeue(call, now, out)

    # -- reachability: a flag beside the state (see README "Reachability") ------------------

    def _reachability(self, agent: AgentRecord, reason: str) -> AgentReachabilityChanged:
        return AgentReachabilityChanged(
            agent_id=agent.agent_id, state=agent.state, reachable=agent.reachable, reason=reason
        )

    def _set_reachable(self, agent: AgentRecord, reachable: bool) -> None:
        """Flip the flag, moving the agent between each queue's counts (state unchanged)."""
        for name in agent.queues:
            self._queues[name].count(agent, agent.state, -1)
        agent.reachable = reachable
        for name in agent.queues:
            self._queues[name].count(agent, agent.state, +1)

    def _agent_unreachable(
        self, event: ev.AgentUnreachable, now: float, out: Out
    ) -> None:
        agent = self._agent(event.agent_id)
        if not agent.reachable:
            return
        call = self._ringing_call(agent)
        if call is not None:
            out.append(cancelled(call, agent, "agent-unreachable"))
        self._lose_phone(agent, call, f"phone unreachable: {event.reason}", now, out)

    def _lose_phone(
        self, agent: AgentRecord, call: CallRecord | None, reason: str, now: float, out: Out
    ) -> None:
        """Mark the agent unreachable: out of every index, counted apart, its sticky calls free
        for others; a ringing `call` (already cancelled by the caller of this) is withdrawn
        without counting a miss and goes back to its place in line."""
        self._set_reachable(agent, False)
        unplace(agent)
        out.append(self._reachability(agent, reason))
        if call is not None:
            self._detach_offer(call, agent)
            if call.preferred_agent == agent.agent_id:
                call.sticky_until = None
            self._move(agent, Trigger.WITHDRAW, f"offer of {call.call_id} withdrawn: {reason}", out)
        released = [self._calls[entry[-1]] for entry in agent.reserved]
        for waiting in released:
            waiting.sticky_until = None
            self._replace_waiting(waiting, now, out)
        if call is not None and not call.offers:
            self._requeue(call, now, out)

    def _agent_reachable(
        self, event: ev.AgentReachable, now: float, out: Out
    ) -> None:
        agent = self._agent(event.agent_id)
        if agent.reachable:
            return
        self._set_reachable(agent, True)
        out.append(self._reachability(agent, f"phone reachable: {event.reason}"))
        if agent.offerable:
            place_agent(agent, self._queues)
            self._serve_agent(agent, now, out)

    def _agent_pause(
        self, event: ev.AgentPauseRequested, now: float, out: Out
    ) -> None:
        agent = self._agent(event.agent_id)
        next_agent_state(agent.agent_id, agent.state, Trigger.PAUSE)
        if agent.state is AgentState.ON_CALL:
            agent.pending, agent.pending_reason = "pause", event.reason
            return
        call = self._ringing_call(agent)
        if call is not None:
            out.append(cancelled(call, agent, "agent-paused"))
            self._detach_offer(call, agent)
        agent.pause_reason = event.reason
        self._close_occupation(agent, now)
        self._move(agent, Trigger.PAUSE, f"paused: {event.reason}", out)
        if call is not None and not call.offers:
            self._requeue(call, now, out)

    def _agent_ready(
        self, event: ev.AgentReadyRequested, now: float, out: Out
    ) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.ON_CALL:
            agent.pending = agent.pending_reason = None
            return
        if agent.state is AVAILABLE:
            agent.misses = 0
            return
        next_agent_state(agent.agent_id, agent.state, Trigger.READY)
        agent.misses = 0
        if agent.state is AgentState.WRAP_UP:
            agent.pending = agent.pending_reason = None
            self._end_work(agent, now, out, Trigger.READY)
            return
        agent.pause_reason = None
        agent.idle_since = now
        self._move(agent, Trigger.READY, "ready", out)
        self._serve_agent(agent, now, out)

    def _end_work(
        self,
        agent: AgentRecord,
        now: float,
        out: Out,
        trigger: Trigger = Trigger.WRAP_UP_END,
    ) -> None:
        """Wrap-up is over (timer, ready, or zero seconds): record the occupation, move on."""
        self._close_occupation(agent, now)
        if agent.pending == "logout":
            self._log_out(agent, agent.pending_reason or "logged out after the call", now, out)
            return
        if agent.pending == "pause":
            agent.pause_reason = agent.pending_reason
            agent.pending = agent.pending_reason = None
            self._move(agent, Trigger.PAUSE, f"paused after the call: {agent.pause_reason}", out)
            return
        agent.idle_since = now
        reason = "wrap-up over" if trigger is Trigger.WRAP_UP_END else "ready"
        self._move(agent, trigger, reason, out)
        self._serve_agent(agent, now, out)

    def _ringing_call(self, agent: AgentRecord) -> CallRecord | None:
        if agent.state is AgentState.OFFERED and agent.call_id is not None:
            return self._calls[agent.call_id]
        return None

    def _close_occupation(self, agent: AgentRecord, now: float) -> None:
        """Leaving wrap-up: one handle-time sample (offer to ready) for the queue of the call."""
        if agent.state is AgentState.WRAP_UP and agent.offer_queue is not None:
            self._queues[agent.offer_queue].record_handle_time(now - agent.busy_since)
        if agent.state is AgentState.WRAP_UP:
            agent.offer_queue = None
            agent.wrap_deadline = None

    def _serve_agent(self, agent: AgentRecord, now: float, out: Out) -> None:
        """Offer the freed agent the first call it can take (each call picks its best agent)."""
        while agent.offerable and agent.agent_id in self._agents:
            call = select_call(agent, self._queues, self._calls, now)
            if call is None or not self._dispatch_call(call, now, out):
                return
