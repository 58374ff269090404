"""One RTP leg's UDP socket, read by the reactor: a lean stand-in for Twisted's `udp.Port`.

A media worker opens and closes two ports per call. Twisted's `listenUDP` logs two lines per port
("starting on", "Closed") through its legacy log system, and closes through a Deferred on the next
reactor turn; at 550 calls/s opening and closing was 22 % of the worker's samples (py-spy), most of
it that. `listen_rtp` binds a plain non-blocking socket and adds it to the reactor as a reader;
`stopListening` removes and closes it at once. A reactor without IReactorFDSet (the shell tests'
fake reactor) gets its own `listenUDP`.
"""

from __future__ import annotations

import errno
import socket

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.protocol import DatagramProtocol

__all__ = ["RtpPort", "listen_rtp"]

MAX_DATAGRAMS_PER_READ = 64  # then back to the reactor, so one flooded port cannot starve the others
MAX_DATAGRAM_BYTES = 2048  # RTP of 20 ms G.711/G.722 is 172 bytes; SRTP adds a few


def listen_rtp(reactor, port: int, protocol: DatagramProtocol, address: str):
    """Bind `address`:`port` for `protocol` and start reading; raises CannotListenError."""
    if not IReactorFDSet.providedBy(reactor):
        return reactor.listenUDP(port, protocol, interface=address)
    return RtpPort(reactor, protocol, address, port)


class RtpPort:
    """A bound, non-blocking UDP socket whose datagrams go to `protocol.datagramReceived`; it provides
    what RtpLeg uses of a Twisted port: `socket`, `write`, `getHost`, `stopListening`."""

    def __init__(self, reactor, protocol: DatagramProtocol, address: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((address, port))
        except OSError as error:
            sock.close()
            raise CannotListenError(address, port, error) from error
        self.reactor = reactor
        self.protocol = protocol
        self.socket = sock
        self._fileno = sock.fileno()
        self._host = (IPv6Address if family == socket.AF_INET6 else IPv4Address)("UDP", address, port)
        self.listening = True
        protocol.makeConnection(self)
        reactor.addReader(self)

    def fileno(self) -> int:
        """The socket's descriptor (-1 once closed)."""
        return self._fileno

    def logPrefix(self) -> str:  # noqa: N802 - Twisted API
        return "RtpPort"

    def getHost(self):  # noqa: N802 - Twisted API
        """The bound address."""
        return self._host

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send one datagram (a full buffer or an ICMP error drops it, as UDP may)."""
        try:
            self.socket.sendto(data, addr)
        except OSError:
            pass

    def doRead(self) -> None:  # noqa: N802 - Twisted API
        """Hand the protocol what the socket holds, up to MAX_DATAGRAMS_PER_READ datagrams."""
        for _ in range(MAX_DATAGRAMS_PER_READ):
            if not self.listening:
                return
            try:
                data, addr = self.socket.recvfrom(MAX_DATAGRAM_BYTES)
            except OSError as error:
                if error.errno == errno.ECONNREFUSED:  # an ICMP error for something we sent
                    self.protocol.connectionRefused()
                    continue
                return  # EAGAIN: nothing more; anything else: the next readiness event tells again
            self.protocol.datagramReceived(data, addr)

    def stopListening(self) -> None:  # noqa: N802 - Twisted API
        """Stop reading and close the socket now."""
        if not self.listening:
            return
        self.listening = False
        self.reactor.removeReader(self)
        self.socket.close()
        self._fileno = -1
        self.protocol.doStop()

    def connectionLost(self, reason=None) -> None:  # noqa: N802 - Twisted API
        """The reactor gave up on the descriptor (it is shutting down): close."""
        self.stopListening()
