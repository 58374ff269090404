"""Key tones in the caller's audio drive the IVR like RFC 4733 and INFO digits do, per the trunk's
`dtmf:` mode (auto, rfc4733, info, inband). Runs on both media planes (test_shell_on_media_workers).

Demo `main` flow (number 1000): welcome (barge-in) → menu 1 sales, 2 support, 3 order status.
"""

from __future__ import annotations

import math
import random

from acd.media.g711 import ulaw_encode
from tests.inband_audio import silence, tone

from .wire import offer_sdp

FRAME = 160


def pcmu_frames(samples: list[int]) -> list[bytes]:
    """20 ms PCMU payloads of signed 16-bit samples (the last frame padded with silence)."""
    samples = samples + [0] * (-len(samples) % FRAME)
    data = ulaw_encode(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
    return [data[i:i + FRAME] for i in range(0, len(data), FRAME)]


def send_keys(harness, call, keys: str, *, tone_ms: int = 80, gap_ms: int = 80) -> None:
    """Press `keys` as tones in the caller's PCMU stream, one frame per 20 ms of the fake clock."""
    samples = []
    for key in keys:
        samples += tone(key, tone_ms) + silence(gap_ms)
    for payload in pcmu_frames(samples):
        call.send_audio(1, payload)
        harness.advance(0.02)


def tone_caller(harness, *, telephone_event: int | None = None):
    """A caller whose offer has PCMU only (no telephone-event, like a line that sends tones)."""
    caller = harness.caller()
    call = caller.invite("1000", sdp=offer_sdp(caller.rtp_address, telephone_event=telephone_event))
    call.expect(200)
    call.ack()
    return caller, call


def digits_logged(harness, call, via: str = r"\S+") -> list[str]:
    return [m.group(1) for m in harness.logged(rf"call={call.call_id} dtmf digit=(\S) via={via} ")]


def test_tones_choose_from_the_menu_and_type_an_order_number(harness):
    """No telephone-event offered (auto → in-band): 3, then 12345# as tones reach the self-service
    order look-up, each key once."""
    caller, call = tone_caller(harness)
    harness.advance(3.5)
    send_keys(harness, call, "3")
    harness.advance(0.5)
    send_keys(harness, call, "12345#")
    harness.advance(0.2)
    assert harness.logged(rf"call={call.call_id} menu=main_menu choice=3 next=order_status")
    assert harness.logged(rf"call={call.call_id} collect=order_status into=order_number digits=12345 length=5")
    assert digits_logged(harness, call, "inband") == list("312345#")


def test_a_trunk_set_to_rfc4733_ignores_tones(make_harness):
    harness = make_harness(trunk_extra="dtmf: rfc4733")
    caller, call = tone_caller(harness, telephone_event=101)
    harness.advance(3.5)
    send_keys(harness, call, "2")
    harness.advance(0.3)
    assert digits_logged(harness, call) == []
    call.rfc4733_digit("1")
    harness.advance(0.3)
    assert digits_logged(harness, call) == ["1"]
    assert harness.logged(rf"call={call.call_id} menu=main_menu choice=1 next=sales")


def test_a_trunk_set_to_inband_ignores_events_and_info(make_harness):
    """A line that sends a tone and an event for one press gives one digit: the tone's."""
    harness = make_harness(trunk_extra="dtmf: inband")
    caller, call = tone_caller(harness, telephone_event=101)
    harness.advance(3.5)
    call.rfc4733_digit("1")
    call.info_digit("1")
    call.expect(200, method="INFO")
    harness.advance(0.3)
    assert digits_logged(harness, call) == []
    assert len(harness.logged(rf"call={call.call_id} dtmf via=(rfc4733|info) ignored: the trunk takes DTMF by "
                              r"inband only")) == 2
    send_keys(harness, call, "2")
    assert digits_logged(harness, call) == ["2"]
    assert harness.logged(rf"call={call.call_id} menu=main_menu choice=2 next=support")


def test_in_auto_a_caller_offering_telephone_events_is_not_listened_to_for_tones(harness):
    """auto, telephone-event in the SDP: RFC 4733 carries the keys; tones are not even listened for."""
    caller, call = tone_caller(harness, telephone_event=101)
    harness.advance(3.5)
    send_keys(harness, call, "3")
    harness.advance(0.3)
    assert digits_logged(harness, call) == []
    call.rfc4733_digit("2")
    harness.advance(0.3)
    assert digits_logged(harness, call, "rfc4733") == ["2"]
    assert harness.logged(rf"call={call.call_id} menu=main_menu choice=2 next=support")


def test_in_auto_an_info_digit_turns_tone_detection_off(harness):
    caller, call = tone_caller(harness)
    harness.advance(3.5)
    call.info_digit("3")
    call.expect(200, method="INFO")
    harness.advance(0.5)
    send_keys(harness, call, "9")
    harness.advance(0.3)
    assert digits_logged(harness, call) == ["3"]
    assert harness.logged(rf"call={call.call_id} DTMF arrives by info: in-band DTMF detection off")


def test_caller_speech_noise_in_the_menu_is_no_key(harness):
    """Loud noise and a voice-like harmonic signal for 3 s in the menu: no digit, no choice."""
    rng = random.Random(3)
    samples = [round(rng.gauss(0, 5000)) for _ in range(8000)]
    samples += [round(sum(2500 / k * math.sin(2 * math.pi * k * 140 * n / 8000) for k in range(1, 20)))
                for n in range(16000)]
    caller, call = tone_caller(harness)
    harness.advance(3.0)
    for payload in pcmu_frames([max(-32000, min(32000, s)) for s in samples]):
        call.send_audio(1, payload)
        harness.advance(0.02)
    assert digits_logged(harness, call) == []
    assert not harness.logged(rf"call={call.call_id} menu=main_menu choice=")
