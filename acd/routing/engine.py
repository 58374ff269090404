"""The routing engine: events in, decisions out, the clock passed in.

Rules of this file:
- `handle(event, now)` and `handle_timers(now)` are the only ways state changes. Each handler
  first checks (raising a `RoutingError`, state untouched), then acts, appending decisions to
  one list in the order the shell must apply them.
- Agent-side handlers live in `agent_handlers.py`, query methods in `views.py`.
- Line order is the key (tier, virtual arrival, sequence, call id). With priority aging on,
  tier is 0 and virtual arrival = arrival - priority * priority_aging_seconds, so a caller
  who has waited that long outranks a fresh caller one priority above, and within one
  priority the order is arrival order. With aging off, tier = -priority (strict tiers).
  Callbacks, re-queued calls and overflowed calls keep their key, hence their place.
- After every event no available agent can take any waiting call (see `matching.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import events as ev
from .agent_handlers import AgentHandlers, cancelled
from .agent_states import AgentState, Trigger
from .config import QueueConfig, RoutingConfig
from .decisions import (
    CallbackOffered,
    CallConnected,
    CallOverflowed,
    CallRefused,
    CallWaiting,
    Decision,
    Offer,
)
from .errors import (
    CallAlreadyExists,
    CallNotWaiting,
    InvalidEvent,
    NoSuchOffer,
    UnknownCall,
    UnknownQueue,
    UnknownSkill,
)
from .estimate import position_wait
from .explain import explain_offer, explain_order, explain_waiting
from .index import QueueIndex, place_call, unplace
from .reconfigure import Reconfiguration
from .matching import select_agents
from .records import AgentRecord, CallRecord
from .timers import TimerQueue
from .views import EngineViews

__all__ = ["RoutingEngine"]

Out = list[Decision]
AVAILABLE = AgentState.AVAILABLE


def refused(event: ev.CallArrived, error_id: str, reason: str) -> CallRefused:
    """The decision that turns a call away from its queue."""
    return CallRefused(call_id=event.call_id, queue=event.queue, error_id=error_id, reason=reason)


class RoutingEngine(AgentHandlers, Reconfiguration, EngineViews):
    """The pure ACD core. Build it from a config, feed it events and timer expiries, and
    `reconfigure` it when the config changes."""

    def __init__(self, config: RoutingConfig) -> None:
        self._config = config
        self._queues = {queue.name: QueueIndex(queue) for queue in config.queues}
        self._retired: set[str] = set()  # removed by `reconfigure`, kept until nothing refers to them
        self._agents: dict[str, AgentRecord] = {}
        self._calls: dict[str, CallRecord] = {}
        self._timers = TimerQueue()
        self._sequence = 0
        self._handlers: dict[type, Callable[[Any, float, Out], None]] = {
            ev.AgentLoggedIn: self._agent_logged_in,
            ev.AgentLoggedOut: self._agent_logged_out,
            ev.AgentPauseRequested: self._agent_pause,
            ev.AgentReadyRequested: self._agent_ready,
            ev.AgentReachable: self._agent_reachable,
            ev.AgentUnreachable: self._agent_unreachable,
            ev.CallArrived: self._call_arrived,
            ev.CallEnded: self._call_ended,
            ev.CallbackRequested: self._callback_requested,
            ev.CallChanged: self._call_changed,
            ev.OfferAnswered: self._offer_answered,
            ev.OfferDeclined: self._offer_declined,
            ev.OfferFailed: self._offer_failed,
        }

    # -- the shell's entry points -------------------------------------------------------

    def handle(self, event: ev.Event, now: float) -> list[Decision]:
        """Apply one event at time `now`; return the decisions to act on, in order."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise InvalidEvent(f"not a routing event: {type(event).__name__}")
        out: Out = []
        handler(event, now, out)
        if self._retired:
            self._drop_retired(now, out)
        return out

    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called (ring, wrap-up, overflow, sticky, re-offer)."""
        return self._timers.next_deadline(self._timer_is_live)

    def handle_timers(self, now: float) -> list[Decision]:
        """Apply every timer due at or before `now`, oldest first."""
        out: Out = []
        while (due := self._timers.pop_due(now)) is not None:
            deadline, kind, target, detail = due
            if not self._timer_is_live(kind, target, detail, deadline):
                continue
            if kind == "ring":
                self._ring_timed_out(target, now, out)
            elif kind == "wrap":
                self._end_work(target, now, out)
            elif kind == "overflow":
                self._overflow(target, detail, now, out)
            elif kind == "sticky":
                target.sticky_until = None
                self._replace_waiting(target, now, out)
            else:  # "reoffer": an agent's exclusion from this call is over
                del target.excluded[detail]
                self._dispatch_call(target, now, out)
        if self._retired:
            self._drop_retired(now, out)
        return out

    def _timer_is_live(self, kind: str, target: Any, detail: Any, deadline: float) -> bool:
        if kind == "wrap":
            return (
                self._agents.get(target.agent_id) is target
                and target.state is AgentState.WRAP_UP
                and target.wrap_deadline == deadline
            )
        if self._calls.get(target.call_id) is not target:
            return False
        if kind == "ring":
            return target.state == "offered" and target.ring_deadline == deadline
        if kind == "overflow":
            return (
                target.overflow_step == detail
                and target.state != "connected"
                and target.overflow_due == deadline
            )
        if kind == "sticky":
            return target.sticky_until == deadline
        return target.state == "waiting" and target.excluded.get(detail) == deadline

    # -- calls ----------------------------------------------------------------------------

    def _queue(self, name: str) -> QueueIndex:
        index = self._queues.get(name)
        if index is None:
            raise UnknownQueue(f"queue {name!r} is not configured", queue=name)
        if name in self._retired:
            raise UnknownQueue(
                f"queue {name!r} was removed from the configuration", queue=name
            )
        return index

    def _line_key(self, priority: int, arrived_at: float, sequence: int, call_id: str) -> tuple:
        """A call's place in line under the configured priority aging rule."""
        aging = self._config.priority_aging_seconds
        if aging is None:
            return (-priority, arrived_at, sequence, call_id)
        return (0, arrived_at - priority * aging, sequence, call_id)

    def _schedule_overflow(self, call: CallRecord) -> None:
        """Arm the call's next overflow step under its home queue's config (if any is left)."""
        steps = self._queues[call.queue].config.overflow
        if call.state == "connected" or call.overflow_step >= len(steps):
            call.overflow_due = None
            return
        call.overflow_due = call.arrived_at + steps[call.overflow_step].after_seconds
        self._timers.schedule(call.overflow_due, "overflow", call, call.overflow_step)

    def _check_skill(self, skill: str) -> None:
        if skill not in self._config.skills:
            raise UnknownSkill(f"skill {skill!r} is not configured", skill=skill)

    def _call(self, call_id: str) -> CallRecord:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} is not held by the router", call_id=call_id)
        return call

    def _call_arrived(self, event: ev.CallArrived, now: float, out: Out) -> None:
        if event.call_id in self._calls:
            raise CallAlreadyExists(
                f"call {event.call_id} is already queued", call_id=event.call_id
            )
        index = self._queue(event.queue)
        for skill, _level in event.requirements:
            self._check_skill(skill)
        config = index.config
        if index.present == 0 and config.when_no_agents == "refuse":
            reason = f"no agent is logged in to {config.name}"
            if index.unreachable:
                reason += f" with a reachable phone ({index.unreachable} logged in, unreachable)"
            out.append(refused(event, "no-agents-logged-in", reason))
            return
        if len(index.line) >= config.max_waiting:
            reason = f"{len(index.line)} callers already wait in {config.name} (max_waiting)"
            out.append(refused(event, "queue-full", reason))
            return
        self._sequence += 1
        key = self._line_key(event.priority, now, self._sequence, event.call_id)
        requirements = dict(event.requirements)
        call = CallRecord(event.call_id, config.name, event.priority, requirements, now, key)
        sticky = config.sticky_seconds if event.sticky_seconds is None else event.sticky_seconds
        preferred = self._agents.get(event.preferred_agent) if event.preferred_agent else None
        if (preferred is not None and sticky > 0 and preferred.reachable
                and preferred.qualifies(call.requirements)):
            call.preferred_agent = preferred.agent_id
            call.sticky_until = now + sticky
            self._timers.schedule(call.sticky_until, "sticky", call)
        self._schedule_overflow(call)
        self._calls[call.call_id] = call
        index.offered += 1
        place_call(call, self._queues, self._agents, now)
        if not self._dispatch_call(call, now, out):
            out.append(self._waiting(call, now))

    def _waiting(self, call: CallRecord, now: float) -> CallWaiting:
        index = self._queues[call.queue]
        position = index.line.rank(call.key) + 1
        estimate = position_wait(position, index.staffed, index.average_handle_seconds())
        return CallWaiting(
            call_id=call.call_id,
            queue=call.queue,
            position=position,
            estimated_wait_seconds=estimate,
            explanation=explain_waiting(call, self._queues, now),
        )

    def waiting_status(self, call_id: str, now: float) -> CallWaiting:
        """Position and estimated wait of a waiting call (for periodic announcements)."""
        call = self._call(call_id)
        if call.state != "waiting":
            raise CallNotWaiting(
                f"call {call_id} is {call.state}", call_id=call_id, state=call.state
            )
        return self._waiting(call, now)

    def _dispatch_call(self, call: CallRecord, now: float, out: Out) -> bool:
        """Offer a waiting call to its best available agent(s); False if none qualifies."""
        selection = select_agents(call, self._queues, self._agents, now)
        if selection is None:
            return False
        explanation = explain_offer(selection, call, self._queues, self._agents, now)
        index = self._queues[selection.queue]
        order = explain_order(call, self._agents[selection.chosen[0][-1]], index, self._calls,
                              self._config.priority_aging_seconds, now)
        unplace(call)
        call.state = "offered"
        call.ring_deadline = now + index.config.ring_timeout_seconds
        self._timers.schedule(call.ring_deadline, "ring", call)
        for entry in selection.chosen:
            agent = self._agents[entry[-1]]
            call.offers[agent.agent_id] = selection.queue
            agent.call_id = call.call_id
            agent.offer_queue = selection.queue
            agent.busy_since = now
            out.append(
                Offer(
                    call_id=call.call_id,
                    agent_id=agent.agent_id,
                    queue=selection.queue,
                    ring_deadline=call.ring_deadline,
                    callback=call.callback,
                    explanation=explanation,
                    order=order,
                )
            )
            self._move(agent, Trigger.OFFER, f"offered {call.call_id}", out)
            if selection.queue in agent.rotation:
                index.rotation_counter += 1
                agent.rotation[selection.queue] = index.rotation_counter
        return True

    def _detach_offer(self, call: CallRecord, agent: AgentRecord) -> None:
        del call.offers[agent.agent_id]
        agent.call_id = None
        agent.offer_queue = None

    def _requeue(self, call: CallRecord, now: float, out: Out) -> None:
        """Put a call whose offers all ended back in line, at its old place, and retry."""
        call.state = "waiting"
        call.ring_deadline = None
        place_call(call, self._queues, self._agents, now)
        if not self._dispatch_call(call, now, out):
            out.append(self._waiting(call, now))

    def _replace_waiting(self, call: CallRecord, now: float, out: Out) -> None:
        """Re-index a waiting call after its sticky window, requirements or queues changed."""
        if call.state != "waiting":
            return
        unplace(call)
        place_call(call, self._queues, self._agents, now)
        self._dispatch_call(call, now, out)

    def _miss(self, call: CallRecord, agent: AgentRecord, now: float, out: Out) -> None:
        """The agent did not take the offer: avoid it for this call, count it, maybe pause."""
        config = self._queues[call.offers[agent.agent_id]].config
        self._detach_offer(call, agent)
        until = now + config.reoffer_after_seconds
        call.excluded[agent.agent_id] = until
        self._timers.schedule(until, "reoffer", call, agent.agent_id)
        if call.preferred_agent == agent.agent_id:
            call.sticky_until = None
        agent.misses += 1
        agent.missed_offers += 1
        if config.max_missed_offers and agent.misses >= config.max_missed_offers:
            agent.pause_reason = f"auto-pause: {agent.misses} missed offers"
            self._move(agent, Trigger.AUTO_PAUSE, agent.pause_reason, out)
        else:
            self._move(agent, Trigger.MISS, f"missed {call.call_id}", out)

    def _ring_timed_out(self, call: CallRecord, now: float, out: Out) -> None:
        missed = [self._agents[agent_id] for agent_id in call.offers]
        for agent in missed:
            out.append(cancelled(call, agent, "ring-no-answer"))
            self._miss(call, agent, now, out)
        self._requeue(call, now, out)
        for agent in missed:
            self._serve_agent(agent, now, out)

    def _offer(self, call_id: str, agent_id: str) -> tuple[CallRecord, AgentRecord]:
        call = self._call(call_id)
        if agent_id not in call.offers:
            raise NoSuchOffer(
                f"call {call_id} is not ringing agent {agent_id}",
                call_id=call_id,
                agent_id=agent_id,
            )
        return call, self._agents[agent_id]

    def _offer_answered(self, event: ev.OfferAnswered, now: float, out: Out) -> None:
        call, agent = self._offer(event.call_id, event.agent_id)
        others = [self._agents[agent_id] for agent_id in call.offers if agent_id != agent.agent_id]
        for other in others:
            out.append(cancelled(call, other, "answered-elsewhere"))
            self._detach_offer(call, other)
            self._move(other, Trigger.WITHDRAW, f"{call.call_id} answered by {agent.agent_id}", out)
        call.offers.clear()
        call.state = "connected"
        call.agent_id = agent.agent_id
        call.ring_deadline = None
        agent.misses = 0
        waited = now - call.arrived_at
        index = self._queues[call.queue]
        index.answered += 1
        call.answered_within_sl = waited <= index.config.service_level_seconds
        if call.answered_within_sl:
            index.answered_within += 1
        out.append(
            CallConnected(
                call_id=call.call_id,
                agent_id=agent.agent_id,
                queue=agent.offer_queue or call.queue,
                waited_seconds=waited,
                callback=call.callback,
            )
        )
        self._move(agent, Trigger.ANSWER, f"answered {call.call_id}", out)
        for other in others:
            self._serve_agent(other, now, out)

    def _offer_declined(self, event: ev.OfferDeclined, now: float, out: Out) -> None:
        call, agent = self._offer(event.call_id, event.agent_id)
        self._miss(call, agent, now, out)
        if not call.offers:
            self._requeue(call, now, out)
        self._serve_agent(agent, now, out)

    def _offer_failed(self, event: ev.OfferFailed, now: float, out: Out) -> None:
        """The offer never reached the phone: not the agent's miss; the agent is unreachable."""
        call, agent = self._offer(event.call_id, event.agent_id)
        self._lose_phone(agent, call, f"phone unreachable: {event.reason}", now, out)  # offered: reachable

    def _call_ended(self, event: ev.CallEnded, now: float, out: Out) -> None:
        call = self._call(event.call_id)
        del self._calls[call.call_id]
        if call.state == "connected":
            agent = self._agents[call.agent_id]  # type: ignore[index]
            agent.call_id = None
            if event.reached:
                agent.calls_handled += 1
            else:  # a callback whose customer was never reached: the agent's answer is taken back
                index = self._queues[call.queue]
                index.answered -= 1
                index.answered_within -= call.answered_within_sl
            config: QueueConfig = self._queues[agent.offer_queue or call.queue].config
            self._move(agent, Trigger.HANG_UP, f"{call.call_id} ended", out)
            if config.wrap_up_seconds > 0:
                agent.wrap_deadline = now + config.wrap_up_seconds
                self._timers.schedule(agent.wrap_deadline, "wrap", agent)
            else:
                self._end_work(agent, now, out)
            return
        index = self._queues[call.queue]
        if now - call.arrived_at > index.config.abandon_grace_seconds:
            index.abandoned += 1
        unplace(call)
        ringing = [self._agents[agent_id] for agent_id in call.offers]
        for agent in ringing:
            out.append(cancelled(call, agent, "caller-abandoned"))
            self._detach_offer(call, agent)
            self._move(agent, Trigger.WITHDRAW, f"{call.call_id} abandoned", out)
        for agent in ringing:
            self._serve_agent(agent, now, out)

    def _callback_requested(self, event: ev.CallbackRequested, now: float, out: Out) -> None:
        call = self._call(event.call_id)
        if call.state == "connected":
            raise CallNotWaiting(f"call {call.call_id} is already connected", call_id=call.call_id)
        call.callback = True
        if call.state == "waiting":
            out.append(self._waiting(call, now))

    def _call_changed(self, event: ev.CallChanged, now: float, out: Out) -> None:
        call = self._call(event.call_id)
        if call.state == "connected":
            raise CallNotWaiting(f"call {call.call_id} is already connected", call_id=call.call_id)
        if event.queue is not None:
            self._queue(event.queue)
        for skill, _level in event.requirements or ():
            self._check_skill(skill)
        affected = set(call.queues) | ({event.queue} if event.queue else set())
        before = self._positions(affected)
        waiting = call.state == "waiting"
        if waiting:
            unplace(call)
        if event.priority is not None:
            call.priority = event.priority
            call.key = self._line_key(call.priority, call.arrived_at, call.key[2], call.call_id)
        if event.queue is not None and event.queue != call.queue:
            call.queue = event.queue
            call.queues = [event.queue]
            call.overflow_step = 0
            self._schedule_overflow(call)
        if event.requirements is not None:
            call.requirements = dict(event.requirements)
        if waiting:
            place_call(call, self._queues, self._agents, now)
            self._dispatch_call(call, now, out)
        for call_id, position in self._positions(affected).items():
            if call_id == call.call_id or before.get(call_id) != position:
                out.append(self._waiting(self._calls[call_id], now))

    def _positions(self, queues: set[str]) -> dict[str, int]:
        """Position of every call waiting in `queues` (its home queue's line)."""
        found = {}
        for name in queues:
            for position, entry in enumerate(self._queues[name].line, 1):
                call = self._calls[entry[-1]]
                if call.queue == name:
                    found[call.call_id] = position
        return found

    def _overflow(self, call: CallRecord, step_index: int, now: float, out: Out) -> None:
        config = self._queues[call.queue].config
        step = config.overflow[step_index]
        relaxed = dict(step.relax)
        requirements = {}
        for skill, minimum in call.requirements.items():
            if skill in relaxed:
                minimum = min(minimum, relaxed[skill])
            if minimum > 0:
                requirements[skill] = minimum
        call.requirements = requirements
        for name in step.add_queues:
            if name not in call.queues:
                call.queues.append(name)
        call.overflow_step = step_index + 1
        self._schedule_overflow(call)
        what = []
        if step.relax:
            what.append("requirements relaxed")
        if step.add_queues:
            what.append("queues added: " + ", ".join(step.add_queues))
        out.append(
            CallOverflowed(
                call_id=call.call_id, queue=call.queue, step=step_index, queues=tuple(call.queues),
                requirements=tuple(requirements.items()),
                explanation=f"waited {now - call.arrived_at:.0f}s >= {step.after_seconds:.0f}s: "
                + ("; ".join(what) or "no change"),
            )
        )
        if step.offer_callback and call.state == "waiting":
            position = self._queues[call.queue].line.rank(call.key) + 1
            out.append(CallbackOffered(call_id=call.call_id, queue=call.queue, position=position))
        self._replace_waiting(call, now, out)
