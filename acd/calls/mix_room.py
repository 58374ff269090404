"""MixRoom: the legs of one monitored call, mixed on the media clock (both media planes use it).

While a supervisor is on a bridged call, the caller's, the agent's and the supervisor's legs are in
one room: each leg hands the room what it receives (decrypted, when SRTP), and every 20 ms the room
sends each leg the mix the plan allows it (acd.media.mixer), in the leg's own RTP stream (its SSRC,
sequence and timestamps; SRTP-protected by the leg). Two rules keep the call's own state in charge
without the room knowing it:
- between the two bridged legs, a party is heard only while its leg relays to the other
  (`relay_to`): a caller on hold is not heard by the agent, as without a supervisor;
- a leg the media clock paces (a prompt, hold music) gets no mix: it hears what it plays.
Dissolving the room gives the legs back to the relay (nothing else was changed).
"""

from __future__ import annotations

import logging
from typing import Callable

from ..media.mixer import Mixer
from ..media.prompts import FRAME_SECONDS
from .rtp_leg import MAX_CATCH_UP_SECONDS, RtpLeg

__all__ = ["MixRoom"]

log = logging.getLogger("acd.media")


class MixRoom:
    """One call's mix. `is_paced(leg)` says whether the media clock paces the leg (plays to it)."""

    def __init__(self, *, call_id: str, is_paced: Callable[[RtpLeg], bool]) -> None:
        self.call_id = call_id
        self.is_paced = is_paced
        self.mixer: Mixer[RtpLeg] = Mixer()
        self.legs: set[RtpLeg] = set()
        self.bridged: frozenset[RtpLeg] = frozenset()
        self.next_send: float | None = None
        self.frames_sent = 0

    def set_plan(self, hearing: dict[RtpLeg, tuple[RtpLeg, ...]], bridged: tuple[RtpLeg, ...]) -> None:
        """Who hears whom (listener -> sources); `bridged`: the call's two relayed legs."""
        members = set(hearing) | {source for sources in hearing.values() for source in sources}
        self.mixer.set_plan(hearing, {leg: leg.codec for leg in members})
        for leg in self.legs - members:
            leg.mix_room = None
        for leg in members - self.legs:
            leg.mix_room = self
            leg.marker = True  # a new stream of ours starts (RFC 3551 §4.1)
        self.legs = members
        self.bridged = frozenset(bridged)

    def discard(self, leg: RtpLeg) -> None:
        """A leg that closed: no longer heard nor sent to."""
        if leg in self.legs:
            leg.mix_room = None
            self.legs.discard(leg)
            hearing = {listener: tuple(s for s in sources if s is not leg)
                       for listener, sources in self.mixer.hearing.items() if listener is not leg}
            self.mixer.set_plan(hearing, {member: member.codec for member in self.legs})

    def dissolve(self) -> None:
        """Every leg back to what it did before (relay, or nothing)."""
        for leg in self.legs:
            leg.mix_room = None
        self.legs = set()
        self.mixer.set_plan({}, {})

    def heard(self, leg: RtpLeg, payload: bytes) -> None:
        """Audio a member received."""
        self.mixer.heard(leg, payload)

    def tick(self, now: float) -> None:
        """Send every mix due by `now` (the media clock calls it every 20 ms, as it does legs)."""
        if self.next_send is None:
            self.next_send = now
        if now - self.next_send > MAX_CATCH_UP_SECONDS:
            self.next_send += int((now - self.next_send) / FRAME_SECONDS) * FRAME_SECONDS
        while self.next_send <= now + FRAME_SECONDS / 2:
            for leg, payload in self.mixer.tick(self._may_hear, self._wants):
                leg.send_audio(payload)
                self.frames_sent += 1
            self.next_send += FRAME_SECONDS

    def _may_hear(self, listener: RtpLeg, source: RtpLeg) -> bool:
        bridged = self.bridged
        return source.relay_to is listener if listener in bridged and source in bridged else True

    def _wants(self, leg: RtpLeg) -> bool:
        return (leg.transport is not None and leg.sending and not leg.released and bool(leg.remote[1])
                and not self.is_paced(leg))
