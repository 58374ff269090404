"""SIP over stream connections (TCP, and TLS on top of TCP): framing, connection limits, connection reuse.

Phones and trunks connect to us; we never connect out. Responses, and the requests we send to a peer
(an offer to an agent registered over TLS, the BYE of a call that came in over TCP), go back on the
connection the peer opened, found by its address (as RFC 5923 connection reuse and RFC 5626 flows do).

Every connection is watched by a sans-IO `StreamGuard` (acd/sip/stream_limits.py) and one timer at its
next deadline; `ConnectionAdmission`, shared by the TCP and TLS listeners, caps connections per source
IP and in total. An idle connection that carries an agent's registration or a call's dialog
(`in_use`) is kept: closing it would leave the phone unreachable until it reconnects.

Each close the server makes is logged with the peer's ip:port and the reason, and counted in
`acd_sip_connections_closed_total{transport, reason}`. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
import resource
from typing import TYPE_CHECKING, Callable

from OpenSSL import SSL
from twisted.internet import protocol
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from ..sip.errors import RemoteProtocolError
from ..sip.events import Datagram
from ..sip.stream_limits import CloseReason, ConnectionAdmission, StreamGuard
from .tls_context import server_tls_options
from .transports import SipReceiver

if TYPE_CHECKING:
    from ..config.model import Config, StreamSettings
    from ..metrics import Metrics

__all__ = ["SipStreamFactory", "SipStreamConnection", "listen_sip_streams", "raise_open_file_limit"]

log = logging.getLogger("acd.sip")

# Closes that are routine for a well-behaved peer: logged at INFO (the others at WARNING), orderly.
_ROUTINE = frozenset({CloseReason.IDLE})
# How long an orderly close may wait for the peer to take what is still queued for it.
CLOSE_GRACE_SECONDS = 5.0
# Connections the kernel completes before we accept them. Twisted's default, 50, drops SYNs when
# hundreds of phones reconnect at once after a network blip (each drop costs the phone a 1 s SYN
# retransmission or more). Linux caps it at net.core.somaxconn (4096 by default since 5.4).
LISTEN_BACKLOG = 1024


@implementer(IHandshakeListener)
class SipStreamConnection(protocol.Protocol):
    """One accepted connection: admitted or refused, framed, timed, closed with a reason."""

    def __init__(self, factory: "SipStreamFactory") -> None:
        self.factory = factory
        self.peer: tuple[str, int] = ("", 0)
        self.guard: StreamGuard | None = None  # None until admitted
        self.closing: str | None = None  # the reason we closed it for
        self._timer = None
        self._timer_deadline: float | None = None

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        """Admit the connection (or refuse it at once) and start its clock."""
        address = self.transport.getPeer()
        self.peer = (address.host, address.port)
        factory = self.factory
        refused = factory.admission.admit(self.peer[0])
        if refused is not None:
            self.close(refused, f"{factory.admission.open_from(self.peer[0])} open from this address, "
                                f"{factory.admission.open} in all")
            return
        now = factory.reactor.seconds()
        settings = factory.settings
        self.guard = StreamGuard(now=now, idle_timeout_seconds=settings.idle_timeout_seconds,
                                 partial_message_timeout_seconds=settings.partial_message_timeout_seconds,
                                 max_message_bytes=settings.max_message_bytes)
        if factory.transport_name == "TLS":
            self.guard.handshake_started(now)
        factory.connections[self.peer] = self
        self._rearm()

    def handshakeCompleted(self) -> None:  # noqa: N802 - IHandshakeListener (TLS only)
        """The TLS handshake is done: its deadline no longer applies."""
        if self.guard is not None:
            self.guard.handshake_done()
            self._rearm()
        log.debug("TLS connection from %s:%s: %s", self.peer[0], self.peer[1], self._tls_version())

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        """Frame the bytes; hand each whole message to the SIP server."""
        if self.guard is None or self.closing is not None:
            return
        try:
            messages = self.guard.receive(data, self.factory.reactor.seconds())
        except RemoteProtocolError as error:
            self.close(StreamGuard.reason_of(error), error.reason)
            return
        for message in messages:
            try:
                self.factory.server.datagram_received(message, self.peer, self.factory.transport_name)
            except Exception:  # a bug, surfaced in the log with its input; other calls go on
                log.exception("internal error handling a %s message from %s:%s; raw=%r", self.factory.transport_name,
                              self.peer[0], self.peer[1], message[:300])
        self._rearm()

    def connectionLost(self, reason=None) -> None:  # noqa: N802 - Twisted API
        """Forget the connection; a TLS failure we did not cause is reported as one."""
        self._cancel_timer()
        factory = self.factory
        if self.guard is not None:
            factory.admission.release(self.peer[0])
            if factory.connections.get(self.peer) is self:
                del factory.connections[self.peer]
            if self.closing is None and reason is not None and reason.check(SSL.Error):
                self.closing = CloseReason.TLS_ERROR
                factory.report_close(self.peer, CloseReason.TLS_ERROR, str(reason.value))
        self.guard = None

    def close(self, reason: str, detail: str) -> None:
        """Close the connection, logged and counted: at once (a reset) for a violation; an idle one
        gets an orderly close (FIN, TLS close_notify), forced after CLOSE_GRACE_SECONDS if its peer
        does not read what is still queued."""
        if self.closing is not None:
            return
        self.closing = reason
        self._cancel_timer()
        self.factory.report_close(self.peer, reason, detail)
        if reason in _ROUTINE:
            self.transport.loseConnection()
            self._timer = self.factory.reactor.callLater(CLOSE_GRACE_SECONDS, self.transport.abortConnection)
        else:
            self.transport.abortConnection()

    # ---- the one timer (STYLE 2) -------------------------------------------------------------
    def _rearm(self) -> None:
        if self.guard is None or self.closing is not None:
            return
        deadline = self.guard.next_deadline()
        if deadline == self._timer_deadline and self._timer is not None:
            return
        self._cancel_timer()
        self._timer_deadline = deadline
        reactor = self.factory.reactor
        self._timer = reactor.callLater(max(0.0, deadline - reactor.seconds()), self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_deadline = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        if self.guard is None or self.closing is not None:
            return
        now = self.factory.reactor.seconds()
        reason = self.guard.expired(now)
        if reason == CloseReason.IDLE and self.factory.in_use(self.peer, self.factory.transport_name):
            self.guard.keep(now)
            log.debug("%s connection from %s:%s idle but in use (registration or call): kept",
                      self.factory.transport_name, self.peer[0], self.peer[1])
        elif reason is not None:
            settings = self.factory.settings
            seconds = settings.idle_timeout_seconds if reason == CloseReason.IDLE \
                else settings.partial_message_timeout_seconds
            what = {CloseReason.IDLE: "no complete message", CloseReason.TLS_HANDSHAKE: "TLS handshake not finished",
                    CloseReason.PARTIAL_MESSAGE: f"message unfinished ({self.guard.framer.pending} bytes)"}[reason]
            self.close(reason, f"{what} within {seconds:g} s")
            return
        self._rearm()

    def _tls_version(self) -> str:
        connection = getattr(self.transport, "getHandle", lambda: None)()
        return connection.get_protocol_version_name() if isinstance(connection, SSL.Connection) else "?"


class SipStreamFactory(protocol.ServerFactory):
    """Accepts SIP over one stream transport ("TCP", or "TLS" when wrapped in TLSMemoryBIOFactory).

    `admission` is shared by all stream listeners; `in_use(peer, transport)` says whether an idle
    connection carries a registration or a dialog; `metrics` counts closes and reads open connections.
    """

    def __init__(self, server: SipReceiver, *, reactor, transport_name: str, settings: "StreamSettings",
                 admission: ConnectionAdmission, in_use: Callable[[tuple[str, int], str], bool],
                 metrics: "Metrics | None" = None) -> None:
        self.server = server
        self.reactor = reactor
        self.transport_name = transport_name
        self.settings = settings
        self.admission = admission
        self.in_use = in_use
        self.metrics = metrics
        self.connections: dict[tuple[str, int], SipStreamConnection] = {}
        server.set_sender(transport_name, self.send)
        if metrics is not None:
            metrics.sip_connections.labels(transport_name).set_function(lambda: len(self.connections))

    def buildProtocol(self, addr) -> SipStreamConnection:  # noqa: N802 - Twisted API
        """One protocol per accepted connection."""
        return SipStreamConnection(self)

    def send(self, datagram: Datagram) -> None:
        """Write to the connection the peer opened; dropped (and logged) if it is gone."""
        connection = self.connections.get(datagram.destination)
        if connection is None or connection.closing is not None:
            log.warning("no %s connection to %s:%s; dropped %d bytes", self.transport_name, datagram.destination[0],
                        datagram.destination[1], len(datagram.data))
            return
        connection.transport.write(datagram.data)

    def report_close(self, peer: tuple[str, int], reason: str, detail: str) -> None:
        """Log and count one connection closed or refused by us."""
        log.log(logging.INFO if reason in _ROUTINE else logging.WARNING, "closing %s connection from %s:%s: %s (%s)",
                self.transport_name, peer[0], peer[1], reason, detail)
        if self.metrics is not None:
            self.metrics.sip_connections_closed.labels(self.transport_name, reason).inc()


def raise_open_file_limit(needed: int) -> tuple[int, int]:
    """Raise this process's soft open-file limit towards `needed` (up to the hard limit); returns
    (soft limit now, needed). Every stream connection and every RTP port is a file descriptor: with
    the common soft limit of 1,024, a connection flood would leave no port for calls."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, error)
    return soft, needed


def listen_sip_streams(config: "Config", reactor, server: SipReceiver, *,
                       in_use: Callable[[tuple[str, int], str], bool],
                       metrics: "Metrics | None" = None) -> tuple[object | None, object | None]:
    """Listen for SIP over TCP and over TLS (the TLS listener wraps the same stream factory), as
    `config.sip.transports` asks; both share one admission (connections per IP and in total). The
    open-file limit is raised to what the limits may need. `reactor` provides IReactorTCP too.
    Returns the (TCP, TLS) listening ports, None for one not asked for."""
    streams = [name for name in ("tcp", "tls") if name in config.sip.transports]
    if not streams:
        return None, None
    limits = config.sip.tcp
    legs = (config.rtp.port_max - config.rtp.port_min) // 2
    soft, needed = raise_open_file_limit(limits.max_connections + legs * (2 if config.rtp.rtcp_interval_seconds else 1)
                                         + 256)
    if soft < needed:
        log.warning("open-file limit %d is below the %d the limits may need (%d stream connections, an RTP and "
                    "an RTCP port per call leg): raise LimitNOFILE (ulimit -n) or lower sip tcp max_connections", soft,
                    needed, limits.max_connections)
    admission = ConnectionAdmission(max_connections_per_ip=limits.max_connections_per_ip,
                                    max_connections=limits.max_connections)
    ports: dict[str, object] = {}
    for name in streams:
        factory = SipStreamFactory(server, reactor=reactor, transport_name=name.upper(), settings=limits,
                                   admission=admission, in_use=in_use, metrics=metrics)
        if name == "tcp":
            ports[name] = reactor.listenTCP(config.sip.port, factory, backlog=LISTEN_BACKLOG,
                                            interface=config.sip.listen)
        else:
            wrapped = TLSMemoryBIOFactory(server_tls_options(config.sip.tls), False, factory)
            ports[name] = reactor.listenTCP(config.sip.tls.port, wrapped, backlog=LISTEN_BACKLOG,
                                            interface=config.sip.listen)
            log.info("listening for SIP over TLS on %s:%s", config.sip.listen, config.sip.tls.port)
    return ports.get("tcp"), ports.get("tls")
