"""Connections: the ACD's offers made into calls. An Offer decision rings the agent (through the
OfferDialer); the agent's answer, refusal, hang-up, hold and transfer come back here and become
routing events; a CallConnected decision whispers, bridges and records the connection.

It shares the AcdService's `calls` (one QueuedCall per call) and feeds the engine through `feed`;
`enqueue` puts a transferred caller into another queue. `reactor` provides IReactorTime and
IReactorThreads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import threads

from ..ivr.events import EnqueueCall, QueueFinished
from ..routing import CallConnected, CallEnded, Offer, OfferAnswered, OfferCancelled, OfferDeclined, OfferFailed
from .agent_leg import AgentLeg, AgentLegState
from .leg_states import EndReason
from .offers import OfferDialer, whisper_prompts
from .ports import ConfigSource, EventSink, Media, Records, Signalling, Webhooks
from .queue_log import QueueLog
from .queued_call import QueuedCall

if TYPE_CHECKING:
    from ..metrics import Metrics
    from ..registrar.path import AgentContact

__all__ = ["Connections", "offer_failure", "queue_settings"]

log = logging.getLogger("acd.acd")

# Final responses by which the agent (not the network) turned the offer down: a miss, written
# RINGNOANSWER as Asterisk's app_queue does for a busy member. Any other failure means the phone
# was not reached (480 Temporarily Unavailable, 404, 408, 5xx, no response at all...).
DECLINED = {486: "busy", 600: "busy everywhere", 603: "declined"}


def offer_failure(status: int | None) -> tuple[str, str]:
    """("declined", reason) when the agent turned the offer down (486/600/603), else
    ("unreachable", reason): the offer never reached anyone (`status` None: no response at all)."""
    if status in DECLINED:
        return "declined", DECLINED[status]
    if status is None:
        return "unreachable", "no response from the phone"
    return "unreachable", f"the phone answered {status}"


def _held(queued: QueuedCall, until: float) -> float:
    """Seconds the caller waited in line: until `until`, or until they asked for a callback (the
    call back is an outbound call, not queue time; most contact-centre reports count it so)."""
    return (queued.callback.requested_at if queued.callback is not None else until) - queued.queued_at


def queue_settings(config: ConfigSource, queue: str):
    """The queue's settings from conf/agents.yaml in force now, or None."""
    agents = config.config.agents
    return agents.queues.get(queue) if agents else None


class Connections:
    """Offers, connections and the agent legs' events (implements offers.AgentLegEvents)."""

    def __init__(self, *, reactor, config: ConfigSource, signalling: Signalling, media: Media, events: EventSink,
                 records: Records, webhooks: Webhooks, metrics: "Metrics", queue_log: QueueLog,
                 calls: dict[str, QueuedCall], last_call: dict[str, str],
                 contacts: Callable[[str], list[AgentContact]], feed: Callable[[Any], bool],
                 enqueue: Callable[[Any, EnqueueCall], None], directory: Any = None) -> None:
        self.reactor = reactor
        self.config = config
        self.events = events
        self.records = records
        self.webhooks = webhooks
        self.metrics = metrics
        self.queue_log = queue_log
        self.calls = calls
        self.last_call = last_call
        self.contacts = contacts
        self.feed = feed
        self.enqueue = enqueue
        self.directory = directory
        self.dialer = OfferDialer(signalling=signalling, media=media, config=config, reactor=reactor, events=self)

    def _settings(self, queue: str):
        return queue_settings(self.config, queue)

    def completed(self, event: str, queued: QueuedCall) -> None:
        """COMPLETECALLER / COMPLETEAGENT: the queue_log line and the handle time of a connected call."""
        now = self.reactor.seconds()
        self.queue_log.write(event, queued.call_id, queued.log_queue, queued.agent_id,
                             _held(queued, queued.connected_at), now - queued.connected_at, queued.entry_position or "")
        self.metrics.handle_time.labels(queued.log_queue).observe(now - queued.connected_at)


    # ---- from agent legs (AgentLegEvents) ----------------------------------------------------
    def _offer_of(self, leg: AgentLeg) -> QueuedCall | None:
        queued = self.calls.get(leg.customer_call_id)
        return queued if queued is not None and queued.offers.get(leg.agent_id) is leg else None

    def agent_answered(self, leg: AgentLeg) -> None:
        """The agent's phone answered the offer: the engine connects (or the offer is stale)."""
        queued = self._offer_of(leg)
        if queued is None:
            leg.hang_up("offer no longer valid")
            return
        self.metrics.offers.labels(queued.queue, "answered").inc()
        if not self.feed(OfferAnswered(call_id=leg.customer_call_id, agent_id=leg.agent_id)):
            queued.offers.pop(leg.agent_id, None)
            leg.hang_up("offer no longer valid")

    def agent_failed(self, leg: AgentLeg, status: int | None) -> None:
        """The offer failed: declined by the agent (a miss, RINGNOANSWER), or never reached the
        phone (the agent becomes unreachable: not a miss, no auto-pause)."""
        queued = self._offer_of(leg)
        if queued is None:
            return
        del queued.offers[leg.agent_id]
        kind, reason = offer_failure(status)
        self.metrics.offers.labels(queued.queue, kind).inc()
        if kind == "declined":
            self.queue_log.write("RINGNOANSWER", leg.customer_call_id, queued.queue, leg.agent_id,
                                 self.reactor.seconds() - leg.started_at)
            self.feed(OfferDeclined(call_id=leg.customer_call_id, agent_id=leg.agent_id, reason=reason))
        else:
            self.feed(OfferFailed(call_id=leg.customer_call_id, agent_id=leg.agent_id, reason=reason))

    def agent_hung_up(self, leg: AgentLeg) -> None:
        """The agent ended a connected call: the caller gets the survey or a BYE."""
        queued = self.calls.get(leg.customer_call_id)
        if queued is None or queued.agent_leg is not leg:
            return
        if queued.customer_leg is not None:
            self.callback_ended(queued, "agent hung up", "agent_hangup")
            return
        del self.calls[queued.call_id]
        self.feed(CallEnded(call_id=queued.call_id))
        session = queued.session
        if session is None:
            return
        if queued.connected_at is not None:
            self.completed("COMPLETEAGENT", queued)
        settings = self._settings(queued.queue)
        flows = self.config.config.flows
        survey = flows.get(settings.survey_flow) if settings and settings.survey_flow else None
        if survey is not None and session.active:
            log.info("call=%s agent=%s hung up first: survey %s", queued.call_id, leg.agent_id, survey.name)
            self.records.talk_ended(queued.call_id, at=self.reactor.seconds())
            session.unbridge()
            session.run_flow(survey)
        else:
            session.hang_up(EndReason.AGENT_HUNG_UP)

    def agent_hold(self, leg: AgentLeg, held: bool) -> None:
        """The agent put the caller on hold or took them back."""
        queued = self.calls.get(leg.customer_call_id)
        if queued is not None and queued.agent_leg is leg and queued.session is not None:
            queued.session.set_hold(held)

    def agent_transfer(self, leg: AgentLeg, target: str) -> int:
        """Blind transfer of the caller by the agent: to a queue by name, or to a dialplan number.
        Returns the SIP status for the NOTIFY (200 done, 404 no such target, 481 call gone)."""
        queued = self.calls.get(leg.customer_call_id)
        session = queued.session if queued is not None else None
        if session is None or queued.agent_leg is not leg or not session.active:
            return 481
        config = self.config.config
        queue = target if target in (config.agents.queues if config.agents else {}) else None
        route = None if queue else config.route_for(target)
        if queue is None and route is None:
            log.info("call=%s transfer by agent=%s to %r: no such queue or number", queued.call_id, leg.agent_id,
                     target)
            return 404
        now = self.reactor.seconds()
        self.queue_log.write("TRANSFER", queued.call_id, queued.log_queue, leg.agent_id, target,
                             (queued.connected_at or now) - queued.queued_at, now - (queued.connected_at or now))
        session.transferred_to = target
        self.records.set_field(queued.call_id, "transfer_target", target)
        session.unbridge()
        self.feed(CallEnded(call_id=queued.call_id))
        self.calls.pop(queued.call_id, None)
        if queue is not None:
            log.info("call=%s transferred by agent=%s to queue %s", queued.call_id, leg.agent_id, queue)
            self.enqueue(session, EnqueueCall(queue=queue, priority=0, context=queued.context))
        else:
            log.info("call=%s transferred by agent=%s to %s (flow %s)", queued.call_id, leg.agent_id, target,
                     route.flow)
            session.run_flow(config.flows[route.flow])
        return 200

    def callback_connected(self, queued: QueuedCall, agent: AgentLeg) -> None:
        """The customer answered our call back and now hears the agent: the call is answered, as an
        inbound call is when bridged (record, CONNECT, the answered metrics)."""
        now = queued.connected_at = self.reactor.seconds()
        queue = queued.log_queue
        self.records.call_connected(queued.call_id, agent=agent.agent_id, at=now, queue=queue)
        self._answered(queued.call_id, queue, agent, _held(queued, now), now, None)

    def callback_ended(self, queued: QueuedCall, reason: str, outcome: str = "callback_failed") -> None:
        """A callback is over (the customer hung up or never answered, or the agent hung up);
        `outcome` is the record's when the customer was reached ("caller_hangup", "agent_hangup")."""
        agent, customer = queued.agent_leg, queued.customer_leg
        queued.customer_leg = None
        if self.calls.get(queued.call_id) is queued:
            del self.calls[queued.call_id]
            self.feed(CallEnded(call_id=queued.call_id, reached=queued.connected_at is not None))
            self.end_callback(queued, outcome if queued.connected_at is not None else "callback_failed", reason)
        if agent is not None:
            agent.hang_up(reason)
        if customer is not None:
            customer.cancel(reason)

    def end_callback(self, queued: QueuedCall, outcome: str, reason: str) -> None:
        """Close a callback call's record (its caller's leg ended long ago): COMPLETE* when the
        customer was reached, the outcome, and `acd_calls_total` counted now, once, as the record."""
        if queued.connected_at is not None:
            self.completed("COMPLETEAGENT" if outcome == "agent_hangup" else "COMPLETECALLER", queued)
        elif queued.agent_id is not None:
            self.records.set_field(queued.call_id, "agent", queued.agent_id)  # who took it, in vain
        self.records.call_ended(queued.call_id, outcome=outcome, reason=reason, at=self.reactor.seconds())
        self.metrics.calls.labels(queued.callback.trunk, outcome).inc()
        log.info("call=%s callback over: outcome=%s reason=%r agent=%s", queued.call_id, outcome, reason,
                 queued.agent_id or "-")

    # ---- decisions ---------------------------------------------------------------------------
    def offer_cancelled(self, decision: OfferCancelled) -> None:
        """Stop ringing an agent (ring-no-answer, another agent took it, the caller left)."""
        queued = self.calls.get(decision.call_id)
        queue = queued.queue if queued is not None else "-"
        no_answer = "no-answer" in decision.reason
        self.metrics.offers.labels(queue, "no_answer" if no_answer else "withdrawn").inc()
        if no_answer:
            settings = self._settings(queue)
            self.queue_log.write("RINGNOANSWER", decision.call_id, queue, decision.agent_id,
                                 settings.routing.ring_timeout_seconds if settings is not None else "")
        leg = queued.offers.pop(decision.agent_id, None) if queued is not None else None
        log.info("call=%s offer to agent=%s withdrawn: %s", decision.call_id, decision.agent_id, decision.reason)
        if leg is not None:
            leg.cancel(decision.reason)

    def _decline_later(self, offer: Offer, reason: str) -> None:
        self.reactor.callLater(0, self.feed, OfferDeclined(call_id=offer.call_id, agent_id=offer.agent_id,
                                                           reason=reason))

    def offer(self, offer: Offer) -> None:
        """Ring the offered agent (or fail at once: not registered; or decline: call gone, no RTP port)."""
        queued = self.calls.get(offer.call_id)
        contacts = self.contacts(offer.agent_id)
        log.info("call=%s offer agent=%s queue=%s: %s; order: %s", offer.call_id, offer.agent_id, offer.queue,
                 offer.explanation, offer.order or "-")
        if queued is not None:
            queued.explanation = offer.explanation
            queued.order = offer.order
            queued.tell(self.reactor.seconds(), f"offered to {offer.agent_id}: {offer.explanation}; "
                                                f"order: {offer.order or '-'}")
        if queued is None or (queued.session is None and queued.callback is None):
            self._decline_later(offer, "call gone")
            return
        if not contacts:
            self.metrics.offers.labels(queued.queue, "unreachable").inc()
            self.reactor.callLater(0, self.feed, OfferFailed(call_id=offer.call_id, agent_id=offer.agent_id,
                                                             reason="not registered"))
            return
        if queued.callback is not None:
            leg = self.dialer.ring_agent_for_callback(queued, offer, contacts[0])
        else:
            leg = self.dialer.ring_agent(queued, offer, contacts[0])
        if leg is None:
            self._decline_later(offer, "no RTP port")
            return
        queued.offers[offer.agent_id] = leg
        if queued.callback is None:
            ivr = queued.session.ivr if queued.session is not None else None
            self.events.publish(f"agent-{offer.agent_id}", {
                "type": "offer", "call_id": offer.call_id, "queue": offer.queue,
                "wait_seconds": round(queued.waited(self.reactor.seconds()), 1), "context": queued.context,
                "explanation": offer.explanation, "ivr_path": list(ivr.path) if ivr is not None else [],
                "ivr_choices": list(ivr.choices) if ivr is not None else []})

    def connect(self, connected: CallConnected) -> None:
        """The engine connected a call to an agent who answered: whisper if asked, then bridge."""
        queued = self.calls.get(connected.call_id)
        leg = queued.offers.pop(connected.agent_id, None) if queued is not None else None
        if queued is not None:
            queued.served_queue = connected.queue
        if queued is not None and queued.callback is not None and leg is not None and (
                connected.callback or (queued.session is None and leg.state is AgentLegState.ANSWERED)):
            # The engine's callback; or the caller asked for one and hung up while this answer was on
            # its way (a cluster's engine connected first and refuses the request later): the agent who
            # answered calls them back, as one node does when the key is pressed while the agent rings.
            queued.agent_leg = leg
            self.last_call[leg.agent_id] = connected.call_id
            self.dialer.call_customer_back(queued, leg, queued.queue)
            return
        session = queued.session if queued is not None else None
        if session is None or leg is None or leg.state is not AgentLegState.ANSWERED:
            log.warning("call=%s connect to agent=%s impossible (caller or agent gone)", connected.call_id,
                        connected.agent_id)
            if session is not None and queued.callback is None:
                self._agent_left_before_connect(connected, queued, leg)
            return
        queued.agent_leg = leg
        settings = self._settings(connected.queue)
        whisper = whisper_prompts(queued.context, connected.queue, self.config.config.prompts) \
            if settings is not None and settings.whisper else []
        if not whisper:
            self._bridge(connected, queued, leg)
            return

        def bridge_if_still_wanted() -> None:
            if queued.agent_leg is leg and self.calls.get(queued.call_id) is queued and session.active:
                self._bridge(connected, queued, leg)

        self.dialer.whisper_then(leg, whisper, bridge_if_still_wanted)

    def _agent_left_before_connect(self, connected: CallConnected, queued: QueuedCall, leg: AgentLeg | None) -> None:
        """The engine connected the caller to an agent whose leg ended meanwhile (in a cluster the
        decision comes back from the leader a moment after the answer; the agent may hang up first):
        as if the agent hung up just after the connection, the call ends for the engine (the agent
        goes to wrap-up) and the caller gets a BYE, instead of waiting forever. The engine counted
        the call answered, so do the books: the record's agent and connect time, CONNECT then
        COMPLETEAGENT after no talk (as Asterisk writes an answer hung up at once)."""
        wait, queued.wait = queued.wait, None
        if wait is not None:
            wait.stop()
        if leg is not None:
            queued.agent_leg = leg
            now = queued.connected_at = self.reactor.seconds()
            self.last_call[leg.agent_id] = connected.call_id
            self.records.call_connected(connected.call_id, agent=leg.agent_id, at=now, queue=connected.queue)
            self._answered(connected.call_id, connected.queue, leg, connected.waited_seconds, now,
                           wait.first_estimate if wait is not None else None)
            self.completed("COMPLETEAGENT", queued)
        del self.calls[queued.call_id]
        self.feed(CallEnded(call_id=queued.call_id))
        queued.session.hang_up(EndReason.AGENT_HUNG_UP)

    def _bridge(self, connected: CallConnected, queued: QueuedCall, leg: AgentLeg) -> None:
        session = queued.session
        wait, queued.wait = queued.wait, None
        if wait is not None:
            wait.stop()
        session.bridge(leg.rtp)
        now = queued.connected_at = self.reactor.seconds()
        self.last_call[leg.agent_id] = connected.call_id
        customer = queued.context.get("customer") or {}
        if customer.get("id") and self.directory is not None:
            threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self.directory.record_last_agent,
                                      customer["id"], leg.agent_id, now).addErrback(
                lambda failure: log.warning("call=%s could not store the last agent: %s", connected.call_id,
                                            failure.getErrorMessage()))
        self.records.call_connected(connected.call_id, agent=leg.agent_id, at=now, queue=connected.queue)
        self.webhooks.call_event("call-answered", call_id=connected.call_id, context=session.context,
                                 internal=session.internal, queue=connected.queue, agent=leg.agent_id,
                                 wait_seconds=round(connected.waited_seconds, 1))
        self._answered(connected.call_id, connected.queue, leg, connected.waited_seconds, now,
                       wait.first_estimate if wait is not None else None)
        session.ivr.feed(QueueFinished(outcome="answered"))

    def _answered(self, call_id: str, queue: str, leg: AgentLeg, waited: float, now: float,
                  first_estimate: float | None) -> None:
        """An agent and the customer talk now: the CONNECT line, the answered metrics (from this one
        event, so that `acd report --check` finds them equal), the log line and the live events."""
        self.queue_log.write("CONNECT", call_id, queue, leg.agent_id, waited, leg.call_id, now - leg.started_at)
        self.metrics.queue_answered.labels(queue).inc()
        self.metrics.queue_wait.labels(queue).observe(waited)
        settings = self._settings(queue)
        if settings is not None and waited <= settings.routing.service_level_seconds:
            self.metrics.queue_answered_in_sl.labels(queue).inc()
        if first_estimate is not None:
            self.metrics.estimate_error.labels(queue).observe(first_estimate - waited)
        log.info("call=%s connected to agent=%s after %.1fs in queue %s", call_id, leg.agent_id, waited, queue)
        self.events.publish(f"agent-{leg.agent_id}", {"type": "connected", "call_id": call_id, "queue": queue})
        self.events.publish("wallboard", {"type": "queue-changed", "queue": queue})
