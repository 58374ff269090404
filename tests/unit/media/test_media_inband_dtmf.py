"""In-band DTMF detection: Q.23 key tones found in 8 kHz audio, speech and noise never taken for keys."""

from __future__ import annotations

import math
import random

import pytest

from acd.media.g711 import alaw_encode, ulaw_encode
from acd.media.inband_dtmf import InbandDigit, InbandDtmfDetector
from tests.inband_audio import espeak_speech, silence, sox_dtmf, tone, tools_available

ALL_KEYS = "0123456789*#ABCD"


def detect(samples: list[int], piece: int = 160) -> list[InbandDigit]:
    detector = InbandDtmfDetector()
    found = []
    for start in range(0, len(samples), piece):
        found += detector.feed(samples[start:start + piece])
    return found


def digits(samples: list[int], piece: int = 160) -> str:
    return "".join(press.digit for press in detect(samples, piece))


def payloads(samples: list[int], encode=ulaw_encode) -> list[bytes]:
    data = encode(b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True) for s in samples))
    return [data[i:i + 160] for i in range(0, len(data), 160)]


def detect_payloads(frames: list[bytes], codec: str = "PCMU") -> str:
    detector = InbandDtmfDetector()
    return "".join(press.digit for frame in frames for press in detector.feed_payload(frame, codec))


def test_each_of_the_sixteen_keys_is_one_event_with_the_time_its_tone_began():
    samples = silence(30)
    starts = []
    for key in ALL_KEYS:
        starts.append(len(samples) / 8000)
        samples += tone(key, 70) + silence(60)
    found = detect(samples)
    assert "".join(press.digit for press in found) == ALL_KEYS
    for press, start in zip(found, starts):
        assert abs(press.start_seconds - start) <= 0.02, (press, start)


def test_a_key_held_for_two_seconds_is_one_press():
    assert digits(tone("5", 2000) + silence(100)) == "5"


def test_the_same_key_twice_after_a_40_ms_pause_is_two_presses_but_a_10_ms_dropout_is_not():
    assert digits(tone("7", 80) + silence(40) + tone("7", 80) + silence(100)) == "77"
    assert digits(tone("7", 80) + silence(10) + tone("7", 80) + silence(100)) == "7"


@pytest.mark.parametrize("offset_ms", range(0, 20, 2))
def test_a_40_ms_tone_is_taken_wherever_it_falls_in_the_frames(offset_ms):
    assert digits(silence(offset_ms) + tone("9", 40) + silence(100)) == "9"


@pytest.mark.parametrize("offset_ms", range(0, 20, 2))
def test_a_20_ms_burst_is_never_a_key(offset_ms):
    assert digits(silence(offset_ms) + tone("9", 20) + silence(100)) == ""


@pytest.mark.parametrize("twist_db, taken", [(0, True), (-7, True), (3, True), (-11, False), (6, False)])
def test_twist_within_8_db_normal_and_4_db_reverse_is_taken_and_beyond_it_is_not(twist_db, taken):
    """Normal twist: the high tone weaker (negative here); reverse: the high tone stronger."""
    assert digits(tone("6", 100, twist_db=twist_db) + silence(60)) == ("6" if taken else "")


@pytest.mark.parametrize("dbm0, taken", [(-3, True), (-25, True), (-40, False)])
def test_tones_down_to_minus_25_dbm0_are_taken_and_faint_ones_are_not(dbm0, taken):
    assert digits(tone("2", 100, dbm0=dbm0) + silence(60)) == ("2" if taken else "")


@pytest.mark.parametrize("deviation, taken", [(-0.015, True), (0.015, True), (-0.035, False), (0.035, False)])
@pytest.mark.parametrize("key, low, high", [("0", 941, 1336), ("D", 941, 1633), ("1", 697, 1209)])
def test_tones_off_by_1_5_percent_are_taken_and_off_by_3_5_percent_are_not(deviation, taken, key, low, high):
    """Q.24: accept a sender's frequencies off by up to 1.5%, reject them off by 3.5%."""
    samples = tone(key, 100, low_hz=low * (1 + deviation), high_hz=high * (1 + deviation)) + silence(60)
    assert digits(samples) == (key if taken else "")


def test_two_tones_of_one_group_or_a_single_tone_are_not_a_key():
    low_pair = tone("1", 200, high_hz=770.0)  # 697 + 770 Hz: two rows, no column
    single = [round(8000 * math.sin(2 * math.pi * 1209 * n / 8000)) for n in range(1600)]
    assert digits(low_pair + silence(60) + single) == ""


def test_a_key_with_noise_20_db_below_it_is_taken():
    rng = random.Random(5)
    clean = tone("8", 100)
    noisy = [s + round(rng.gauss(0, 0.1 * 8031 * 4 * 10 ** (-10 / 20))) for s in clean]
    assert digits(noisy + silence(60)) == "8"


def test_white_noise_and_a_speech_like_signal_are_not_keys():
    """Noise, and a 120 Hz voice with many harmonics sweeping its formants, at loud caller levels."""
    rng = random.Random(9)
    noise = [round(rng.gauss(0, 6000)) for _ in range(8000 * 3)]
    voice = []
    for n in range(8000 * 3):
        pitch = 120 + 30 * math.sin(2 * math.pi * 0.7 * n / 8000)
        formant = 700 + 500 * math.sin(2 * math.pi * 0.3 * n / 8000)
        voice.append(round(sum(3000 / k * (1.5 if abs(k * pitch - formant) < 150 else 0.3)
                               * math.sin(2 * math.pi * k * pitch * n / 8000) for k in range(1, 25))))
    assert digits(noise) == ""
    assert digits(voice) == ""


@pytest.mark.parametrize("piece", [1, 37, 80, 161, 480])
def test_audio_fed_in_pieces_of_any_size_gives_the_same_presses(piece):
    samples = tone("4", 60) + silence(50) + tone("#", 45) + silence(70) + tone("D", 200) + silence(40)
    assert digits(samples, piece) == digits(samples) == "4#D"


def test_pcmu_and_pcma_payloads_are_decoded_and_detected():
    samples = tone("3", 80) + silence(60) + tone("*", 80) + silence(60)
    assert detect_payloads(payloads(samples)) == "3*"
    assert detect_payloads(payloads(samples, alaw_encode), "PCMA") == "3*"


def test_payloads_of_odd_sizes_are_carried_across():
    data = b"".join(payloads(tone("1", 100) + silence(60)))
    detector = InbandDtmfDetector()
    found = [press.digit for start in range(0, len(data), 50)
             for press in detector.feed_payload(data[start:start + 50], "PCMU")]
    assert found == ["1"]


def test_a_press_refuses_a_key_that_does_not_exist_and_a_negative_time():
    with pytest.raises(ValueError, match="one of 0-9"):
        InbandDigit(digit="E", start_seconds=0.0)
    with pytest.raises(ValueError, match=">= 0 seconds"):
        InbandDigit(digit="1", start_seconds=-1.0)


needs_tools = pytest.mark.skipif(not tools_available(), reason="sox and espeak-ng are needed: run scripts/setup")


@needs_tools
def test_golden_sox_dtmf_sequence_gives_every_key_once(tmp_path):
    """Tones made by sox (an independent generator), 50 ms on and 50 ms off, as PCMU."""
    data = sox_dtmf(tmp_path / "keys.ul", ALL_KEYS + "0246813579", tone_ms=50, gap_ms=50, lead_ms=30)
    assert detect_payloads([data[i:i + 160] for i in range(0, len(data), 160)]) == ALL_KEYS + "0246813579"


@needs_tools
def test_golden_minute_of_espeak_speech_gives_no_key(tmp_path):
    """60 s of espeak-ng speech (four voices, digits read aloud) at a loud caller level, as PCMU."""
    data = espeak_speech(tmp_path / "speech.ul", seconds=60)
    assert len(data) == 60 * 8000
    assert detect_payloads([data[i:i + 160] for i in range(0, len(data), 160)]) == ""
