"""AcdService: the shell around the pure RoutingEngine. Queued callers, offers to agents, bridges.

It feeds the engine (CallArrived from the IVR's queue step, CallEnded when the caller leaves, agent
log-in/out/pause from feature codes and the API, whether each agent's phone can be reached from
the registrar: `phone_changed`, and at start-up the agents of the last run: `restore_agents`)
and carries out its decisions: offers and
connections go to `Connections` (which feeds the agent legs' answers back), waiting callers hear
position and wait (QueueWait), a refused call goes back to the IVR. One `QueuedCall` per call it
holds. One IDelayedCall follows `engine.next_deadline()`. `reactor` provides IReactorTime and
IReactorThreads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..context.routing_hints import (DEFAULT_STICKY_SECONDS, TIER_PRIORITY_BONUS, caller_priority, preferred_agent,
                                     priority_source,
                                     queue_requirements)
from ..ivr.events import EnqueueCall, QueueFinished
from ..routing import (AgentLoggedIn, AgentLoggedOut, AgentPauseRequested, AgentProfile, AgentReachabilityChanged,
                       AgentReachable, AgentReadyRequested, AgentState, AgentStateChanged, AgentUnreachable,
                       CallArrived, CallbackRequested, CallChanged, CallConnected,
                       CallEnded, CallNotWaiting,
                       CallOverflowed, CallRefused, CallWaiting, Offer, OfferAnswered, OfferCancelled, QueueConfig,
                       QueueRemoved,
                       RoutingConfig, RoutingEngine, RoutingError)
from .agent_restore import WHY_REFUSED, RestoredAgent, plan_restore, restore_summary, tell_restored
from .connections import Connections, queue_settings
from .leg_states import EndReason
from .pauses import PauseBook
from .ports import ConfigSource, EventSink, Media, Records, Signalling, Webhooks
from .queue_log import QueueLog
from .queue_wait import QueueWait
from .queued_call import Callback, QueuedCall
from .routing_authority import LOCAL, LocalRouting, RoutingAuthority, Scope

if TYPE_CHECKING:
    from ..config.model import Config
    from ..metrics import Metrics
    from ..registrar.path import AgentContact
    from ..store.presence import AgentPresence
    from .session import CallSession

__all__ = ["AcdService", "routing_config_from"]

log = logging.getLogger("acd.acd")


def priority_detail(flow_priority: int, priority: int, customer: dict) -> str:
    """Where a queued call's priority came from, for the explanation a supervisor reads."""
    if priority_source(flow_priority, priority) == "flow":
        return f"flow priority {flow_priority}"
    return f"flow priority {flow_priority}, raised to {priority} for customer tier {customer.get('tier') or '?'}"


def routing_config_from(config: "Config") -> RoutingConfig:
    """The routing core's config from conf/agents.yaml and the flows' queue steps."""
    agents = config.agents
    queues = tuple(settings.routing for settings in agents.queues.values()) if agents else ()
    skills: set[str] = set()
    for agent in (agents.agents.values() if agents else ()):
        skills.update(agent.skills)
    for flow in config.flows.values():
        for step in flow.steps.values():
            skills.update(getattr(step, "skills", {}) or {})
    if agents:
        skills.update(agents.language_skills.values())
    profiles = tuple(AgentProfile(agent_id=agent.agent_id, queues=tuple(agent.queues.items()),
                                  skills=tuple(agent.skills.items()))
                     for agent in agents.agents.values()) if agents else None
    aging = {"priority_aging_seconds": agents.priority_aging_seconds} if agents else {}
    return RoutingConfig(queues=queues or (QueueConfig(name="default"),), skills=frozenset(skills), agents=profiles,
                         **aging)


class AcdService:
    """Queues, offers and bridges for every call. `contacts(agent_id)` says where an agent's phone is."""

    def __init__(self, *, reactor, config: ConfigSource, signalling: Signalling, media: Media, events: EventSink,
                 records: Records, webhooks: Webhooks, metrics: "Metrics",
                 contacts: Callable[[str], list[AgentContact]], directory: Any = None,
                 routing: RoutingAuthority | None = None) -> None:
        """`routing`: where routing events go (None: the engine in this process, `LocalRouting`)."""
        self.reactor = reactor
        self.config = config
        self.events = events
        self.records = records
        self.webhooks = webhooks
        self.metrics = metrics
        self.signalling = signalling
        self.contacts = contacts
        self.routing = routing if routing is not None else LocalRouting(routing_config_from(config.config))
        self.routing.attach(self._apply)
        self.queue_log = QueueLog(records, reactor)
        self.calls: dict[str, QueuedCall] = {}
        self.last_call: dict[str, str] = {}
        self.state_since: dict[str, float] = {}
        self.pauses = PauseBook()
        self._pending_reasons: dict[str, str] = {}  # agent → reason of a pause asked for during a call
        self.connections = Connections(reactor=reactor, config=config, signalling=signalling, media=media,
                                       events=events, records=records, webhooks=webhooks, metrics=metrics,
                                       queue_log=self.queue_log, calls=self.calls, last_call=self.last_call,
                                       contacts=contacts, feed=self._feed, enqueue=self.enqueue, directory=directory)
        self._timer = None
        self.releasing = False  # the server is stopping: no new offers are placed

    @property
    def engine(self) -> RoutingEngine:
        """The routing engine to read views from (the live one, or this node's replica in a cluster)."""
        return self.routing.engine

    def _settings(self, queue: str):
        return queue_settings(self.config, queue)

    # ---- from the IVR and the call -----------------------------------------------------------
    def enqueue(self, session: "CallSession", action: EnqueueCall) -> None:
        """The flow's queue step: the call joins the queue (or is refused back to the flow)."""
        config = self.config.config
        settings = self._settings(action.queue)
        call_id, now = session.call_id, self.reactor.seconds()
        customer = (action.context or {}).get("customer") or {}
        priority = caller_priority(action.priority, customer, config.agents.tier_priority if config.agents
                                   else TIER_PRIORITY_BONUS)
        members = {a.agent_id: a for a in config.agents.agents.values()} if config.agents else {}
        preferred = preferred_agent(customer, action.queue, {i: a.queues for i, a in members.items()}, now) \
            if customer and settings is not None else None
        requirements = queue_requirements(action.skills, customer,
                                          config.agents.language_skills if config.agents else {},
                                          self.engine.member_skills(action.queue))
        queued = QueuedCall(call_id=call_id, queue=action.queue, context=action.context or {}, queued_at=now,
                            session=session, record=self.records,
                            priority_detail=priority_detail(action.priority, priority, customer))
        self.calls[call_id] = queued
        queued.tell(now, f"queued in {action.queue}, priority {priority} ({queued.priority_detail})")
        session.join_queue(queued)
        if customer:
            log.info("call=%s customer %s tier=%s priority=%d preferred_agent=%s", call_id, customer.get("id"),
                     customer.get("tier"), priority, preferred or "-")
        self.records.call_queued(call_id, queue=action.queue, at=now)
        self.records.call_priority(call_id, priority=priority, source=priority_source(action.priority, priority))
        self.webhooks.call_event("call-queued", call_id=call_id, context=session.context, internal=session.internal,
                                 queue=action.queue)
        sticky = (settings.routing.sticky_seconds or DEFAULT_STICKY_SECONDS) if preferred and settings else None
        if not self._feed(CallArrived(call_id=call_id, queue=action.queue, priority=priority,
                                      requirements=requirements, preferred_agent=preferred, sticky_seconds=sticky)):
            self.calls.pop(call_id, None)
            self._queue_failed(session, "the ACD refused the call")
            return
        if self.calls.get(call_id) is not queued:  # refused (CallRefused): it never entered the queue, so no
            return  # ENTERQUEUE, as Asterisk writes none for a failed join and the API's `offered` skips it
        queued.entry_position = self._position(call_id)
        self.records.set_field(call_id, "entry_position", queued.entry_position)
        self.queue_log.write("ENTERQUEUE", call_id, action.queue, "", "", queued.context.get("caller_id", ""),
                             queued.entry_position or "")
        if settings is not None and settings.record:
            session.start_recording(f"queue {action.queue}")
        if self.calls.get(call_id) is queued and queued.agent_leg is None and session.active:
            queued.wait = QueueWait(session, settings, reactor=self.reactor,
                                    status=lambda: self._status(call_id),
                                    callback_possible=self._callback_trunk(session) is not None,
                                    request_callback=lambda: self.request_callback(queued),
                                    on_max_wait=lambda: self.queue_timed_out(queued))
            queued.wait.start()

    def caller_left(self, session: "CallSession") -> None:
        """The caller hung up (or the call failed): end everything the ACD holds for it."""
        queued = self.calls.get(session.call_id)
        if queued is None or queued.session is not session:
            return
        if queued.callback is not None:
            queued.session = None  # keeps its place: we call them back
            return
        if queued.wait is not None:
            queued.wait.stop()
            queued.wait = None
            self.metrics.queue_abandoned.labels(queued.queue).inc()
            self.queue_log.write("ABANDON", queued.call_id, queued.queue, "", self._position(queued.call_id) or "",
                                 queued.entry_position or "", queued.waited(self.reactor.seconds()))
        self.events.publish("wallboard", {"type": "queue-changed", "queue": queued.queue})
        agent = queued.agent_leg
        if agent is not None and queued.connected_at is not None:
            self.connections.completed("COMPLETECALLER", queued)
        # Withdraws its offers (OfferCancelled). Not `reached` without an agent leg: in a cluster the
        # engine may have connected an answered offer whose decision is still on its way (the caller
        # left first and talked to no one): the engine takes that answer back.
        self._feed(CallEnded(call_id=queued.call_id, reached=agent is not None))
        self.calls.pop(queued.call_id, None)
        if agent is not None:
            agent.hang_up("caller hung up")
        self._withdraw_offers(queued, "caller hung up")

    def leave_queue(self, queued: QueuedCall, reason: str, *, target: str) -> None:
        """A supervisor moves a call not yet connected out of its queue (to `target`): its offers are
        withdrawn, its waiting stops, and the queue log says TRANSFER (no agent, no talk time)."""
        now = self.reactor.seconds()
        if queued.wait is not None:
            queued.wait.stop()
            queued.wait = None
        self.queue_log.write("TRANSFER", queued.call_id, queued.log_queue, "", target, queued.waited(now), 0)
        self._feed(CallEnded(call_id=queued.call_id))  # withdraws its offers (OfferCancelled: CANCEL)
        self.calls.pop(queued.call_id, None)
        self._withdraw_offers(queued, reason)
        if queued.session is not None:
            queued.session.queued = None
        self.events.publish("wallboard", {"type": "queue-changed", "queue": queued.queue})
        log.info("call=%s left queue %s: %s", queued.call_id, queued.queue, reason)

    def release_all(self, reason: str) -> dict[str, str]:
        """The server is stopping: let go of every call the ACD holds, at once. Ringing offers get
        CANCEL (their agents are available again), connected agents get BYE (they wrap up); no agent
        is logged out. The callers' own legs are left to the caller of this method. The queue log
        reads as Asterisk's does when its channels are hung up: ABANDON while waiting, COMPLETECALLER
        once connected. Returns each call's situation: "waiting", "offered", "connected", "callback"."""
        self.releasing = True
        situations: dict[str, str] = {}
        queues: set[str] = set()
        now = self.reactor.seconds()
        # Waiting calls first, so that an agent freed by a withdrawn offer has no one left to be offered.
        for queued in sorted(self.calls.values(), key=lambda queued: bool(queued.offers or queued.agent_leg)):
            queues.add(queued.queue)
            if queued.callback is not None:
                situation = "callback"
            elif queued.agent_leg is not None:
                situation = "connected"
            else:
                situation = "offered" if queued.offers else "waiting"
            situations[queued.call_id] = situation
            if queued.wait is not None:
                queued.wait.stop()
                queued.wait = None
            if situation == "connected" and queued.connected_at is not None:
                self.connections.completed("COMPLETECALLER", queued)
            elif situation in ("waiting", "offered"):
                self.queue_log.write("ABANDON", queued.call_id, queued.queue, "", self._position(queued.call_id) or "",
                                     queued.entry_position or "", queued.waited(now))
            self._feed(CallEnded(call_id=queued.call_id))  # withdraws its offers (OfferCancelled: CANCEL)
            self.calls.pop(queued.call_id, None)
            if situation == "callback":
                self.connections.end_callback(queued, "shutdown", reason)
            for leg in (queued.agent_leg, queued.customer_leg):
                if leg is not None:
                    leg.cancel(reason)  # CANCEL while ringing, BYE once answered
            self._withdraw_offers(queued, reason)
            log.info("call=%s released by the ACD (%s): was %s in queue %s", queued.call_id, reason, situation,
                     queued.queue)
        for queue in sorted(queues):
            self.events.publish("wallboard", {"type": "queue-changed", "queue": queue})
        return situations

    def queue_timed_out(self, queued: QueuedCall) -> None:
        """The caller waited the queue's maximum: leave the queue, back to the flow's on_failure."""
        log.info("call=%s left queue %s after the maximum wait", queued.call_id, queued.queue)
        self.queue_log.write("EXITWITHTIMEOUT", queued.call_id, queued.queue, "", self._position(queued.call_id) or "",
                             queued.entry_position or "", queued.waited(self.reactor.seconds()))
        queued.wait = None
        self._feed(CallEnded(call_id=queued.call_id))
        self.calls.pop(queued.call_id, None)
        self._withdraw_offers(queued, "caller left the queue")
        self._queue_failed(queued.session, "maximum wait reached")

    def _callback_trunk(self, session: "CallSession"):
        trunk = next((t for t in self.config.config.trunks if t.name == session.trunk), None)
        return trunk if trunk is not None and trunk.outbound is not None else None

    def request_callback(self, queued: QueuedCall) -> bool:
        """The queued caller pressed the callback key: keep their place, call them back later."""
        session = queued.session
        trunk = self._callback_trunk(session)
        number = queued.context.get("caller_id", "")
        if trunk is None or not number:
            log.info("call=%s callback not possible (trunk %s has no outbound address, or no caller ID)",
                     queued.call_id, session.trunk)
            return False
        if not self._feed(CallbackRequested(call_id=queued.call_id)):
            return False
        negotiated, now = session.negotiated, self.reactor.seconds()
        queued.callback = Callback(number=number, destination=trunk.outbound, codec=negotiated.codec,
                                   payload_type=negotiated.payload_type,
                                   telephone_event_pt=negotiated.telephone_event_pt, trunk=session.trunk,
                                   requested_at=now)
        self.records.callback_requested(queued.call_id, at=now)
        if queued.wait is not None:
            queued.wait.stop()
            queued.wait = None
        log.info("call=%s callback requested to %s; place in queue %s kept", queued.call_id, number, queued.queue)
        self.metrics.queue_callbacks.labels(queued.queue).inc()
        self.queue_log.write("CALLBACK", queued.call_id, queued.queue, "", self._position(queued.call_id) or "",
                             queued.entry_position or "", queued.waited(self.reactor.seconds()))
        return True

    def _withdraw_offers(self, queued: QueuedCall, reason: str) -> None:
        offers, queued.offers = queued.offers, {}
        for leg in offers.values():
            leg.cancel(reason)

    def _position(self, call_id: str) -> int | None:
        status = self._status(call_id)
        return status[0] if status is not None else None

    def _status(self, call_id: str) -> tuple[int, float | None] | None:
        try:
            status = self.engine.waiting_status(call_id, self.reactor.seconds())
        except RoutingError:
            return None
        return status.position, status.estimated_wait_seconds

    def _queue_failed(self, session: "CallSession | None", reason: str) -> None:
        """Back to the flow's on_failure; a caller transferred into a queue has no flow left: hang up."""
        if session is None:
            return
        if session.ivr is not None and not session.ivr.flow_run.finished:
            session.ivr.feed(QueueFinished(outcome="failed", reason=reason))
        elif session.active:
            session.hang_up(EndReason.QUEUE_FAILED, reason)

    # ---- agents ------------------------------------------------------------------------------
    def login(self, agent_id: str) -> str:
        """Log an agent in to their queues; returns what happened, for the confirmation."""
        agents = self.config.config.agents
        agent = agents.agents.get(agent_id) if agents else None
        if agent is None or not agent.queues:
            return "no-queues"
        if agent_id in self.engine.agent_ids():
            return "already"
        ok = self._feed(AgentLoggedIn(agent_id=agent_id, queues=agent.queues, skills=agent.skills,
                                      reachable=bool(self.contacts(agent_id))))
        return "logged-in" if ok else "no-queues"

    def phone_changed(self, agent_id: str, why: str) -> None:
        """The registrar added, refreshed, removed or expired a binding of `agent_id` (`why`): a
        logged-in agent with no live binding left is unreachable (offered nothing, still logged in);
        one whose phone registers again is reachable, and available for the next call."""
        try:
            view = self.engine.agent_view(agent_id)
        except RoutingError:
            return
        reachable = bool(self.contacts(agent_id))
        if reachable != view.reachable:
            self._feed(AgentReachable(agent_id=agent_id, reason=why) if reachable
                       else AgentUnreachable(agent_id=agent_id, reason=why))

    def _logged_in(self, agent_id: str) -> bool:
        """True when the engine may take an agent command. Cluster mode answers from the local
        replica (the leader's refusal would come too late for the reply); one node: the engine's own
        answer decides, as before."""
        return self.routing.synchronous or agent_id in self.engine.agent_ids()

    def logout(self, agent_id: str) -> str:
        """Log an agent out."""
        if not self._logged_in(agent_id) or not self._feed(AgentLoggedOut(agent_id=agent_id)):
            return "not-logged-in"
        self._save_pending(agent_id, None)
        return "logged-out"

    def pause(self, agent_id: str, reason: str) -> str:
        """Pause an agent with a reason code."""
        if not self._logged_in(agent_id) or not self._feed(AgentPauseRequested(agent_id=agent_id, reason=reason)):
            return "not-logged-in"
        self._save_pending(agent_id, reason)
        return "paused"

    def unpause(self, agent_id: str) -> str:
        """Make a paused agent available again."""
        if not self._logged_in(agent_id) or not self._feed(AgentReadyRequested(agent_id=agent_id)):
            return "not-paused"
        self._save_pending(agent_id, None)
        return "available"

    def set_disposition(self, agent_id: str, code: str, notes: str | None = None) -> str | None:
        """Store a wrap-up disposition (and the agent's notes, when given) on the agent's last call;
        that call's id, or None if none."""
        call_id = self.last_call.get(agent_id)
        if call_id is not None:
            self.records.set_field(call_id, "disposition", code)
            if notes is not None:
                self.records.set_field(call_id, "notes", notes)
            log.info("call=%s agent=%s disposition=%s%s", call_id, agent_id, code, " with notes" if notes else "")
        return call_id

    def restore_agents(self, agents: Iterable["AgentPresence"], *, ending: str) -> list[RestoredAgent]:
        """At start-up, before any call: the agents logged in when the last run ended (`ending`: "a
        clean stop", "a crash") are logged back in or out by `plan_restore`, through the engine like
        any login; each is told on their event stream, and by SIP MESSAGE when the restart changed
        their state. Returns what became of each."""
        agents_config = self.config.config.agents
        configured = agents_config.agents if agents_config else {}
        now = self.reactor.seconds()
        plan = plan_restore(agents, configured, lambda agent_id: bool(self.contacts(agent_id)))
        done = []
        for restored in plan:
            if restored.agent_id in self.engine.agent_ids():
                continue  # cluster mode: logged in by the routing log already
            if restored.state != "logged_out":
                agent = configured[restored.agent_id]
                if not self._feed(AgentLoggedIn(agent_id=restored.agent_id, queues=agent.queues, skills=agent.skills,
                                                paused_reason=restored.pause_reason,
                                                reachable=bool(self.contacts(restored.agent_id)))):
                    restored = restored.logged_out(WHY_REFUSED)
            if restored.state == "logged_out":
                self._restored_logged_out(restored.agent_id, restored.why, now)
            log.info("agent=%s restored after %s: %s", restored.agent_id, ending, restored.outcome())
            tell_restored(restored, ending, now, events=self.events, signalling=self.signalling,
                          contacts=self.contacts(restored.agent_id), sip=self.config.config.sip)
            done.append(restored)
        log.info("%s", restore_summary(ending, done))
        return done

    def _restored_logged_out(self, agent_id: str, why: str, now: float) -> None:
        """The agent was logged in when the server stopped and is not any more: close their session
        in the history, the queue log and the current state (the engine never had them)."""
        self.records.agent_state(agent_id, state="logged_out", reason=why, at=now)
        self.records.agent_presence(agent_id, state="logged_out", queues={}, reason=why, at=now)
        self.queue_log.write("AGENTLOGOFF", "", "", agent_id, agent_id)

    # ---- steering a waiting call -------------------------------------------------------------
    def change_call(self, call_id: str, *, priority: int | None = None, queue: str | None = None,
                    requirements: dict[str, int] | None = None, by: str = "API") -> str:
        """A supervisor steers a call not yet connected; the line re-sorts at once. Returns "changed",
        "unknown-call", "connected" or the routing core's refusal (error id: unknown-queue, ...)."""
        queued = self.calls.get(call_id)
        if queued is None:
            return "unknown-call"
        try:
            event = CallChanged(call_id=call_id, priority=priority, queue=queue, requirements=requirements)
            view = self.engine.call_view(call_id)
            before = view.priority
            if view.state == "connected":
                return "connected"
            decisions = self.routing.decide(event, self.reactor.seconds())
        except CallNotWaiting:
            return "connected"
        except RoutingError as error:
            return error.error_id
        what = ", ".join(part for part in (
            f"priority {before} -> {priority}" if priority is not None else "",
            f"queue {queued.queue} -> {queue}" if queue is not None else "",
            f"skills {dict(requirements)}" if requirements is not None else "") if part) or "nothing"
        log.info("call=%s steered by %s: %s", call_id, by, what)
        if priority is not None:
            queued.priority_detail = f"set to {priority} by {by}"
            self.records.call_priority(call_id, priority=priority, source=by.lower())
        queued.tell(self.reactor.seconds(), f"steered by {by}: {what}")
        self._apply(decisions)
        return "changed"

    # ---- memberships at runtime ----------------------------------------------------------------
    def set_membership(self, agent_id: str, queue: str, penalty: int | None, *, by: str = "API") -> str:
        """Add `agent_id` to `queue` with `penalty`, or remove it (None), until the server restarts;
        in force at once, as a reload would put it. Returns "added", "changed", "removed",
        "not-a-member", "unknown-agent" or "unknown-queue"."""
        agents = self.config.config.agents
        agent = agents.agents.get(agent_id) if agents else None
        if agent is None:
            return "unknown-agent"
        if queue not in agents.queues:
            return "unknown-queue"
        before = agent.queues.get(queue)
        if penalty is None and before is None:
            return "not-a-member"
        self.config.set_membership(agent_id, queue, penalty)
        self.reconfigure(routing_config_from(self.config.config))
        result = "removed" if penalty is None else ("added" if before is None else "changed")
        log.info("agent=%s %s queue %s%s by %s (until restart)", agent_id, result, queue,
                 f" penalty {penalty}" if penalty is not None else "", by)
        self.events.publish("wallboard", {"type": "queue-changed", "queue": queue})
        return result

    # ---- reconfiguration ---------------------------------------------------------------------
    def reconfigure(self, routing: RoutingConfig) -> None:
        """Put a new routing config in force now (the config it came from is already live)."""
        self.routing.reconfigure(routing, self.reactor.seconds())

    # ---- the engine --------------------------------------------------------------------------
    def _feed(self, event) -> bool:
        return self.routing.feed(event, self.reactor.seconds())

    def _on_timer(self) -> None:
        self._timer = None
        self.routing.timers(self.reactor.seconds())

    def _rearm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.routing.next_deadline()
        if deadline is not None:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_timer)

    def _apply(self, decisions: list, scope: Scope = LOCAL) -> None:
        if scope.error_id is not None:
            self._refused_later(scope)
        elif scope.hosted_only:
            decisions = [d for d in decisions if getattr(d, "call_id", None) is None or d.call_id in self.calls]
        for decision in decisions:
            if isinstance(decision, Offer):
                if self.releasing:
                    log.info("call=%s offer to agent=%s not placed: the server is stopping", decision.call_id,
                             decision.agent_id)
                else:
                    self.connections.offer(decision)
            elif isinstance(decision, OfferCancelled):
                self.connections.offer_cancelled(decision)
            elif isinstance(decision, CallConnected):
                self.connections.connect(decision)
            elif isinstance(decision, CallWaiting):
                queued = self.calls.get(decision.call_id)
                if queued is not None:
                    if queued.queue != decision.queue:
                        log.info("call=%s moved from queue %s to %s", decision.call_id, queued.queue, decision.queue)
                        queued.queue = decision.queue
                    queued.explanation = decision.explanation
                    if queued.entry_position is None and not self.routing.synchronous:  # cluster: known now
                        queued.entry_position = decision.position
                        self.records.set_field(queued.call_id, "entry_position", decision.position)
                    queued.tell(self.reactor.seconds(), f"waiting at position {decision.position}: "
                                                        f"{decision.explanation}")
                    if queued.wait is not None:
                        queued.wait.update(decision.position, decision.estimated_wait_seconds)
                log.info("call=%s waiting queue=%s position=%d estimated_wait=%s", decision.call_id, decision.queue,
                         decision.position, "unknown" if decision.estimated_wait_seconds is None
                         else f"{decision.estimated_wait_seconds:.0f}s")
                self.events.publish("wallboard", {"type": "queue-changed", "queue": decision.queue})
            elif isinstance(decision, CallRefused):
                log.info("call=%s refused by queue %s: %s (%s)", decision.call_id, decision.queue, decision.reason,
                         decision.error_id)
                queued = self.calls.pop(decision.call_id, None)
                if queued is not None:
                    if queued.wait is not None:
                        queued.wait.stop()
                        queued.wait = None
                    self.reactor.callLater(0, self._queue_failed, queued.session, decision.reason)
            elif isinstance(decision, AgentStateChanged):
                self._agent_state_changed(decision, writes=scope.agent_writes)
            elif isinstance(decision, AgentReachabilityChanged):
                self._reachability_changed(decision, writes=scope.agent_writes)
            elif isinstance(decision, CallOverflowed):
                log.info("call=%s overflow step %d: %s", decision.call_id, decision.step, decision.explanation)
                queued = self.calls.get(decision.call_id)
                if queued is not None:
                    queued.tell(self.reactor.seconds(), f"overflow step {decision.step}: {decision.explanation}")
            elif isinstance(decision, QueueRemoved):
                log.warning("reload: %s", decision.explanation)
                self.events.publish("wallboard", {"type": "queue-changed", "queue": decision.queue})
        self._rearm()

    def _refused_later(self, scope: Scope) -> None:
        """Cluster mode: the leader's engine refused an event this node submitted (the synchronous
        answer was "accepted"): undo what was done on the strength of it."""
        event = scope.event
        log.warning("routing refused %s: %s (%s)", type(event).__name__, scope.error, scope.error_id)
        queued = self.calls.get(getattr(event, "call_id", None) or "")
        if queued is None:
            return
        if isinstance(event, CallArrived):
            self.calls.pop(queued.call_id, None)
            if queued.wait is not None:
                queued.wait.stop()
                queued.wait = None
            self._queue_failed(queued.session, "the ACD refused the call")
        elif isinstance(event, OfferAnswered):
            leg = queued.offers.pop(event.agent_id, None)
            if leg is not None:
                leg.hang_up("offer no longer valid")

    def _agent_state_changed(self, decision: AgentStateChanged, *, writes: bool = True) -> None:
        now = self.reactor.seconds()
        pause_reason = self._pause_reason(decision)
        ended = self.pauses.follow(decision, pause_reason, now)
        reason = ended.explain(decision.reason) if ended else decision.reason
        log.info("agent=%s state %s -> %s (%s)", decision.agent_id, decision.previous.value, decision.state.value,
                 reason)
        if decision.previous.value == "wrap_up" and decision.agent_id in self.last_call:
            self.records.set_field(self.last_call[decision.agent_id], "wrap_up_seconds",
                                   round(now - self.state_since.get(decision.agent_id, now), 1))
        self.state_since[decision.agent_id] = now
        if writes:  # once in the shared store (cluster mode: by one node)
            self.records.agent_state(decision.agent_id, state=decision.state.value, reason=reason, at=now)
            self._save_presence(decision.agent_id, decision.state, reason, now)
            self.queue_log.agent_state_changed(decision, pause_reason=pause_reason, ended=ended)
        event = {"type": "agent-state", "agent": decision.agent_id, "state": decision.state.value,
                 "previous": decision.previous.value, "reason": reason, "at": now}
        if ended is not None:
            event.update(ended_pause=ended.reason, paused_seconds=round(ended.seconds, 1))
        self.events.publish(f"agent-{decision.agent_id}", event)
        self.events.publish("wallboard", event)

    def _reachability_changed(self, decision: AgentReachabilityChanged, *, writes: bool = True) -> None:
        """A row in the agent's state history (same state, the reason says "phone unreachable: ..."
        or "phone reachable: ..."; Asterisk's queue_log has no line for a member's device state, so
        none is written there) and an "agent-reachability" event for the desk and the wallboard."""
        now = self.reactor.seconds()
        log.info("agent=%s %s (state %s)", decision.agent_id, decision.reason, decision.state.value)
        if writes:
            self.records.agent_state(decision.agent_id, state=decision.state.value, reason=decision.reason, at=now)
        event = {"type": "agent-reachability", "agent": decision.agent_id, "state": decision.state.value,
                 "reachable": decision.reachable, "reason": decision.reason, "at": now}
        self.events.publish(f"agent-{decision.agent_id}", event)
        self.events.publish("wallboard", event)

    def _pause_reason(self, decision: AgentStateChanged) -> str:
        """The reason code of the pause `decision` begins ("lunch", not "paused: lunch"); "" otherwise."""
        if decision.state is not AgentState.PAUSED:
            return ""
        try:
            return self.engine.agent_view(decision.agent_id).pause_reason or decision.reason
        except RoutingError:  # logged out later in the same batch of decisions
            return decision.reason

    def _save_presence(self, agent_id: str, state: AgentState, reason: str, now: float) -> None:
        """The agent's current state, as a restart will restore it (`records.agent_presence`), with a
        pause or log-out asked for during a call (the engine's `pending`)."""
        if state is AgentState.LOGGED_OUT:
            self._pending_reasons.pop(agent_id, None)
            self.records.agent_presence(agent_id, state=state.value, queues={}, reason=reason, at=now)
            return
        try:
            view = self.engine.agent_view(agent_id)
        except RoutingError:  # logged out later in the same batch of decisions: that change is saved
            return
        pending = view.pending if state in (AgentState.ON_CALL, AgentState.WRAP_UP) else None
        self.records.agent_presence(agent_id, state=state.value, queues=dict(view.queues), reason=reason, at=now,
                                    pause_reason=view.pause_reason if state is AgentState.PAUSED else None,
                                    pending=pending,
                                    pending_reason=self._pending_reasons.get(agent_id) if pending == "pause" else None)

    def _save_pending(self, agent_id: str, reason: str | None) -> None:
        """After a pause, log-out or ready command: a change asked for during a call waits for its end
        in the engine (`pending`); save it so that a restart does not lose it."""
        try:
            view = self.engine.agent_view(agent_id)
        except RoutingError:
            return
        if view.state is not AgentState.ON_CALL:
            return
        if reason is not None:
            self._pending_reasons[agent_id] = reason
        why = f"{view.pending} after the call" if view.pending else "nothing to do after the call"
        self._save_presence(agent_id, view.state, why, self.reactor.seconds())
