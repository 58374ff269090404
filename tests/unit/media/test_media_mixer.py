"""The G.711 conference mixer: sums with clipping, never a listener's own voice, jitter bounds."""

from __future__ import annotations

import array
import math

import pytest

from acd.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from acd.media.mixer import FRAME_SAMPLES, MAX_SOURCES, Mixer, mix_frames

ENCODE = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
DECODE = {"PCMU": ulaw_decode, "PCMA": alaw_decode}


def constant(value: int, codec: str = "PCMU") -> bytes:
    """One frame of a constant sample value, encoded."""
    return ENCODE[codec](array.array("h", [value] * FRAME_SAMPLES).tobytes())


def samples(frame: bytes, codec: str = "PCMU") -> list[int]:
    return list(array.array("h", DECODE[codec](frame)))


def tone(hz: float, amplitude: int = 8000, codec: str = "PCMU") -> bytes:
    pcm = array.array("h", [int(amplitude * math.sin(2 * math.pi * hz * n / 8000)) for n in range(FRAME_SAMPLES)])
    return ENCODE[codec](pcm.tobytes())


def power(frame: bytes, hz: float, codec: str = "PCMU") -> float:
    """Goertzel power of `hz` in one frame, normalised per sample."""
    coefficient = 2 * math.cos(2 * math.pi * hz / 8000)
    s1 = s2 = 0.0
    for x in samples(frame, codec):
        s1, s2 = x + coefficient * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / FRAME_SAMPLES ** 2


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_mix_is_the_sum_of_the_decoded_frames(codec: str) -> None:
    """Two frames mix to (about: G.711 steps) the sum of their samples."""
    mixed = samples(mix_frames([(constant(1000, codec), codec), (constant(2000, codec), codec)], codec), codec)
    assert all(abs(value - 3000) <= 3000 * 0.07 for value in mixed)


def test_mix_clips_to_16_bits_instead_of_wrapping() -> None:
    """Loud sources saturate at the 16-bit limits; they never wrap around to the other sign."""
    loud = constant(30000)
    assert min(samples(mix_frames([(loud, "PCMU")] * 3, "PCMU"))) > 30000
    quiet = constant(-30000)
    assert max(samples(mix_frames([(quiet, "PCMU")] * 4, "PCMU"))) < -30000


def test_mix_transcodes_between_pcmu_and_pcma() -> None:
    """A PCMA source is heard by a PCMU listener (decoded, summed, encoded in the listener's codec)."""
    mixed = mix_frames([(tone(500, codec="PCMA"), "PCMA"), (tone(1500), "PCMU")], "PCMU")
    assert power(mixed, 500) > 100 * power(mixed, 1000)
    assert power(mixed, 1500) > 100 * power(mixed, 1000)


def test_nothing_to_mix_is_silence_and_odd_lengths_are_fitted() -> None:
    """No source gives a silent frame; a short frame is padded with silence, a long one cut."""
    assert mix_frames([], "PCMA") == b"\xd5" * FRAME_SAMPLES
    assert len(mix_frames([(b"\x80" * 80, "PCMU"), (b"\x80" * 240, "PCMU")], "PCMU")) == FRAME_SAMPLES


def test_mix_refuses_unknown_codecs_and_too_many_sources() -> None:
    """Only G.711 is mixed, and at most MAX_SOURCES frames at once."""
    with pytest.raises(ValueError, match="PCMU and PCMA"):
        mix_frames([(b"\x00" * 160, "G722")], "PCMU")
    with pytest.raises(ValueError, match="at most"):
        mix_frames([(constant(0), "PCMU")] * (MAX_SOURCES + 1), "PCMU")


def three_party_mixer(plan: dict[str, tuple[str, ...]]) -> Mixer[str]:
    mixer: Mixer[str] = Mixer()
    mixer.set_plan(plan, {"caller": "PCMU", "agent": "PCMU", "supervisor": "PCMA"})
    return mixer


def test_each_listener_hears_its_sources_and_never_itself() -> None:
    """Barge: each of three hears the other two (distinct tones), not its own tone."""
    mixer = three_party_mixer({"caller": ("agent", "supervisor"), "agent": ("caller", "supervisor"),
                               "supervisor": ("caller", "agent")})
    mixer.heard("caller", tone(500))
    mixer.heard("agent", tone(1000))
    mixer.heard("supervisor", tone(1500, codec="PCMA"))
    out = dict(mixer.tick())
    own = {"caller": 500, "agent": 1000, "supervisor": 1500}
    codec = {"caller": "PCMU", "agent": "PCMU", "supervisor": "PCMA"}
    for listener, frame in out.items():
        heard = {hz for hz in own.values() if power(frame, hz, codec[listener]) > 1e5}
        assert heard == set(own.values()) - {own[listener]}, listener


def test_a_single_source_in_the_same_codec_passes_through_unchanged() -> None:
    """Listen mode: caller and agent hear each other's frames as they came (no decode and encode)."""
    mixer = three_party_mixer({"caller": ("agent",), "agent": ("caller",), "supervisor": ("caller", "agent")})
    frame = tone(1000)
    mixer.heard("agent", frame)
    assert dict(mixer.tick())["caller"] is frame


def test_may_hear_and_wants_filter_sources_and_listeners() -> None:
    """The shell's rules: a source a listener may not hear is left out; an unwanted listener gets nothing."""
    mixer = three_party_mixer({"caller": ("agent", "supervisor"), "agent": ("caller",),
                               "supervisor": ("caller", "agent")})
    mixer.heard("agent", tone(1000))
    mixer.heard("supervisor", tone(1500, codec="PCMA"))
    out = dict(mixer.tick(may_hear=lambda listener, source: source != "supervisor", wants=lambda l: l != "agent"))
    assert set(out) == {"caller", "supervisor"}
    assert power(out["caller"], 1500) < 1e3 < power(out["caller"], 1000)


def test_missing_frames_are_silence_and_bursts_are_bounded() -> None:
    """A tick takes one frame per source; a silent source adds nothing; a burst past the buffer drops
    the oldest frames and counts them."""
    mixer: Mixer[str] = Mixer(max_buffered_frames=2)
    mixer.set_plan({"a": ("b",)}, {"a": "PCMU", "b": "PCMU"})
    assert dict(mixer.tick())["a"] == b"\xff" * FRAME_SAMPLES
    frames = [constant(value) for value in (100, 200, 300, 400)]
    for frame in frames:
        mixer.heard("b", frame)
    assert mixer.frames_dropped == 2
    assert [dict(mixer.tick())["a"] for _ in range(3)] == [frames[2], frames[3], b"\xff" * FRAME_SAMPLES]


def test_plan_checks() -> None:
    """A plan where a listener hears itself, or a member without a G.711 codec, is refused."""
    mixer: Mixer[str] = Mixer()
    with pytest.raises(ValueError, match="own voice"):
        mixer.set_plan({"a": ("a",)}, {"a": "PCMU"})
    with pytest.raises(ValueError, match="needs a codec"):
        mixer.set_plan({"a": ("b",)}, {"a": "PCMU"})
    mixer.heard("stranger", constant(0))  # not in the plan: ignored
    assert mixer.tick() == []
