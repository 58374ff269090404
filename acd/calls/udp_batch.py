"""SIP over UDP read in batches, calls in progress first (issue 21: priorities under load).

Twisted's UDP port reads datagrams while the socket has some (up to `maxThroughput` bytes per
readiness event) and hands each to the protocol as it comes. `BatchingUdpPort` reads the same batch
first, then hands it on in priority order (`priority_order`): responses and every request but INVITE,
CANCEL and OPTIONS (ACK, BYE, INFO, REGISTER...) before new INVITEs, the CANCELs that may follow them
and OPTIONS probes, each group in arrival order, so a CANCEL never overtakes its INVITE. An ACK or BYE of a call in
progress then never waits behind the set-up of calls not taken yet; under overload those INVITEs are
mostly refused by admission control anyway, cheaply. The size of each batch is the receive backlog
at that moment: `acd_sip_receive_batch_datagrams`.

`listen_sip_udp` binds it on a real reactor (one that provides IReactorFDSet), and falls back on the
reactor's own `listenUDP` elsewhere (the shell tests' fake reactor): the protocol takes single
datagrams as well as batches.
"""

from __future__ import annotations

import errno
from typing import Callable

from twisted.internet import udp
from twisted.internet.interfaces import IReactorFDSet

from .transports import SipReceiver, SipUdpProtocol

__all__ = ["BatchingUdpPort", "BatchedSipUdpProtocol", "listen_sip_udp", "priority_order"]

Address = tuple[str, int]
# Read errors that only mean "nothing more now" (Twisted's udp module treats them the same way), and
# ICMP port-unreachable reported on an unconnected socket: neither ends the batch's delivery.
_NOTHING_MORE = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNREFUSED})
# New calls, CANCELs (which must not overtake their INVITE) and out-of-dialog OPTIONS (a probe of that
# same path: answered after the INVITEs before it, it tells how loaded the server really is).
_LATER = (b"INVITE ", b"CANCEL ", b"OPTIONS ")


def priority_order(batch: list[tuple[bytes, Address]]) -> list[tuple[bytes, Address]]:
    """`batch` with INVITEs, CANCELs and OPTIONS moved after everything else, each group in arrival order."""
    first = [item for item in batch if not item[0].startswith(_LATER)]
    if len(first) == len(batch) or not first:
        return batch
    return first + [item for item in batch if item[0].startswith(_LATER)]


class BatchedSipUdpProtocol(SipUdpProtocol):
    """SipUdpProtocol that also takes a batch (in priority order) and reports each batch's size."""

    def __init__(self, server: SipReceiver, observe_batch: Callable[[int], None] | None = None) -> None:
        super().__init__(server)
        self.observe_batch = observe_batch

    def datagrams_received(self, batch: list[tuple[bytes, Address]]) -> None:
        """Hand a batch to the server, calls in progress first (a bug in one is logged, the rest go on)."""
        if self.observe_batch is not None:
            self.observe_batch(len(batch))
        for data, addr in priority_order(batch):
            self.datagramReceived(data, addr)


class BatchingUdpPort(udp.Port):
    """A Twisted UDP port that reads what the socket holds (up to maxThroughput bytes) before handing
    it to `protocol.datagrams_received` at once."""

    def doRead(self) -> None:  # noqa: N802 - Twisted API
        """Read a batch, then deliver it; a read error other than "nothing more" is raised after it."""
        batch: list[tuple[bytes, Address]] = []
        read = 0
        failure: OSError | None = None
        while read < self.maxThroughput:
            try:
                data, addr = self.socket.recvfrom(self.maxPacketSize)
            except OSError as error:
                if error.args and error.args[0] in _NOTHING_MORE:
                    break
                failure = error
                break
            read += len(data)
            batch.append((data, (addr[0], addr[1])))
        if batch:
            self.protocol.datagrams_received(batch)
        if failure is not None:
            raise failure


def listen_sip_udp(reactor, port: int, receiver: SipReceiver, *, interface: str, max_packet_bytes: int,
                   observe_batch: Callable[[int], None] | None = None):
    """Bind SIP over UDP on `port`: a BatchingUdpPort on a real reactor, `listenUDP` on others."""
    protocol = BatchedSipUdpProtocol(receiver, observe_batch)
    if not IReactorFDSet.providedBy(reactor):
        return reactor.listenUDP(port, protocol, interface=interface, maxPacketSize=max_packet_bytes)
    listening = BatchingUdpPort(port, protocol, interface, max_packet_bytes, reactor)
    listening.startListening()
    return listening
