# SPDX-License-Identifier: MIT
"""RFC 4733 telephone-event payloads (DTMF over RTP) and a de-duplicating receiver.

Wire format (RFC 4733 §2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

One key press is one *event*: every packet of it carries the same RTP
timestamp (§2.5.1.2), the sender repeats updates with a growing duration while
the key is held, then sends the final packet with the E bit three times
(§2.5.1.4).  ``DtmfReceiver`` turns that stream back into one digit per press.
"""

import struct
from collections import deque
from dataclasses import dataclass

__all__ = ["DIGIT_TO_EVENT", "EVENT_TO_DIGIT", "DtmfReceiver", "TelephoneEvent", "dtmf_event_payloads"]

_PAYLOAD = struct.Struct("!BBH")
PAYLOAD_SIZE = _PAYLOAD.size

#: RFC 4733 §3.2 Table 7: DTMF named events.
EVENT_TO_DIGIT: dict[int, str] = {
    **{n: str(n) for n in range(10)},
    10: "*", 11: "#", 12: "A", 13: "B", 14: "C", 15: "D",
}
DIGIT_TO_EVENT: dict[str, int] = {digit: event for event, digit in EVENT_TO_DIGIT.items()}


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload. The R (reserved) bit is ignored on parse and sent as 0."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"telephone-event event code {self.event} does not fit in 8 bits")
        # §2.3: volume is the power level in dBm0 with the sign dropped, 0..63.
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume {self.volume} is outside 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"telephone-event duration {self.duration} does not fit in 16 bits")

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        """Parse a 4-byte payload; raise ``ValueError`` if it is not 4 bytes."""
        if len(payload) < PAYLOAD_SIZE:
            raise ValueError("telephone-event payload is too short")
        if len(payload) > PAYLOAD_SIZE:
            # Several events in one packet need RFC 2198 redundancy, a different payload type.
            raise ValueError(f"telephone-event payload is {len(payload)} bytes, expected {PAYLOAD_SIZE}")
        event, flags, duration = _PAYLOAD.unpack(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit for events 0-15, else None (flash, tones...)."""
        return EVENT_TO_DIGIT.get(self.event)


class DtmfReceiver:
    """Report each DTMF key press exactly once from a telephone-event RTP stream.

    Feed it every telephone-event packet with ``receive(rtp_timestamp, payload)``.
    An event is identified by its RTP timestamp and event code.

    * ``report_on_start=False`` (default): a digit is reported on the first end
      packet of its event; the two repeated end packets and any later update
      for that event are ignored.
    * ``report_on_start=True``: a digit is reported on the first packet seen of
      its event (lower latency, but a press is reported even if the sender
      later cancels it).
    * Lost end: if none of an event's end packets arrives and a packet of a new
      event shows up, the old event's digit is reported then, and the new
      event is reported on its next packet instead (the three repeated end
      packets make that next packet near-certain).  ``flush()`` reports an
      unfinished event, e.g. when the call ends or the caller stops pressing.
    * Packets of the last ``history_size`` finished events are ignored when
      late or duplicated, so two presses of the same key (different
      timestamps) are two digits, and a delayed end packet is not.

    Events that are not DTMF digits (codes above 15) are ignored.
    ``receive`` raises ``ValueError`` for a malformed payload, like the RTP parser.
    Call ``reset()`` when the remote SSRC changes.
    """

    def __init__(self, *, report_on_start: bool = False, history_size: int = 16) -> None:
        # history_size: a press lasts >= 40 ms and its packets arrive within the
        # jitter window; 16 finished events cover any realistic reordering.
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.report_on_start = report_on_start
        self._history_size = history_size
        self.reset()

    def reset(self) -> None:
        """Forget all events, e.g. when the remote SSRC changes."""
        self._current: tuple[int, int] | None = None
        self._current_reported = False
        self._owed = False
        self._finished: deque[tuple[int, int]] = deque(maxlen=self._history_size)

    def receive(self, timestamp: int, payload: bytes) -> str | None:
        """Take one telephone-event payload; return a digit when a press is complete."""
        event = TelephoneEvent.parse(payload)
        digit = event.digit
        if digit is None:
            return None
        key = (timestamp, event.event)
        if key == self._current:
            if self._current_reported:
                return None
            if event.end or self.report_on_start or self._owed:
                self._current_reported = True
                self._owed = False
                return digit
            return None
        if key in self._finished:
            return None

        previous = self.flush()
        self._current = key
        self._current_reported = False
        self._owed = False
        if event.end or self.report_on_start:
            if previous is not None:
                self._owed = True
                return previous
            self._current_reported = True
            return digit
        return previous

    def flush(self) -> str | None:
        """Finish the current event; return its digit if it was never reported."""
        if self._current is None:
            return None
        digit = None if self._current_reported else EVENT_TO_DIGIT[self._current[1]]
        self._finished.append(self._current)
        self._current = None
        self._current_reported = False
        self._owed = False
        return digit


def dtmf_event_payloads(
    digit: str,
    duration_ms: int,
    volume: int = 10,
    *,
    packet_ms: int = 20,
    clock_rate: int = 8000,
) -> list[tuple[bytes, bool, bool]]:
    """Payloads of one key press as an RFC 4733 sender emits them.

    Returns ``(payload, marker, is_end)`` tuples, to be sent ``packet_ms``
    apart with the same RTP timestamp: updates with a growing duration (the
    first one with the marker bit, §2.5.1.1), then the end packet three times
    (§2.5.1.4).
    """
    if digit not in DIGIT_TO_EVENT:
        raise ValueError(f"{digit!r} is not a DTMF digit")
    if duration_ms <= 0 or packet_ms <= 0:
        raise ValueError("DTMF duration and packet interval must be positive")
    event = DIGIT_TO_EVENT[digit]
    step = clock_rate * packet_ms // 1000
    updates = max(1, -(-duration_ms // packet_ms))
    total = updates * step
    if total > 0xFFFF:
        raise ValueError(f"DTMF duration {duration_ms} ms does not fit one telephone-event (max 65535 units)")
    packets = [
        (bytes(TelephoneEvent(event=event, end=False, volume=volume, duration=n * step)), n == 1, False)
        for n in range(1, updates + 1)
    ]
    end = bytes(TelephoneEvent(event=event, end=True, volume=volume, duration=total))
    packets.extend((end, False, True) for _ in range(3))
    return packets
