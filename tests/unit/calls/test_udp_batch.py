"""SIP over UDP read in batches: calls in progress first, a CANCEL never before its INVITE, the batch
size reported, and a read error raised only after what was read is delivered."""

import errno

import pytest

from acd.calls.udp_batch import BatchedSipUdpProtocol, BatchingUdpPort, priority_order

A, B = ("127.0.0.1", 5070), ("127.0.0.2", 5072)


def test_invites_cancels_and_options_go_after_everything_else_each_in_arrival_order():
    batch = [(b"INVITE sip:1 SIP/2.0\r\n", A), (b"ACK sip:x SIP/2.0\r\n", B), (b"CANCEL sip:1 SIP/2.0\r\n", A),
             (b"SIP/2.0 200 OK\r\n", B), (b"INVITE sip:2 SIP/2.0\r\n", B), (b"BYE sip:x SIP/2.0\r\n", A),
             (b"REGISTER sip:r SIP/2.0\r\n", A), (b"OPTIONS sip:r SIP/2.0\r\n", A)]
    assert [data.split(b" ")[0] for data, _ in priority_order(batch)] == [
        b"ACK", b"SIP/2.0", b"BYE", b"REGISTER", b"INVITE", b"CANCEL", b"INVITE", b"OPTIONS"]
    assert priority_order(batch)[4:6] == [batch[0], batch[2]]  # the CANCEL stays behind its INVITE


def test_a_batch_of_one_kind_is_left_as_it_is():
    only = [(b"INVITE a", A), (b"INVITE b", B)]
    assert priority_order(only) is only


class Receiver:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data, source, transport) -> None:
        self.got.append(data)

    def set_sender(self, transport, send) -> None:
        pass


class FakeSocket:
    """recvfrom() gives the datagrams, then raises `end`."""

    def __init__(self, datagrams, end: int) -> None:
        self.datagrams = list(datagrams)
        self.end = end

    def recvfrom(self, size):
        if self.datagrams:
            return self.datagrams.pop(0)
        raise OSError(self.end, "read error")


def port_reading(datagrams, end: int) -> tuple[BatchingUdpPort, Receiver, list[int]]:
    receiver, sizes = Receiver(), []
    port = BatchingUdpPort(0, BatchedSipUdpProtocol(receiver, sizes.append), "127.0.0.1", 65535, reactor=object())
    port.socket = FakeSocket(datagrams, end)
    return port, receiver, sizes


def test_the_port_reads_until_the_socket_is_empty_then_delivers_in_priority_order():
    port, receiver, sizes = port_reading([(b"INVITE sip:1 SIP/2.0", A), (b"BYE sip:x SIP/2.0", B)], errno.EAGAIN)
    port.doRead()
    assert receiver.got == [b"BYE sip:x SIP/2.0", b"INVITE sip:1 SIP/2.0"] and sizes == [2]


def test_a_read_error_is_raised_after_the_batch_is_delivered():
    port, receiver, _ = port_reading([(b"BYE sip:x SIP/2.0", B)], errno.EBADF)
    with pytest.raises(OSError):
        port.doRead()
    assert receiver.got == [b"BYE sip:x SIP/2.0"]
