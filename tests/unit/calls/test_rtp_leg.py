"""The RTP leg's pacing and playback bookkeeping, driven by a fake clock (no sockets, no sleeping)."""

from __future__ import annotations

import random
import struct

from twisted.internet.task import Clock

from acd.calls.rtp_leg import MediaClock, RtpLeg
from acd.media.rfc4733 import dtmf_event_payloads
from acd.media.rtp import build_rtp_header


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))


def make_leg(finished: list[int], digits: list[str]) -> RtpLeg:
    leg = RtpLeg(call_id="t", codec="PCMU", payload_type=0, remote=("127.0.0.1", 4000), telephone_event_pt=101,
                 on_digit=digits.append, on_playback_finished=finished.append, rng=random.Random(1))
    leg.transport = FakeTransport()
    return leg


def test_one_packet_per_20_ms_with_consecutive_sequence_and_timestamp():
    """The shared clock sends one 160-byte frame per tick; seq +1, ts +160, marker only first."""
    clock = Clock()
    finished, digits = [], []
    leg = make_leg(finished, digits)
    media = MediaClock(clock)
    media.add(leg)
    for _ in range(50):
        clock.advance(0.02)
    sent = leg.transport.sent
    assert 49 <= len(sent) <= 51
    headers = [struct.unpack("!BBHII", data[:12]) for data, _ in sent]
    assert headers[0][1] & 0x80 and not any(h[1] & 0x80 for h in headers[1:])
    assert all((b[2] - a[2]) & 0xFFFF == 1 and (b[3] - a[3]) & 0xFFFFFFFF == 160 for a, b in zip(headers, headers[1:]))
    assert all(len(data) == 12 + 160 for data, _ in sent)


def test_playback_reports_its_id_once_after_its_last_frame():
    """Three frames of audio play in three ticks, then PlaybackFinished(id) fires once; silence follows."""
    clock = Clock()
    finished, digits = [], []
    leg = make_leg(finished, digits)
    media = MediaClock(clock)
    media.add(leg)
    leg.play(b"\x10" * 480, playback_id=7)
    for _ in range(5):
        clock.advance(0.02)
    assert finished == [7]
    payloads = [data[12:] for data, _ in leg.transport.sent]
    assert payloads[:3] == [b"\x10" * 160] * 3
    assert payloads[3] == b"\xff" * 160


def test_stopped_playback_never_reports_finished():
    """Barge-in: stop() drops the audio and no PlaybackFinished is reported for it."""
    clock = Clock()
    finished, digits = [], []
    leg = make_leg(finished, digits)
    MediaClock(clock).add(leg)
    leg.play(b"\x10" * 1600, playback_id=1)
    clock.advance(0.02)
    leg.stop()
    for _ in range(20):
        clock.advance(0.02)
    assert finished == []


def test_a_late_tick_drops_frames_instead_of_bursting():
    """After a 1 s stall the leg skips the missed frames (counted) but keeps timestamps continuous."""
    clock = Clock()
    leg = make_leg([], [])
    leg.tick(clock.seconds())
    clock.advance(1.0)
    leg.tick(clock.seconds())
    assert len(leg.transport.sent) <= 5
    assert leg.frames_dropped >= 45
    first, last = (struct.unpack("!BBHII", d[:12]) for d, _ in (leg.transport.sent[0], leg.transport.sent[-1]))
    assert (last[3] - first[3]) & 0xFFFFFFFF == 160 * 50


def test_telephone_event_packets_become_one_digit():
    """An RFC 4733 event with its three end packets yields the digit once."""
    digits = []
    leg = make_leg([], digits)
    for index, (payload, marker, _end) in enumerate(dtmf_event_payloads("5", 100)):
        leg.datagramReceived(build_rtp_header(101, marker, 100 + index, 8000, 42) + payload, ("127.0.0.1", 4000))
    assert digits == ["5"]


def test_malformed_telephone_event_is_ignored():
    """A truncated telephone-event payload is logged and dropped, not raised."""
    digits = []
    leg = make_leg([], digits)
    leg.datagramReceived(build_rtp_header(101, True, 1, 8000, 42) + b"\x05", ("127.0.0.1", 4000))
    assert digits == []


def test_frames_go_out_on_the_port_socket_and_a_send_error_loses_only_that_packet():
    """Bound by Twisted (makeConnection), the leg sends on the port's socket; an OSError (full
    buffer, ICMP refused) drops that packet, is counted, and pacing goes on."""
    class Socket:
        def __init__(self) -> None:
            self.sent, self.fail = [], False

        def sendto(self, data, addr):
            if self.fail:
                raise BlockingIOError(11, "Resource temporarily unavailable")
            self.sent.append((data, addr))
            return len(data)

    class Port:
        def __init__(self) -> None:
            self.socket = Socket()

        def write(self, data, addr):
            raise AssertionError("Port.write is not used once the socket is known")

    leg = RtpLeg(call_id="t", codec="PCMU", payload_type=0, remote=("127.0.0.1", 4000), telephone_event_pt=101,
                 on_digit=lambda digit: None, on_playback_finished=lambda playback: None, rng=random.Random(1))
    port = Port()
    leg.makeConnection(port)
    leg.tick(0.0)
    port.socket.fail = True
    leg.tick(0.02)
    port.socket.fail = False
    leg.tick(0.04)
    assert [addr for _, addr in port.socket.sent] == [("127.0.0.1", 4000)] * 2
    assert leg.send_errors == 1 and leg.packets_sent == 3
