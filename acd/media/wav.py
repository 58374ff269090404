# SPDX-License-Identifier: MIT
"""WAV prompts as 8 kHz mono 16-bit PCM, the one format the media path plays.

``read_wav_pcm16_8k`` raises ``ValueError`` naming the file and what is wrong,
so configuration checks can report every bad prompt before the server starts.
Missing or unreadable files raise the usual ``OSError``.  No resampling here:
convert prompts offline (``sox in.wav -r 8000 -c 1 -b 16 out.wav``).
"""

import os
import wave

__all__ = ["SAMPLE_RATE", "read_wav_pcm16_8k", "write_wav_pcm16_8k"]

SAMPLE_RATE = 8000
_CHANNELS = 1
_SAMPLE_WIDTH = 2


def read_wav_pcm16_8k(path: str | os.PathLike) -> bytes:
    """Return the samples of an 8000 Hz mono 16-bit PCM WAV file (little-endian)."""
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            problems = []
            if channels != _CHANNELS:
                problems.append(f"has {channels} channels, expected mono")
            if rate != SAMPLE_RATE:
                problems.append(f"is {rate} Hz, expected {SAMPLE_RATE} Hz")
            if width != _SAMPLE_WIDTH:
                problems.append(f"has {8 * width}-bit samples, expected 16-bit")
            if problems:
                raise ValueError(f"WAV file {os.fspath(path)!r} {', '.join(problems)} (convert with: sox IN -r 8000 -c 1 -b 16 OUT.wav)")
            return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        # wave.Error covers non-RIFF files and non-PCM formats (e.g. "unknown format: 7" for mu-law).
        raise ValueError(f"WAV file {os.fspath(path)!r} is not a 16-bit PCM WAV file: {exc or 'truncated'}") from None


def write_wav_pcm16_8k(path: str | os.PathLike, pcm: bytes) -> None:
    """Write 16-bit little-endian PCM samples as an 8000 Hz mono WAV file."""
    if len(pcm) % _SAMPLE_WIDTH:
        raise ValueError(f"PCM data has odd length {len(pcm)}, expected 16-bit samples")
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(_CHANNELS)
        wav.setsampwidth(_SAMPLE_WIDTH)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
