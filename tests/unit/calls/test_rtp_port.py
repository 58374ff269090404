"""acd.calls.rtp_port on real loopback sockets, with a reactor that only records its readers."""

from __future__ import annotations

import socket

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.protocol import DatagramProtocol
from zope.interface import implementer

from acd.calls.rtp_port import RtpPort, listen_rtp


@implementer(IReactorFDSet)
class Readers:
    """addReader/removeReader only: the test calls doRead itself."""

    def __init__(self) -> None:
        self.readers: set = set()

    def addReader(self, reader) -> None:  # noqa: N802 - Twisted API
        self.readers.add(reader)

    def removeReader(self, reader) -> None:  # noqa: N802 - Twisted API
        self.readers.discard(reader)


class Received(DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, tuple]] = []
        self.stopped = False

    def datagramReceived(self, data, addr) -> None:  # noqa: N802 - Twisted API
        self.datagrams.append((data, addr))

    def stopProtocol(self) -> None:  # noqa: N802 - Twisted API
        self.stopped = True


def test_datagrams_reach_the_protocol_and_it_sends_from_the_bound_port():
    reactor, protocol = Readers(), Received()
    port = listen_rtp(reactor, 0, protocol, "127.0.0.1")
    assert isinstance(port, RtpPort) and reactor.readers == {port} and protocol.transport is port
    bound = port.socket.getsockname()[1]
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    try:
        peer.sendto(b"one", ("127.0.0.1", bound))
        peer.sendto(b"two", ("127.0.0.1", bound))
        port.doRead()
        assert [data for data, _ in protocol.datagrams] == [b"one", b"two"]
        assert protocol.datagrams[0][1] == peer.getsockname()
        port.write(b"back", peer.getsockname())
        assert peer.recvfrom(64) == (b"back", ("127.0.0.1", bound))
    finally:
        peer.close()
        port.stopListening()


def test_stop_listening_closes_at_once_and_frees_the_port():
    reactor, protocol = Readers(), Received()
    port = listen_rtp(reactor, 0, protocol, "127.0.0.1")
    bound = port.socket.getsockname()[1]
    port.stopListening()
    port.stopListening()
    assert reactor.readers == set() and port.fileno() == -1
    assert protocol.stopped and protocol.transport is None
    again = listen_rtp(reactor, bound, Received(), "127.0.0.1")  # no deferred close holding it
    again.stopListening()


def test_a_port_in_use_is_refused_with_cannot_listen():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(CannotListenError):
            listen_rtp(Readers(), holder.getsockname()[1], Received(), "127.0.0.1")
    finally:
        holder.close()
