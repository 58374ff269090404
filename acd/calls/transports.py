"""Twisted transport for SIP over UDP, feeding one SipServer (streams: acd/calls/stream_transports.py).

A bug triggered by one message is logged with the message and the server goes on: one bad
packet must never take other calls down.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from twisted.internet import protocol

from ..sip.events import Datagram

__all__ = ["SipReceiver", "SipUdpProtocol"]

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
