"""AgentLeg: our outbound call to an agent's softphone (an ACD offer), from INVITE to BYE; the same
class places a callback to a customer through a trunk.

We are the UAC here: INVITE with an SDP offer in the caller's codec (so media can be relayed
without transcoding) and the call's context in X-ACD-* headers for softphones that show them,
ACK for the 2xx, CANCEL if the offer is withdrawn while ringing, BYE when the call ends.
The offer follows the agent's (or, for a callback, the trunk's) SRTP policy: `required` offers
RTP/SAVP, `optional` RTP/AVP with our crypto line (SRTP if the phone answers with one), `off` plain
RTP/AVP; an answer that does not fit is hung up like any unusable SDP.

A callback through a carrier may be challenged (401, or 407 from its proxy): with the trunk's
credentials the INVITE goes again with the same Call-ID and From tag, CSeq+1 and a new branch (RFC
3261 §22.2; the challenge itself is ACKed by its own transaction, §17.1.1.3). A challenge of the same
kind after our answer, not marked stale, means the credentials are wrong: the leg fails with it.
"""

from __future__ import annotations

import logging
from typing import Callable

from ..media.offer_answer import OfferReply, SessionNegotiation
from ..media.sdp import ANSWER_DIRECTION, NegotiatedAudio, SdpError, SessionDescription, build_offer, srtp_key_of_answer
from ..sip.build import REASON_PHRASES, build_cancel, build_invite, new_call_id, new_tag
from ..sip.digest_client import DigestCredentials, answer_challenge, choose_challenge
from ..sip.dialog import Dialog
from ..sip.errors import RemoteProtocolError
from ..sip.headers import CSeq, NameAddr, SipUri
from ..sip.message import Request, Response
from .leg_states import AgentLegEvent, AgentLegState, next_agent_leg_state
from .ports import Media, Signalling
from .rtp_leg import RtpLeg

__all__ = ["AgentLeg", "AgentLegState"]

log = logging.getLogger("acd.agent")


class AgentLeg:
    """One INVITE to one agent for one customer call."""

    def __init__(self, *, signalling: Signalling, media: Media, reactor, sip_address: tuple[str, int],
                 customer_call_id: str, agent_id: str, contact: str,
                 destination: tuple[str, int], transport: str, codec: str, payload_type: int,
                 telephone_event_pt: int | None, context_headers: tuple[tuple[str, str], ...],
                 on_answer: Callable[["AgentLeg"], None], on_failure: Callable[["AgentLeg", int | None], None],
                 on_hangup: Callable[["AgentLeg"], None], on_hold: Callable[["AgentLeg", bool], None],
                 on_transfer: Callable[["AgentLeg", str], int],
                 on_playback_finished: Callable[[int], None] = lambda playback: None,
                 from_user: str = "acd", srtp_policy: str = "off",
                 credentials: DigestCredentials | None = None, route: tuple[str, ...] = ()) -> None:
        self.signalling = signalling
        self.media = media
        self.reactor = reactor
        self.sip_address = sip_address
        self.customer_call_id = customer_call_id
        self.agent_id = agent_id
        self.contact = contact
        self.destination = destination
        self.route = route  # the phone's registration Path (RFC 3327): the INVITE's preloaded Route set
        self.transport = transport
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.context_headers = context_headers
        self.on_answer = on_answer
        self.on_failure = on_failure
        self.on_hangup = on_hangup
        self.on_hold = on_hold
        self.on_transfer = on_transfer
        self.on_playback_finished = on_playback_finished
        self.from_user = from_user
        self.srtp_policy = srtp_policy
        self.credentials = credentials  # answers a carrier's 401/407 (None: a challenge fails the leg)
        self.challenges_answered: set[int] = set()  # 401 and/or 407
        self.srtp_key: bytes | None = None  # ours, offered in the INVITE (None: SRTP off)
        self.held = False
        self.session_id = 0
        self.offer: SessionDescription | None = None  # ours, in the INVITE
        self.negotiation: SessionNegotiation | None = None  # offer/answer state once answered
        self.call_id = new_call_id(sip_address[0])
        self.state = AgentLegState.CALLING
        self.invite: Request | None = None
        self.invite_transaction: tuple | None = None
        self.dialog: Dialog | None = None
        self.rtp: RtpLeg | None = None
        self.local_port: int | None = None
        self.ack: Request | None = None
        self.end_reason = ""
        self.started_at = reactor.seconds()

    def start(self) -> bool:
        """Bind an RTP port and send the INVITE; False when no RTP port is free."""
        self.rtp = self.media.new_leg(call_id=self.call_id, codec=self.codec, payload_type=self.payload_type,
                                      telephone_event_pt=self.telephone_event_pt, on_digit=lambda digit: None,
                                      on_playback_finished=lambda playback_id: self.on_playback_finished(playback_id),
                                      near=self.customer_call_id)
        self.local_port = self.media.open(self.rtp)
        if self.local_port is None:
            return False
        self.session_id = self.media.session_id()
        self.srtp_key = self.media.new_srtp_key() if self.srtp_policy != "off" else None
        self.offer = offer = build_offer(self.media.address, self.local_port, self.session_id,
                                         codecs=(self.codec,), telephone_event_pt=self.telephone_event_pt or 101,
                                         srtp=self.srtp_policy, srtp_key=self.srtp_key)
        self.invite = build_invite(uri=self.contact, call_id=self.call_id, from_user=self.from_user,
                                   to_user=self.agent_id, local=self.sip_address,
                                   extra_headers=self.context_headers, sdp=bytes(offer), route=self.route,
                                   contact=self.signalling.contact(self.transport,
                                                                   secure=self.contact.lower().startswith("sips:")))
        self.invite_transaction = self.signalling.send_invite(self, self.invite, self.destination, self.transport)
        log.info("call=%s offer to agent=%s contact=%s agent_call=%s", self.customer_call_id, self.agent_id,
                 self.contact, self.call_id)
        return True

    # ---- responses ---------------------------------------------------------------------------
    def on_invite_response(self, response: Response) -> None:
        """A response to our INVITE (2xx retransmissions included)."""
        status = response.status
        if status < 200:
            if status in (180, 183) and self.state is AgentLegState.CALLING:
                self._move(AgentLegEvent.PROVISIONAL)
            return
        if status in (401, 407) and self._answer_challenge(response):
            return
        if status >= 300:
            if self.state in (AgentLegState.CALLING, AgentLegState.RINGING, AgentLegState.CANCELLING):
                was_cancelled = self.state is AgentLegState.CANCELLING
                self._end(f"agent answered {status}")
                if not was_cancelled:
                    self.on_failure(self, status)
            return
        if self.dialog is not None:  # a retransmitted 2xx: our ACK was lost
            self._send_ack()
            return
        try:
            self.dialog = Dialog.as_uac(self.invite, response, source=self.destination, transport=self.transport)
            answer = SessionDescription.parse(response.body)
            media = next(m for m in answer.media if m.media == "audio" and m.port)
            remote = (answer.address_for(media), media.port)
            remote_key = srtp_key_of_answer(media, srtp=self.srtp_policy)
        except (RemoteProtocolError, SdpError, StopIteration) as error:
            log.warning("call=%s agent=%s answered with unusable SDP (%s); hanging up", self.customer_call_id,
                        self.agent_id, error)
            self.dialog = self.dialog or Dialog.as_uac(self.invite, response, source=self.destination,
                                                       transport=self.transport)
            self._send_ack()
            self._move(AgentLegEvent.ANSWERED)
            self.hang_up("unusable SDP answer")
            self.on_failure(self, 488)
            return
        self.rtp.remote = remote
        self.rtp.use_srtp(self.srtp_key if remote_key is not None else None, remote_key)
        self.negotiation = SessionNegotiation(
            local=self.offer, local_address=self.media.address, local_port=self.local_port, srtp=self.srtp_policy,
            srtp_key=self.srtp_key, audio=NegotiatedAudio(
                remote_address=remote[0], remote_port=remote[1], codec=self.codec, payload_type=self.payload_type,
                telephone_event_pt=self.telephone_event_pt, direction=ANSWER_DIRECTION[media.direction],
                srtp_local_key=self.srtp_key if remote_key is not None else None, srtp_remote_key=remote_key))
        self._send_ack()
        if self.state is AgentLegState.CANCELLING:
            # CANCEL crossed the 200 (RFC 3261 §9.1): the call is up but no longer wanted.
            self._move(AgentLegEvent.ANSWERED)
            self.hang_up("offer withdrawn")
            return
        self._move(AgentLegEvent.ANSWERED)
        log.info("call=%s agent=%s answered (%s %s -> %s:%s)", self.customer_call_id, self.agent_id,
                 "srtp" if remote_key is not None else "rtp", self.local_port, remote[0], remote[1])
        self.on_answer(self)

    def _answer_challenge(self, response: Response) -> bool:
        """Send the INVITE again with credentials answering a 401/407; False when we cannot (no
        credentials, no usable challenge, our answer of that kind was refused, the offer withdrawn)."""
        if self.credentials is None or self.state not in (AgentLegState.CALLING, AgentLegState.RINGING):
            return False
        challenge = choose_challenge(response.status, response.headers, self.credentials)
        if challenge is None or (response.status in self.challenges_answered and not challenge.stale):
            return False
        self.challenges_answered.add(response.status)
        old = self.invite
        headers = old.headers.copy()
        headers.remove("Via")
        headers.remove(challenge.answer_header)  # a 407 answer stays when a 401 follows (§22.3)
        headers.set("CSeq", f"{CSeq.parse(old.headers.get('CSeq', '1 INVITE')).number + 1} INVITE")
        headers.add(*answer_challenge(challenge, self.credentials, method="INVITE", uri=old.uri, cnonce=new_tag()))
        self.signalling.forget_invite(self, self.invite_transaction)
        self.invite = Request(method="INVITE", uri=old.uri, headers=headers, body=old.body)
        self.invite_transaction = self.signalling.send_invite(self, self.invite, self.destination, self.transport)
        log.info("call=%s %s challenged our INVITE to %s (%d, realm %r, %s): sent again with credentials",
                 self.customer_call_id, self.agent_id, self.contact, response.status, challenge.realm,
                 challenge.algorithm)
        return True

    def on_invite_timeout(self) -> None:
        """No final response to the INVITE at all (Timer B)."""
        if self.state in (AgentLegState.CALLING, AgentLegState.RINGING):
            self._end("no response from the agent's phone")
            self.on_failure(self, None)
        elif self.state is AgentLegState.CANCELLING:
            self._end("cancelled; no response from the agent's phone")

    def _send_ack(self) -> None:
        if self.ack is None:
            self.ack = self.dialog.create_request("ACK")
        self.signalling.send_ack(self.ack, self.dialog.destination(), self.transport)

    # ---- requests from the agent -------------------------------------------------------------
    def on_bye(self, transaction: tuple) -> None:
        """The agent hung up."""
        self.signalling.respond(transaction, 200)
        was_answered = self.state is AgentLegState.ANSWERED
        self._end("agent hung up")
        if was_answered:
            self.on_hangup(self)

    def on_reinvite(self, request: Request, transaction: tuple) -> None:
        """The agent's phone re-INVITEs: hold (sendonly/inactive) or resume (sendrecv) (RFC 3264 §8.4),
        a new address or key; without SDP, our offer goes in the 200 and its answer in the ACK."""
        self._offer_request(request, transaction)

    def on_update(self, request: Request, transaction: tuple) -> None:
        """An UPDATE (RFC 3311): an offer with SDP is answered like a re-INVITE's; without SDP, 200."""
        self._offer_request(request, transaction)

    def on_ack_body(self, body: bytes) -> None:
        """An ACK's body: the answer to our offer when it went in a 200 (a re-INVITE without SDP)."""
        reply = self.negotiation.receive_ack(body) if self.negotiation is not None else None
        if reply is not None and reply.status != 200:
            log.warning("call=%s agent=%s the ACK has no usable answer to our offer (%s): media unchanged",
                        self.customer_call_id, self.agent_id, reply.reason)
        elif reply is not None and reply.changed:
            self._media_changed(reply)

    def on_reinvite_ack_timeout(self) -> None:
        """No ACK for our final response to a re-INVITE: an offer of ours in it is given up."""
        if self.negotiation is not None:
            self.negotiation.pending = None

    def _offer_request(self, request: Request, transaction: tuple) -> None:
        if self.negotiation is None:  # its answer had unusable SDP: we are hanging up
            self.signalling.respond(transaction, 488, headers=(("Warning", '399 acd "this call is ending"'),))
            return
        # The caller's leg relays packets as they are: the codec cannot change under the bridge.
        reply = self.negotiation.receive(request.method, request.body, keep_codec=True)
        if reply.status != 200:
            log.info("call=%s agent=%s %s refused %d: %s", self.customer_call_id, self.agent_id, request.method,
                     reply.status, reply.reason)
            self.signalling.respond(transaction, reply.status,
                                    headers=(("Warning", f'399 acd "{reply.reason[:100]}"'),))
            return
        self.signalling.respond(transaction, 200, to_tag=self.dialog.local_tag, body=reply.body,
                                headers=(("Contact", self.invite.headers.get("Contact", "")),))
        if reply.changed:
            self._media_changed(reply)

    def _media_changed(self, reply: OfferReply) -> None:
        audio = reply.audio
        if audio is not None:
            if audio.remote_address != "0.0.0.0":
                self.rtp.remote = (audio.remote_address, audio.remote_port)
            self.rtp.telephone_event_pt = audio.telephone_event_pt
            self.rtp.use_srtp(audio.srtp_local_key, audio.srtp_remote_key)
        held = audio is None or audio.direction in ("recvonly", "inactive") or audio.remote_address == "0.0.0.0"
        if held != self.held:
            self.held = held
            log.info("call=%s agent=%s %s the caller", self.customer_call_id, self.agent_id,
                     "put on hold" if held else "resumed")
            self.on_hold(self, held)

    def on_refer(self, request: Request, transaction: tuple) -> None:
        """Blind transfer by the agent (RFC 3515): 202, then NOTIFY the outcome, then our BYE."""
        refer_to = request.headers.get("Refer-To")
        if refer_to is None:
            self.signalling.respond(transaction, 400, headers=(("Warning", '399 acd "REFER without Refer-To"'),))
            return
        try:
            target = SipUri.parse(NameAddr.parse(refer_to).uri).user or ""
        except RemoteProtocolError:
            self.signalling.respond(transaction, 400, headers=(("Warning", '399 acd "unreadable Refer-To"'),))
            return
        self.signalling.respond(transaction, 202)
        log.info("call=%s agent=%s transfers the caller to %r", self.customer_call_id, self.agent_id, target)
        status = self.on_transfer(self, target)
        self.signalling.send_in_dialog(self, "NOTIFY", extra_headers=(
            ("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")),
            body=f"SIP/2.0 {status} {REASON_PHRASES.get(status, '')}\r\n".encode(),
            content_type="message/sipfrag;version=2.0")
        if status < 300:
            self.hang_up(f"transferred the caller to {target}")

    # ---- our actions -------------------------------------------------------------------------
    def cancel(self, reason: str) -> None:
        """Withdraw the offer: CANCEL while ringing, BYE if it was answered meanwhile."""
        self.end_reason = reason
        if self.state in (AgentLegState.CALLING, AgentLegState.RINGING):
            self._move(AgentLegEvent.CANCEL)
            self.signalling.send_cancel(build_cancel(self.invite), self.destination, self.transport)
        elif self.state is AgentLegState.ANSWERED:
            self.hang_up(reason)

    def hang_up(self, reason: str) -> None:
        """End an answered agent call with BYE."""
        if self.state is not AgentLegState.ANSWERED:
            return
        self.end_reason = reason
        self._move(AgentLegEvent.HANG_UP)
        self._stop_media()
        self.signalling.send_in_dialog(self, "BYE")

    def on_response(self, method: str, status: int | None) -> None:
        """A final response (None: timeout) to an in-dialog request we sent (BYE, NOTIFY)."""
        if method == "BYE":
            self._end(self.end_reason or "hung up")

    # ---- the end -----------------------------------------------------------------------------
    def _stop_media(self) -> None:
        if self.rtp is not None:
            self.rtp.relay_to = None
            self.media.stop_sending(self.rtp)
            self.rtp.sending = False

    def _end(self, reason: str) -> None:
        if self.state is AgentLegState.ENDED:
            return
        self._move(AgentLegEvent.END)
        self.end_reason = self.end_reason or reason
        self._stop_media()
        if self.rtp is not None:
            self.media.release(self.rtp)
        log.info("call=%s agent=%s leg ended: %s", self.customer_call_id, self.agent_id, self.end_reason)
        self.signalling.forget_invite(self, self.invite_transaction)

    def _move(self, event: AgentLegEvent) -> None:
        self.state = next_agent_leg_state(self.state, event, self.customer_call_id)
