"""OfferDialer: the routing engine's offers made real. It rings agents (an AgentLeg per offer, the
caller's context in X-ACD-* headers), whispers to the agent, bridges the media, and for a callback
dials the customer through the trunk once the agent is on the line.

It decides nothing about routing: what happens to a leg (answered, refused, hung up, hold, transfer)
goes back through `AgentLegEvents`, which the AcdService implements. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from ..config.srtp_policy import DEFAULT_SRTP_POLICY
from ..registrar.path import AgentContact, agent_contact
from ..routing import Offer
from .agent_leg import AgentLeg, AgentLegState
from .ports import ConfigSource, Media, Signalling
from .queued_call import QueuedCall

__all__ = ["AgentLegEvents", "OfferDialer", "context_headers", "whisper_prompts"]

log = logging.getLogger("acd.acd")


class AgentLegEvents(Protocol):
    """What the ACD is told about the legs the dialer placed."""

    def agent_answered(self, leg: AgentLeg) -> None: ...

    def agent_failed(self, leg: AgentLeg, status: int | None) -> None: ...

    def agent_hung_up(self, leg: AgentLeg) -> None: ...

    def agent_hold(self, leg: AgentLeg, held: bool) -> None: ...

    def agent_transfer(self, leg: AgentLeg, target: str) -> int: ...

    def callback_connected(self, queued: QueuedCall, agent: AgentLeg) -> None: ...

    def callback_ended(self, queued: QueuedCall, reason: str, outcome: str = "callback_failed") -> None: ...


def _clean(value: object) -> str:
    return "".join(ch for ch in str(value) if ch.isprintable())[:120]


def context_headers(queued: QueuedCall, offer: Offer, now: float) -> tuple[tuple[str, str], ...]:
    """The caller's context for the agent's phone, as X-ACD-* headers (printable, 120 characters at most)."""
    context = queued.context or {}
    headers = [("X-ACD-Queue", _clean(offer.queue)), ("X-ACD-Caller", _clean(context.get("caller_id", ""))),
               ("X-ACD-Caller-Call-ID", _clean(queued.call_id))]
    if context.get("caller_name"):
        headers.append(("X-ACD-Caller-Name", _clean(context["caller_name"])))
    for key in ("intent", "verified", "account_number"):
        if context.get(key) not in (None, "", "****"):
            headers.append((f"X-ACD-{key.replace('_', '-').title()}", _clean(context[key])))
    customer = context.get("customer") or {}
    if customer:
        headers += [("X-ACD-Customer", _clean(customer.get("name", ""))),
                    ("X-ACD-Customer-Id", _clean(customer.get("id", ""))),
                    ("X-ACD-Tier", _clean(customer.get("tier", "")))]
        if not context.get("verified"):
            headers.append(("X-ACD-Verified", "true" if customer.get("verified") else "false"))
    headers.append(("X-ACD-Wait-Seconds", f"{queued.waited(now):.0f}"))
    return tuple(headers)


def whisper_prompts(context: dict, queue: str, available: set[str] | dict) -> list[str]:
    """What the agent hears before the caller: the customer's tier, the queue, "verified"; only prompts that exist."""
    customer = context.get("customer") or {}
    wanted = [f"whisper/{customer.get('tier')}", f"whisper/queue_{queue}"]
    if context.get("verified") or customer.get("verified"):
        wanted.append("whisper/verified")
    return [name for name in wanted if name in available]


class OfferDialer:
    """Places and connects the legs of offers and callbacks."""

    def __init__(self, *, signalling: Signalling, media: Media, config: ConfigSource, reactor,
                 events: AgentLegEvents) -> None:
        self.signalling = signalling
        self.media = media
        self.config = config
        self.reactor = reactor
        self.events = events

    def _leg(self, *, queued: QueuedCall, agent_id: str, contact: AgentContact, codec: str,
             payload_type: int, telephone_event_pt: int | None, headers: tuple[tuple[str, str], ...],
             from_user: str = "acd", trunk: str | None = None, credentials=None, **callbacks) -> AgentLeg:
        uri, destination, transport, route = agent_contact(contact)
        sip = self.config.config.sip
        events = self.events
        defaults = dict(on_answer=events.agent_answered, on_failure=events.agent_failed,
                        on_hangup=events.agent_hung_up, on_hold=events.agent_hold, on_transfer=events.agent_transfer)
        defaults.update(callbacks)
        return AgentLeg(signalling=self.signalling, media=self.media, reactor=self.reactor,
                        sip_address=(sip.public_address, sip.port), customer_call_id=queued.call_id,
                        agent_id=agent_id, contact=uri, destination=destination, transport=transport, codec=codec,
                        payload_type=payload_type, telephone_event_pt=telephone_event_pt, context_headers=headers,
                        from_user=from_user, srtp_policy=self._srtp_policy(agent_id, trunk),
                        credentials=credentials, route=route, **defaults)

    def _srtp_policy(self, agent_id: str, trunk: str | None) -> str:
        """The SRTP policy of a callback's trunk, or else of the agent (the config's default if unknown)."""
        config = self.config.config
        if trunk is not None:
            found = next((t for t in config.trunks if t.name == trunk), None)
            return found.srtp if found is not None else DEFAULT_SRTP_POLICY
        agent = config.agents.agents.get(agent_id) if config.agents is not None else None
        return agent.srtp if agent is not None else DEFAULT_SRTP_POLICY

    def ring_agent(self, queued: QueuedCall, offer: Offer, contact) -> AgentLeg | None:
        """INVITE the agent for a caller on the line; None when no RTP port is free."""
        negotiated = queued.session.negotiated
        leg = self._leg(queued=queued, agent_id=offer.agent_id, contact=contact, codec=negotiated.codec,
                        payload_type=negotiated.payload_type, telephone_event_pt=negotiated.telephone_event_pt,
                        headers=context_headers(queued, offer, self.reactor.seconds()))
        return leg if leg.start() else None

    def ring_agent_for_callback(self, queued: QueuedCall, offer: Offer, contact) -> AgentLeg | None:
        """INVITE the agent for a callback (the customer is dialled once the agent answers)."""
        callback = queued.callback
        headers = (("X-ACD-Queue", offer.queue), ("X-ACD-Caller", callback.number), ("X-ACD-Callback", "yes"),
                   ("X-ACD-Caller-Call-ID", offer.call_id))
        leg = self._leg(queued=queued, agent_id=offer.agent_id, contact=contact, codec=callback.codec,
                        payload_type=callback.payload_type, telephone_event_pt=callback.telephone_event_pt,
                        headers=headers, on_hold=lambda leg, held: None, on_transfer=lambda leg, target: 501)
        return leg if leg.start() else None

    def whisper_then(self, leg: AgentLeg, prompts: list[str], then: Callable[[], None]) -> None:
        """Play `prompts` to the agent only (the caller keeps hearing the queue's music), then `then`."""
        log.info("call=%s whisper to agent=%s: %s", leg.customer_call_id, leg.agent_id, " ".join(prompts))
        audio = b"".join(self.media.encoded(name, leg.codec) for name in prompts)

        def whispered(playback_id: int) -> None:
            self.media.stop_sending(leg.rtp)
            leg.rtp.stop()
            then()

        leg.on_playback_finished = whispered
        self.media.start_sending(leg.rtp)
        leg.rtp.play(audio, 1)

    def call_customer_back(self, queued: QueuedCall, agent: AgentLeg, queue: str) -> None:
        """The agent took a callback: dial the customer through the trunk, greet them, bridge."""
        callback = queued.callback
        call_id = queued.call_id
        host, port = callback.destination
        log.info("call=%s agent=%s ready; calling back %s via %s:%s", call_id, agent.agent_id, callback.number,
                 host, port)

        def answered(customer: AgentLeg) -> None:
            log.info("call=%s callback answered by %s; greeting, then bridging", call_id, callback.number)
            self.media.start_sending(customer.rtp)
            customer.rtp.play(self.media.encoded("callback_intro", customer.codec), 1)

        def greeted(playback_id: int) -> None:
            customer = queued.customer_leg
            if customer is None or customer.state is not AgentLegState.ANSWERED \
                    or agent.state is not AgentLegState.ANSWERED:
                return
            self.media.stop_sending(customer.rtp)
            customer.rtp.stop()
            customer.rtp.relay_to = agent.rtp
            agent.rtp.relay_to = customer.rtp
            log.info("call=%s connected to agent=%s (callback to %s)", call_id, agent.agent_id, callback.number)
            self.events.callback_connected(queued, agent)

        def failed(customer: AgentLeg, status: int | None) -> None:
            log.info("call=%s callback to %s failed (%s)", call_id, callback.number, status or "no answer")
            self.events.callback_ended(queued, f"customer did not answer the callback ({status or 'timeout'})")

        trunk = next((t for t in self.config.config.trunks if t.name == callback.trunk), None)
        register = trunk.register if trunk is not None else None
        domain = f"{host}:{port}" if register is None else register.domain
        customer = self._leg(queued=queued, agent_id=f"customer-{callback.number}",
                             contact=(f"sip:{callback.number}@{domain}", (host, port), "UDP"),
                             codec=callback.codec, payload_type=callback.payload_type,
                             telephone_event_pt=callback.telephone_event_pt, headers=(),
                             from_user=(trunk.caller_id if trunk is not None else None) or queue or "acd",
                             trunk=callback.trunk, credentials=register.credentials if register is not None else None,
                             on_answer=answered, on_failure=failed,
                             on_hangup=lambda leg: self.events.callback_ended(queued, "customer hung up",
                                                                              "caller_hangup"),
                             on_hold=lambda leg, held: None, on_transfer=lambda leg, target: 501,
                             on_playback_finished=greeted)
        queued.customer_leg = customer
        if not customer.start():
            self.events.callback_ended(queued, "no RTP port for the callback")
