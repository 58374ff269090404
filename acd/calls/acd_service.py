"""AcdService: the shell around the pure RoutingEngine. Queued callers, offers to agents, bridges.

It feeds the engine (CallArrived from the IVR's queue step, OfferAnswered/Declined from agent
legs, CallEnded when either side hangs up, agent log-in/out/pause from feature codes) and carries
out its decisions: INVITE an agent, CANCEL an offer, bridge the media, announce position and
wait, hand a refused call back to the IVR. One IDelayedCall follows `engine.next_deadline()`.
`reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from twisted.internet import threads

from ..context.routing_hints import language_requirement
from typing import TYPE_CHECKING, Callable

from ..ivr.events import EnqueueCall, QueueFinished
from ..routing import (AgentLoggedIn, AgentLoggedOut, AgentPauseRequested, AgentReadyRequested, AgentStateChanged,
                       CallArrived, CallbackRequested, CallConnected, CallEnded, CallOverflowed, CallRefused, CallWaiting, Offer,
                       OfferAnswered, OfferCancelled, OfferDeclined, QueueConfig, RoutingConfig, RoutingEngine,
                       RoutingError)
from .agent_leg import AgentLeg, AgentLegState
from .queue_wait import QueueWait

if TYPE_CHECKING:
    from ..config.model import Config
    from .session import CallSession
    from .sip_server import SipServer

__all__ = ["AcdService", "Callback", "routing_config_from"]

log = logging.getLogger("acd.acd")


# Customer tier → priority added to the queue step's (0-9, capped): VIPs jump ahead of standard
# callers, aging still lets a long-waiting caller through (RoutingConfig.priority_aging_seconds).
TIER_PRIORITY_BONUS = {"vip": 5, "gold": 3, "silver": 1}
MAX_PRIORITY = 9
# A returning customer's last agent is preferred for 30 days; the queue's sticky_seconds (or 20 s)
# is how long the call waits for that agent before anyone qualified may take it.
LAST_AGENT_MEMORY_SECONDS = 30 * 86400
DEFAULT_STICKY_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Callback:
    """A caller who asked to be called back: where to reach them, and what they told the IVR."""

    call_id: str
    number: str
    destination: tuple[str, int]
    codec: str
    payload_type: int
    telephone_event_pt: int | None
    context: dict = field(default_factory=dict)
    queue: str = ""


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
    return RoutingConfig(queues=queues or (QueueConfig(name="default"),), skills=frozenset(skills))


class AcdService:
    """Queues, offers and bridges for every call of one SipServer."""

    def __init__(self, *, server: "SipServer", reactor, config: "Config",
                 contacts: Callable[[str], list[tuple[str, tuple[str, int], str]]]) -> None:
        self.server = server
        self.reactor = reactor
        self.config = config
        self.engine = RoutingEngine(routing_config_from(config))
        self.contacts = contacts
        self.metrics = server.metrics
        self.records = server.records
        self.last_call: dict[str, str] = {}
        self.waiting: dict[str, QueueWait] = {}
        self.sessions: dict[str, "CallSession"] = {}
        self.offers: dict[tuple[str, str], AgentLeg] = {}
        self.bridged: dict[str, AgentLeg] = {}
        self.callbacks: dict[str, Callback] = {}
        self.customer_legs: dict[str, AgentLeg] = {}
        self.state_since: dict[str, float] = {}
        self.explanations: dict[str, str] = {}
        self._timer = None

    # ---- from the IVR and the call -----------------------------------------------------------
    def enqueue(self, session: "CallSession", action: EnqueueCall) -> None:
        """The flow's queue step: the call joins the queue (or is refused back to the flow)."""
        settings = self.config.agents.queues.get(action.queue) if self.config.agents else None
        call_id = session.call_id
        self.sessions[call_id] = session
        session.queue_name = action.queue
        session.queue_context = action.context
        customer = (action.context or {}).get("customer") or {}
        priority = min(MAX_PRIORITY, action.priority + TIER_PRIORITY_BONUS.get(customer.get("tier", ""), 0))
        preferred = self._preferred_agent(customer, settings)
        requirements = dict(action.skills)
        if customer and self.config.agents is not None:
            members = [a.skills for a in self.config.agents.agents.values() if action.queue in a.queues]
            for skill, level in language_requirement(customer, self.config.agents.language_skills, members).items():
                requirements.setdefault(skill, level)
        event = CallArrived(call_id=call_id, queue=action.queue, priority=priority, requirements=requirements,
                            preferred_agent=preferred,
                            sticky_seconds=(settings.routing.sticky_seconds or DEFAULT_STICKY_SECONDS) if preferred
                            and settings is not None else None)
        if customer:
            log.info("call=%s customer %s tier=%s priority=%d preferred_agent=%s", call_id, customer.get("id"),
                     customer.get("tier"), priority, preferred or "-")
        session.queued_at = self.reactor.seconds()
        self.records.call_queued(call_id, queue=action.queue, at=session.queued_at)
        self.server.webhook("call-queued", session, queue=action.queue)
        if not self._feed(event):
            self.sessions.pop(call_id, None)
            self._queue_failed(session, "the ACD refused the call")
            return
        position = self._position(call_id)
        session.entry_position = position
        self._log("ENTERQUEUE", call_id, action.queue, "", "", action.context.get("caller_id", ""), position or "")
        if settings is not None and settings.record:
            session.start_recording(f"queue {action.queue}")
        if call_id in self.sessions and call_id not in self.bridged and session.active:
            wait = QueueWait(session, self, settings, reactor=self.reactor)
            self.waiting[call_id] = wait
            wait.start()

    def caller_left(self, session: "CallSession") -> None:
        """The caller hung up (or the call failed): end everything the ACD holds for it."""
        call_id = session.call_id
        self.explanations.pop(call_id, None)
        if call_id in self.callbacks:
            self.sessions.pop(call_id, None)  # keeps its place: we call them back
            return
        if call_id not in self.sessions:
            return
        wait = self.waiting.pop(call_id, None)
        if wait is not None:
            wait.stop()
            self.metrics.queue_abandoned.labels(session.queue_name or "-").inc()
            self._log("ABANDON", call_id, session.queue_name, "", self._position(call_id) or "",
                      getattr(session, "entry_position", "") or "", self._waited(session))
        self.server.events.publish("wallboard", {"type": "queue-changed", "queue": session.queue_name})
        agent = self.bridged.pop(call_id, None)
        if agent is not None and session.connected_at is not None:
            self._log("COMPLETECALLER", call_id, session.queue_name, agent.agent_id,
                      session.connected_at - (session.queued_at or session.connected_at),
                      self.reactor.seconds() - session.connected_at, getattr(session, "entry_position", "") or "")
            self.metrics.handle_time.labels(session.queue_name or "-").observe(self.reactor.seconds() - session.connected_at)
        self._feed(CallEnded(call_id=call_id))
        self.sessions.pop(call_id, None)
        if agent is not None:
            agent.hang_up("caller hung up")
        for (offer_call, agent_id), leg in list(self.offers.items()):
            if offer_call == call_id:
                del self.offers[(offer_call, agent_id)]
                leg.cancel("caller hung up")

    def queue_timed_out(self, session: "CallSession") -> None:
        """The caller waited the queue's maximum: leave the queue, back to the flow's on_failure."""
        call_id = session.call_id
        log.info("call=%s left queue %s after the maximum wait", call_id, session.queue_name)
        self._log("EXITWITHTIMEOUT", call_id, session.queue_name, "", self._position(call_id) or "",
                  getattr(session, "entry_position", "") or "", self._waited(session))
        self.waiting.pop(call_id, None)
        self._feed(CallEnded(call_id=call_id))
        self.sessions.pop(call_id, None)
        for key in [k for k in self.offers if k[0] == call_id]:
            self.offers.pop(key).cancel("caller left the queue")
        self._queue_failed(session, "maximum wait reached")

    def request_callback(self, session: "CallSession") -> bool:
        """The queued caller pressed the callback key: keep their place, call them back later."""
        call_id = session.call_id
        trunk = next((t for t in self.server.config.trunks if t.name == session.trunk), None)
        number = (session.queue_context or {}).get("caller_id", "")
        if trunk is None or trunk.outbound is None or not number:
            log.info("call=%s callback not possible (trunk %s has no outbound address, or no caller ID)", call_id,
                     session.trunk)
            return False
        if not self._feed(CallbackRequested(call_id=call_id)):
            return False
        self.callbacks[call_id] = Callback(call_id=call_id, number=number, destination=trunk.outbound,
                                           codec=session.negotiated.codec, payload_type=session.negotiated.payload_type,
                                           telephone_event_pt=session.negotiated.telephone_event_pt,
                                           context=dict(session.queue_context or {}), queue=session.queue_name or "")
        wait = self.waiting.pop(call_id, None)
        if wait is not None:
            wait.stop()
        log.info("call=%s callback requested to %s; place in queue %s kept", call_id, number, session.queue_name)
        self.metrics.queue_callbacks.labels(session.queue_name or "-").inc()
        self._log("CALLBACK", call_id, session.queue_name, "", self._position(call_id) or "",
                  getattr(session, "entry_position", "") or "", self._waited(session))
        return True

    def _log(self, event: str, call_id: str = "", queue: str = "", agent: str = "", *data: object) -> None:
        """One queue_log line (Asterisk-like); durations in whole seconds."""
        fields = [f"{d:.0f}" if isinstance(d, float) else str(d) for d in data] + ["", "", ""]
        self.records.queue_log(at=self.reactor.seconds(), call_id=call_id, queue=queue or "", agent=agent or "",
                               event=event, data1=fields[0], data2=fields[1], data3=fields[2])

    def _preferred_agent(self, customer: dict, settings) -> str | None:
        """The customer's last agent (if recent) or account owner, when that agent works this queue."""
        if not customer or settings is None or self.config.agents is None:
            return None
        now = self.reactor.seconds()
        candidates = []
        last_at = customer.get("last_agent_at")
        if customer.get("last_agent") and (last_at is None or now - float(last_at) < LAST_AGENT_MEMORY_SECONDS):
            candidates.append(customer["last_agent"])
        if customer.get("account_owner"):
            candidates.append(customer["account_owner"])
        for agent_id in candidates:
            agent = self.config.agents.agents.get(agent_id)
            if agent is not None and settings.routing.name in agent.queues:
                return agent_id
        return None

    def _position(self, call_id: str) -> int | None:
        try:
            return self.engine.waiting_status(call_id, self.reactor.seconds()).position
        except RoutingError:
            return None

    def _waited(self, session: "CallSession") -> float:
        return self.reactor.seconds() - (session.queued_at or self.reactor.seconds())

    def _queue_of(self, call_id: str) -> str:
        session = self.sessions.get(call_id)
        if session is not None and session.queue_name:
            return session.queue_name
        callback = self.callbacks.get(call_id)
        return callback.queue if callback is not None else "-"

    def _queue_failed(self, session: "CallSession", reason: str) -> None:
        """Back to the flow's on_failure; a caller transferred into a queue has no flow left: hang up."""
        if session.ivr is not None and not session.ivr.flow_run.finished:
            session.ivr.feed(QueueFinished(outcome="failed", reason=reason))
        elif session.active:
            session.hang_up(f"queue failed after transfer: {reason}")

    # ---- agents ------------------------------------------------------------------------------
    def login(self, agent_id: str) -> str:
        """Log an agent in to their queues; returns what happened, for the confirmation."""
        agent = self.config.agents.agents.get(agent_id) if self.config.agents else None
        if agent is None or not agent.queues:
            return "no-queues"
        ok = self._feed(AgentLoggedIn(agent_id=agent_id, queues=agent.queues, skills=agent.skills))
        return "logged-in" if ok else "already"

    def logout(self, agent_id: str) -> str:
        """Log an agent out."""
        return "logged-out" if self._feed(AgentLoggedOut(agent_id=agent_id)) else "not-logged-in"

    def pause(self, agent_id: str, reason: str) -> str:
        """Pause an agent with a reason code."""
        return "paused" if self._feed(AgentPauseRequested(agent_id=agent_id, reason=reason)) else "not-logged-in"

    def unpause(self, agent_id: str) -> str:
        """Make a paused agent available again."""
        return "available" if self._feed(AgentReadyRequested(agent_id=agent_id)) else "not-paused"

    # ---- from agent legs ---------------------------------------------------------------------
    def _agent_answered(self, leg: AgentLeg) -> None:
        key = (leg.customer_call_id, leg.agent_id)
        if self.offers.get(key) is not leg:
            leg.hang_up("offer no longer valid")
            return
        self.metrics.offers.labels(self._queue_of(leg.customer_call_id), "answered").inc()
        if not self._feed(OfferAnswered(call_id=leg.customer_call_id, agent_id=leg.agent_id)):
            self.offers.pop(key, None)
            leg.hang_up("offer no longer valid")

    def _agent_failed(self, leg: AgentLeg, status: int | None) -> None:
        if self.offers.pop((leg.customer_call_id, leg.agent_id), None) is None:
            return
        reason = {486: "busy", 603: "declined", 480: "unavailable", None: "no response"}.get(status, f"status {status}")
        self.metrics.offers.labels(self._queue_of(leg.customer_call_id), "declined").inc()
        self._feed(OfferDeclined(call_id=leg.customer_call_id, agent_id=leg.agent_id, reason=reason))

    def _agent_hung_up(self, leg: AgentLeg) -> None:
        call_id = leg.customer_call_id
        if self.bridged.get(call_id) is not leg:
            return
        del self.bridged[call_id]
        customer = self.customer_legs.pop(call_id, None)
        if customer is not None:
            self.callbacks.pop(call_id, None)
            self._feed(CallEnded(call_id=call_id))
            customer.cancel("agent hung up")
            return
        session = self.sessions.pop(call_id, None)
        self._feed(CallEnded(call_id=call_id))
        if session is None:
            return
        if session.connected_at is not None:
            self.metrics.handle_time.labels(session.queue_name or "-").observe(
                self.reactor.seconds() - session.connected_at)
            self._log("COMPLETEAGENT", call_id, session.queue_name, leg.agent_id,
                      session.connected_at - (session.queued_at or session.connected_at),
                      self.reactor.seconds() - session.connected_at, getattr(session, "entry_position", "") or "")
        settings = self.config.agents.queues.get(session.queue_name or "") if self.config.agents else None
        survey = self.server.config.flows.get(settings.survey_flow) if settings and settings.survey_flow else None
        if survey is not None and session.active:
            log.info("call=%s agent=%s hung up first: survey %s", call_id, leg.agent_id, survey.name)
            session.unbridge()
            session.run_flow(survey)
        else:
            session.hang_up("agent hung up")

    def _agent_hold(self, leg: AgentLeg, held: bool) -> None:
        session = self.sessions.get(leg.customer_call_id)
        if session is not None and self.bridged.get(leg.customer_call_id) is leg:
            session.set_hold(held)

    def _agent_transfer(self, leg: AgentLeg, target: str) -> int:
        """Blind transfer of the caller by the agent: to a queue by name, or to a dialplan number.
        Returns the SIP status for the NOTIFY (200 done, 404 no such target, 481 call gone)."""
        call_id = leg.customer_call_id
        session = self.sessions.get(call_id)
        if session is None or self.bridged.get(call_id) is not leg or not session.active:
            return 481
        queue = target if target in (self.config.agents.queues if self.config.agents else {}) else None
        route = None if queue else self.server.config.route_for(target)
        if queue is None and route is None:
            log.info("call=%s transfer by agent=%s to %r: no such queue or number", call_id, leg.agent_id, target)
            return 404
        del self.bridged[call_id]
        self._log("TRANSFER", call_id, session.queue_name, leg.agent_id, target,
                  (session.connected_at or 0) - (session.queued_at or session.connected_at or 0),
                  self.reactor.seconds() - (session.connected_at or self.reactor.seconds()))
        session.unbridge()
        self._feed(CallEnded(call_id=call_id))
        self.sessions.pop(call_id, None)
        if queue is not None:
            log.info("call=%s transferred by agent=%s to queue %s", call_id, leg.agent_id, queue)
            self.enqueue(session, EnqueueCall(queue=queue, priority=0, context=session.queue_context))
        else:
            log.info("call=%s transferred by agent=%s to %s (flow %s)", call_id, leg.agent_id, target, route.flow)
            session.run_flow(self.server.config.flows[route.flow])
        return 200

    # ---- the engine --------------------------------------------------------------------------
    def _feed(self, event) -> bool:
        try:
            decisions = self.engine.handle(event, self.reactor.seconds())
        except RoutingError as error:
            log.warning("routing refused %s: %s (%s)", type(event).__name__, error, getattr(error, "error_id", ""))
            return False
        self._apply(decisions)
        return True

    def _on_timer(self) -> None:
        self._timer = None
        self._apply(self.engine.handle_timers(self.reactor.seconds()))

    def _apply(self, decisions: list) -> None:
        for decision in decisions:
            if isinstance(decision, Offer):
                self._offer(decision)
            elif isinstance(decision, OfferCancelled):
                self.metrics.offers.labels(self._queue_of(decision.call_id),
                                           "no_answer" if "no-answer" in decision.reason else "withdrawn").inc()
                if "no-answer" in decision.reason:
                    self._log("RINGNOANSWER", decision.call_id, self._queue_of(decision.call_id), decision.agent_id,
                              self.config.agents.queues[self._queue_of(decision.call_id)].routing.ring_timeout_seconds
                              if self.config.agents and self._queue_of(decision.call_id) in self.config.agents.queues
                              else "")
                leg = self.offers.pop((decision.call_id, decision.agent_id), None)
                log.info("call=%s offer to agent=%s withdrawn: %s", decision.call_id, decision.agent_id, decision.reason)
                if leg is not None:
                    leg.cancel(decision.reason)
            elif isinstance(decision, CallConnected):
                self._connect(decision)
            elif isinstance(decision, CallWaiting):
                wait = self.waiting.get(decision.call_id)
                if wait is not None:
                    wait.update(decision.position, decision.estimated_wait_seconds)
                self.explanations[decision.call_id] = decision.explanation
                log.info("call=%s waiting queue=%s position=%d estimated_wait=%s", decision.call_id, decision.queue,
                         decision.position, "unknown" if decision.estimated_wait_seconds is None
                         else f"{decision.estimated_wait_seconds:.0f}s")
                self.server.events.publish("wallboard", {"type": "queue-changed", "queue": decision.queue})
            elif isinstance(decision, CallRefused):
                log.info("call=%s refused by queue %s: %s (%s)", decision.call_id, decision.queue, decision.reason,
                         decision.error_id)
                session = self.sessions.pop(decision.call_id, None)
                wait = self.waiting.pop(decision.call_id, None)
                if wait is not None:
                    wait.stop()
                if session is not None:
                    self.reactor.callLater(0, self._queue_failed, session, decision.reason)
            elif isinstance(decision, AgentStateChanged):
                log.info("agent=%s state %s -> %s (%s)", decision.agent_id, decision.previous.value,
                         decision.state.value, decision.reason)
                now = self.reactor.seconds()
                if decision.previous.value == "wrap_up" and decision.agent_id in self.last_call:
                    self.records.set_field(self.last_call[decision.agent_id], "wrap_up_seconds",
                                           round(now - self.state_since.get(decision.agent_id, now), 1))
                self.state_since[decision.agent_id] = now
                self.records.agent_state(decision.agent_id, state=decision.state.value, reason=decision.reason, at=now)
                if decision.previous.value == "logged_out":
                    self._log("AGENTLOGIN", "", "", decision.agent_id, decision.agent_id)
                elif decision.state.value == "logged_out":
                    self._log("AGENTLOGOFF", "", "", decision.agent_id, decision.agent_id)
                elif decision.state.value == "paused":
                    self._log("PAUSE", "", "", decision.agent_id, decision.reason)
                elif decision.previous.value == "paused":
                    self._log("UNPAUSE", "", "", decision.agent_id, decision.reason)
                event = {"type": "agent-state", "agent": decision.agent_id, "state": decision.state.value,
                         "previous": decision.previous.value, "reason": decision.reason,
                         "at": self.reactor.seconds()}
                self.server.events.publish(f"agent-{decision.agent_id}", event)
                self.server.events.publish("wallboard", event)
            elif isinstance(decision, CallOverflowed):
                log.info("call=%s overflow step %d: %s", decision.call_id, decision.step, decision.explanation)
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.engine.next_deadline()
        if deadline is not None:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_timer)

    def _offer(self, offer: Offer) -> None:
        self.explanations[offer.call_id] = offer.explanation
        session = self.sessions.get(offer.call_id)
        contacts = self.contacts(offer.agent_id)
        log.info("call=%s offer agent=%s queue=%s: %s", offer.call_id, offer.agent_id, offer.queue, offer.explanation)
        callback = self.callbacks.get(offer.call_id)
        if callback is not None and contacts:
            self._offer_callback(offer, callback, contacts[0])
            return
        if session is None or not contacts:
            reason = "agent not registered" if session is not None else "call gone"
            self.reactor.callLater(0, self._feed, OfferDeclined(call_id=offer.call_id, agent_id=offer.agent_id,
                                                                reason=reason))
            return
        contact, destination, transport = contacts[0]
        leg = AgentLeg(server=self.server, customer_call_id=offer.call_id, agent_id=offer.agent_id, contact=contact,
                       destination=destination, transport=transport, codec=session.negotiated.codec,
                       payload_type=session.negotiated.payload_type,
                       telephone_event_pt=session.negotiated.telephone_event_pt,
                       context_headers=self._context_headers(session, offer),
                       on_answer=self._agent_answered, on_failure=self._agent_failed, on_hangup=self._agent_hung_up,
                       on_hold=self._agent_hold, on_transfer=self._agent_transfer)
        self.offers[(offer.call_id, offer.agent_id)] = leg
        if not leg.start():
            del self.offers[(offer.call_id, offer.agent_id)]
            self.reactor.callLater(0, self._feed, OfferDeclined(call_id=offer.call_id, agent_id=offer.agent_id,
                                                                reason="no RTP port"))
            return
        waited = self.reactor.seconds() - (session.queued_at or self.reactor.seconds())
        self.server.events.publish(f"agent-{offer.agent_id}", {
            "type": "offer", "call_id": offer.call_id, "queue": offer.queue, "wait_seconds": round(waited, 1),
            "context": session.queue_context, "explanation": offer.explanation})

    def _offer_callback(self, offer: Offer, callback: "Callback", contact) -> None:
        uri, destination, transport = contact
        headers = (("X-ACD-Queue", offer.queue), ("X-ACD-Caller", callback.number), ("X-ACD-Callback", "yes"),
                   ("X-ACD-Caller-Call-ID", offer.call_id))
        leg = AgentLeg(server=self.server, customer_call_id=offer.call_id, agent_id=offer.agent_id, contact=uri,
                       destination=destination, transport=transport, codec=callback.codec,
                       payload_type=callback.payload_type, telephone_event_pt=callback.telephone_event_pt,
                       context_headers=headers, on_answer=self._agent_answered, on_failure=self._agent_failed,
                       on_hangup=self._agent_hung_up, on_hold=lambda leg, held: None,
                       on_transfer=lambda leg, target: 501)
        self.offers[(offer.call_id, offer.agent_id)] = leg
        if not leg.start():
            del self.offers[(offer.call_id, offer.agent_id)]
            self.reactor.callLater(0, self._feed, OfferDeclined(call_id=offer.call_id, agent_id=offer.agent_id,
                                                                reason="no RTP port"))

    def _connect_callback(self, connected: CallConnected, agent: AgentLeg) -> None:
        """The agent took a callback: now dial the customer through the trunk, greet them, bridge."""
        callback = self.callbacks[connected.call_id]
        call_id = connected.call_id
        self.bridged[call_id] = agent
        host, port = callback.destination
        log.info("call=%s agent=%s ready; calling back %s via %s:%s", call_id, agent.agent_id, callback.number,
                 host, port)
        holder: list[AgentLeg] = []

        def answered(customer: AgentLeg) -> None:
            log.info("call=%s callback answered by %s; greeting, then bridging", call_id, callback.number)
            self.server.media_clock.add(customer.rtp)
            audio = self.server.prompts.encoded("callback_intro", customer.codec)
            customer.rtp.play(audio, 1)

        def greeted(playback_id: int) -> None:
            customer = holder[0]
            if customer.state is not AgentLegState.ANSWERED or agent.state is not AgentLegState.ANSWERED:
                return
            self.server.media_clock.remove(customer.rtp)
            customer.rtp.stop()
            customer.rtp.relay_to = agent.rtp
            agent.rtp.relay_to = customer.rtp
            log.info("call=%s connected to agent=%s (callback to %s)", call_id, agent.agent_id, callback.number)

        def failed(customer: AgentLeg, status: int | None) -> None:
            log.info("call=%s callback to %s failed (%s)", call_id, callback.number, status or "no answer")
            self._end_callback(call_id, agent, f"customer did not answer the callback ({status or 'timeout'})")

        def hung_up(customer: AgentLeg) -> None:
            self._end_callback(call_id, agent, "customer hung up")

        customer = AgentLeg(server=self.server, customer_call_id=call_id, agent_id=f"customer-{callback.number}",
                            contact=f"sip:{callback.number}@{host}:{port}", destination=(host, port), transport="UDP",
                            codec=callback.codec, payload_type=callback.payload_type,
                            telephone_event_pt=callback.telephone_event_pt, context_headers=(),
                            on_answer=answered, on_failure=failed, on_hangup=hung_up,
                            on_hold=lambda leg, held: None, on_transfer=lambda leg, target: 501,
                            on_playback_finished=greeted, from_user=callback.queue or "acd")
        holder.append(customer)
        self.customer_legs[call_id] = customer
        if not customer.start():
            self._end_callback(call_id, agent, "no RTP port for the callback")

    def _end_callback(self, call_id: str, agent: AgentLeg, reason: str) -> None:
        self.customer_legs.pop(call_id, None)
        self.callbacks.pop(call_id, None)
        if self.bridged.get(call_id) is agent:
            del self.bridged[call_id]
        self._feed(CallEnded(call_id=call_id))
        agent.hang_up(reason)

    def _connect(self, connected: CallConnected) -> None:
        session = self.sessions.get(connected.call_id)
        leg = self.offers.pop((connected.call_id, connected.agent_id), None)
        if connected.callback and connected.call_id in self.callbacks and leg is not None:
            self._connect_callback(connected, leg)
            return
        if session is None or leg is None or leg.state is not AgentLegState.ANSWERED:
            log.warning("call=%s connect to agent=%s impossible (caller or agent gone)", connected.call_id,
                        connected.agent_id)
            return
        self.bridged[connected.call_id] = leg
        settings = self.config.agents.queues.get(connected.queue) if self.config.agents else None
        whisper = self._whisper_prompts(session, connected.queue) if settings is not None and settings.whisper else []
        if not whisper:
            self._bridge(connected, session, leg)
            return
        # The caller keeps hearing the queue's music; the agent hears who is coming, then the caller.
        log.info("call=%s whisper to agent=%s: %s", connected.call_id, leg.agent_id, " ".join(whisper))
        audio = b"".join(self.server.prompts.encoded(name, leg.codec) for name in whisper)

        def whispered(playback_id: int) -> None:
            self.server.media_clock.remove(leg.rtp)
            leg.rtp.stop()
            if self.bridged.get(connected.call_id) is leg and session.active:
                self._bridge(connected, session, leg)

        leg.rtp.on_playback_finished = whispered
        self.server.media_clock.add(leg.rtp)
        leg.rtp.play(audio, 1)

    def _whisper_prompts(self, session: "CallSession", queue: str) -> list[str]:
        context = session.queue_context or {}
        customer = context.get("customer") or {}
        wanted = [f"whisper/{customer.get('tier')}", f"whisper/queue_{queue}"]
        if context.get("verified") or customer.get("verified"):
            wanted.append("whisper/verified")
        available = self.server.config.prompts
        return [name for name in wanted if name in available]

    def _bridge(self, connected: CallConnected, session: "CallSession", leg: AgentLeg) -> None:
        wait = self.waiting.pop(connected.call_id, None)
        if wait is not None:
            wait.stop()
        session.bridge(leg.rtp)
        session.connected_at = self.reactor.seconds()
        session.agent_id_served = leg.agent_id
        self.last_call[leg.agent_id] = connected.call_id
        customer = (session.queue_context or {}).get("customer") or {}
        directory = self.server.directory
        if customer.get("id") and directory is not None:
            threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), directory.record_last_agent,
                                      customer["id"], leg.agent_id, self.reactor.seconds()).addErrback(
                lambda failure: log.warning("call=%s could not store the last agent: %s", connected.call_id,
                                            failure.getErrorMessage()))
        self.records.call_connected(connected.call_id, agent=leg.agent_id, at=session.connected_at)
        self.server.webhook("call-answered", session, queue=connected.queue, agent=leg.agent_id,
                            wait_seconds=round(connected.waited_seconds, 1))
        self._log("CONNECT", connected.call_id, connected.queue, leg.agent_id, connected.waited_seconds, leg.call_id,
                  session.connected_at - leg.started_at)
        queue = connected.queue
        self.metrics.queue_answered.labels(queue).inc()
        self.metrics.queue_wait.labels(queue).observe(connected.waited_seconds)
        settings = self.config.agents.queues.get(queue) if self.config.agents else None
        if settings is not None and connected.waited_seconds <= settings.routing.service_level_seconds:
            self.metrics.queue_answered_in_sl.labels(queue).inc()
        if wait is not None and wait.first_estimate is not None:
            self.metrics.estimate_error.labels(queue).observe(wait.first_estimate - connected.waited_seconds)
        log.info("call=%s connected to agent=%s after %.1fs in queue %s", connected.call_id, connected.agent_id,
                 connected.waited_seconds, connected.queue)
        self.server.events.publish(f"agent-{connected.agent_id}", {"type": "connected", "call_id": connected.call_id,
                                                                   "queue": connected.queue})
        self.server.events.publish("wallboard", {"type": "queue-changed", "queue": connected.queue})
        session.ivr.feed(QueueFinished(outcome="answered"))

    @staticmethod
    def _context_headers(session: "CallSession", offer: Offer) -> tuple[tuple[str, str], ...]:
        context = getattr(session, "queue_context", {}) or {}

        def clean(value: object) -> str:
            return "".join(ch for ch in str(value) if ch.isprintable())[:120]

        headers = [("X-ACD-Queue", clean(offer.queue)), ("X-ACD-Caller", clean(context.get("caller_id", ""))),
                   ("X-ACD-Caller-Call-ID", clean(session.call_id))]
        if context.get("caller_name"):
            headers.append(("X-ACD-Caller-Name", clean(context["caller_name"])))
        for key in ("intent", "verified", "account_number"):
            if context.get(key) not in (None, "", "****"):
                headers.append((f"X-ACD-{key.replace('_', '-').title()}", clean(context[key])))
        customer = context.get("customer") or {}
        if customer:
            headers += [("X-ACD-Customer", clean(customer.get("name", ""))), ("X-ACD-Customer-Id", clean(customer.get("id", ""))),
                        ("X-ACD-Tier", clean(customer.get("tier", "")))]
            if not context.get("verified"):
                headers.append(("X-ACD-Verified", "true" if customer.get("verified") else "false"))
        waited = session.reactor.seconds() - (session.queued_at or session.reactor.seconds())
        headers.append(("X-ACD-Wait-Seconds", f"{waited:.0f}"))
        return tuple(headers)
