# SPDX-License-Identifier: MIT
"""ITU-T G.711 mu-law (PCMU) and A-law (PCMA) codecs, 16-bit little-endian PCM.

The tables are built once at import from the ITU-T G.191 Software Tool Library
reference (``g711.c``: ``ulaw_compress``/``ulaw_expand``/``alaw_compress``/
``alaw_expand``), so the values match the ITU test vectors: encoding uses the
one's complement of negative samples, which is why -1 encodes like 0 does.

Encoding indexes a 65536-entry ``bytes`` table with each sample read as an
unsigned 16-bit number; decoding splits each code into its low and high PCM
byte with two 256-entry ``bytes.translate`` tables and interleaves them, so
both directions run in C loops (a 160-sample frame takes a few microseconds).
``audioop`` is deliberately not used: it was removed in Python 3.13.
"""

import math
import sys

__all__ = [
    "ALAW_SILENCE", "ULAW_SILENCE",
    "alaw_decode", "alaw_encode", "rms_pcm16", "ulaw_decode", "ulaw_encode",
]

#: mu-law code of a zero sample (positive zero).
ULAW_SILENCE = 0xFF
#: A-law code of a zero sample (positive zero, even bits toggled).
ALAW_SILENCE = 0xD5

_LITTLE_ENDIAN_HOST = sys.byteorder == "little"


def _ulaw_compress(sample: int) -> int:
    """G.191 ``ulaw_compress`` for one signed 16-bit sample."""
    # 14-bit magnitude, one's complement for negatives, plus the 33 bias.
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i:
        segno += 1
        i >>= 1
    high_nibble = 0x8 - segno
    low_nibble = 0xF - ((absno >> segno) & 0xF)
    code = (high_nibble << 4) | low_nibble
    if sample >= 0:
        code |= 0x80
    return code


def _ulaw_expand(code: int) -> int:
    """G.191 ``ulaw_expand`` for one code, giving a signed 16-bit sample."""
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x7
    segment = exponent + 1
    mantissa &= 0xF
    step = 4 << segment
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def _alaw_compress(sample: int) -> int:
    """G.191 ``alaw_compress`` for one signed 16-bit sample."""
    ix = (~sample) >> 4 if sample < 0 else sample >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if sample >= 0:
        ix |= 0x80
    return ix ^ 0x55


def _alaw_expand(code: int) -> int:
    """G.191 ``alaw_expand`` for one code, giving a signed 16-bit sample."""
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0xF
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x8
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


def _encode_table(compress) -> bytes:
    # Index = sample as unsigned 16 bit; 0x8000..0xFFFF are the negatives.
    return bytes(compress(u - 0x10000 if u & 0x8000 else u) for u in range(0x10000))


def _decode_tables(expand) -> tuple[bytes, bytes]:
    samples = [expand(code) & 0xFFFF for code in range(256)]
    return bytes(s & 0xFF for s in samples), bytes(s >> 8 for s in samples)


_ULAW_ENCODE = _encode_table(_ulaw_compress)
_ALAW_ENCODE = _encode_table(_alaw_compress)
_ULAW_DECODE_LOW, _ULAW_DECODE_HIGH = _decode_tables(_ulaw_expand)
_ALAW_DECODE_LOW, _ALAW_DECODE_HIGH = _decode_tables(_alaw_expand)


def _unsigned_samples(pcm16le: bytes):
    if len(pcm16le) % 2:
        raise ValueError(f"PCM data has odd length {len(pcm16le)}, expected 16-bit samples")
    if _LITTLE_ENDIAN_HOST:
        return memoryview(pcm16le).cast("B").cast("H")
    import array

    samples = array.array("H", pcm16le)
    samples.byteswap()
    return samples


def _encode(pcm16le: bytes, table: bytes) -> bytes:
    return bytes(map(table.__getitem__, _unsigned_samples(pcm16le)))


def _decode(data: bytes, low: bytes, high: bytes) -> bytes:
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(low)
    out[1::2] = data.translate(high)
    return bytes(out)


def ulaw_encode(pcm16le: bytes) -> bytes:
    """Encode signed 16-bit little-endian PCM to mu-law, one byte per sample."""
    return _encode(pcm16le, _ULAW_ENCODE)


def ulaw_decode(data: bytes) -> bytes:
    """Decode mu-law bytes to signed 16-bit little-endian PCM."""
    return _decode(bytes(data), _ULAW_DECODE_LOW, _ULAW_DECODE_HIGH)


def alaw_encode(pcm16le: bytes) -> bytes:
    """Encode signed 16-bit little-endian PCM to A-law, one byte per sample."""
    return _encode(pcm16le, _ALAW_ENCODE)


def alaw_decode(data: bytes) -> bytes:
    """Decode A-law bytes to signed 16-bit little-endian PCM."""
    return _decode(bytes(data), _ALAW_DECODE_LOW, _ALAW_DECODE_HIGH)


def rms_pcm16(pcm: bytes) -> float:
    """Root mean square of signed 16-bit little-endian samples; 0.0 when empty."""
    if len(pcm) % 2:
        raise ValueError(f"PCM data has odd length {len(pcm)}, expected 16-bit samples")
    if not pcm:
        return 0.0
    if _LITTLE_ENDIAN_HOST:
        samples = memoryview(pcm).cast("B").cast("h")
    else:
        import array

        samples = array.array("h", pcm)
        samples.byteswap()
    return math.sqrt(math.fsum(s * s for s in samples) / len(samples))
