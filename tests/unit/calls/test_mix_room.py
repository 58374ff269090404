"""MixRoom on real RtpLeg objects: SRTP legs are mixed on their decrypted audio and each gets its mix
protected under its own key; the bridged pair is heard only while it relays (hold); paced legs get no
mix; dissolving gives the bridge back to the relay."""

from __future__ import annotations

import random

import pylibsrtp

from acd.calls.mix_room import MixRoom
from acd.calls.rtp_leg import RtpLeg
from acd.media.mixer import mix_frames
from acd.media.rtp import build_rtp_header

KEYS = {name: (bytes([n]) * 30, bytes([n + 100]) * 30) for n, name in enumerate(("caller", "agent", "supervisor"))}
FRAMES = {"caller": b"\x11" * 160, "agent": b"\x22" * 160, "supervisor": b"\x44" * 160}


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes, addr) -> None:
        self.sent.append(data)


def leg(name: str, srtp: bool) -> RtpLeg:
    made = RtpLeg(call_id=name, codec="PCMU", payload_type=0, remote=("127.0.0.1", 4000), telephone_event_pt=101,
                  on_digit=lambda digit: None, on_playback_finished=lambda playback: None, rng=random.Random(name))
    made.transport = FakeTransport()
    if srtp:
        made.use_srtp(*KEYS[name])
    return made


def room_of(srtp: bool, paced: set | None = None):
    legs = {name: leg(name, srtp) for name in FRAMES}
    caller, agent, supervisor = legs["caller"], legs["agent"], legs["supervisor"]
    caller.relay_to, agent.relay_to = agent, caller
    room = MixRoom(call_id="c1", is_paced=lambda l: l in (paced or set()))
    room.set_plan({caller: (agent, supervisor), agent: (caller, supervisor), supervisor: (caller, agent)},
                  (caller, agent))
    return legs, room


def send(legs, srtp: bool) -> None:
    for name, frame in FRAMES.items():
        packet = build_rtp_header(0, False, 7, 160, 99) + frame
        if srtp:  # the party protects under its key; our leg unprotects with it
            packet = pylibsrtp.Session(pylibsrtp.Policy(key=KEYS[name][1],
                                                        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)).protect(packet)
        legs[name].datagramReceived(packet, ("127.0.0.1", 4000))


def received(legs, name: str, srtp: bool) -> bytes:
    packet = legs[name].transport.sent[-1]
    if srtp:
        packet = pylibsrtp.Session(pylibsrtp.Policy(key=KEYS[name][0],
                                                    ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)).unprotect(packet)
    return packet[12:]


def mixed(*names: str) -> bytes:
    return mix_frames([(FRAMES[name], "PCMU") for name in names], "PCMU")


def test_srtp_legs_are_mixed_decrypted_and_each_mix_goes_out_under_the_legs_own_key():
    legs, room = room_of(srtp=True)
    send(legs, srtp=True)
    room.tick(0.0)
    assert received(legs, "caller", True) == mixed("agent", "supervisor")
    assert received(legs, "agent", True) == mixed("caller", "supervisor")
    assert received(legs, "supervisor", True) == mixed("caller", "agent")


def test_a_caller_on_hold_is_not_heard_by_the_agent_and_a_paced_leg_gets_no_mix():
    """Hold: the session stops the relay both ways and paces the caller's leg (music): the agent hears
    only the supervisor, the caller gets nothing from the room, the supervisor still hears both."""
    legs, room = room_of(srtp=False, paced=set())
    caller, agent = legs["caller"], legs["agent"]
    caller.relay_to = agent.relay_to = None
    room.is_paced = lambda l: l is caller
    send(legs, srtp=False)
    room.tick(0.0)
    assert caller.transport.sent == []
    assert received(legs, "agent", False) == FRAMES["supervisor"]
    assert received(legs, "supervisor", False) == mixed("caller", "agent")


def test_dissolving_the_room_gives_the_bridge_back_to_the_relay():
    legs, room = room_of(srtp=False)
    room.dissolve()
    send(legs, srtp=False)
    assert legs["agent"].transport.sent[-1][12:] == FRAMES["caller"], "relayed as it came"
    assert legs["caller"].mix_room is None and legs["supervisor"].transport.sent == []


def test_a_closed_leg_leaves_the_room():
    legs, room = room_of(srtp=False)
    room.discard(legs["supervisor"])
    send(legs, srtp=False)
    room.tick(0.0)
    assert received(legs, "caller", False) == FRAMES["agent"] and legs["supervisor"].transport.sent == []
