"""A fake reactor for the call shell: Twisted's `Clock` plus in-memory UDP, TCP, triggers and threads.

Rules of this file:
- No sockets, no threads, no sleeping. Time moves only when a test calls `advance`.
- `listenUDP` behaves like Twisted's: it connects the protocol at once (`startProtocol` runs),
  raises `CannotListenError` for a port that is taken, and `stopListening` closes the port on the
  next reactor turn (`callLater(0)`), when the protocol's `transport` becomes None.
- Every datagram a port writes goes through the `Network`, which hands it to whoever is bound at
  the destination (a scripted peer, or another port of the server) and logs it.
- Misuse that a real reactor would punish later (writing on a closed port, closing a port twice)
  is recorded in `Network.errors`; the harness fails the test when that list is not empty.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Callable, Protocol

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError
from twisted.python.failure import Failure

__all__ = ["FakeReactor", "FakeUdpPort", "Network", "Sent", "SynchronousThreadPool"]

Address = tuple[str, int]


class Endpoint(Protocol):
    """Anything bound on the network: receives (data, source)."""

    def deliver(self, data: bytes, source: Address) -> None: ...


@dataclass(frozen=True, slots=True)
class Sent:
    """One datagram that crossed the network."""

    at: float
    source: Address
    destination: Address
    data: bytes


class Network:
    """Addresses → endpoints; every datagram is logged and delivered synchronously."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.endpoints: dict[Address, Endpoint] = {}
        self.log: list[Sent] = []
        self.undelivered: list[Sent] = []
        self.errors: list[str] = []

    def bind(self, address: Address, endpoint: Endpoint) -> None:
        """Make `endpoint` reachable at `address`."""
        if address in self.endpoints:
            raise AssertionError(f"{address} is already bound on the fake network")
        self.endpoints[address] = endpoint

    def unbind(self, address: Address) -> None:
        """Nobody listens at `address` any more."""
        self.endpoints.pop(address, None)

    def send(self, source: Address, destination: Address, data: bytes) -> None:
        """Deliver one datagram (dropped, and remembered, when nobody listens there)."""
        sent = Sent(self.clock.seconds(), source, (destination[0], int(destination[1])), bytes(data))
        self.log.append(sent)
        endpoint = self.endpoints.get(sent.destination)
        if endpoint is None:
            self.undelivered.append(sent)
            return
        endpoint.deliver(sent.data, source)


class _FakeSocket:
    """What `app.py` touches on a UDP port: setsockopt (the SIP receive buffer)."""

    def __init__(self) -> None:
        self.options: dict[tuple[int, int], object] = {}

    def setsockopt(self, level: int, option: int, value: object) -> None:
        self.options[(level, option)] = value


class FakeUdpPort:
    """A bound UDP port: the transport given to the DatagramProtocol."""

    def __init__(self, reactor: "FakeReactor", address: Address, protocol, max_packet_size: int = 8192) -> None:
        self.reactor = reactor
        self.address = address
        self.protocol = protocol
        self.max_packet_size = max_packet_size  # Twisted reads at most this much of a datagram
        self.socket = _FakeSocket()
        self.reading = True
        self.closed = False
        self.written = 0

    # ---- what the protocol uses ----------------------------------------------------------------
    def write(self, data: bytes, addr: Address) -> None:
        """Send one datagram to `addr`."""
        if self.closed:
            self.reactor.network.errors.append(f"write on closed UDP port {self.address} to {addr}")
            raise AttributeError("'Port' object has no attribute 'socket'")  # what Twisted raises then
        self.written += 1
        self.reactor.network.send(self.address, addr, data)

    def getHost(self) -> IPv4Address:  # noqa: N802 - Twisted API
        """The bound address."""
        return IPv4Address("UDP", self.address[0], self.address[1])

    def stopListening(self):  # noqa: N802 - Twisted API
        """Stop reading now; the port closes on the next reactor turn, as in Twisted."""
        if not self.reading:
            self.reactor.network.errors.append(f"stopListening called twice on UDP port {self.address}")
            return None
        self.reading = False
        self.reactor.network.unbind(self.address)
        self.reactor.callLater(0, self._connection_lost)
        return None

    def _connection_lost(self) -> None:
        self.closed = True
        self.reactor.udp_ports.pop(self.address, None)
        self.protocol.doStop()

    # ---- what the network uses -------------------------------------------------------------------
    def deliver(self, data: bytes, source: Address) -> None:
        """A datagram arrived for this port."""
        if self.reading:
            self.protocol.datagramReceived(data[:self.max_packet_size], source)


class SynchronousThreadPool:
    """Runs "threaded" work at once, on the caller's thread; results come back via callFromThread."""

    def __init__(self) -> None:
        self.calls = 0

    def callInThreadWithCallback(self, on_result: Callable, function: Callable, *args, **kwargs) -> None:  # noqa: N802
        self.calls += 1
        try:
            result = function(*args, **kwargs)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)

    def callInThread(self, function: Callable, *args, **kwargs) -> None:  # noqa: N802 - Twisted API
        self.calls += 1
        function(*args, **kwargs)


@dataclass
class FakeTcpPort:
    """A TCP listener that is only recorded (SIP over TCP, the HTTP API)."""

    port: int
    factory: object
    interface: str
    listening: bool = True

    def stopListening(self) -> None:  # noqa: N802 - Twisted API
        self.listening = False

    def getHost(self) -> IPv4Address:  # noqa: N802 - Twisted API
        return IPv4Address("TCP", self.interface, self.port)


class FakeReactor(task.Clock):
    """IReactorTime (Clock), IReactorUDP, IReactorTCP (recorded), IReactorThreads (synchronous),
    IReactorCore's system event triggers (recorded; `fire_shutdown` runs them) and `stop`."""

    def __init__(self) -> None:
        super().__init__()
        self.network = Network(self)
        self.udp_ports: dict[Address, FakeUdpPort] = {}
        self.tcp_ports: list[FakeTcpPort] = []
        self.taken_ports: set[int] = set()
        self.triggers: dict[int, tuple[str, str, Callable, tuple, dict]] = {}
        self._trigger_ids = 0
        self.thread_pool = SynchronousThreadPool()
        self.stopped = False

    # ---- IReactorUDP ---------------------------------------------------------------------------
    def listenUDP(self, port: int, protocol, interface: str = "", maxPacketSize: int = 8192) -> FakeUdpPort:  # noqa: N802,N803
        """Bind `protocol` on `port`, or raise CannotListenError when the port is taken."""
        host = interface or "0.0.0.0"
        if port == 0:
            port = 49152 + len(self.network.endpoints)
            while (host, port) in self.udp_ports:
                port += 1
        address = (host, port)
        if port in self.taken_ports or address in self.udp_ports:
            raise CannotListenError(interface, port, OSError(errno.EADDRINUSE, "Address already in use"))
        fake = FakeUdpPort(self, address, protocol, maxPacketSize)
        self.udp_ports[address] = fake
        self.network.bind(address, fake)
        protocol.makeConnection(fake)
        return fake

    def take_port(self, port: int) -> None:
        """Pretend another program holds `port` (listenUDP on it fails)."""
        self.taken_ports.add(port)

    # ---- IReactorTCP ---------------------------------------------------------------------------
    def listenTCP(self, port: int, factory, backlog: int = 50, interface: str = "") -> FakeTcpPort:  # noqa: N802
        """Recorded only: no TCP traffic is simulated."""
        listener = FakeTcpPort(port, factory, interface)
        self.tcp_ports.append(listener)
        return listener

    # ---- IReactorThreads / IReactorFromThreads -------------------------------------------------
    def getThreadPool(self) -> SynchronousThreadPool:  # noqa: N802 - Twisted API
        return self.thread_pool

    def callFromThread(self, function: Callable, *args, **kwargs) -> None:  # noqa: N802 - Twisted API
        """The reactor runs it on its next turn (here: the next `advance`, even by 0)."""
        self.callLater(0, function, *args, **kwargs)

    def callInThread(self, function: Callable, *args, **kwargs) -> None:  # noqa: N802 - Twisted API
        self.thread_pool.callInThread(function, *args, **kwargs)

    # ---- IReactorCore (triggers) ---------------------------------------------------------------
    def addSystemEventTrigger(self, phase: str, event_type: str, function: Callable, *args, **kwargs) -> int:  # noqa: N802
        self._trigger_ids += 1
        self.triggers[self._trigger_ids] = (phase, event_type, function, args, kwargs)
        return self._trigger_ids

    def removeSystemEventTrigger(self, trigger_id: int) -> None:  # noqa: N802 - Twisted API
        self.triggers.pop(trigger_id, None)

    def stop(self) -> None:
        """IReactorCore.stop: recorded in `stopped`, and the shutdown triggers run."""
        self.stopped = True
        self.fire_shutdown()

    def fire_shutdown(self) -> None:
        """Run the "shutdown" triggers, phase by phase (before, during, after), once."""
        for phase in ("before", "during", "after"):
            for trigger_id, (when, event_type, function, args, kwargs) in list(self.triggers.items()):
                if when == phase and event_type == "shutdown":
                    del self.triggers[trigger_id]
                    function(*args, **kwargs)
