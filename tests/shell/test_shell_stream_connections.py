"""The stream transport shell (TCP, TLS) with a Clock and in-memory transports: connection limits are
enforced, each close is logged with the peer and the reason and counted, messages reach the server,
and what the server sends goes back on the peer's own connection."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from acd.calls.stream_transports import CLOSE_GRACE_SECONDS, SipStreamFactory
from acd.config.model import StreamSettings
from acd.metrics import Metrics
from acd.sip.events import Datagram
from acd.sip.stream_limits import ConnectionAdmission

OPTIONS = (b"OPTIONS sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5;branch=z9hG4bK1\r\n"
           b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
LIMITS = StreamSettings(idle_timeout_seconds=10, partial_message_timeout_seconds=3, max_connections_per_ip=2,
                        max_connections=3)


class Server:
    """The SipReceiver side: what arrived, and the sender each transport registered."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int], str]] = []
        self.senders = {}

    def datagram_received(self, data, source, transport) -> None:
        self.received.append((data, source, transport))

    def set_sender(self, transport, send) -> None:
        self.senders[transport] = send


class Rig:
    def __init__(self, transport_name: str = "TCP") -> None:
        self.clock = task.Clock()
        self.server = Server()
        self.metrics = Metrics()
        self.busy: set[tuple[str, int]] = set()  # peers with a registration or a dialog
        self.factory = SipStreamFactory(self.server, reactor=self.clock, transport_name=transport_name,
                                        settings=LIMITS, admission=ConnectionAdmission(max_connections_per_ip=2,
                                                                                       max_connections=3),
                                        in_use=lambda peer, transport: peer in self.busy, metrics=self.metrics)

    def connect(self, host: str = "192.0.2.1", port: int = 40000):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        protocol.makeConnection(transport)
        return protocol, transport

    def lose(self, protocol) -> None:
        """The socket really closes (StringTransport only records that it was asked to)."""
        protocol.connectionLost(Failure(ConnectionDone()))

    def closed(self, reason: str) -> float:
        return self.metrics.registry.get_sample_value("acd_sip_connections_closed_total",
                                                      {"transport": self.factory.transport_name, "reason": reason}) or 0

    def open_now(self) -> float:
        return self.metrics.registry.get_sample_value("acd_sip_connections_open",
                                                      {"transport": self.factory.transport_name})


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_an_idle_connection_is_closed_in_order_after_the_idle_timeout(rig, caplog):
    """No message for 10 s: an orderly close at 10 s (logged with ip:port and counted), a reset after
    the grace time when the peer does not go."""
    caplog.set_level(logging.INFO, logger="acd.sip")
    protocol, transport = rig.connect()
    rig.clock.advance(9.9)
    assert not transport.disconnecting
    rig.clock.advance(0.1)
    assert transport.disconnecting and not transport.disconnected
    assert "closing TCP connection from 192.0.2.1:40000: idle_timeout" in caplog.text
    assert rig.closed("idle_timeout") == 1
    rig.clock.advance(CLOSE_GRACE_SECONDS)
    assert transport.disconnected


def test_messages_keep_a_connection_and_reach_the_server(rig):
    protocol, transport = rig.connect()
    for _ in range(3):
        rig.clock.advance(8)
        protocol.dataReceived(OPTIONS)
    assert not transport.disconnecting
    assert rig.server.received == [(OPTIONS, ("192.0.2.1", 40000), "TCP")] * 3


def test_crlf_keepalives_alone_do_not_keep_a_connection(rig):
    protocol, transport = rig.connect()
    for _ in range(5):
        rig.clock.advance(2)
        protocol.dataReceived(b"\r\n\r\n")
    assert transport.disconnecting and rig.closed("idle_timeout") == 1


def test_a_connection_with_a_registration_or_call_outlives_the_idle_timeout(rig):
    """While the peer is in use the connection stays; the first idle period after that closes it."""
    protocol, transport = rig.connect()
    rig.busy.add(("192.0.2.1", 40000))
    rig.clock.advance(35)
    assert not transport.disconnecting
    rig.busy.clear()
    rig.clock.advance(10)
    assert transport.disconnecting


def test_a_slow_loris_is_reset_after_the_partial_message_timeout(rig, caplog):
    protocol, transport = rig.connect()
    for index in range(4):
        protocol.dataReceived(OPTIONS[index:index + 1])
        rig.clock.advance(1)
    assert transport.disconnected  # reset, no grace
    assert rig.closed("partial_message_timeout") == 1
    assert "192.0.2.1:40000: partial_message_timeout" in caplog.text
    rig.lose(protocol)
    assert rig.factory.admission.open == 0 and rig.factory.connections == {}


def test_junk_resets_the_connection_at_once(rig):
    protocol, transport = rig.connect()
    protocol.dataReceived(b"\x16\x03\x01\x00\xa5")
    assert transport.disconnected and rig.closed("bad_framing") == 1
    protocol.dataReceived(OPTIONS)  # whatever was in flight is not handled
    assert rig.server.received == []


def test_the_connection_beyond_the_per_ip_cap_is_refused_and_a_slot_comes_back(rig, caplog):
    first, _ = rig.connect(port=1)
    rig.connect(port=2)
    third, refused = rig.connect(port=3)
    assert refused.disconnected and rig.closed("per_ip_limit") == 1
    assert "192.0.2.1:3: per_ip_limit" in caplog.text
    rig.lose(third)  # a refused connection was never counted: losing it releases nothing
    other, accepted = rig.connect(host="192.0.2.2")
    assert not accepted.disconnecting
    rig.lose(first)
    _, again = rig.connect(port=4)
    assert not again.disconnecting and rig.factory.admission.open == 3
    _, over = rig.connect(host="192.0.2.3")
    assert over.disconnected and rig.closed("total_limit") == 1
    assert rig.open_now() == 3


def test_what_the_server_sends_goes_on_the_peers_own_connection(rig, caplog):
    _, first = rig.connect(port=1)
    _, second = rig.connect(port=2)
    send = rig.server.senders["TCP"]
    send(Datagram(b"to two", ("192.0.2.1", 2), "TCP"))
    assert second.value() == b"to two" and first.value() == b""
    send(Datagram(b"to nobody", ("192.0.2.9", 9), "TCP"))
    assert "no TCP connection to 192.0.2.9:9; dropped 9 bytes" in caplog.text


def test_a_tls_handshake_must_finish_within_the_partial_timeout():
    rig = Rig("TLS")
    slow, slow_transport = rig.connect(port=1)
    quick, quick_transport = rig.connect(port=2)
    quick.handshakeCompleted()
    rig.clock.advance(3)
    assert slow_transport.disconnected and rig.closed("tls_handshake_timeout") == 1
    assert not quick_transport.disconnecting
    rig.clock.advance(7)
    assert quick_transport.disconnecting and rig.closed("idle_timeout") == 1
