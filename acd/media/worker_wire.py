"""The media worker channel's wire format: length-prefixed `marshal` frames over a pipe.

The call process commands its media worker processes (acd.calls.remote_media) and they report back
(acd.calls.media_worker). Every message is one tuple whose first item says what it is (the constants
below), followed by plain values: ints, floats, str, bytes, None, tuples. `marshal` is the fastest
codec the standard library has for such tuples (about 1 µs each way for a command), and both ends
run the same Python, which is all `marshal` needs.

A frame is a 4-byte big-endian length, then that many bytes of `marshal` data. A frame over
`MAX_FRAME_BYTES` or one that does not decode is a broken channel: `FrameDecoder.feed` raises
`WireError` and the reader must close the channel (both ends are ours; there is no resynchronising).
"""

from __future__ import annotations

import marshal
import struct

__all__ = ["encode", "FrameDecoder", "WireError", "MAX_FRAME_BYTES",
           "OPEN", "SET", "SRTP", "PLAY", "BLOB", "FORGET", "STOP", "START", "PAUSE", "RELAY", "TAPS", "MIX", "CLOSE",
           "HELLO", "HELD_ELSEWHERE", "OPEN_FAILED", "DIGIT", "DONE", "AUDIO", "CLOSED", "SRTP_FAILURES", "LOG",
           "TAP_AUDIO", "TAP_IN", "TAP_OUT"]

MAX_FRAME_BYTES = 16 * 1024 * 1024  # a prompt blob of ~30 minutes of G.711; nothing legitimate is bigger
_LENGTH = struct.Struct(">I")

# Commands: call process -> worker. `leg` is an int the call process chose, unique per worker.
OPEN = "open"            # (OPEN, leg, port, call_id, codec, payload_type, telephone_event_pt)
SET = "set"              # (SET, leg, field, value): codec, payload_type, telephone_event_pt, remote, next_send,
#                          sending, inband_dtmf, symmetric (before the first remote)
SRTP = "srtp"            # (SRTP, leg, local_key | None, remote_key | None)
BLOB = "blob"            # (BLOB, blob_id, audio): encoded audio the call process will refer to by id
FORGET = "forget"        # (FORGET, blob_id): the blob will not be played again
PLAY = "play"            # (PLAY, leg, blob_id, sequence): play from now, replacing what plays
STOP = "stop"            # (STOP, leg): stop playing (no DONE for what was stopped)
START = "start"          # (START, leg): pace the leg's prompts or silence on the 20 ms clock
PAUSE = "pause"          # (PAUSE, leg): stop pacing (a bridged leg relays instead)
RELAY = "relay"          # (RELAY, leg, target_leg | 0): pass received packets to the target's peer
TAPS = "taps"            # (TAPS, leg, mask): which audio to copy back (TAP_AUDIO | TAP_IN | TAP_OUT)
MIX = "mix"              # (MIX, room, ((listener_leg, (source_leg, ...)), ...), (bridged_leg, ...)): mix a
                         # monitored call's legs every 20 ms (acd.calls.mix_room); an empty plan ends the room
CLOSE = "close"          # (CLOSE, leg): release the port; answered by CLOSED

# Reports: worker -> call process.
HELLO = "hello"          # (HELLO, pid)
OPEN_FAILED = "open_failed"  # (OPEN_FAILED, leg, port, reason)
DIGIT = "digit"          # (DIGIT, leg, digit, method): method "rfc4733" or "inband" (heard in the audio)
DONE = "done"            # (DONE, leg, sequence): the playback `sequence` finished
AUDIO = "audio"          # (AUDIO, leg, tap, payload): one frame's payload for a tap the call process asked for
CLOSED = "closed"        # (CLOSED, leg, packets_sent, packets_received, packets_relayed, frames_dropped, figures):
#                          figures = acd.media.rtp_stats.StreamFigures.as_tuple() (loss, jitter, the peer's RTCP)
SRTP_FAILURES = "srtp_failures"  # (SRTP_FAILURES, count)
LOG = "log"              # (LOG, levelno, message): a log line of the worker, written by the call process
HELD_ELSEWHERE = "held_elsewhere"  # (HELD_ELSEWHERE, ports): ports of the slice another program holds now

# Tap bits (TAPS mask, AUDIO tap).
TAP_AUDIO = 1  # audio received while not relayed (speech menus, voicemail)
TAP_IN = 2     # audio received (a recording's caller side)
TAP_OUT = 4    # audio we send (a recording's other side)


class WireError(Exception):
    """The channel carried something that is not a frame of ours: close it."""


def encode(message: tuple) -> bytes:
    """One message as a frame."""
    body = marshal.dumps(message)
    return _LENGTH.pack(len(body)) + body


class FrameDecoder:
    """Turns the bytes of a stream into messages; keeps a partial frame until the rest arrives."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple]:
        """The complete messages `data` finishes (in order); raises WireError on a broken frame."""
        buffer = self._buffer
        buffer += data
        messages = []
        offset = 0
        end = len(buffer)
        while end - offset >= 4:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            if length > MAX_FRAME_BYTES:
                raise WireError(f"frame of {length} bytes announced (at most {MAX_FRAME_BYTES})")
            if end - offset - 4 < length:
                break
            start = offset + 4
            try:
                with memoryview(buffer) as view:
                    message = marshal.loads(view[start:start + length])
            except (ValueError, EOFError, TypeError) as error:
                raise WireError(f"undecodable frame: {error}") from None
            if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
                raise WireError(f"not a message: {type(message).__name__}")
            messages.append(message)
            offset = start + length
        if offset:
            del buffer[:offset]
        return messages
