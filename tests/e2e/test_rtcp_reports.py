"""RTCP against the real server: a raw-UDP caller whose stream has known loss and known jitter gets
sender reports counting that loss on its RTP port + 1, and the server logs the call's figures,
with what the caller's own receiver report said."""

from __future__ import annotations

import re
import socket
import struct
import time

import pytest

from acd.media.rtcp import Bye, ReceiverReport, ReportBlock, RtcpError, SenderReport, parse_compound

from .harness import LOOPBACK, free_port, rtp_base, start_server, wait_until
from .raw_phone import RawPhone

SKIPPED = frozenset({30, 31, 32, 77, 120})  # packets of the caller's stream never sent: 5 lost
JITTER_SECONDS = 0.010  # every other packet leaves 10 ms late: |D| = 10 ms each time, so A.8's J -> 10 ms
STREAM_SSRC = 0x5EED0001
PACKETS = 170  # 3.4 s: past the last skipped packet, so the loss shows in the reports


class LossyJitteryPhone(RawPhone):
    """A RawPhone whose PCMU stream skips the SKIPPED packets and sends odd packets 10 ms late."""

    def _send_tone(self) -> None:
        index, start = 0, None
        while self._running and index < PACKETS:
            target = self.remote_rtp
            if target is None:
                time.sleep(0.005)
                continue
            start = start if start is not None else time.monotonic()
            time.sleep(max(0.0, start + index * 0.02 + (JITTER_SECONDS if index % 2 else 0) - time.monotonic()))
            if index not in SKIPPED:
                header = struct.pack("!BBHII", 0x80, 0x80 if index == 0 else 0, (1000 + index) & 0xFFFF,
                                     16000 + 160 * index, STREAM_SSRC)
                self.rtp.sendto(header + b"\xff" * 160, target)
            index += 1


def _phone_with_rtcp_port(server) -> tuple[LossyJitteryPhone, socket.socket]:
    """A phone and a socket on its RTP port + 1 (RFC 3550 §11: where the server sends RTCP)."""
    for _ in range(10):
        phone = LossyJitteryPhone("5551", (LOOPBACK, server.sip_port))
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind((LOOPBACK, phone.rtp_port + 1))
        except OSError:
            rtcp.close()
            phone.close()
            continue
        rtcp.settimeout(0.2)
        return phone, rtcp
    pytest.fail("no free port above ten RTP ports in a row")


@pytest.fixture
def rtcp_server(tmp_path):
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), rtp_extra="  rtcp_interval_seconds: 1\n")
    yield server
    server.stop()


def test_the_server_reports_a_callers_loss_by_rtcp_and_logs_loss_and_jitter(rtcp_server):
    phone, rtcp = _phone_with_rtcp_port(rtcp_server)
    reports: list[tuple[list, tuple[str, int]]] = []

    def receive() -> list:
        """The packets of the next RTCP datagram from the server ([] when none came in 0.2 s)."""
        try:
            data, source = rtcp.recvfrom(2048)
        except socket.timeout:
            return []
        try:
            packets = parse_compound(data)
        except RtcpError as error:
            raise AssertionError(f"the server sent a broken RTCP datagram {data.hex()}: {error}") from None
        reports.append((packets, source))
        return packets

    def report_with_all_the_loss() -> bool:
        packets = receive()
        blocks = [block for block in packets[0].reports if block.ssrc == STREAM_SSRC] if packets else []
        return bool(blocks) and blocks[0].cumulative_lost == len(SKIPPED)

    try:
        assert phone.call("1000") == 200
        wait_until(report_with_all_the_loss, 10, "an RTCP report counting the 5 skipped packets", server=rtcp_server)
        packets, source = reports[-1]
        sender = packets[0]
        assert isinstance(sender, SenderReport) and sender.packet_count > 0  # the IVR's prompts are our stream
        assert source == (phone.remote_rtp[0], phone.remote_rtp[1] + 1)
        (block,) = sender.reports
        assert 1000 + max(SKIPPED) < block.highest_sequence < 1000 + PACKETS
        assert 40 <= block.jitter <= 240  # 10 ms = 80 units; 5-30 ms allows for a loaded machine

        # The caller's receiver report about the server's stream: 7 lost, jitter 160 units = 20 ms.
        theirs = ReceiverReport(ssrc=STREAM_SSRC, reports=(ReportBlock(
            ssrc=sender.ssrc, fraction_lost=3, cumulative_lost=7, highest_sequence=5000, jitter=160,
            last_sr=(sender.ntp_timestamp >> 16) & 0xFFFFFFFF, delay_since_last_sr=655),))
        rtcp.sendto(bytes(theirs), source)
        time.sleep(0.1)
        call_id = phone.dialog["call_id"]
        assert phone.hang_up() == 200
        line = rtcp_server.wait_for_log(
            rf"call={re.escape(call_id)} rtp received=(\d+) expected=(\d+) lost=(\d+) jitter_ms=(\S+) "
            rf"peer_lost=(\S+) peer_jitter_ms=(\S+)")
        received, expected, lost, jitter_ms, peer_lost, peer_jitter_ms = line.groups()
        assert int(lost) == len(SKIPPED) and int(expected) - int(received) == len(SKIPPED)
        assert 5.0 <= float(jitter_ms) <= 30.0
        assert (peer_lost, peer_jitter_ms) == ("7", "20.0")
        wait_until(lambda: any(isinstance(packet, Bye) for packet in receive()), 5, "an RTCP BYE at hang-up",
                   server=rtcp_server)
    finally:
        phone.close()
        rtcp.close()
