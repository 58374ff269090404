"""G.711 mu-law/A-law against the ITU-T G.191 reference values."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.media.g711 import (
    ALAW_SILENCE, ULAW_SILENCE, alaw_decode, alaw_encode, rms_pcm16, ulaw_decode, ulaw_encode,
)

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))


def pcm(*samples):
    return struct.pack(f"<{len(samples)}h", *samples)


def samples(data):
    return struct.unpack(f"<{len(data) // 2}h", data)


def test_ulaw_encodes_zero_to_silence_code_0xff():
    assert ULAW_SILENCE == 0xFF
    assert ulaw_encode(pcm(0)) == b"\xff"
    assert ulaw_decode(bytes([ULAW_SILENCE])) == pcm(0)


def test_alaw_encodes_zero_to_silence_code_0xd5():
    assert ALAW_SILENCE == 0xD5
    assert alaw_encode(pcm(0)) == b"\xd5"
    assert samples(alaw_decode(bytes([ALAW_SILENCE]))) == (8,)


def test_extremes_encode_to_largest_codes():
    assert ulaw_encode(pcm(32767, -32768)) == b"\x80\x00"
    assert alaw_encode(pcm(32767, -32768)) == b"\xaa\x2a"
    assert samples(ulaw_decode(b"\x80\x00")) == (32124, -32124)
    assert samples(alaw_decode(b"\xaa\x2a")) == (32256, -32256)


def test_minus_one_encodes_as_negative_zero_like_g191():
    """G.191 uses the one's complement of negative samples, so -1 is the smallest negative code."""
    assert ulaw_encode(pcm(-1)) == b"\x7f"
    assert alaw_encode(pcm(-1)) == b"\x55"


def test_ulaw_decode_table_matches_reference():
    # First 18 and middle entries of the classic (Sun/CCITT) mu-law expansion table.
    decoded = samples(ulaw_decode(bytes(range(256))))
    assert decoded[:18] == (
        -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932,
        -22908, -21884, -20860, -19836, -18812, -17788, -16764, -15996, -15484,
    )
    assert decoded[120:136] == (-56, -48, -40, -32, -24, -16, -8, 0, 32124, 31100, 30076, 29052, 28028, 27004, 25980, 24956)
    assert decoded[255] == 0 and decoded[127] == 0


def test_alaw_decode_table_matches_reference():
    decoded = samples(alaw_decode(bytes(range(256))))
    assert decoded[:16] == (
        -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736,
        -7552, -7296, -8064, -7808, -6528, -6272, -7040, -6784,
    )
    assert decoded[128:136] == (5504, 5248, 6016, 5760, 4480, 4224, 4992, 4736)


@pytest.mark.parametrize("encode, decode", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)], ids=["ulaw", "alaw"])
def test_decode_encode_error_is_within_quantisation_step_for_every_sample(encode, decode):
    """|x - decode(encode(x))| <= |x|/32 + 8 over all 65536 samples (3% log step, clip above 32124)."""
    decoded = samples(decode(encode(ALL_SAMPLES)))
    for x, y in zip(range(-32768, 32768), decoded):
        assert abs(x - y) <= abs(x) / 32 + 8, (x, y)


@pytest.mark.parametrize("encode, decode", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)], ids=["ulaw", "alaw"])
def test_encode_of_decoded_code_gives_the_code_back(encode, decode):
    codes = bytes(range(256))
    again = encode(decode(codes))
    for code, back in zip(codes, again):
        # mu-law has two zeros: 0x7F (negative zero) decodes to 0, which encodes to 0xFF.
        assert back == code or (code, back) == (0x7F, 0xFF)


def test_encoding_is_monotonic_in_sample_value():
    decoded = samples(ulaw_decode(ulaw_encode(ALL_SAMPLES)))
    assert all(a <= b for a, b in zip(decoded, decoded[1:]))
    decoded = samples(alaw_decode(alaw_encode(ALL_SAMPLES)))
    assert all(a <= b for a, b in zip(decoded, decoded[1:]))


def test_encode_rejects_odd_length_pcm():
    with pytest.raises(ValueError, match="odd length 3"):
        ulaw_encode(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="odd length"):
        alaw_encode(b"\x00")


def test_empty_input_gives_empty_output():
    assert ulaw_encode(b"") == b"" and ulaw_decode(b"") == b""
    assert alaw_encode(b"") == b"" and alaw_decode(b"") == b""


def test_codecs_accept_bytearray_and_memoryview():
    assert ulaw_encode(bytearray(pcm(0, 0))) == b"\xff\xff"
    assert ulaw_decode(memoryview(b"\xff")) == pcm(0)
    assert alaw_decode(bytearray(b"\xd5")) == pcm(8)


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_frame_encoding_equals_per_sample_encoding(values):
    frame = pcm(*values)
    assert ulaw_encode(frame) == b"".join(ulaw_encode(pcm(v)) for v in values)
    assert len(ulaw_decode(ulaw_encode(frame))) == len(frame)


def test_rms_tells_tone_from_silence():
    assert rms_pcm16(b"") == 0.0
    assert rms_pcm16(pcm(0, 0, 0)) == 0.0
    assert rms_pcm16(pcm(1000, -1000, 1000, -1000)) == pytest.approx(1000.0)
    assert rms_pcm16(pcm(3, 4)) == pytest.approx((12.5) ** 0.5)
    assert rms_pcm16(ulaw_decode(bytes([ULAW_SILENCE]) * 160)) == 0.0
    with pytest.raises(ValueError, match="odd length"):
        rms_pcm16(b"\x00")
