"""A conference mixer for G.711 frames, sans-IO: what each member of a monitored call hears.

Used when a supervisor joins a bridged call (listen, whisper, barge): each member's received audio
is decoded, summed with clipping to 16 bits and encoded again in the listener's codec, once per
20 ms tick. Each listener gets the mix of the members it is allowed to hear (the `hearing` plan),
never its own voice. The shell (acd.calls.mix_room) feeds `heard()` from the legs and sends what
`tick()` returns; it owns the clock.

Rules of this file:
- No sockets, no clock: `tick()` is called every 20 ms by whoever owns time.
- A listener hearing one source in its own codec gets that frame as it came (no decode/encode):
  listening costs the two bridged parties nothing but the pass-through.
- Each source keeps a short queue of frames (jitter between its packets and our tick); a tick takes
  one frame per source, a source with none is silent, and a queue past `max_buffered_frames` drops
  its oldest frames (a late burst must not become lasting delay).
- Mixing runs in C loops: frames are decoded through 256-entry integer tables and the sums encoded
  through one table indexed by the clipped sum (built once per codec and number of sources).
"""

from __future__ import annotations

import array
import collections
import sys
from operator import add
from typing import Callable, Generic, Hashable, Mapping, Sequence, TypeVar

from .g711 import ALAW_SILENCE, ULAW_SILENCE, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = ["Mixer", "mix_frames", "FRAME_SAMPLES", "MAX_SOURCES", "SILENCE"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz, the ptime every leg of ours sends
# A listener hears at most this many others: a caller, an agent and two supervisors. Bounds the
# encode table (MAX_SOURCES * 64 Ki entries per codec).
MAX_SOURCES = 4
# Frames a source may get ahead of the tick: 100 ms, more than a phone's usual jitter (PJSIP's
# default jitter buffer prefetch is 60 ms); beyond it the oldest frames go.
DEFAULT_MAX_BUFFERED_FRAMES = 5
SILENCE = {"PCMU": ULAW_SILENCE, "PCMA": ALAW_SILENCE}
_OFFSET = MAX_SOURCES * 32768  # the encode table's index of a zero sum

_CODECS = {"PCMU": (ulaw_decode, ulaw_encode), "PCMA": (alaw_decode, alaw_encode)}
# Code -> its sample, as ints (and offset by _OFFSET, for the first frame of a sum).
def _samples(pcm16le: bytes) -> array.array:
    samples = array.array("h", pcm16le)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm16le(samples: array.array) -> bytes:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


_DECODE: dict[str, tuple[int, ...]] = {
    codec: tuple(_samples(decode(bytes(range(256))))) for codec, (decode, _) in _CODECS.items()}
_DECODE_OFFSET = {codec: tuple(value + _OFFSET for value in table) for codec, table in _DECODE.items()}
_encode_sum: dict[str, bytes] = {}


def _sum_table(codec: str) -> bytes:
    """Sum (offset by `_OFFSET`) -> the codec's code of that sum clipped to a signed 16-bit sample."""
    table = _encode_sum.get(codec)
    if table is None:
        every_sample = _CODECS[codec][1](_pcm16le(array.array("h", range(-32768, 32768))))  # index: sample + 32768
        below, above = every_sample[:1] * (_OFFSET - 32768), every_sample[-1:] * (_OFFSET - 32768)
        table = below + every_sample + above
        _encode_sum[codec] = table
    return table


def _fit(payload: bytes, codec: str, samples: int) -> bytes:
    """Exactly `samples` codes: a short frame padded with silence, a long one cut."""
    if len(payload) == samples:
        return payload
    if len(payload) > samples:
        return payload[:samples]
    return payload + bytes([SILENCE[codec]]) * (samples - len(payload))


def mix_frames(frames: Sequence[tuple[bytes, str]], codec: str, samples: int = FRAME_SAMPLES) -> bytes:
    """The sum of `frames` ((payload, its codec), at most MAX_SOURCES), clipped, encoded in `codec`;
    silence when there are none. ValueError for an unknown codec or too many frames."""
    if codec not in _CODECS or any(c not in _DECODE for _, c in frames):
        raise ValueError(f"mixing supports PCMU and PCMA only, not {codec!r} or {[c for _, c in frames]!r}")
    if len(frames) > MAX_SOURCES:
        raise ValueError(f"at most {MAX_SOURCES} frames can be mixed, not {len(frames)}")
    if not frames:
        return bytes([SILENCE[codec]]) * samples
    first, first_codec = frames[0]
    total = map(_DECODE_OFFSET[first_codec].__getitem__, _fit(first, first_codec, samples))
    for payload, frame_codec in frames[1:]:
        total = map(add, total, map(_DECODE[frame_codec].__getitem__, _fit(payload, frame_codec, samples)))
    return bytes(map(_sum_table(codec).__getitem__, total))


Member = TypeVar("Member", bound=Hashable)


class Mixer(Generic[Member]):
    """Members (any hashable: legs, leg ids), their codecs, who hears whom; frames in, frames out."""

    def __init__(self, *, max_buffered_frames: int = DEFAULT_MAX_BUFFERED_FRAMES) -> None:
        if max_buffered_frames < 1:
            raise ValueError("max_buffered_frames must be at least 1")
        self.max_buffered_frames = max_buffered_frames
        self.codecs: dict[Member, str] = {}
        self.hearing: dict[Member, tuple[Member, ...]] = {}
        self._frames: dict[Member, collections.deque] = {}
        self.frames_dropped = 0

    def set_plan(self, hearing: Mapping[Member, Sequence[Member]], codecs: Mapping[Member, str]) -> None:
        """Who hears whom (listener -> sources) and each member's codec; replaces the plan in force
        (frames queued by members still present are kept). ValueError for a listener hearing itself,
        too many sources, an unknown codec or a member without one."""
        plan = {listener: tuple(sources) for listener, sources in hearing.items()}
        members = set(plan) | {source for sources in plan.values() for source in sources}
        for listener, sources in plan.items():
            if listener in sources:
                raise ValueError("a listener never hears its own voice")
            if len(sources) > MAX_SOURCES:
                raise ValueError(f"a listener hears at most {MAX_SOURCES} others")
        for member in members:
            if codecs.get(member) not in _DECODE:
                raise ValueError(f"member {member!r} needs a codec, PCMU or PCMA (not {codecs.get(member)!r})")
        self.hearing = plan
        self.codecs = {member: codecs[member] for member in members}
        self._frames = {member: self._frames.get(member) or collections.deque() for member in members}

    @property
    def members(self) -> set[Member]:
        """Everyone in the plan, listening or heard."""
        return set(self.codecs)

    def heard(self, member: Member, payload: bytes) -> None:
        """One frame of audio `member` sent us (ignored when it is not in the plan)."""
        frames = self._frames.get(member)
        if frames is None:
            return
        frames.append(payload)
        if len(frames) > self.max_buffered_frames:
            frames.popleft()
            self.frames_dropped += 1

    def tick(self, may_hear: Callable[[Member, Member], bool] | None = None,
             wants: Callable[[Member], bool] | None = None) -> list[tuple[Member, bytes]]:
        """One 20 ms step: (listener, frame in its codec) for each listener `wants` (default all),
        mixing the sources `may_hear(listener, source)` allows (default all in its plan)."""
        current = {member: (frames.popleft() if frames else None) for member, frames in self._frames.items()}
        codecs = self.codecs
        out = []
        for listener, sources in self.hearing.items():
            if wants is not None and not wants(listener):
                continue
            codec = codecs[listener]
            frames = [(current[source], codecs[source]) for source in sources
                      if current[source] is not None and (may_hear is None or may_hear(listener, source))]
            if len(frames) == 1 and frames[0][1] == codec and len(frames[0][0]) == FRAME_SAMPLES:
                out.append((listener, frames[0][0]))
            else:
                out.append((listener, mix_frames(frames, codec)))
        return out
