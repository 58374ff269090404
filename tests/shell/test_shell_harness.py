"""The harness itself: the fake reactor behaves as Twisted's does where the shell relies on it, and
the peers' Digest answers are right (so a passing test means the server is right, not the fake)."""

from __future__ import annotations

import pytest
from twisted.internet import protocol, threads
from twisted.internet.error import CannotListenError

from .fake_reactor import FakeReactor
from .wire import digest_authorization


class Recorder(protocol.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.started = self.stopped = 0

    def startProtocol(self) -> None:  # noqa: N802
        self.started += 1

    def stopProtocol(self) -> None:  # noqa: N802
        self.stopped += 1

    def datagramReceived(self, data, addr) -> None:  # noqa: N802
        self.received.append((data, addr))


def test_fake_udp_ports_bind_deliver_refuse_taken_ports_and_close_on_the_next_turn():
    """listenUDP starts the protocol, delivers datagrams between bound ports, raises
    CannotListenError for a taken port, and stopListening closes on the next reactor turn (the
    protocol's transport becomes None then, as in twisted.internet.udp.Port)."""
    reactor = FakeReactor()
    a, b = Recorder(), Recorder()
    port_a = reactor.listenUDP(7000, a, interface="127.0.0.1")
    reactor.listenUDP(7002, b, interface="127.0.0.1")
    assert a.started == 1 and port_a.getHost().port == 7000
    with pytest.raises(CannotListenError):
        reactor.listenUDP(7000, Recorder(), interface="127.0.0.1")
    a.transport.write(b"hello", ("127.0.0.1", 7002))
    assert b.received == [(b"hello", ("127.0.0.1", 7000))]
    a.transport.write(b"lost", ("127.0.0.1", 9999))
    assert [sent.data for sent in reactor.network.undelivered] == [b"lost"]
    port_a.stopListening()
    assert a.transport is port_a and a.stopped == 0
    reactor.advance(0)
    assert a.transport is None and a.stopped == 1
    reactor.listenUDP(7000, Recorder(), interface="127.0.0.1")  # free again


def test_fake_reactor_flags_writes_on_closed_ports_and_double_stops():
    """Misuse a real reactor punishes later is recorded for the harness to fail the test on."""
    reactor = FakeReactor()
    port = reactor.listenUDP(7000, Recorder(), interface="127.0.0.1")
    port.stopListening()
    port.stopListening()
    reactor.advance(0)
    with pytest.raises(AttributeError):
        port.write(b"x", ("127.0.0.1", 1))
    assert len(reactor.network.errors) == 2


def test_thread_pool_work_runs_at_once_and_its_result_arrives_on_the_next_turn():
    """deferToThreadPool on the fake reactor: the function runs synchronously, the Deferred fires
    from callFromThread, i.e. on the next advance; errors arrive as failures."""
    reactor = FakeReactor()
    results = []
    threads.deferToThreadPool(reactor, reactor.getThreadPool(), lambda: 42).addCallback(results.append)
    threads.deferToThreadPool(reactor, reactor.getThreadPool(), lambda: 1 / 0).addErrback(
        lambda failure: results.append(failure.type))
    assert results == []
    reactor.advance(0)
    assert results == [42, ZeroDivisionError]


def test_shutdown_triggers_run_in_phase_order_once():
    """fire_shutdown runs "before", then "after" triggers of the shutdown event, each once."""
    reactor = FakeReactor()
    order = []
    reactor.addSystemEventTrigger("after", "shutdown", order.append, "after")
    reactor.addSystemEventTrigger("before", "shutdown", order.append, "before")
    reactor.addSystemEventTrigger("before", "startup", order.append, "startup")
    reactor.fire_shutdown()
    reactor.fire_shutdown()
    assert order == ["before", "after"]


def test_digest_answer_matches_rfc_2617_example():
    """RFC 2617 §3.5: Mufasa / Circle Of Life, qop=auth, nc=00000001, cnonce 0a4f113b."""
    challenge = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = digest_authorization(challenge, method="GET", uri="/dir/index.html", username="Mufasa",
                                 password="Circle Of Life", cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value and "qop=auth, nc=00000001" in value


def test_harness_fails_a_test_when_the_server_logs_a_traceback(harness):
    """problems() lists tracebacks logged under acd (what SipUdpProtocol logs for an internal error)."""
    import logging

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("acd.sip").exception("internal error handling a datagram")
    assert harness.problems() == ["acd.sip: internal error handling a datagram"]
    harness.capture.records.clear()


def test_server_binds_sip_on_udp_and_tcp_and_grows_the_udp_receive_buffer(harness):
    """build_server listens for SIP on UDP and TCP at the configured port and asks for a 4 MiB
    receive buffer on the UDP socket; start_http listens on the HTTP port."""
    import socket

    sip_port = harness.reactor.udp_ports[harness.sip_address]
    assert sip_port.socket.options[(socket.SOL_SOCKET, socket.SO_RCVBUF)] == 4 * 1024 * 1024
    assert sorted(port.port for port in harness.reactor.tcp_ports) == [5060, 8080]


def test_harness_sees_errors_twisted_logs(harness):
    """An unhandled failure Twisted logs (e.g. a Deferred garbage-collected with an error) is a problem."""
    from twisted.logger import Logger
    from twisted.python.failure import Failure

    Logger().failure("Unhandled error in Deferred:", Failure(ValueError("lost")))
    assert len(harness.problems()) == 1
    harness.twisted_errors.clear()
