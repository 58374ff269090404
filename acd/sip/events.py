"""Events the SIP endpoint hands to its user (STYLE 4): one frozen class per thing that happened."""

from __future__ import annotations

from dataclasses import dataclass

from .message import Request, Response

__all__ = [
    "RequestReceived", "AckReceived", "CancelReceived", "ResponseReceived", "TransactionTimedOut",
    "MessageDropped", "MessageRejected", "Event", "Datagram",
]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request opened a server transaction; answer it with `SipEndpoint.respond`."""

    request: Request
    transaction_id: tuple
    source: Address
    transport: str

    def __post_init__(self) -> None:
        if self.request.method in ("ACK", "CANCEL"):
            raise ValueError(f"{self.request.method} is reported by its own event, not RequestReceived")


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """The ACK for a 2xx we sent arrived (the first one only; retransmissions are absorbed)."""

    request: Request
    source: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReceived:
    """The peer cancelled a pending INVITE; the CANCEL has been answered 200 already (§9.2).

    The user must now answer the INVITE transaction with 487 Request Terminated.
    """

    request: Request
    invite_transaction_id: tuple


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response to one of our requests (transaction_id None: a stray 2xx retransmission to ACK)."""

    response: Response
    transaction_id: tuple | None
    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """A transaction gave up: no response to our request (Timer B/F), or no ACK (Timer H/L)."""

    transaction_id: tuple
    method: str
    call_id: str
    reason: str

    def __post_init__(self) -> None:
        if self.reason not in ("no-response", "no-ack"):
            raise ValueError(f"unknown timeout reason {self.reason!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRejected:
    """A malformed request was answered with an error status (typically 400)."""

    status: int
    reason: str
    source: Address
    raw: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDropped:
    """A datagram was dropped without an answer (unparseable, a malformed response, a stray ACK)."""

    reason: str
    source: Address
    raw: bytes


Event = RequestReceived | AckReceived | CancelReceived | ResponseReceived | TransactionTimedOut | MessageRejected | MessageDropped


@dataclass(frozen=True, slots=True)
class Datagram:
    """Bytes the shell must send: over UDP to `destination`, or on the TCP connection from it."""

    data: bytes
    destination: Address
    transport: str
