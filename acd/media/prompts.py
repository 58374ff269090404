"""Prompts decoded once and encoded once per codec, then handed out as 20 ms G.711 frames.

The hot path (one frame every 20 ms per call) only slices bytes that were encoded at load time.
"""

from __future__ import annotations

from pathlib import Path

from .g711 import ALAW_SILENCE, ULAW_SILENCE, alaw_encode, ulaw_encode
from .wav import read_wav_pcm16_8k

__all__ = ["PromptLibrary", "FRAME_SAMPLES", "FRAME_SECONDS", "SILENCE_BYTE"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz: the ptime every G.711 endpoint supports (RFC 3551 §4.5)
FRAME_SECONDS = 0.02
SILENCE_BYTE = {"PCMU": ULAW_SILENCE, "PCMA": ALAW_SILENCE}
_ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}


class PromptLibrary:
    """Named prompts (`welcome`, `digits/1`) → encoded audio, cached per codec."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = dict(files)
        self._pcm: dict[str, bytes] = {}
        self._encoded: dict[tuple[str, str], bytes] = {}

    def encoded(self, name: str, codec: str) -> bytes:
        """The prompt in `codec`, padded with silence to a whole number of frames."""
        key = (name, codec)
        audio = self._encoded.get(key)
        if audio is None:
            pcm = self._pcm.get(name)
            if pcm is None:
                path = self._files.get(name)
                if path is None:
                    raise KeyError(f"no prompt named {name!r}")
                pcm = self._pcm[name] = read_wav_pcm16_8k(path)
            audio = _ENCODERS[codec](pcm)
            remainder = len(audio) % FRAME_SAMPLES
            if remainder:
                audio += bytes([SILENCE_BYTE[codec]]) * (FRAME_SAMPLES - remainder)
            self._encoded[key] = audio
        return audio

    def preload(self, codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> int:
        """Encode every prompt now (at start-up) so no call pays for it; returns the count."""
        for name in self._files:
            for codec in codecs:
                self.encoded(name, codec)
        return len(self._files)

    def duration_seconds(self, name: str) -> float:
        """How long a prompt plays."""
        return len(self.encoded(name, "PCMU")) / 8000
