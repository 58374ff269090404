"""CallSession: one inbound call from INVITE to the end, gluing SIP, media and the IVR interpreter.

The session carries out what the pure parts decide: it answers, plays what the IVR asks, feeds
DTMF and playback ends back, and hangs up. All of it on the reactor thread. `reactor` must provide
IReactorTime (callLater, seconds).
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from ..ivr.events import (CallerHungUp, DigitReceived, FlowEnded, HangUp, MenuChoiceMade, PlaybackFinished,
                          PlayPrompts, StepEntered, StopPlayback)
from ..ivr.interpreter import FlowRun
from ..media.prompts import PromptLibrary
from ..media.sdp import NegotiatedAudio
from ..sip.dialog import Dialog
from ..sip.message import Request
from .rtp_leg import MediaClock, RtpLeg

if TYPE_CHECKING:
    from ..config.model import Route
    from .sip_server import SipServer

__all__ = ["CallSession", "CallState"]

log = logging.getLogger("acd.call")


class CallState(enum.Enum):
    """Where an inbound call is."""

    RINGING = "ringing"        # 180 sent, answer pending
    ANSWERED = "answered"      # 200 sent, waiting for ACK (media already runs)
    CONFIRMED = "confirmed"    # ACK received
    ENDING = "ending"          # our BYE sent
    ENDED = "ended"


class CallSession:
    """One call: its dialog, its media leg and its walk through an IVR flow."""

    def __init__(self, *, server: "SipServer", reactor, call_id: str, invite: Request, invite_transaction: tuple,
                 dialog: Dialog, route: "Route", trunk: str, flow_run: FlowRun, leg: RtpLeg, local_port: int,
                 negotiated: NegotiatedAudio, sdp_answer: bytes, prompts: PromptLibrary,
                 media_clock: MediaClock) -> None:
        self.server = server
        self.reactor = reactor
        self.call_id = call_id
        self.invite = invite
        self.invite_transaction = invite_transaction
        self.dialog = dialog
        self.route = route
        self.trunk = trunk
        self.flow_run = flow_run
        self.leg = leg
        self.local_port = local_port
        self.negotiated = negotiated
        self.sdp_answer = sdp_answer
        self.prompts = prompts
        self.media_clock = media_clock
        self.state = CallState.RINGING
        self.started_at = reactor.seconds()
        self.answered_at: float | None = None
        self.end_reason = ""
        self.choices: list[str] = []
        self._answer_timer = None
        self._flow_timer = None
        self.bye_transaction: tuple | None = None

    # ---- signalling --------------------------------------------------------------------------
    def ring_then_answer(self, delay: float) -> None:
        """Send 180 Ringing, answer after `delay` seconds (a CANCEL may come first)."""
        self.server.respond(self.invite_transaction, 180, to_tag=self.dialog.local_tag)
        self._answer_timer = self.reactor.callLater(delay, self.answer)

    def answer(self) -> None:
        """Send 200 OK with our SDP answer, start media and the flow."""
        self._answer_timer = None
        if self.state is not CallState.RINGING:
            return
        self.server.respond(self.invite_transaction, 200, to_tag=self.dialog.local_tag, body=self.sdp_answer,
                            headers=(("Contact", self.dialog.local_contact), *self.server.capability_headers()))
        self.state = CallState.ANSWERED
        self.answered_at = self.reactor.seconds()
        log.info("call=%s answered dialled=%s flow=%s codec=%s rtp=%s->%s:%s", self.call_id, self.route.number or
                 self.route.pattern.pattern, self.flow_run.flow.name, self.negotiated.codec, self.local_port,
                 self.negotiated.remote_address, self.negotiated.remote_port)
        if self.negotiated.direction in ("sendrecv", "sendonly") and self.negotiated.remote_address != "0.0.0.0":
            self.media_clock.add(self.leg)
        self._carry_out(self.flow_run.start(self.reactor.seconds()))

    def on_ack(self) -> None:
        """The caller confirmed our 200 OK."""
        if self.state is CallState.ANSWERED:
            self.state = CallState.CONFIRMED

    def on_cancel(self) -> None:
        """The caller gave up before we answered: 487 on the INVITE (RFC 3261 §9.2)."""
        if self.state is not CallState.RINGING:
            return
        self.server.respond(self.invite_transaction, 487, to_tag=self.dialog.local_tag)
        self._end("caller cancelled before answer")

    def on_bye(self, transaction: tuple) -> None:
        """The caller hung up."""
        self.server.respond(transaction, 200)
        self._carry_out(self.flow_run.handle(CallerHungUp(), self.reactor.seconds()))
        self._end("caller hung up")

    def on_reinvite(self, request: Request, transaction: tuple) -> None:
        """A re-INVITE (refresh or hold): answer with our unchanged session description."""
        self.server.respond(transaction, 200, to_tag=self.dialog.local_tag, body=self.sdp_answer,
                            headers=(("Contact", self.dialog.local_contact),))

    def on_ack_timeout(self) -> None:
        """No ACK for our 200 OK: the caller is gone (RFC 3261 §13.3.1.4), end with BYE."""
        self.hang_up("no ACK for 200 OK")

    def on_bye_done(self, status: int | None) -> None:
        """Our BYE was answered (or timed out: status None)."""
        self._end(self.end_reason or "hung up", bye_status=status)

    def hang_up(self, reason: str) -> None:
        """End the call from our side (BYE, or 480 while still ringing)."""
        if self.state is CallState.RINGING:
            self.server.respond(self.invite_transaction, 480, to_tag=self.dialog.local_tag)
            self._end(reason)
        elif self.state in (CallState.ANSWERED, CallState.CONFIRMED):
            self.end_reason = reason
            self.state = CallState.ENDING
            self._stop_media()
            self.bye_transaction = self.server.send_in_dialog(self, "BYE")

    # ---- media and IVR -----------------------------------------------------------------------
    def on_digit(self, digit: str, method: str = "rfc4733") -> None:
        """A DTMF digit from RTP or SIP INFO."""
        if self.state not in (CallState.ANSWERED, CallState.CONFIRMED):
            return
        log.info("call=%s dtmf digit=%s via=%s step=%s", self.call_id, digit, method, self.flow_run.step_name)
        self._carry_out(self.flow_run.handle(DigitReceived(digit=digit), self.reactor.seconds()))

    def on_playback_finished(self, playback_id: int) -> None:
        """The leg played everything asked for by PlayPrompts `playback_id`."""
        self._carry_out(self.flow_run.handle(PlaybackFinished(playback_id=playback_id), self.reactor.seconds()))

    def _on_flow_timer(self) -> None:
        self._flow_timer = None
        self._carry_out(self.flow_run.handle_timers(self.reactor.seconds()))

    def _carry_out(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, PlayPrompts):
                audio = b"".join(self.prompts.encoded(name, self.negotiated.codec) for name in action.prompts)
                self.leg.play(audio, action.playback_id)
            elif isinstance(action, StopPlayback):
                self.leg.stop()
            elif isinstance(action, MenuChoiceMade):
                self.choices.append(f"{action.step}={action.digit}")
                log.info("call=%s menu=%s choice=%s next=%s", self.call_id, action.step, action.digit, action.next_step)
            elif isinstance(action, StepEntered):
                log.debug("call=%s flow=%s step=%s", self.call_id, action.flow, action.step)
            elif isinstance(action, HangUp):
                self.hang_up(action.reason)
            elif isinstance(action, FlowEnded):
                log.info("call=%s flow=%s ended outcome=%r path=%s", self.call_id, self.flow_run.flow.name,
                         action.outcome, ">".join(self.flow_run.path))
        self._rearm_flow_timer()

    def _rearm_flow_timer(self) -> None:
        if self._flow_timer is not None and self._flow_timer.active():
            self._flow_timer.cancel()
        self._flow_timer = None
        deadline = self.flow_run.next_deadline()
        if deadline is not None and self.state is not CallState.ENDED:
            self._flow_timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._on_flow_timer)

    # ---- the end -----------------------------------------------------------------------------
    def _stop_media(self) -> None:
        self.media_clock.remove(self.leg)
        self.leg.sending = False

    def _end(self, reason: str, bye_status: int | None = None) -> None:
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.end_reason = reason
        for timer in (self._answer_timer, self._flow_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._stop_media()
        if self.leg.transport is not None:
            self.leg.transport.stopListening()
        now = self.reactor.seconds()
        talk = now - self.answered_at if self.answered_at is not None else 0.0
        log.info("call=%s ended reason=%r duration=%.1fs answered=%s choices=%s rtp_sent=%d rtp_received=%d%s",
                 self.call_id, reason, talk, self.answered_at is not None, ",".join(self.choices) or "-",
                 self.leg.packets_sent, self.leg.packets_received,
                 "" if bye_status is None else f" bye_status={bye_status}")
        self.server.forget(self)
