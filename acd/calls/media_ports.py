"""MediaPorts: the one place RTP legs are made, bound to a port, paced and given prompts.

It bundles the port allocator, the shared 20 ms MediaClock, the prompt library (swapped by a
reload) and the random source for SSRCs and SDP session ids; SRTP keys come from the OS's
cryptographic random source instead. `reactor` provides IReactorTime and IReactorUDP.
"""

from __future__ import annotations

import random
import secrets
from typing import TYPE_CHECKING, Callable

from ..media.prompts import PromptLibrary
from ..media.sdes import KEY_SALT_BYTES
from .media_figures import account_leg_figures
from .mix_room import MixRoom
from .rtcp_port import open_rtcp
from .rtp_leg import MediaClock, RtpLeg, RtpPortAllocator

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["MediaPorts"]


class MediaPorts:
    """Implements the `Media` port (acd.calls.ports) on real UDP ports of one address and range."""

    def __init__(self, reactor, *, address: str, port_min: int, port_max: int, prompts: PromptLibrary,
                 rng: random.Random | None = None, metrics: "Metrics | None" = None, symmetric: str = "off",
                 rtcp_interval_seconds: float = 5.0) -> None:
        """`metrics` counts the SRTP packets legs drop (acd_srtp_auth_failures_total) and the legs' loss
        and jitter; `symmetric`: the legs' symmetric RTP setting (acd.media.symmetric_rtp);
        `rtcp_interval_seconds`: each leg's RTCP report interval (0: no RTCP; acd.calls.rtcp_port)."""
        self.symmetric = symmetric
        self.rtcp_interval_seconds = rtcp_interval_seconds
        self.reactor = reactor
        self.metrics = metrics
        self.address = address
        self.port_min = port_min
        self.port_max = port_max
        self.prompts = prompts
        self.rng = rng or random.Random()
        self.clock = MediaClock(reactor)
        self.allocator = RtpPortAllocator(reactor, address, port_min, port_max)
        self.on_media_lost: Callable[[list[str], str], None] = lambda call_ids, why: None  # never: media lives here
        self.rooms: dict[str, MixRoom] = {}

    def new_leg(self, *, call_id: str, codec: str, payload_type: int, telephone_event_pt: int | None,
                on_digit: Callable[[str], None], on_playback_finished: Callable[[int], None],
                near: str | None = None) -> RtpLeg:
        """An unbound leg (no remote yet); `open()` binds it. `near` matters only to worker planes."""
        return RtpLeg(call_id=call_id, codec=codec, payload_type=payload_type, remote=("0.0.0.0", 0),
                      telephone_event_pt=telephone_event_pt, on_digit=on_digit,
                      on_playback_finished=on_playback_finished, rng=self.rng, clock=self.reactor.seconds,
                      on_srtp_failure=self.metrics.srtp_auth_failures.inc if self.metrics is not None else lambda: None,
                      symmetric=self.symmetric)

    def open(self, leg: RtpLeg) -> int | None:
        """Bind `leg` to a free port of the range (and its RTCP to the next); None when every port is taken."""
        port = self.allocator.listen(leg)
        if port is not None:
            open_rtcp(self.reactor, leg, port, self.address, interval_seconds=self.rtcp_interval_seconds, rng=self.rng)
        return port

    def release(self, leg: RtpLeg) -> None:
        """The leg ended: unbind its port and count its packets."""
        if leg.transport is None or leg.released:
            return
        leg.released = True
        self.clock.remove(leg)
        if leg.mix_room is not None:
            leg.mix_room.discard(leg)
        if leg.rtcp is not None:
            leg.rtcp.close()
        leg.transport.stopListening()
        if self.metrics is not None:
            self.metrics.rtp_sent.inc(leg.packets_sent)
            self.metrics.rtp_received.inc(leg.packets_received)
            self.metrics.rtp_late.inc(leg.frames_dropped)
        account_leg_figures(self.metrics, leg.call_id, leg.figures())

    def stop(self) -> None:
        """The server is exiting (nothing to stop: the legs live in this process)."""

    def start_sending(self, leg: RtpLeg) -> None:
        """Pace `leg`'s prompts (or silence) from the next tick on."""
        self.clock.add(leg)

    def stop_sending(self, leg: RtpLeg) -> None:
        """Stop pacing `leg` (bridged legs relay instead; ended legs are silent)."""
        self.clock.remove(leg)

    def set_mix(self, call_id: str, hearing: dict[RtpLeg, tuple[RtpLeg, ...]] | None,
                bridged: tuple[RtpLeg, ...] = ()) -> None:
        """Mix `call_id`'s legs by `hearing` (listener -> sources) from the next tick; None: stop mixing
        (the bridged legs relay again). `bridged`: the call's two relayed legs (acd.calls.mix_room)."""
        room = self.rooms.get(call_id)
        if not hearing:
            if room is not None:
                del self.rooms[call_id]
                room.dissolve()
                self.clock.remove(room)
            return
        if room is None:
            room = self.rooms[call_id] = MixRoom(call_id=call_id, is_paced=self.clock.legs.__contains__)
            self.clock.add(room)
        room.set_plan(hearing, bridged)

    def encoded(self, prompt: str, codec: str) -> bytes:
        """A prompt's audio in `codec` (KeyError when no such prompt)."""
        return self.prompts.encoded(prompt, codec)

    def new_srtp_key(self) -> bytes:
        """A fresh SRTP master key||salt for one leg (RFC 4568 §6.1: never reused across sessions)."""
        return secrets.token_bytes(KEY_SALT_BYTES)

    def session_id(self) -> int:
        """A fresh SDP session id (RFC 4566 §5.2)."""
        return self.rng.getrandbits(31)
