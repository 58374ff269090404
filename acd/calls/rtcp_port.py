"""RTCP for one RTP leg: the odd port above its RTP port (RFC 3550 §11), reports every ~5 s.

Both media planes bind legs on even ports only (acd.calls.rtp_leg.RtpPortAllocator, the worker
slices of acd.calls.remote_media), so the odd port above each is this leg's RTCP port, as RFC 3550
§11 expects when the SDP has no `a=rtcp` line (ours has none: RFC 3605 needs it only for another
port). We do not answer `a=rtcp-mux` (RFC 5761 §5.1.1: then the peer keeps RTCP on its own port).

Reports go to the peer's RTP port + 1, or, once the peer's RTCP arrived from its RTP address's host,
to where it came from (symmetric RTCP, RFC 4961: right behind a NAT and for an `a=rtcp` port
alike). The pure side is acd.media.rtcp_session; this is the socket and the timer.

SRTP legs send and read no RTCP: SRTCP (RFC 3711 §3.4) would need its own index and auth tag;
their RTP figures (loss, jitter received) are still kept by the leg. Datagrams that do not parse are
counted and logged once when the leg ends (not at once: a peer's first SRTCP can beat our keys).

A port + 1 that another program holds leaves the leg without RTCP (logged once per leg): the call
works, only the reports are missing.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Callable

from twisted.internet import protocol
from twisted.internet.error import CannotListenError

from ..media.prompts import FRAME_SAMPLES
from ..media.rtcp import RtcpError
from ..media.rtcp_session import RtcpSession
from .rtp_port import listen_rtp

if TYPE_CHECKING:
    from .rtp_leg import RtpLeg

__all__ = ["RtcpPort", "open_rtcp"]

log = logging.getLogger("acd.media")


class RtcpPort(protocol.DatagramProtocol):
    """The RTCP socket of `leg`. `reactor` provides IReactorTime."""

    noisy = False

    def __init__(self, leg: "RtpLeg", reactor, session: RtcpSession,
                 wallclock: Callable[[], float] = time.time) -> None:
        """`wallclock`: Unix time for the SR's NTP timestamp (the reactor's clock paces the reports)."""
        self.leg = leg
        self.reactor = reactor
        self.session = session
        self.wallclock = wallclock
        self.peer: tuple[str, int] | None = None  # where the peer's RTCP came from (symmetric RTCP)
        self.bad_reports = 0
        self._first_bad = ""
        self._timer = None

    def start(self) -> None:
        """Schedule the first report."""
        self.session.start(self.reactor.seconds())
        self._arm()

    def _arm(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is not None:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._due)

    def destination(self) -> tuple[str, int] | None:
        """Where our reports go; None while the leg has no peer address."""
        host, port = self.leg.remote
        if not port:
            return None
        if self.peer is not None and self.peer[0] == host:
            return self.peer
        return host, port + 1

    def _counts(self) -> dict:
        leg = self.leg
        return {"packets_sent": leg.packets_sent, "octets_sent": leg.packets_sent * FRAME_SAMPLES,
                "rtp_timestamp": leg.timestamp}

    def _due(self) -> None:
        self._timer = None
        now = self.reactor.seconds()
        data = self.session.report(now, self.wallclock(), **self._counts())
        self._send(data)
        self._arm()

    def _send(self, data: bytes) -> None:
        destination = self.destination()
        if destination is None or self.leg.srtp or self.transport is None:
            return
        self.transport.write(data, destination)

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: N802 - Twisted API
        """The peer's RTCP: its reports of our stream; a broken datagram is counted and dropped."""
        if self.leg.srtp:
            return  # SRTCP: not read (module docstring)
        try:
            self.session.receive(data, self.reactor.seconds(), self.wallclock())
        except RtcpError as error:
            self.bad_reports += 1
            if self.bad_reports == 1:
                self._first_bad = f"from {addr[0]}:{addr[1]} ({len(data)} bytes, {data[:16].hex()}...): {error}"
            return
        if addr[0] == self.leg.remote[0]:
            self.peer = addr

    def close(self) -> None:
        """The leg ends: a last report with BYE, then the port closes."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if self.bad_reports and not self.leg.srtp:
            # Logged at the end, once: SRTCP can arrive before the leg's SRTP keys do (the peer reports
            # as soon as it answers), and is only noise on a leg that turned out to be SRTP.
            log.info("call=%s dropped %d broken RTCP datagram(s), the first %s", self.leg.call_id, self.bad_reports,
                     self._first_bad)
        if self.transport is None:
            return
        self._send(self.session.bye(self.reactor.seconds(), self.wallclock(), **self._counts()))
        self.transport.stopListening()


def open_rtcp(reactor, leg: "RtpLeg", rtp_port: int, address: str, *, interval_seconds: float,
              rng: random.Random | None = None) -> RtcpPort | None:
    """Bind `leg`'s RTCP on `rtp_port` + 1 and start reporting; None (logged) when that port is taken or
    RTCP is off (`interval_seconds` 0)."""
    if interval_seconds <= 0:
        return None
    session = RtcpSession(ssrc=leg.ssrc, cname=f"acd@{address}".encode(), stats=leg.stats,
                          interval_seconds=interval_seconds, rng=rng)
    port = RtcpPort(leg, reactor, session)
    try:
        listen_rtp(reactor, rtp_port + 1, port, address)
    except CannotListenError as error:
        log.info("call=%s RTCP port %d is held by another program (%s): this leg sends no RTCP reports",
                 leg.call_id, rtp_port + 1, error.socketError)
        return None
    port.start()
    leg.rtcp = port
    return port
