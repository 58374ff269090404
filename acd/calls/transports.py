"""Twisted transports for SIP: UDP datagrams and TCP streams, both feeding one SipServer.

A bug triggered by one message is logged with the message and the server goes on: one bad
packet must never take other calls down.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from twisted.internet import protocol

from ..sip.errors import RemoteProtocolError
from ..sip.events import Datagram
from ..sip.framing import StreamFramer

__all__ = ["SipReceiver", "SipUdpProtocol", "SipTcpFactory"]

log = logging.getLogger("acd.sip")


class SipReceiver(Protocol):
    """Where received SIP goes, and who is told how to send it (the SipServer)."""

    def datagram_received(self, data: bytes, source: tuple[str, int], transport: str) -> None: ...

    def set_sender(self, transport: str, send: Callable[[Datagram], None]) -> None: ...


class SipUdpProtocol(protocol.DatagramProtocol):
    """SIP over UDP: one datagram, one message (RFC 3261 §18.3)."""

    def __init__(self, server: SipReceiver) -> None:
        self.server = server
        self.internal_errors = 0

    def startProtocol(self) -> None:  # noqa: N802 - Twisted API
        """Register as the UDP sender once the port is bound."""
        self.server.set_sender("UDP", self.send)

    def send(self, datagram: Datagram) -> None:
        """Send one datagram."""
        self.transport.write(datagram.data, datagram.destination)

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: N802 - Twisted API
        """Hand the datagram to the server; a bug is logged with the datagram, not raised."""
        try:
            self.server.datagram_received(data, (addr[0], addr[1]), "UDP")
        except Exception:  # a bug, surfaced in the log with its input; other calls go on
            self.internal_errors += 1
            log.exception("internal error handling a datagram from %s:%s; raw=%r", addr[0], addr[1], data[:300])


class _SipTcpConnection(protocol.Protocol):
    def __init__(self, factory: "SipTcpFactory") -> None:
        self.factory = factory
        self.framer = StreamFramer()
        self.peer: tuple[str, int] = ("", 0)

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        address = self.transport.getPeer()
        self.peer = (address.host, address.port)
        self.factory.connections[self.peer] = self

    def connectionLost(self, reason=None) -> None:  # noqa: N802 - Twisted API
        if self.factory.connections.get(self.peer) is self:
            del self.factory.connections[self.peer]

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        try:
            messages = self.framer.feed(data)
        except RemoteProtocolError as error:
            log.warning("closing TCP connection from %s:%s: %s", self.peer[0], self.peer[1], error.reason)
            self.transport.loseConnection()
            return
        for message in messages:
            try:
                self.factory.server.datagram_received(message, self.peer, "TCP")
            except Exception:  # a bug, surfaced in the log with its input; other calls go on
                log.exception("internal error handling a TCP message from %s:%s; raw=%r", self.peer[0],
                              self.peer[1], message[:300])


class SipTcpFactory(protocol.ServerFactory):
    """Accepts SIP over TCP; responses and in-dialog requests go back on the same connection."""

    def __init__(self, server: SipReceiver) -> None:
        self.server = server
        self.connections: dict[tuple[str, int], _SipTcpConnection] = {}
        server.set_sender("TCP", self.send)

    def buildProtocol(self, addr) -> _SipTcpConnection:  # noqa: N802 - Twisted API
        """One protocol per accepted connection."""
        return _SipTcpConnection(self)

    def send(self, datagram: Datagram) -> None:
        """Write to the connection the peer opened; dropped (and logged) if it is gone."""
        connection = self.connections.get(datagram.destination)
        if connection is None:
            log.warning("no TCP connection to %s:%s; dropped %d bytes", datagram.destination[0],
                        datagram.destination[1], len(datagram.data))
            return
        connection.transport.write(datagram.data)
