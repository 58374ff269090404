# SPDX-License-Identifier: MIT
"""One media leg's RTCP, sans I/O: when to report, what to report, what the peer reported.

The shell (acd.calls.rtcp_port) asks `next_deadline()`, calls `report(now, wallclock, ...)` then
and sends the bytes, and hands every datagram from the peer to `receive(data, now)`.

- Timing (RFC 3550 §6.2, §6.3.5): a two-party call's RTCP bandwidth is tiny, so the interval is the
  fixed minimum, `interval_seconds` (5 s in the RFC), randomised over [0.5, 1.5] times that and
  divided by e - 3/2 (the RFC's compensation for the randomisation's bias); the first report goes
  after half an interval.
- Content (§6.1, §6.4): an SR while our own stream was sent since the last report, an RR otherwise
  (a bridged leg relays the other peer's packets under that peer's SSRC), each with one report block
  about the stream we receive (once it passed probation), then an SDES with our CNAME. `bye()`
  adds a BYE (§6.6) to a last report.
- Received: the peer's SR gives LSR/DLSR for our next block (§6.4.1); its report block about our
  stream (or its first block, when it reports on the relayed SSRC) gives its loss and jitter of the
  audio we send, and with our own SR's time the round-trip time (§6.4.1, "Delay since last SR").
"""

from __future__ import annotations

import random

from .rtcp import (Bye, ReceiverReport, ReportBlock, RtcpPacket, SenderReport, SourceDescription, SDES_CNAME,
                   build_compound, parse_compound)
from .rtp_stats import ReceiveStatistics

__all__ = ["RtcpSession", "ntp_timestamp", "DEFAULT_INTERVAL_SECONDS"]

DEFAULT_INTERVAL_SECONDS = 5.0  # RFC 3550 §6.2: the recommended minimum
_COMPENSATION = 2.71828 - 1.5  # RFC 3550 §6.3.1: e - 3/2
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def ntp_timestamp(wallclock: float) -> int:
    """The 64-bit NTP timestamp of a Unix time in seconds (RFC 3550 §4)."""
    return int((wallclock + _NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def _middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (LSR, §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


class RtcpSession:
    """RTCP state of one leg whose RTP stream has `ssrc` and whose received stream `stats` tracks."""

    def __init__(self, *, ssrc: int, cname: bytes, stats: ReceiveStatistics,
                 interval_seconds: float = DEFAULT_INTERVAL_SECONDS, rng: random.Random | None = None) -> None:
        """`cname`: our canonical name (§6.5.1, e.g. b"acd@192.0.2.1"), at most 255 bytes."""
        self.ssrc = ssrc
        self.cname = cname[:255]
        self.stats = stats
        self.interval_seconds = interval_seconds
        self.rng = rng or random.Random()
        self._next_report: float | None = None
        self._sent_at_last_report = 0
        self._peer_sr_middle: int | None = None   # LSR of the peer's last SR
        self._peer_sr_arrival = 0.0
        self._our_sr_ntp: dict[int, int] = {}     # middle 32 bits of our recent SRs -> their NTP time
        self.peer_report: ReportBlock | None = None
        self.round_trip_seconds: float | None = None
        self.reports_received = 0
        self.reports_sent = 0

    def start(self, now: float) -> None:
        """Schedule the first report, half an interval away (§6.2)."""
        self._next_report = now + self._randomised(self.interval_seconds / 2)

    def _randomised(self, interval: float) -> float:
        return interval * self.rng.uniform(0.5, 1.5) / _COMPENSATION

    def next_deadline(self) -> float | None:
        """When the next report is due (None before `start`)."""
        return self._next_report

    def report(self, now: float, wallclock: float, *, packets_sent: int, octets_sent: int,
               rtp_timestamp: int) -> bytes:
        """Our compound report (SR if we sent since the last one, else RR; SDES CNAME), and schedule
        the next. `wallclock` is Unix time (the SR's NTP clock); the counts are our stream's so far."""
        self._next_report = now + self._randomised(self.interval_seconds)
        self.reports_sent += 1
        return build_compound(self._report_packets(now, wallclock, packets_sent, octets_sent, rtp_timestamp))

    def bye(self, now: float, wallclock: float, *, packets_sent: int, octets_sent: int, rtp_timestamp: int,
            reason: bytes = b"") -> bytes:
        """A last report with a BYE for our SSRC (§6.6); no more are scheduled."""
        self._next_report = None
        packets = self._report_packets(now, wallclock, packets_sent, octets_sent, rtp_timestamp)
        packets.append(Bye(sources=(self.ssrc,), reason=reason[:255]))
        return build_compound(packets)

    def _report_packets(self, now: float, wallclock: float, packets_sent: int, octets_sent: int,
                        rtp_timestamp: int) -> list[RtcpPacket]:
        last_sr = delay = 0
        if self._peer_sr_middle is not None:
            last_sr = self._peer_sr_middle
            delay = min(int((now - self._peer_sr_arrival) * 65536), 0xFFFFFFFF)
        block = self.stats.report_block(last_sr, delay)
        blocks = (block,) if block is not None else ()
        sending = packets_sent > self._sent_at_last_report
        self._sent_at_last_report = packets_sent
        if sending:
            ntp = ntp_timestamp(wallclock)
            self._our_sr_ntp[_middle(ntp)] = ntp
            while len(self._our_sr_ntp) > 4:  # the peer answers one of our last few SRs
                del self._our_sr_ntp[next(iter(self._our_sr_ntp))]
            first: RtcpPacket = SenderReport(ssrc=self.ssrc, ntp_timestamp=ntp, rtp_timestamp=rtp_timestamp & 0xFFFFFFFF,
                                             packet_count=packets_sent & 0xFFFFFFFF,
                                             octet_count=octets_sent & 0xFFFFFFFF, reports=blocks)
        else:
            first = ReceiverReport(ssrc=self.ssrc, reports=blocks)
        return [first, SourceDescription(chunks=((self.ssrc, ((SDES_CNAME, self.cname),)),))]

    def receive(self, data: bytes, now: float, wallclock: float) -> list[RtcpPacket]:
        """Take in one datagram from the peer; its packets are returned. Raises RtcpError (drop it)."""
        packets = parse_compound(data)
        self.reports_received += 1
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._peer_sr_middle = _middle(packet.ntp_timestamp)
                self._peer_sr_arrival = now
            if isinstance(packet, (SenderReport, ReceiverReport)) and packet.reports:
                ours = [block for block in packet.reports if block.ssrc == self.ssrc]
                block = ours[0] if ours else packet.reports[0]
                self.peer_report = block
                self._round_trip(block, wallclock)
        return packets

    def _round_trip(self, block: ReportBlock, wallclock: float) -> None:
        """§6.4.1: RTT = arrival - LSR - DLSR, all in 1/65536 s, when LSR is one of our SRs."""
        if block.last_sr and block.last_sr in self._our_sr_ntp:
            units = (_middle(ntp_timestamp(wallclock)) - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
            if units < 0x80000000:
                self.round_trip_seconds = units / 65536

    @property
    def reported_lost(self) -> int | None:
        """The peer's cumulative count of our packets lost, from its last report (None: none yet)."""
        return self.peer_report.cumulative_lost if self.peer_report is not None else None

    @property
    def reported_jitter_seconds(self) -> float | None:
        """The peer's interarrival jitter of our stream, in seconds, from its last report."""
        if self.peer_report is None:
            return None
        return self.peer_report.jitter / self.stats.clock_rate
