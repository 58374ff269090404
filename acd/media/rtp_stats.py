# SPDX-License-Identifier: MIT
"""What a leg received from its peer's RTP stream: RFC 3550 Appendix A.1, A.3 and A.8, sans I/O.

`ReceiveStatistics.received(seq, timestamp, ssrc, arrival)` is called for every RTP packet of the
peer's stream (audio and telephone-events: they share one sequence space), with the arrival time in
seconds; only audio packets (`audio=True`) feed the jitter estimate, since RFC 4733 packets repeat
their event's timestamp and would read as jitter. It is the receive path's hot spot, so it does
plain int arithmetic on attributes and allocates nothing.

- A.1: sequence numbers are extended with a cycle count across the 16-bit wrap; a new source must
  send MIN_SEQUENTIAL packets in order before it counts (probation); a jump of more than MAX_DROPOUT
  ahead or MAX_MISORDER behind is a restart of the peer's stream once it is confirmed by the next packet.
- A.3: expected = extended highest - base + 1; lost = expected - received (duplicates can make it
  negative); the fraction lost is over the interval since the previous report block.
- A.8: interarrival jitter J += (|D| - J) / 16 in timestamp units; `jitter_seconds` divides by the
  clock rate.

A new SSRC (the peer restarted its stream, e.g. after a re-INVITE) folds the old source's counts
into the leg's totals and starts over, so a leg's figures cover the whole call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtcp import ReportBlock

__all__ = ["ReceiveStatistics", "StreamFigures", "MAX_DROPOUT", "MAX_MISORDER", "MIN_SEQUENTIAL"]

# RFC 3550 A.1's values: a gap of up to 3000 packets (60 s of 20 ms audio) is loss; more than 100
# behind is not a late packet but a restarted sender; two in order end a new source's probation.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
_SEQ_MOD = 1 << 16


@dataclass(frozen=True, slots=True)
class StreamFigures:
    """A leg's media figures: what we received from the peer, and what the peer reported receiving
    from us in its last RTCP report (None when it sent none). Plain values: they cross the media
    worker wire as `as_tuple()`."""

    received: int
    expected: int
    lost: int
    jitter_seconds: float
    reported_lost: int | None = None
    reported_jitter_seconds: float | None = None

    def as_tuple(self) -> tuple:
        """The figures as plain values, in field order."""
        return (self.received, self.expected, self.lost, self.jitter_seconds, self.reported_lost,
                self.reported_jitter_seconds)

    @classmethod
    def from_tuple(cls, values: tuple) -> "StreamFigures":
        """The inverse of `as_tuple`."""
        return cls(*values)


class ReceiveStatistics:
    """Sequence, loss and jitter figures of the stream a leg receives (one per leg)."""

    __slots__ = ("clock_rate", "ssrc", "base_seq", "max_seq", "cycles", "bad_seq", "probation", "packets",
                 "jitter", "_last_transit", "_expected_prior", "_received_prior", "_past_expected",
                 "_past_received")

    def __init__(self, clock_rate: int = 8000) -> None:
        """`clock_rate`: the RTP timestamp rate of the codec (8000 for G.711 and, by RFC 3551, G.722)."""
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.bad_seq = _SEQ_MOD + 1  # so seq == bad_seq is false
        self.probation = MIN_SEQUENTIAL
        self.packets = 0               # received from the current source (after probation)
        self.jitter = 0.0              # A.8, in timestamp units
        self._last_transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._past_expected = 0        # folded in from earlier sources
        self._past_received = 0

    def received(self, seq: int, timestamp: int, ssrc: int, arrival: float, audio: bool = True) -> None:
        """Account one RTP packet (16-bit `seq`, 32-bit `timestamp`) arriving at `arrival` seconds."""
        if ssrc != self.ssrc:
            self._new_source(ssrc, seq)
        if not self._update_seq(seq):
            return
        if not audio:
            return
        transit = arrival * self.clock_rate - timestamp
        last = self._last_transit
        self._last_transit = transit
        if last is None:
            return
        d = transit - last
        # The timestamp wrapped between the two packets: bring D back near zero (2**32 units apart).
        if d > 0x80000000:
            d -= 0x100000000
        elif d < -0x80000000:
            d += 0x100000000
        if d < 0:
            d = -d
        self.jitter += (d - self.jitter) / 16.0

    def _fold(self) -> None:
        """Keep the current source's counts in the leg's totals before its counts start over."""
        if self.packets:
            self._past_expected += self._expected()
            self._past_received += self.packets

    def _new_source(self, ssrc: int, seq: int) -> None:
        self._fold()
        self.ssrc = ssrc
        self.packets = 0
        self.probation = MIN_SEQUENTIAL
        self.max_seq = (seq - 1) & 0xFFFF
        self._last_transit = None
        self._expected_prior = self._received_prior = 0

    def _init_seq(self, seq: int) -> None:
        """A.1 init_seq."""
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.packets = 0
        self._expected_prior = self._received_prior = 0

    def _update_seq(self, seq: int) -> bool:
        """A.1 update_seq: False when the packet does not count (probation, or a wild jump)."""
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.packets += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD  # in order, with permissible gap: the sequence number wrapped
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                # Two sequential packets after a very large jump: the sender restarted without telling us.
                self._fold()
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: a duplicate or reordered packet, counted as received
        self.packets += 1
        return True

    def _expected(self) -> int:
        if not self.packets and self.probation:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def extended_max_seq(self) -> int:
        """The extended highest sequence number received (cycles + max_seq)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected over the leg (A.3), all sources together."""
        return self._past_expected + self._expected()

    @property
    def packets_received(self) -> int:
        """Packets counted over the leg (after each source's probation), all sources together."""
        return self._past_received + self.packets

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3); negative when duplicates outnumber losses."""
        return self.expected - self.packets_received

    @property
    def jitter_seconds(self) -> float:
        """The current interarrival jitter estimate in seconds."""
        return self.jitter / self.clock_rate

    def report_block(self, last_sr: int = 0, delay_since_last_sr: int = 0) -> ReportBlock | None:
        """An RFC 3550 §6.4.1 report block about the current source, and start a new interval for the
        fraction lost; None before a source passed probation. `last_sr`, `delay_since_last_sr`: LSR
        and DLSR from the RTCP side."""
        if self.ssrc is None or (self.probation and not self.packets):
            return None
        expected = self._expected()
        lost = expected - self.packets
        expected_interval = expected - self._expected_prior
        received_interval = self.packets - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.packets
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        return ReportBlock(ssrc=self.ssrc, fraction_lost=min(fraction, 255),
                           cumulative_lost=max(-(1 << 23), min(lost, (1 << 23) - 1)),
                           highest_sequence=self.extended_max_seq & 0xFFFFFFFF, jitter=int(self.jitter) & 0xFFFFFFFF,
                           last_sr=last_sr, delay_since_last_sr=delay_since_last_sr)

    def figures(self, reported_lost: int | None = None, reported_jitter_seconds: float | None = None) -> StreamFigures:
        """The leg's figures so far, with what the peer reported (from the RTCP side)."""
        return StreamFigures(received=self.packets_received, expected=self.expected, lost=self.lost,
                             jitter_seconds=self.jitter_seconds, reported_lost=reported_lost,
                             reported_jitter_seconds=reported_jitter_seconds)
