"""Symmetric RTP (acd/calls/rtp_leg.py, acd/media/symmetric_rtp.py) and a peer's stream changes.

A phone behind NAT writes its private address into its SDP and sends from the NAT's public one: the
leg learns from the first valid packet where to send (`rtp: symmetric: auto`, the default, does it
for private SDP addresses; `always` for any; `off` never). Only the first valid packet decides: RTCP,
STUN, foreign payload types and SRTP packets failing authentication before it teach nothing, and a
packet from elsewhere after it changes nothing. A new SSRC or a timestamp jump from the peer keeps the
relay and the DTMF going. Runs on both media planes (test_shell_on_media_workers).
"""

from __future__ import annotations

import struct

from acd.calls.rtp_leg import LATCH_WINDOW_PACKETS

from .test_shell_queue import queue_harness
from .test_shell_srtp import CALLER_KEY, SrtpEnd, crypto_in, with_crypto
from .wire import RtpSender, offer_sdp

NAT_SDP = ("192.168.1.20", 4000)      # what a phone behind NAT writes in its SDP: private, unreachable
AGENT_NAT_SDP = ("10.7.0.31", 4100)
ATTACKER = ("198.51.100.66", 40000)   # someone else who knows our RTP port


class Listener:
    """An address on the fake network that keeps what arrives there."""

    def __init__(self, harness, address: tuple[str, int]) -> None:
        self.packets: list[bytes] = []
        harness.reactor.network.bind(address, self)

    def deliver(self, data: bytes, source) -> None:
        self.packets.append(data)


def caller_with_sdp_at(harness, media: tuple[str, int], *, port: int = 5070, number: str = "1000", sdp=None):
    """A caller (RTP sent from its own rtp_address) whose SDP offers `media` instead; answered, ACKed."""
    caller = harness.caller(port=port)
    call = caller.invite(number, sdp=sdp or offer_sdp(media))
    answer = call.expect(200)
    call.ack()
    return caller, call, answer


def latch_lines(harness, call) -> list:
    return harness.logged(rf"call={call.call_id} symmetric RTP: the peer's RTP comes from (\S+), its SDP said (\S+): "
                          r"sending there")


def test_a_caller_behind_nat_hears_the_ivr_once_its_first_packet_shows_where_it_is(harness):
    caller, call, _ = caller_with_sdp_at(harness, NAT_SDP)
    harness.advance(0.5)
    assert call.rtp_received() == [], "before its first packet, our audio goes where its SDP said"
    assert any(sent.destination == NAT_SDP for sent in harness.reactor.network.undelivered)
    call.send_audio(1)
    harness.advance(3.0)
    received = call.rtp_received()
    assert len(received) >= 140 and "welcome" in harness.prompts_heard(received)
    [line] = latch_lines(harness, call)
    assert line.groups() == (f"{caller.rtp_address[0]}:{caller.rtp_address[1]}", "192.168.1.20:4000")


def test_only_the_first_valid_packet_decides(harness):
    """RTCP, a STUN binding request and a payload type the call did not agree on arrive first from
    elsewhere: nothing learnt; then the caller's first packet; then the same packet from elsewhere:
    too late. The stranger never gets a packet of ours."""
    caller, call, _ = caller_with_sdp_at(harness, NAT_SDP)
    stranger = Listener(harness, ATTACKER)
    network = harness.reactor.network
    receiver_report = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    stun_binding = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + bytes(12)
    for junk in (receiver_report, stun_binding, RtpSender(ssrc=7).packet(b"\x00" * 20, 96)):
        network.send(ATTACKER, call.server_rtp, junk)
    harness.advance(0.2)
    assert stranger.packets == [] and call.rtp_received() == []
    call.send_audio(1)
    network.send(ATTACKER, call.server_rtp, RtpSender(ssrc=7).packet(b"\x55" * 160, 0))
    harness.advance(1.0)
    assert stranger.packets == [] and len(call.rtp_received()) >= 45
    assert len(latch_lines(harness, call)) == 1


def test_a_public_sdp_address_is_trusted_in_auto_and_a_private_one_is_not_learnt_when_off(make_harness):
    """auto: a carrier's public media address stays where we send, whatever source its RTP has."""
    harness = make_harness()
    public = ("203.0.113.50", 4000)
    gateway = Listener(harness, public)
    _, call, _ = caller_with_sdp_at(harness, public)
    call.send_audio(3)
    harness.advance(1.0)
    assert call.rtp_received() == [] and len(gateway.packets) >= 45 and not latch_lines(harness, call)
    harness.close()
    off = make_harness(rtp_extra="  symmetric: off\n")
    _, call, _ = caller_with_sdp_at(off, NAT_SDP)
    call.send_audio(3)
    off.advance(1.0)
    assert call.rtp_received() == [] and not latch_lines(off, call)


def test_always_learns_a_wrong_port_even_on_a_public_address(make_harness):
    harness = make_harness(rtp_extra="  symmetric: always\n")
    caller = harness.caller(port=5070)
    wrong_port = (caller.rtp_address[0], caller.rtp_address[1] + 100)
    call = caller.invite("1000", sdp=offer_sdp(wrong_port))
    call.expect(200)
    call.ack()
    call.send_audio(1)
    harness.advance(1.0)
    assert len(call.rtp_received()) >= 45 and len(latch_lines(harness, call)) == 1


def test_an_srtp_leg_learns_only_from_an_authenticated_packet(harness):
    caller = harness.caller(port=5070)
    call = caller.invite("1000", sdp=with_crypto(offer_sdp(NAT_SDP), CALLER_KEY))
    answer = call.expect(200)
    call.ack()
    _, _, server_key = crypto_in(answer.body)
    srtp = SrtpEnd(CALLER_KEY, server_key)
    stranger = Listener(harness, ATTACKER)
    forger = SrtpEnd(bytes(30), bytes(30))
    forged = forger.tx.protect(RtpSender(ssrc=9).packet(b"\x55" * 160, 0))
    harness.reactor.network.send(ATTACKER, call.server_rtp, forged)
    harness.advance(0.2)
    assert stranger.packets == [] and not latch_lines(harness, call)
    srtp.send_audio(call, 1, b"\x55" * 160)
    harness.advance(1.0)
    received = call.rtp_received()
    assert stranger.packets == [] and len(received) >= 45
    assert srtp.clear(received), "what reaches the caller's real port is our SRTP"
    assert len(latch_lines(harness, call)) == 1


def test_an_agent_behind_nat_gets_the_callers_audio_after_its_first_packet(make_harness):
    harness = queue_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.offer()
    offer.ring()
    offer.answer(offer_sdp(AGENT_NAT_SDP))
    offer.expect_ack(timeout=1)
    call.send_audio(2)
    assert offer.rtp_received() == [], "relayed to the private address the agent's SDP says"
    offer.send_audio(1)
    call.send_audio(3)
    assert len(offer.rtp_received()) == 3
    assert len(latch_lines(harness, offer)) == 1


def test_a_new_ssrc_and_a_timestamp_jump_keep_the_relay_and_the_digits_going(make_harness):
    """The caller's phone restarts its stream (new SSRC, timestamps from scratch) in the IVR: a key
    pressed with the timestamp of one already counted under the old SSRC is a new press. Bridged,
    the agent gets the new stream's packets as they come (same SSRC, same timestamps: its jitter
    buffer resynchronises)."""
    harness = make_harness()
    _, call = harness.answered_call("1000")
    harness.advance(0.5)
    start = call.rtp.timestamp
    call.rfc4733_digit("7")
    harness.advance(0.1)
    call.rtp.ssrc, call.rtp.timestamp = 0x5EC0DD, start
    call.rfc4733_digit("7")
    harness.advance(0.1)
    assert len(harness.logged(rf"call={call.call_id} dtmf digit=7 via=rfc4733")) == 2
    harness.close()

    harness = queue_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    _, call = harness.answered_call("3000")
    offer = phone.take_offer()
    call.send_audio(2)
    old_ssrc, jumped = call.rtp.ssrc, (call.rtp.timestamp + 8000 * 3600) & 0xFFFFFFFF
    call.rtp.ssrc, call.rtp.timestamp, call.rtp.sequence = 0x0DDBA11, jumped, 17
    call.send_audio(2)
    received = offer.rtp_received()
    assert [(packet.ssrc, packet.sequence) for packet in received] == [
        (old_ssrc, received[0].sequence), (old_ssrc, received[0].sequence + 1), (0x0DDBA11, 17), (0x0DDBA11, 18)]
    assert [struct.unpack_from("!I", packet.data, 4)[0] for packet in received[2:]] == [jumped, jumped + 160]


def test_a_refresh_keeps_what_was_learnt_and_a_new_sdp_address_learns_again(harness):
    """A session refresh (same SDP address) keeps sending to the learnt source; a re-INVITE to a new
    private address (the phone moved networks) sends there until the first packet shows where it is."""
    caller, call, _ = caller_with_sdp_at(harness, NAT_SDP)
    call.send_audio(1)
    harness.advance(0.2)
    call.reinvite(offer_sdp(NAT_SDP, version=2))
    call.expect(200)
    harness.advance(0.5)
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert len(call.rtp_received(since=since)) >= 20, "the refresh kept the learnt address"
    moved = ("192.168.44.7", 4200)
    call.reinvite(offer_sdp(moved, version=3))
    call.expect(200)
    harness.advance(0.1)
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert call.rtp_received(since=since) == [], "a new SDP address: sent there until the phone's RTP shows up"
    call.send_audio(1)
    harness.advance(0.5)
    assert len(call.rtp_received(since=since)) >= 20
    assert [line.group(2) for line in latch_lines(harness, call)] == ["192.168.1.20:4000", "192.168.44.7:4200"]


def test_past_the_window_nothing_is_learnt(harness):
    """LATCH_WINDOW_PACKETS datagrams that are not the call's media (here: a foreign payload type)
    close the window: a flood of junk cannot leave it open for a later stranger."""
    caller, call, _ = caller_with_sdp_at(harness, NAT_SDP)
    stray = RtpSender(ssrc=11)
    for _ in range(LATCH_WINDOW_PACKETS):
        harness.reactor.network.send(ATTACKER, call.server_rtp, stray.packet(b"\x00" * 20, 96))
    call.send_audio(1)
    harness.advance(0.5)
    assert call.rtp_received() == [] and not latch_lines(harness, call)
