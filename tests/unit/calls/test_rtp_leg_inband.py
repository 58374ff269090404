"""RtpLeg's in-band DTMF: off unless asked, on only while the leg is not bridged, and in auto until
the first RFC 4733 telephone-event arrives (no sockets: datagrams handed to the leg)."""

from __future__ import annotations

import random

from acd.calls.rtp_leg import RtpLeg
from acd.media.g711 import alaw_encode, ulaw_encode
from acd.media.rfc4733 import dtmf_event_payloads
from acd.media.rtp import build_rtp_header
from tests.inband_audio import silence, tone


class FakeTransport:
    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        pass


def make_leg(pressed: list[tuple], codec: str = "PCMU") -> RtpLeg:
    leg = RtpLeg(call_id="t", codec=codec, payload_type=0 if codec == "PCMU" else 8, remote=("127.0.0.1", 4000),
                 telephone_event_pt=101, on_digit=lambda *args: pressed.append(args),
                 on_playback_finished=lambda playback: None, rng=random.Random(1))
    leg.transport = FakeTransport()
    return leg


def receive_keys(leg: RtpLeg, keys: str, *, start: int = 0) -> None:
    samples = []
    for key in keys:
        samples += tone(key, 80) + silence(60)
    samples += [0] * (-len(samples) % 160)
    encode = ulaw_encode if leg.codec == "PCMU" else alaw_encode
    data = encode(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
    for index in range(0, len(data), 160):
        sequence = start + index // 160
        header = build_rtp_header(leg.payload_type, False, sequence, sequence * 160, 0x1234)
        leg.datagramReceived(header + data[index:index + 160], ("127.0.0.1", 4000))


def test_tones_are_not_listened_for_unless_the_leg_is_asked_to():
    pressed: list[tuple] = []
    leg = make_leg(pressed)
    receive_keys(leg, "12")
    assert pressed == []
    leg.inband_dtmf = "on"
    receive_keys(leg, "34", start=100)
    assert pressed == [("3", "inband"), ("4", "inband")]


def test_pcma_tones_are_heard_too():
    pressed: list[tuple] = []
    leg = make_leg(pressed, codec="PCMA")
    leg.inband_dtmf = "on"
    receive_keys(leg, "#*")
    assert pressed == [("#", "inband"), ("*", "inband")]


def test_a_bridged_leg_relays_tones_without_listening_to_them():
    pressed: list[tuple] = []
    leg, other = make_leg(pressed), make_leg([])
    leg.inband_dtmf = "on"
    leg.relay_to = other
    receive_keys(leg, "5")
    assert pressed == [] and other.packets_relayed > 0


def test_auto_listens_until_the_first_telephone_event_and_on_keeps_listening():
    for setting, after_event in (("auto", []), ("on", [("8", "inband")])):
        pressed: list[tuple] = []
        leg = make_leg(pressed)
        leg.inband_dtmf = setting
        receive_keys(leg, "7")
        event = dtmf_event_payloads("9", duration_ms=60)[0][0]
        leg.datagramReceived(build_rtp_header(101, True, 50, 50 * 160, 0x1234) + event, ("127.0.0.1", 4000))
        receive_keys(leg, "8", start=60)
        assert pressed == [("7", "inband")] + after_event, setting
        assert leg.inband_dtmf == ("off" if setting == "auto" else "on")
