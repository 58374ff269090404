"""The media worker channel's frames: what goes in comes out, split anywhere; broken frames are refused."""

from __future__ import annotations

import marshal
import struct

import pytest

from acd.media import worker_wire as wire


def test_messages_survive_any_split_of_the_stream():
    messages = [(wire.OPEN, 1, 20000, "call-1@x", "PCMU", 0, 101), (wire.PLAY, 1, 7, 3),
                (wire.BLOB, 7, bytes(range(256)) * 10), (wire.SET, 1, "remote", ("127.0.0.1", 4000)),
                (wire.SRTP, 1, None, b"k" * 30), (wire.CLOSE, 1)]
    stream = b"".join(wire.encode(message) for message in messages)
    for cut in (1, 3, 4, 5, 17, len(stream) - 1):
        decoder = wire.FrameDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == messages
    decoder = wire.FrameDecoder()
    assert [m for byte in stream for m in decoder.feed(bytes([byte]))] == messages


def test_golden_frame():
    """The format is a 4-byte big-endian length and marshal data (both ends run the same Python)."""
    frame = wire.encode((wire.STOP, 5))
    assert frame[:4] == struct.pack(">I", len(frame) - 4) and marshal.loads(frame[4:]) == ("stop", 5)


@pytest.mark.parametrize("broken", [
    struct.pack(">I", wire.MAX_FRAME_BYTES + 1),            # a length no message has
    struct.pack(">I", 3) + b"\xff\xff\xff",                  # not marshal data
    struct.pack(">I", len(marshal.dumps(7))) + marshal.dumps(7),   # a value, not a tuple
    struct.pack(">I", len(marshal.dumps(()))) + marshal.dumps(()),  # an empty tuple
    struct.pack(">I", len(marshal.dumps((1, 2)))) + marshal.dumps((1, 2)),  # no kind first
])
def test_broken_frames_are_refused(broken):
    with pytest.raises(wire.WireError):
        wire.FrameDecoder().feed(broken)
