"""The narrow ports the call shell's objects are built with, instead of one server they reach through.

Each shell object (CallSession, AgentLeg, IvrRunner, QueueWait, AcdService, RegistrarService) takes
only the ports it uses, by constructor. The composition root (`acd/app.py`) passes the concrete
implementations: `SipServer` is the Signalling, `MediaPorts` the media, `EventHub` the EventSink,
`RecordStore` the Records, `LiveConfig` the ConfigSource. Tests pass the same objects built on a
`task.Clock` and in-memory transports (tests/shell/).

Rules of this file: Protocols only, no behaviour; nothing here imports a shell module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from ..config.model import Config
    from ..sip.dialog import Dialog
    from ..sip.message import Request, Response
    from .rtp_leg import RtpLeg

__all__ = ["ConfigSource", "DialogOwner", "EventSink", "InviteOwner", "Media", "Records", "Signalling",
           "Webhooks", "Headers"]

Headers = tuple[tuple[str, str], ...]


class ConfigSource(Protocol):
    """The config in force now (a reload swaps it; objects read it when they need it)."""

    @property
    def config(self) -> "Config": ...

    @property
    def crm(self) -> Any:
        """The CRM client built from the config in force (None without CRM URLs)."""

    def set_membership(self, agent_id: str, queue: str, penalty: int | None) -> None:
        """Change one agent's membership of one queue until restart (None: not a member)."""


class DialogOwner(Protocol):
    """Whoever sent an in-dialog request: gets its final response (None when it timed out)."""

    call_id: str
    dialog: "Dialog"

    def on_response(self, method: str, status: int | None) -> None: ...


class InviteOwner(Protocol):
    """An outgoing INVITE's owner (an agent leg, a callback leg): gets every response to it."""

    call_id: str

    def on_invite_response(self, response: "Response") -> None: ...

    def on_invite_timeout(self) -> None: ...


class Signalling(Protocol):
    """Sends SIP: responses to server transactions, requests in and out of dialogs."""

    def respond(self, transaction: tuple, status: int, *, to_tag: str | None = None, body: bytes = b"",
                headers: Headers = (), stateless: bool = False) -> None: ...

    def send_in_dialog(self, owner: DialogOwner, method: str, extra_headers: Headers = (), body: bytes = b"",
                       content_type: str | None = None) -> tuple: ...

    def send_invite(self, owner: InviteOwner, invite: "Request", destination: tuple[str, int],
                    transport: str) -> tuple: ...

    def send_out_of_dialog(self, request: "Request", destination: tuple[str, int], transport: str,
                           what: str) -> tuple: ...

    def send_cancel(self, cancel: "Request", destination: tuple[str, int], transport: str) -> None: ...

    def send_ack(self, ack: "Request", destination: tuple[str, int], transport: str) -> None: ...

    def forget_invite(self, owner: InviteOwner, transaction: tuple | None) -> None: ...

    def capability_headers(self) -> Headers: ...

    def contact(self, transport: str, secure: bool = False) -> str: ...


class Media(Protocol):
    """RTP legs: ports to bind them to, the 20 ms clock that paces them, prompts encoded for them.
    In this process (`MediaPorts`) or in media worker processes (`RemoteMediaPorts`, whose legs
    are stand-ins with the same attributes)."""

    address: str  # our RTP address, for SDP

    def open(self, leg: "RtpLeg") -> int | None: ...

    def release(self, leg: "RtpLeg") -> None:
        """The leg ended: its port is freed and its packets counted."""

    def start_sending(self, leg: "RtpLeg") -> None: ...

    def stop_sending(self, leg: "RtpLeg") -> None: ...

    def encoded(self, prompt: str, codec: str) -> bytes: ...

    def set_mix(self, call_id: str, hearing: "dict[RtpLeg, tuple[RtpLeg, ...]] | None",
                bridged: "tuple[RtpLeg, ...]" = ()) -> None:
        """Mix a monitored call's legs (listener -> sources heard); None: the bridge relays again.
        All the legs must be `near` one call (one media worker)."""

    def new_leg(self, *, call_id: str, codec: str, payload_type: int, telephone_event_pt: int | None,
                on_digit: Callable[..., None], on_playback_finished: Callable[[int], None],
                near: str | None = None) -> "RtpLeg":
        """`near`: the call this leg will be bridged with (both legs on one media worker).
        `on_digit(digit)` for RFC 4733, `on_digit(digit, "inband")` when the leg's `inband_dtmf` is on."""

    def session_id(self) -> int: ...

    def new_srtp_key(self) -> bytes: ...


class EventSink(Protocol):
    """Live events for the agents' screen pop and the wallboard (server-sent events)."""

    def publish(self, topic: str, event: dict[str, Any], *, retain: bool = False) -> None: ...


class Records(Protocol):
    """Where every call leaves its record (`acd.store.records.RecordStore`, or nothing for agents' own calls)."""

    def call_arrived(self, call_id: str, *, trunk: str, caller: str, dialled: str, at: float) -> None: ...

    def call_answered(self, call_id: str, *, at: float) -> None: ...

    def ivr_step(self, call_id: str, *, flow: str, step: str, at: float) -> None: ...

    def call_queued(self, call_id: str, *, queue: str, at: float) -> None: ...

    def call_connected(self, call_id: str, *, agent: str, at: float, queue: str | None = None) -> None: ...

    def call_priority(self, call_id: str, *, priority: int, source: str) -> None: ...

    def routing_event(self, call_id: str, *, at: float, what: str) -> None: ...

    def monitoring(self, call_id: str, *, supervisor: str, agent: str, event: str, mode: str, via: str,
                   at: float, detail: str = "") -> None: ...

    def callback_requested(self, call_id: str, *, at: float) -> None: ...

    def talk_ended(self, call_id: str, *, at: float) -> None: ...

    def call_ended(self, call_id: str, *, outcome: str, reason: str, at: float) -> None: ...

    def set_field(self, call_id: str, name: str, value: Any) -> None: ...

    def queue_log(self, *, at: float, call_id: str, queue: str, agent: str, event: str, data1: str = "",
                  data2: str = "", data3: str = "") -> None: ...

    def agent_state(self, agent_id: str, *, state: str, reason: str, at: float) -> None: ...

    def agent_presence(self, agent_id: str, *, state: str, queues: Any, reason: str, at: float,
                       pause_reason: str | None = None, pending: str | None = None,
                       pending_reason: str | None = None) -> None: ...


class Webhooks(Protocol):
    """Tells an external CRM about call events (fire and forget)."""

    def call_event(self, event_type: str, *, call_id: str, context: Any, internal: bool = False,
                   **fields: Any) -> None: ...
