"""CallSession: one inbound call from INVITE to the end: signalling, media leg and its IVR.

The session answers, plays, hangs up and transfers; its `IvrRunner` carries out what the IVR
interpreter decides, and while it is queued the ACD's `QueuedCall` says where it waits. Its state
moves by the caller-leg table in `leg_states`. All of it on the reactor thread. `reactor` provides
IReactorTime.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Callable

from ..ivr.events import CallerHungUp, DigitReceived, PlaybackFinished
from ..media.recorder import CallRecording
from ..media.offer_answer import OfferReply, SessionNegotiation
from ..media.sdp import NegotiatedAudio, SessionDescription
from ..sip.dialog import Dialog
from ..sip.errors import RemoteProtocolError
from ..sip.message import Request
from ..sip.reliable_provisional import Reliability
from ..sip.session_timer import TimerTerms
from .dtmf_sources import DtmfSources
from .leg_states import CallerEvent, CallState, EndReason, next_caller_state
from .ports import ConfigSource, Media, Records, Signalling, Webhooks
from .provisionals import ProvisionalResponses
from .queued_call import QueuedCall
from .rtp_leg import RtpLeg
from .session_timers import SessionTimers, refusal_headers

if TYPE_CHECKING:
    from ..config.model import Route
    from ..metrics import Metrics

__all__ = ["CallSession", "CallState", "configure_leg"]

log = logging.getLogger("acd.call")

# Playback ids below zero are not the IVR's (whose ids count up from 1): the queue's music and
# announcements (queue_wait), hold music, incident banners, the callback confirmation.
HOLD_MUSIC_PLAYBACK = -1
BANNER_PLAYBACK = -4
CALLBACK_CONFIRM_PLAYBACK = -3
GOODBYE_PLAYBACK = -5
EARLY_MEDIA_PLAYBACK = -6  # the flow's announce_before_answer, played in the 183's early media


class CallSession:
    """One call: its dialog, its media leg and its walk through an IVR flow.

    Ports: `signalling` sends its SIP, `media` plays and paces its RTP, `records` and `webhooks` tell
    the world, `config` is read at the moment a setting is needed. `on_ended` is called once, when
    the call is over (the ACD lets go of it, the call table forgets it). `runner_for(session, flow,
    context, previous)` builds the IvrRunner for a flow: `flow` with `context` at set-up, again for a
    transfer to a number or a survey.
    """

    def __init__(self, *, signalling: Signalling, media: Media, records: Records, webhooks: Webhooks,
                 metrics: "Metrics", config: ConfigSource, reactor, on_ended: Callable[["CallSession"], None],
                 call_id: str, invite: Request, invite_transaction: tuple, dialog: Dialog, route: "Route",
                 trunk: str, leg: RtpLeg, local_port: int, negotiated: NegotiatedAudio, sdp_answer: bytes,
                 runner_for: Callable[..., Any], flow: Any, context: Any, srtp: str = "off",
                 srtp_key: bytes | None = None, session_timer: TimerTerms | None = None,
                 refresh_with_update: bool = False, offer_in_200: bool = False,
                 reliability: Reliability = Reliability.NONE, announcement: tuple[str, ...] = (),
                 dtmf: str = "auto") -> None:
        """`srtp` is the caller's SRTP policy (the trunk's or the agent's) and `srtp_key` our key||salt
        for the call (None when the policy is off), for the offers that come after the first.
        `session_timer`: the RFC 4028 terms agreed with the INVITE (None: none asked for);
        `refresh_with_update`: the caller allows UPDATE, so our refreshes are UPDATEs. `offer_in_200`:
        the INVITE had no SDP (RFC 3261 §13.2.1), `sdp_answer` is our offer and the ACK brings the answer.
        `reliability`: what the INVITE said of 100rel (RFC 3262); `announcement`: prompts played as early
        media (183 with our SDP) before the 200. `dtmf`: the trunk's DTMF mode (acd/calls/dtmf_sources.py)."""
        self.signalling = signalling
        self.media = media
        self.records = records
        self.webhooks = webhooks
        self.metrics = metrics
        self.config = config
        self.reactor = reactor
        self.on_ended = on_ended
        self.call_id = call_id
        self.invite = invite
        self.invite_transaction = invite_transaction
        self.dialog = dialog
        self.route = route
        self.trunk = trunk
        self.leg = leg
        self.local_port = local_port
        self.negotiated = negotiated
        self.sdp_answer = sdp_answer
        self.srtp = srtp
        self.srtp_key = srtp_key
        self.dtmf = DtmfSources(dtmf, call_id)
        leg.inband_dtmf = self.dtmf.leg_setting(negotiated.telephone_event_pt)
        self._negotiation: SessionNegotiation | None = None  # made at the first re-INVITE or UPDATE
        self._awaiting_answer = offer_in_200
        if offer_in_200:
            offer = SessionDescription.parse(sdp_answer)
            self._negotiation = SessionNegotiation(local=offer, audio=None, local_address=media.address,
                                                   local_port=local_port, srtp=srtp, srtp_key=srtp_key, pending=offer)
        self.audio_enabled = True  # False while the caller's offer has the audio stream at port 0
        self._playing: tuple[tuple[str, ...], int] | None = None  # the last prompts played, to replay
        self.runner_for = runner_for
        self.state = CallState.RINGING
        self.started_at = reactor.seconds()
        self.answered_at: float | None = None
        self.end: EndReason | None = None
        self.end_detail = ""
        self.transfer_target: str | None = None
        self.transferred_to: str | None = None  # where an agent's blind transfer sent the caller
        self.queued: QueuedCall | None = None
        self.recording: CallRecording | None = None
        self.bridged_to: RtpLeg | None = None
        self.on_hold = False
        self._after_banner: Callable[[], None] | None = None
        self._hang_up_after_confirmation = False
        self._answer_timer = None
        self._close_timer = None
        self.session_timers = SessionTimers(session=self, terms=session_timer, reactor=reactor,
                                            use_update=refresh_with_update, metrics=metrics)
        self.provisionals = ProvisionalResponses(session=self, reliability=reliability, reactor=reactor,
                                                 t1_seconds=config.config.sip.timer_t1_seconds,
                                                 retransmit=dialog.transport == "UDP")
        self.announcement = announcement
        self._answer_not_before = self.started_at
        self.ivr = runner_for(self, flow, context, None)

    @property
    def active(self) -> bool:
        """True while the call is up (answered and not ending)."""
        return self.state in (CallState.ANSWERED, CallState.CONFIRMED)

    @property
    def internal(self) -> bool:
        """An agent's own feature-code call, not a customer's: no record, no webhook."""
        return self.trunk.startswith("agent:")

    @property
    def end_reason(self) -> str:
        """Why the call ended (or is ending), as logged and recorded; "" while it goes on."""
        return self.end.describe(self.end_detail) if self.end is not None else ""

    @property
    def context(self):
        """What the IVR knows of the caller (CallContext), or None before the flow exists."""
        return self.ivr.flow_run.context if self.ivr is not None else None

    def _move(self, event: CallerEvent) -> None:
        self.state = next_caller_state(self.state, event, self.call_id)

    # ---- signalling --------------------------------------------------------------------------
    def start(self, answer_after: float) -> None:
        """Answer now, or ring first for `answer_after` seconds, or play the announcement first."""
        if self.announcement:
            self.announce_then_answer(answer_after)
        elif answer_after > 0:
            self.ring_then_answer(answer_after)
        else:
            self.answer()

    def ring_then_answer(self, delay: float) -> None:
        """Send 180 Ringing, answer after `delay` seconds (a CANCEL may come first)."""
        self.provisionals.send(180)
        self._answer_timer = self.reactor.callLater(delay, self.answer)

    def announce_then_answer(self, answer_after: float) -> None:
        """183 Session Progress with our SDP (reliable when the caller requires or supports 100rel), the
        announcement on the RTP leg, then the 200 once it has played and `answer_after` seconds passed
        since the INVITE (a CANCEL may come first)."""
        self._answer_not_before = self.started_at + answer_after
        reliable = self.provisionals.send(183, body=self.sdp_answer)
        if self.may_send:
            self.media.start_sending(self.leg)
        self.play(self.announcement, EARLY_MEDIA_PLAYBACK)
        log.info("call=%s early media: 183 Session Progress%s, playing %s before answer", self.call_id,
                 f" (reliable, RSeq {reliable.rseq})" if reliable is not None else "", " ".join(self.announcement))

    def _announced(self) -> None:
        """The announcement before answer has played: answer now, or when `answer_after_seconds` is up."""
        wait = self._answer_not_before - self.reactor.seconds()
        if wait > 0:
            self._answer_timer = self.reactor.callLater(wait, self.answer)
        else:
            self.answer()

    def on_no_prack(self, detail: str) -> None:
        """No PRACK for our reliable provisional within 64*T1: RFC 3262 §3 rejects the INVITE with a
        5xx (500), and the call fails with that reason on its record."""
        if self.state is not CallState.RINGING:
            return
        self.signalling.respond(self.invite_transaction, 500, to_tag=self.dialog.local_tag,
                                headers=(("Warning", '399 acd "no PRACK for our reliable provisional response"'),))
        self._end(EndReason.NO_PRACK, detail)

    def answer(self) -> None:
        """Send 200 OK with our SDP answer, start media and the flow."""
        self._answer_timer = None
        if self.state is not CallState.RINGING:
            return
        if not self.provisionals.may_answer():
            log.info("call=%s 200 OK held until the PRACK of our reliable 183 (RFC 3262 §3)", self.call_id)
            return
        self.signalling.respond(self.invite_transaction, 200, to_tag=self.dialog.local_tag, body=self.sdp_answer,
                                headers=(("Contact", self.dialog.local_contact), *self.signalling.capability_headers(),
                                         *self.session_timers.response_headers()))
        self.provisionals.final_sent()
        self._move(CallerEvent.ANSWER)
        self.session_timers.start()
        self.answered_at = self.reactor.seconds()
        self.records.call_answered(self.call_id, at=self.answered_at)
        self.webhooks.call_event("call-started", call_id=self.call_id, context=self.context, internal=self.internal,
                                 trunk=self.trunk)
        log.info("call=%s answered dialled=%s flow=%s codec=%s rtp=%s->%s:%s", self.call_id,
                 self.route.number or (self.route.pattern.pattern if self.route.pattern else "-"), self.route.flow,
                 self.negotiated.codec, self.local_port, self.negotiated.remote_address, self.negotiated.remote_port)
        if self.may_send:
            self.media.start_sending(self.leg)
        if self.route.record:
            self.start_recording("route")
        if self.ivr is not None:
            self.ivr.start_after_caller_lookup()

    def on_ack(self) -> None:
        """The caller confirmed our 200 OK."""
        if self.active:
            self._move(CallerEvent.ACK)

    def on_cancel(self) -> None:
        """The caller gave up before we answered: 487 on the INVITE (RFC 3261 §9.2)."""
        if self.state is not CallState.RINGING:
            return
        self.signalling.respond(self.invite_transaction, 487, to_tag=self.dialog.local_tag)
        self._end(EndReason.CALLER_CANCELLED)

    def on_bye(self, transaction: tuple) -> None:
        """The caller hung up (before the answer: a BYE in the early dialog, whose INVITE then gets 487,
        RFC 3261 §15.1.2)."""
        self.signalling.respond(transaction, 200)
        if self.state is CallState.RINGING:
            self.signalling.respond(self.invite_transaction, 487, to_tag=self.dialog.local_tag)
            self._end(EndReason.CALLER_CANCELLED)
            return
        if self.state is CallState.CLOSING:
            self._end(self.end, self.end_detail)  # hung up during our goodbye: still ended by us
            return
        if self.ivr is not None:
            self.ivr.feed(CallerHungUp())
        if self.transfer_target is None:
            self._end(EndReason.CALLER_HUNG_UP)
        else:
            self._end(EndReason.TRANSFERRED, self.transfer_target)

    def on_reinvite(self, request: Request, transaction: tuple) -> None:
        """A re-INVITE: a new offer (hold, resume, a new address, codec or key) answered in the 200
        (RFC 3264 §8), or, without SDP, our offer in the 200 and its answer in the ACK."""
        self._offer_request(request, transaction)

    def on_update(self, request: Request, transaction: tuple) -> None:
        """An UPDATE (RFC 3311): an offer with SDP is answered like a re-INVITE's; without SDP, 200."""
        self._offer_request(request, transaction)

    def on_ack_body(self, body: bytes) -> None:
        """An ACK's body: the answer to our offer when it went in a 200 (a re-INVITE without SDP)."""
        if self._negotiation is None:
            return
        reply = self._negotiation.receive_ack(body)
        if self._awaiting_answer and reply is not None:
            self._first_answer(reply)
        elif reply is not None and reply.status != 200:
            log.warning("call=%s the ACK has no usable answer to our offer (%s): media unchanged", self.call_id,
                        reply.reason)
        elif reply is not None and reply.changed:
            self._media_changed(reply, "ACK")

    def _first_answer(self, reply: OfferReply) -> None:
        """The ACK's answer to our offer in the 200 to an INVITE without SDP: media starts, or, with no
        usable answer, the call ends (BYE; RFC 3261 §13.3.1.4 leaves us nothing else to do)."""
        self._awaiting_answer = False
        audio = reply.audio
        if reply.status != 200 or audio is None:
            why = reply.reason or "it rejects our audio stream (port 0)"
            log.warning("call=%s no usable answer in the ACK to our offer in the 200 OK (%s): hanging up",
                        self.call_id, why)
            self.hang_up(EndReason.NO_USABLE_ANSWER, why)
            return
        before = self.negotiated
        self.leg.remote = (audio.remote_address, audio.remote_port)
        configure_leg(self.leg, audio)
        self.leg.inband_dtmf = self.dtmf.leg_setting(audio.telephone_event_pt)
        self.negotiated = audio
        log.info("call=%s ACK answers our offer: %s %s -> %s:%s%s", self.call_id, audio.direction, audio.codec,
                 audio.remote_address, audio.remote_port, " srtp" if audio.srtp else "")
        if audio.codec != before.codec and self._playing is not None and self.leg.playing:
            self.play(*self._playing)  # what plays, again from its start, in the codec agreed
        if self.may_send and self.active and not self.on_hold and self.bridged_to is None:
            self.media.start_sending(self.leg)

    def on_reinvite_ack_timeout(self) -> None:
        """No ACK came for our final response to a re-INVITE: an offer of ours in it is given up
        (the media stays as it was), so the next offer is not refused 491 for ever."""
        if self._negotiation is not None and self._negotiation.pending is not None:
            log.warning("call=%s no ACK (with the answer to our offer) for our 200 OK to a re-INVITE within "
                        "64*T1: media unchanged", self.call_id)
            self._negotiation.pending = None

    def _offer_request(self, request: Request, transaction: tuple) -> None:
        method = request.method
        if self.state is CallState.RINGING and (method == "INVITE" or request.body):
            # RFC 3261 §14.2 and RFC 3311 §5.2: the INVITE's offer has no answer yet (no final response).
            self.signalling.respond(transaction, 500, headers=(
                ("Retry-After", str(random.randint(0, 10))),
                ("Warning", '399 acd "the call is not answered yet"')))
            return
        try:
            terms = self.session_timers.terms_for(request, self.config.config.sip.session_timer)
        except RemoteProtocolError as error:
            log.info("call=%s %s refused %d: %s", self.call_id, method, error.status, error.reason)
            self.signalling.respond(transaction, error.status, headers=refusal_headers(error))
            return
        if self._negotiation is None:
            self._negotiation = SessionNegotiation(
                local=SessionDescription.parse(self.sdp_answer), audio=self.negotiated if self.audio_enabled else None,
                local_address=self.media.address, local_port=self.local_port, srtp=self.srtp, srtp_key=self.srtp_key)
        reply = self._negotiation.receive(method, request.body, keep_codec=self.codec_pinned)
        if reply.status != 200:
            log.info("call=%s %s refused %d: %s", self.call_id, method, reply.status, reply.reason)
            self.signalling.respond(transaction, reply.status,
                                    headers=(("Warning", f'399 acd "{reply.reason[:100]}"'),))
            return
        self.signalling.respond(transaction, 200, to_tag=self.dialog.local_tag, body=reply.body,
                                headers=(("Contact", self.dialog.local_contact), *self.signalling.capability_headers(),
                                         *self.session_timers.headers_for(terms)))
        if self.active:
            self.session_timers.refreshed(terms)  # RFC 4028 §10: a 2xx to a re-INVITE or UPDATE refreshes
        if reply.changed:
            self._media_changed(reply, method)

    @property
    def current_sdp(self) -> bytes:
        """Our SDP as last agreed (the offer of our session refresh re-INVITE: the same, so nothing changes)."""
        return bytes(self._negotiation.local) if self._negotiation is not None else self.sdp_answer

    @property
    def codec_pinned(self) -> bool:
        """True while the call's codec cannot change: bridged (packets are relayed as they are), queued
        (agents are offered this codec), recorded or listened to (decoders are set up for it)."""
        return (self.bridged_to is not None or self.queued is not None or self.recording is not None
                or self.leg.on_audio is not None)

    @property
    def may_send(self) -> bool:
        """True unless the caller's last offer forbids us to send (hold: sendonly or inactive, the
        RFC 2543 hold address 0.0.0.0, or the audio stream disabled with port 0)."""
        negotiated = self.negotiated
        return (self.audio_enabled and negotiated.direction in ("sendrecv", "sendonly")
                and negotiated.remote_address != "0.0.0.0")

    def _media_changed(self, reply: OfferReply, method: str) -> None:
        """Apply what a new offer/answer agreed: where to send, codec, keys, and whether we may send."""
        could_send = self.may_send
        audio = reply.audio
        before = self.negotiated
        if audio is not None:
            if audio.remote_address != "0.0.0.0":
                self.leg.remote = (audio.remote_address, audio.remote_port)
            configure_leg(self.leg, audio)
            self.leg.inband_dtmf = self.dtmf.leg_setting(audio.telephone_event_pt)
            self.negotiated = audio
            if audio.codec != before.codec and self._playing is not None and self.leg.playing:
                self.play(*self._playing)  # what was playing, again from its start, in the new codec
        self.audio_enabled = audio is not None
        log.info("call=%s %s: media %s", self.call_id, method,
                 f"{audio.direction} {audio.codec} -> {audio.remote_address}:{audio.remote_port}"
                 f"{' srtp' if audio.srtp else ''}" if audio is not None else "stream disabled (port 0)")
        if self.may_send != could_send:
            self._caller_hold(not self.may_send)

    def _caller_hold(self, held: bool) -> None:
        """The caller put us on hold (we send nothing: prompts and music pause where they are, the
        agent's voice is not relayed; the call keeps its place) or took us back (all goes on)."""
        log.info("call=%s %s", self.call_id, "the caller holds the call: we stop sending" if held
                 else "the caller resumed the call: we send again")
        if self.state not in (CallState.ANSWERED, CallState.CONFIRMED, CallState.CLOSING):
            return
        relaying = self.bridged_to is not None and not self.on_hold
        if held:
            self.media.stop_sending(self.leg)
            if self.bridged_to is not None:
                self.bridged_to.relay_to = None
        elif relaying:
            self.bridged_to.relay_to = self.leg
        else:
            self.leg.next_send = None  # resume the prompt where it stopped, not skip the time on hold
            self.media.start_sending(self.leg)

    def on_notify(self, request: Request, transaction: tuple) -> None:
        """Progress of our REFER (RFC 3515 §2.4.5): a final sipfrag status ends our part of the call."""
        self.signalling.respond(transaction, 200)
        fragment = request.body.decode("utf-8", "replace").strip()
        parts = fragment.split(" ", 2)
        status = int(parts[1]) if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit() else 0
        log.info("call=%s transfer progress to %s: %s", self.call_id, self.transfer_target, fragment[:60] or "-")
        if status >= 200 and self.active:
            if status < 300:
                self.hang_up(EndReason.TRANSFERRED, self.transfer_target or "")
            else:
                self.hang_up(EndReason.TRANSFER_FAILED, f"{self.transfer_target} failed ({status})")

    def on_response(self, method: str, status: int | None) -> None:
        """A final response (None: timeout) to an in-dialog request we sent."""
        if method == "BYE":
            self._end(self.end or EndReason.HUNG_UP, self.end_detail, bye_status=status)
        elif method in ("INVITE", "UPDATE"):
            self.session_timers.refresh_answered(status)
        elif method == "REFER" and (status is None or status >= 300) and self.active:
            log.warning("call=%s transfer to %s refused by the caller's side (%s)", self.call_id,
                        self.transfer_target, status or "no answer")
            self.hang_up(EndReason.TRANSFER_FAILED, f"{self.transfer_target} refused ({status or 'timeout'})")

    def on_ack_timeout(self) -> None:
        """No ACK for our 200 OK within 64*T1: the caller is gone. RFC 3261 §13.3.1.4 asks for a BYE, and
        it is sent; but the call ends now (port released, record written "no ACK for 200 OK") instead
        of holding its port another 64*T1 for the answer a caller that never ACKed will not send."""
        self.hang_up(EndReason.NO_ACK)
        self._end(EndReason.NO_ACK)

    def hang_up(self, reason: EndReason, detail: str = "") -> None:
        """End the call from our side (BYE, or 480 while still ringing)."""
        if self.state is CallState.RINGING:
            self.signalling.respond(self.invite_transaction, 480, to_tag=self.dialog.local_tag)
            self._end(reason, detail)
        elif self.active or self.state is CallState.CLOSING:
            self.end, self.end_detail = reason, detail
            self._move(CallerEvent.HANG_UP)
            self._stop_media()
            self.signalling.send_in_dialog(self, "BYE")

    def close(self, reason: EndReason, prompts: tuple[str, ...], max_seconds: float) -> None:
        """End the call from our side after a last prompt (the server is stopping): the flow and the
        queue's music stop, the caller hears `prompts`, then BYE, `max_seconds` later at the latest.
        A call not answered yet, or with nothing to hear, is hung up at once."""
        if not self.active or not prompts or not self.may_send:
            self.hang_up(reason)
            return
        self._move(CallerEvent.CLOSE)
        self.end, self.end_detail = reason, ""
        if self.ivr is not None:
            self.ivr.stop()
        self._after_banner = None
        self._hang_up_after_confirmation = False
        self.on_hold = False
        self.leg.relay_to = None
        self.media.start_sending(self.leg)
        self.play(prompts, GOODBYE_PLAYBACK)
        self._close_timer = self.reactor.callLater(max_seconds, self._closed)
        log.info("call=%s closing (%s): playing %s, then BYE", self.call_id, reason.describe(), " ".join(prompts))

    def _closed(self) -> None:
        self._close_timer = None
        if self.state is CallState.CLOSING:
            self.hang_up(self.end or EndReason.HUNG_UP, self.end_detail)

    def end_now(self, reason: EndReason) -> None:
        """Write the call's end without waiting for the caller's side any more (the server exits)."""
        self._end(self.end or reason, self.end_detail)

    def transfer(self, target: str) -> None:
        """Blind transfer: REFER the caller to `target` at this server's address (RFC 3515)."""
        if not self.active:
            return
        self.transfer_target = target
        sip = self.config.config.sip
        refer_to = f"<sip:{target}@{sip.public_address}:{sip.port}>"
        log.info("call=%s transferring to %s (REFER)", self.call_id, refer_to)
        self.signalling.send_in_dialog(self, "REFER", extra_headers=(("Refer-To", refer_to),
                                                                      ("Referred-By", f"<{self.dialog.local_uri}>")))

    # ---- media -------------------------------------------------------------------------------
    def play(self, prompts: tuple[str, ...], playback_id: int) -> None:
        """Queue prompts on the leg; a prompt missing since the last reload is skipped and logged."""
        self._playing = (prompts, playback_id)
        audio = []
        for name in prompts:
            try:
                audio.append(self.media.encoded(name, self.negotiated.codec))
            except (KeyError, OSError, ValueError) as error:
                log.error("call=%s cannot play prompt %r: %s", self.call_id, name, error)
        self.leg.play(b"".join(audio), playback_id)

    def join_queue(self, queued: QueuedCall) -> None:
        """The ACD holds this call now (a queue step, or a transfer to a queue)."""
        self.queued = queued

    def play_banner(self, prompts: tuple[str, ...], then: Callable[[], None]) -> None:
        """Play incident banners before the flow; `then` runs when they finished."""
        self._after_banner = then
        self.play(prompts, BANNER_PLAYBACK)

    def confirm_callback(self) -> None:
        """The caller's place is kept for a callback: confirm it, then hang up."""
        self._hang_up_after_confirmation = True
        self.play(("callback_confirm",), CALLBACK_CONFIRM_PLAYBACK)

    def on_digit(self, digit: str, method: str = "rfc4733") -> None:
        """A DTMF digit from RTP (RFC 4733 or in-band) or SIP INFO; never logged while masked digits are
        collected."""
        if not self.active or self.ivr is None or not self.dtmf.accepts(method, self.leg):
            return
        wait = self.queued.wait if self.queued is not None else None
        if wait is not None:
            wait.on_digit(digit)
            return
        if self.bridged_to is not None:
            return  # talking to an agent: keys are not for the IVR
        if self._after_banner is not None:
            # A key during the incident banner: the caller knows what they want. The banner stops, the
            # flow starts, and the key goes to it (a barge-in welcome passes it on to the menu).
            log.info("call=%s dtmf digit=%s via=%s during the incident banner: skipping it", self.call_id,
                     "*" if self.ivr.flow_run.collecting_masked else digit, method)
            start, self._after_banner = self._after_banner, None
            self.leg.stop()
            start()
            if self.active and self.ivr is not None:
                self.ivr.feed(DigitReceived(digit=digit))
            return
        masked = self.ivr.flow_run.collecting_masked
        log.info("call=%s dtmf digit=%s via=%s step=%s", self.call_id, "*" if masked else digit, method,
                 self.ivr.flow_run.step_name)
        self.ivr.feed(DigitReceived(digit=digit))

    def on_playback_finished(self, playback_id: int) -> None:
        """The leg played everything asked for: the queue's music (ids < 0) or the IVR's prompts."""
        if self.state is CallState.CLOSING and playback_id == GOODBYE_PLAYBACK:
            self._closed()
            return
        if playback_id == EARLY_MEDIA_PLAYBACK:
            if self.state is CallState.RINGING:
                self._announced()
            return
        if not self.active:
            return
        if playback_id < 0:
            wait = self.queued.wait if self.queued is not None else None
            if self._after_banner is not None:
                start, self._after_banner = self._after_banner, None
                start()
            elif self._hang_up_after_confirmation:
                self.hang_up(EndReason.CALLBACK_REQUESTED)
            elif self.on_hold:
                self.play(("moh",), HOLD_MUSIC_PLAYBACK)  # hold music loops until the agent resumes
            elif wait is not None:
                wait.on_playback_finished(playback_id)
        elif self.ivr is not None:
            self.ivr.feed(PlaybackFinished(playback_id=playback_id))

    def bridge(self, agent_rtp: RtpLeg) -> None:
        """Connect the caller's media to the agent's, both ways (we relay RTP between the legs)."""
        self.media.stop_sending(self.leg)
        self.leg.stop()
        self.leg.relay_to = agent_rtp
        agent_rtp.relay_to = self.leg if self.may_send else None
        self.bridged_to = agent_rtp
        if self.recording is not None:
            recording = self.recording
            agent_rtp.tap_in = lambda payload: recording.other_audio(payload, self.reactor.seconds())

    def start_recording(self, why: str) -> None:
        """Record both sides from now on (a route or queue asks for it); PIN entry is silenced."""
        if self.recording is not None:
            return
        safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.call_id)
        path = self.config.config.data_dir / "recordings" / f"{safe_id}-call.wav"
        self.recording = recording = CallRecording(path, codec=self.negotiated.codec, start=self.reactor.seconds())
        clock = self.reactor.seconds
        self.leg.tap_in = lambda payload: recording.caller_audio(payload, clock())
        self.leg.tap_out = lambda payload: recording.other_audio(payload, clock())
        log.info("call=%s recording the call (%s) to %s", self.call_id, why, path)

    def masking_changed(self, masked: bool) -> None:
        """Masked digits are (no longer) being collected: silence the recording meanwhile."""
        if self.recording is not None:
            self.recording.set_masked(masked, self.reactor.seconds())

    def set_hold(self, held: bool) -> None:
        """The agent put the caller on hold (the caller hears music) or took them back."""
        agent_rtp = self.bridged_to
        if agent_rtp is None or held == self.on_hold:
            return
        self.on_hold = held
        if held:
            self.leg.relay_to = None
            agent_rtp.relay_to = None
            if self.may_send:
                self.media.start_sending(self.leg)
            self.play(("moh",), HOLD_MUSIC_PLAYBACK)
        else:
            self.media.stop_sending(self.leg)
            self.leg.stop()
            self.leg.relay_to = agent_rtp
            agent_rtp.relay_to = self.leg if self.may_send else None
        log.info("call=%s %s", self.call_id, "on hold (music)" if held else "off hold (talking again)")

    def unbridge(self) -> None:
        """Disconnect from the agent's media (a transfer); we send media to the caller again."""
        if self.bridged_to is not None:
            self.bridged_to.relay_to = None
        self.bridged_to = None
        self.on_hold = False
        self.leg.relay_to = None
        self.leg.stop()
        self.leg.next_send = None
        if self.may_send:
            self.media.start_sending(self.leg)

    def run_flow(self, flow) -> None:
        """Start another flow for this caller (a transfer to a number, a survey), keeping what we know."""
        old = self.ivr
        old.stop()
        self.ivr = self.runner_for(self, flow, old.flow_run.context, old)
        self.ivr.start()

    # ---- the end -----------------------------------------------------------------------------
    def _stop_media(self) -> None:
        self.media.stop_sending(self.leg)
        self.leg.sending = False
        self.leg.relay_to = None
        if self.bridged_to is not None:
            self.bridged_to.relay_to = None

    def _end(self, reason: EndReason, detail: str = "", bye_status: int | None = None) -> None:
        if self.state is CallState.ENDED:
            return
        self._move(CallerEvent.END)
        self.end, self.end_detail = reason, detail
        for timer in (self._answer_timer, self._close_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self.session_timers.release()
        self.provisionals.release()
        if self.ivr is not None:
            self.ivr.stop()
        wait = self.queued.wait if self.queued is not None else None
        if wait is not None:
            wait.stop()
        self._stop_media()
        self.on_ended(self)
        self._close_recording()
        self.media.release(self.leg)
        self._write_end(bye_status)
        if self.ivr is not None:
            self.ivr.release()  # no session <-> runner cycle: the call's objects go now, not at a GC

    def _close_recording(self) -> None:
        if self.recording is None:
            return
        self.leg.tap_in = self.leg.tap_out = None
        if self.bridged_to is not None:
            self.bridged_to.tap_in = None
        path, seconds, masked = self.recording.close(self.reactor.seconds())
        self.recording = None
        self.records.set_field(self.call_id, "recording_path", str(path))
        log.info("call=%s recording saved: %s (%.1fs, masked spans %s)", self.call_id, path, seconds,
                 ", ".join(f"{a:.1f}-{b:.1f}s" for a, b in masked) or "none")

    def _write_end(self, bye_status: int | None) -> None:
        """The call's record, webhook, metrics and log line."""
        now = self.reactor.seconds()
        talk = now - self.answered_at if self.answered_at is not None else 0.0
        reason, result = self.end_reason, self.end.result
        if self.transferred_to is not None and result in ("caller_hangup", "agent_hangup", "completed"):
            result = "transferred"  # an agent sent the caller on: that is what became of the call
        context = self.context
        survey = {key: context.get(key) for key in ("q1", "q2", "q3")
                  if context is not None and context.get(key) is not None}
        if survey:
            self.records.set_field(self.call_id, "survey", {k: int(v) for k, v in survey.items() if str(v).isdigit()})
        # A caller who asked for a callback: the call goes on without their leg; its record and
        # `acd_calls_total` are written when the call back is over (Connections.end_callback).
        callback_pending = self.queued is not None and self.queued.callback is not None
        if not callback_pending:
            self.records.call_ended(self.call_id, outcome=result, reason=reason, at=now)
        queue = self.queued.queue if self.queued is not None else None
        agent = self.queued.agent_id if self.queued is not None else None
        self.webhooks.call_event("call-ended", call_id=self.call_id, context=context, internal=self.internal,
                                 outcome=result, reason=reason, seconds=round(talk, 1), queue=queue, agent=agent)
        metrics = self.metrics
        if not callback_pending:
            metrics.calls.labels(self.trunk if not self.internal else "agents", result).inc()
        if self.end is EndReason.CALLER_HUNG_UP and self.ivr is not None and queue is None and self.bridged_to is None:
            metrics.ivr_hangups.labels(self.ivr.flow_run.flow.name, self.ivr.flow_run.step_name or "-").inc()
        choices = self.ivr.choices if self.ivr is not None else []
        log.info("call=%s ended reason=%r duration=%.1fs answered=%s choices=%s%s",
                 self.call_id, reason, talk, self.answered_at is not None, ",".join(choices) or "-",
                 "" if bye_status is None else f" bye_status={bye_status}")


def configure_leg(leg: RtpLeg, negotiated: NegotiatedAudio) -> None:
    """Set a leg's codec, payload types and SRTP keys from an offer/answer (not its remote address)."""
    leg.codec = negotiated.codec
    leg.payload_type = negotiated.payload_type
    leg.silence = bytes([0xFF if negotiated.codec == "PCMU" else 0xD5]) * 160
    leg.telephone_event_pt = negotiated.telephone_event_pt
    leg.use_srtp(negotiated.srtp_local_key, negotiated.srtp_remote_key)
