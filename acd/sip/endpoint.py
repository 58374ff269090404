"""The SIP endpoint core: datagrams and time in, events and datagrams out (STYLE 1 and 2).

It owns the transaction layer (RFC 3261 §17) and the parts of the UAS core that need no
application decision: 400 for malformed requests, CANCEL matching and its 200/481 (§9.2), ACK
matching for 2xx (§13.3.1.4), absorbing retransmissions. Everything else becomes an event.

Responses go back to the address the request came from (as RFC 3581 rport does), which is what
works behind NAT and is identical to the Via address on a well-behaved network.

Lingering server transactions: once a server transaction has nothing left to do but wait out its
last timer (a non-INVITE's Timer J, 32 s over UDP; an acknowledged INVITE's Timer L, 32 s), the
transaction object is dropped and only plain values stay: its key as a string, the response to
resend to a retransmitted request (sent where that retransmission came from), the deadline, kept in
FIFOs (every lingering time is the same: 64*T1), not the deadline heap. None of these is an object
the garbage collector tracks, and none counts towards its next young collection. Issue 21: at 550
calls/s the lingering transactions and their tuples (~10 tracked objects a call, for 32 s) made the
young generation reach its 50,000 objects four times in the first half minute of a load step, and
each young collection stopped the loop for 47-93 ms.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Callable

from .build import build_ack_for_error, make_response, new_branch
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (AckReceived, CancelReceived, Datagram, Event, MessageDropped, MessageRejected,
                     RequestReceived, ResponseReceived, TransactionTimedOut)
from .headers import BRANCH_MAGIC_COOKIE, CSeq, Via
from .message import Headers, Request, Response, parse_message
from .transactions import (ClientInviteTransaction, ClientNonInviteTransaction, ServerInviteTransaction,
                           ServerNonInviteTransaction, State, TimerConfig, Transaction)

__all__ = ["SipEndpoint", "REQUIRED_REQUEST_HEADERS", "SUPPORTED_OPTION_TAGS", "UNMATCHED_ACK"]

Address = tuple[str, int]

# §8.1.1: the headers every request must carry. Max-Forwards is required too, but a UAS loses
# nothing by accepting its absence, and some trunks omit it on in-dialog requests.
REQUIRED_REQUEST_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


# The reason of the MessageDropped for an ACK we have no transaction for: usually the ACK of a
# stateless refusal (which keeps no transaction), so the shell logs it quietly.
UNMATCHED_ACK = "ACK matches no transaction"

# URI schemes we can route (RFC 3261 §8.2.2.1: others get 416) and option tags we implement (timer:
# RFC 4028 session timers, acd/sip/session_timer.py; 100rel: RFC 3262 reliable provisional responses,
# acd/sip/reliable_provisional.py; §8.2.2.3, a Require naming any other gets 420 listing it in Unsupported).
SUPPORTED_URI_SCHEMES = frozenset({"sip", "sips"})
SUPPORTED_OPTION_TAGS: frozenset[str] = frozenset({"100rel", "timer"})
# What an INVITE body may be (§8.2.3: others get 415 with Accept).
INVITE_BODY_TYPES = frozenset({"application/sdp"})


def _check_uas_support(request: Request) -> None:
    """The UAS checks of RFC 3261 §8.2.2.1, §8.2.2.3 and §8.2.3, answered statelessly by the caller."""
    scheme = request.uri.partition(":")[0].lower()
    if scheme not in SUPPORTED_URI_SCHEMES:
        raise RemoteProtocolError(f"URI scheme {scheme!r} is not supported", 416)
    if request.method != "CANCEL":
        unknown = [tag for tag in request.headers.get_all("Require") if tag.lower() not in SUPPORTED_OPTION_TAGS]
        if unknown:
            raise RemoteProtocolError(f"extension(s) {', '.join(unknown)} not supported", 420,
                                      headers=(("Unsupported", ", ".join(unknown)),))
    if request.method == "INVITE" and request.body:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in INVITE_BODY_TYPES:
            raise RemoteProtocolError(f"an INVITE body of type {content_type or 'none'!r} is not supported", 415,
                                      headers=(("Accept", "application/sdp"),))


class SipEndpoint:
    """A sans-IO SIP endpoint.

    `local_host`/`local_port` go into the Via of requests we send; `transport_ports` names the port
    of a transport that listens elsewhere ({"TLS": 5061}). Every transport but UDP is reliable (no
    retransmission). The caller drives it with `receive`, drains `next_event` and
    `datagrams_to_send`, and calls `handle_timers(now)` at `next_deadline()`.
    """

    def __init__(self, *, local_host: str, local_port: int, timers: TimerConfig = TimerConfig(),
                 branch_factory: Callable[[], str] = new_branch,
                 transport_ports: dict[str, int] | None = None) -> None:
        self.local_host = local_host
        self.local_port = local_port
        self.transport_ports = dict(transport_ports or {})
        self.timers = timers
        self._new_branch = branch_factory
        self._transactions: dict[tuple, Transaction] = {}
        self._accepted_invites: dict[tuple[str, int], ServerInviteTransaction] = {}
        self._requests: dict[tuple, Request] = {}  # server transactions' requests, until their final response
        self._deadlines: list[tuple[float, int, tuple]] = []
        # Lingering server transactions (module docstring): lingering_key -> the response to resend (b"": none)
        self._lingering: dict[str, bytes] = {}
        self._lingering_acks: set[str] = set()  # ack_key(Call-ID, CSeq) of the lingering accepted INVITEs
        self._lingering_until: deque[float] = deque()  # deadlines, oldest first, with the two below
        self._lingering_keys: deque[str] = deque()
        self._lingering_ack_keys: deque[str] = deque()  # "" for a non-INVITE
        self._sequence = itertools.count()
        self._events: deque[Event] = deque()
        self._outbox: list[Datagram] = []
        self.counters = {"parse_errors": 0, "dropped": 0, "rejected": 0, "retransmissions_received": 0}

    # ---- input -------------------------------------------------------------------------------
    def receive(self, data: bytes, source: Address, transport: str, now: float) -> None:
        """Feed one datagram (or one framed stream message) received from `source`."""
        if not data.strip(b"\r\n \t"):
            return  # RFC 5626 §3.5.1 keep-alive (CRLF); nothing to do
        try:
            message = parse_message(data)
        except RemoteProtocolError as error:
            self.counters["parse_errors"] += 1
            self._reject_raw(data, source, transport, error)
            return
        if isinstance(message, Request):
            try:
                self._receive_request(message, source, transport, now)
            except RemoteProtocolError as error:
                self.counters["parse_errors"] += 1
                self._reject_request(message, data, source, transport, error)
        else:
            self._receive_response(message, data, source, now)

    def _receive_request(self, request: Request, source: Address, transport: str, now: float) -> None:
        headers = request.headers
        missing = [name for name in REQUIRED_REQUEST_HEADERS if name not in headers]
        if missing:
            raise RemoteProtocolError(f"missing {', '.join(missing)} header")
        cseq = CSeq.parse(headers.get("CSeq", ""))
        if cseq.method != request.method:
            raise RemoteProtocolError(f"CSeq method {cseq.method} does not match {request.method}")
        vias = headers.get_all("Via")
        if not vias:  # "Via: ," has a Via header but no Via element
            raise RemoteProtocolError("Via header has no value")
        if request.method != "ACK":
            _check_uas_support(request)
        top_via = Via.parse(vias[0])
        key = self._server_key(request, top_via, cseq)
        method = request.method
        if method == "ACK":
            self._receive_ack(request, key, cseq, source, now)
            return
        existing = self._transactions.get(key)
        if existing is not None:
            self.counters["retransmissions_received"] += 1
            self._send_all(existing.receive_request(now), existing)  # type: ignore[attr-defined]
            return
        if self._lingering:
            response = self._lingering.get(lingering_key(key))
            if response is not None:
                self.counters["retransmissions_received"] += 1
                if response:
                    self._outbox.append(Datagram(response, source, transport))
                return
        reliable = transport != "UDP"
        if method == "INVITE":
            transaction: Transaction = ServerInviteTransaction(key, reliable, self.timers, source, transport)
        else:
            transaction = ServerNonInviteTransaction(key, method, reliable, self.timers, source, transport)
        transaction.call_id, transaction.cseq_number = request.call_id, cseq.number
        self._transactions[key] = transaction
        self._requests[key] = request
        if method == "CANCEL":
            self._receive_cancel(request, key, top_via, cseq, now)
            return
        self._events.append(RequestReceived(request=request, transaction_id=key, source=source,
                                            transport=transport))

    def _receive_ack(self, request: Request, key: tuple, cseq: CSeq, source: Address, now: float) -> None:
        invite = self._transactions.get(key)
        if isinstance(invite, ServerInviteTransaction) and invite.state in (State.COMPLETED, State.CONFIRMED):
            invite.receive_ack(now)  # ACK for our 3xx-6xx: part of the INVITE transaction
            self._schedule(invite)
            return
        accepted = self._accepted_invites.get((request.call_id, cseq.number))
        if accepted is None:
            if self._lingering_acks and ack_key(request.call_id, cseq.number) in self._lingering_acks:
                return  # a repeated ACK of an acknowledged 2xx: absorbed (§13.3.1.4)
            self.counters["dropped"] += 1
            self._events.append(MessageDropped(reason=UNMATCHED_ACK, source=source,
                                               raw=bytes(request)))
            return
        if accepted.receive_ack(now):
            self._events.append(AckReceived(request=request, source=source))
        self._schedule(accepted)

    def _receive_cancel(self, request: Request, key: tuple, via: Via, cseq: CSeq, now: float) -> None:
        invite_key = (key[0], key[1], "INVITE")
        invite = self._transactions.get(invite_key)
        if invite is None:
            # §9.2: 200 when the INVITE was answered and its transaction lingers, 481 when none matches
            self.respond(key, 200 if lingering_key(invite_key) in self._lingering else 481, now=now)
            return
        self.respond(key, 200, now=now)
        if invite.state is State.PROCEEDING and not invite.cancelled:  # type: ignore[attr-defined]
            # A second CANCEL (a retransmission after Timer J, or a new one over TCP) must not ask
            # the TU to answer 487 twice: that second respond() would be a LocalProtocolError.
            invite.cancelled = True  # type: ignore[attr-defined]
            self._events.append(CancelReceived(request=request, invite_transaction_id=invite_key))

    @staticmethod
    def _server_key(request: Request, via: Via, cseq: CSeq) -> tuple:
        """§17.2.3 matching: branch + sent-by + method (ACK matches its INVITE)."""
        method = "INVITE" if request.method == "ACK" else request.method
        branch = via.branch
        if branch and branch.startswith(BRANCH_MAGIC_COOKIE):
            return (branch, via.sent_by, method)
        # RFC 2543 peers: fall back on the request's identity (§17.2.3, last paragraph).
        from_tag = request.headers.get("From", "").partition("tag=")[2].split(";")[0]
        return (f"2543:{request.call_id}:{from_tag}:{cseq.number}", via.sent_by, method)

    def _receive_response(self, response: Response, raw: bytes, source: Address, now: float) -> None:
        try:
            vias = response.headers.get_all("Via")
            if not vias or "CSeq" not in response.headers:
                raise RemoteProtocolError("response lacks Via or CSeq")
            via = Via.parse(vias[0])
            cseq = CSeq.parse(response.headers.get("CSeq", ""))
        except RemoteProtocolError as error:
            self.counters["dropped"] += 1
            self._events.append(MessageDropped(reason=f"malformed response: {error.reason}", source=source, raw=raw))
            return
        key = (via.branch, cseq.method)
        transaction = self._transactions.get(key)
        if transaction is None:
            if cseq.method == "INVITE" and 200 <= response.status < 300:
                # A 2xx retransmission after Timer M: the dialog must ACK it again (§13.2.2.4).
                self._events.append(ResponseReceived(response=response, transaction_id=None, method="INVITE"))
            else:
                self.counters["dropped"] += 1
            return
        if isinstance(transaction, ClientInviteTransaction):
            pass_up, datagrams = transaction.receive_response(response.status, response, now)
            self._send_all(datagrams, transaction)
        else:
            pass_up = transaction.receive_response(response.status, now)  # type: ignore[attr-defined]
        self._schedule(transaction)
        if pass_up:
            self._events.append(ResponseReceived(response=response, transaction_id=key, method=cseq.method))

    # ---- malformed input ---------------------------------------------------------------------
    def _reject_raw(self, data: bytes, source: Address, transport: str, error: RemoteProtocolError) -> None:
        """Answer an unparseable request with 400 when it carries enough to build a response."""
        lenient = _salvage_request(data)
        if lenient is None:
            self.counters["dropped"] += 1
            self._events.append(MessageDropped(reason=error.reason, source=source, raw=data))
            return
        self._reject_request(lenient, data, source, transport, error)

    def _reject_request(self, request: Request, raw: bytes, source: Address, transport: str,
                        error: RemoteProtocolError) -> None:
        if (request.method == "ACK" or any(h not in request.headers for h in REQUIRED_REQUEST_HEADERS)
                or not request.headers.get_all("Via")):  # a response without Via cannot be routed
            self.counters["dropped"] += 1
            self._events.append(MessageDropped(reason=error.reason, source=source, raw=raw))
            return
        self.counters["rejected"] += 1
        response = make_response(request, error.status,
                                 extra_headers=(*error.headers, ("Warning", f'399 acd "{_quote(error.reason)}"')))
        self._outbox.append(Datagram(bytes(response), source, transport))
        self._events.append(MessageRejected(status=error.status, reason=error.reason, source=source, raw=raw))

    # ---- output ------------------------------------------------------------------------------
    def respond(self, transaction_id: tuple, status: int, reason: str | None = None, *, now: float,
                to_tag: str | None = None, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
                content_type: str | None = None, stateless: bool = False) -> None:
        """Answer the request of a server transaction. `stateless` (a final refusal only): send the
        response once and forget the transaction, so it is never retransmitted; a retransmitted request
        gets its own single answer (no amplification towards a spoofed source)."""
        transaction = self._transactions.get(transaction_id)
        request = self._requests.get(transaction_id)
        if transaction is None:
            raise LocalProtocolError(f"no server transaction {transaction_id!r} to respond on")
        if request is None:
            raise LocalProtocolError(f"{transaction.role} {transaction_id!r} already sent its final response "
                                     f"{transaction.last_status}")
        response = make_response(request, status, reason, to_tag=to_tag, extra_headers=headers, body=body,
                                 content_type=content_type)
        data = bytes(response)
        if stateless:
            if status < 300:
                raise LocalProtocolError(f"a stateless answer must be a final refusal, not {status}")
            self._outbox.append(Datagram(data, transaction.destination, transaction.transport))
            del self._transactions[transaction_id]
            del self._requests[transaction_id]
            return
        self._send_all(transaction.send_response(status, data, now), transaction)  # type: ignore[attr-defined]
        if status >= 200:
            # Final: the transaction only resends these bytes now. Dropping the request keeps nothing
            # of it for the 32 s of Timer J/L but the transaction (fewer objects for the GC to scan).
            del self._requests[transaction_id]
            if isinstance(transaction, ServerInviteTransaction) and status < 300:
                self._accepted_invites[(transaction.call_id, transaction.cseq_number)] = transaction
        self._schedule(transaction)

    def send_request(self, request: Request, destination: Address, transport: str, now: float) -> tuple:
        """Send a request in a new client transaction; returns its id. A Via is added on top.

        Exception: a CANCEL that already carries a Via (from `build_cancel`) keeps it, because §9.1
        requires the CANCEL's Via to match the top Via of the INVITE it cancels (same branch).
        """
        existing_vias = request.headers.get_all("Via") if request.method == "CANCEL" else []
        if existing_vias:
            branch = Via.parse(existing_vias[0]).branch or ""
            if not branch:
                raise LocalProtocolError("CANCEL Via has no branch to match its INVITE")
        else:
            branch = self._new_branch()
            request.headers.prepend("Via", self._via(transport, branch))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        data = bytes(request)
        key = (branch, request.method)
        reliable = transport != "UDP"
        if request.method == "INVITE":
            transaction: Transaction = ClientInviteTransaction(
                key, data, lambda response: bytes(build_ack_for_error(request, response)), reliable,
                self.timers, destination, transport, now)
        elif request.method == "ACK":
            raise LocalProtocolError("ACK for a 2xx is sent with send_stateless, not in a transaction")
        else:
            transaction = ClientNonInviteTransaction(key, request.method, data, reliable, self.timers,
                                                     destination, transport, now)
        transaction.call_id = request.call_id
        self._transactions[key] = transaction
        self._outbox.append(Datagram(data, destination, transport))
        self._schedule(transaction)
        invite = self._transactions.get((branch, "INVITE")) if request.method == "CANCEL" else None
        if isinstance(invite, ClientInviteTransaction):
            invite.cancel_sent(now)  # bound the wait for the INVITE's final response (§9.1)
            self._schedule(invite)
        return key

    def send_stateless(self, message: Request | Response, destination: Address, transport: str) -> None:
        """Send a message outside any transaction (the ACK for a 2xx, §13.2.2.4)."""
        self._outbox.append(Datagram(bytes(message), destination, transport))

    def new_via(self, transport: str) -> str:
        """A fresh Via value for a request built outside `send_request` (an ACK for a 2xx)."""
        return self._via(transport, self._new_branch())

    def _via(self, transport: str, branch: str) -> str:
        port = self.transport_ports.get(transport, self.local_port)
        return f"SIP/2.0/{transport} {self.local_host}:{port};branch={branch};rport"

    def next_event(self) -> Event | None:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Datagram]:
        """Every datagram queued since the last call."""
        out, self._outbox = self._outbox, []
        return out

    # ---- time --------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called, or None if no timer is armed."""
        heap = self._deadlines
        lingering = self._lingering_until[0] if self._lingering_until else None
        while heap:
            deadline, _, key = heap[0]
            transaction = self._transactions.get(key)
            if transaction is not None and transaction.next_deadline() == deadline:
                return deadline if lingering is None else min(deadline, lingering)
            heapq.heappop(heap)  # stale entry: the transaction's timers changed since
        return lingering

    def handle_timers(self, now: float) -> None:
        """Fire every timer due at `now`."""
        until = self._lingering_until
        while until and until[0] <= now:
            until.popleft()
            del self._lingering[self._lingering_keys.popleft()]
            acked = self._lingering_ack_keys.popleft()
            if acked:
                self._lingering_acks.discard(acked)
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            transaction = self._transactions.get(key)
            if transaction is None or transaction.next_deadline() != deadline:
                continue
            self._send_all(transaction.handle_timers(now), transaction)  # type: ignore[attr-defined]
            self._schedule(transaction)

    def _schedule(self, transaction: Transaction) -> None:
        if transaction.terminated:
            self._forget(transaction)
            return
        if self._linger(transaction):
            return
        deadline = transaction.next_deadline()
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, next(self._sequence), transaction.key))

    def _linger(self, transaction: Transaction) -> bool:
        """Replace a server transaction that only waits out its last timer by plain values (see the
        module docstring); False when it still has work (retransmissions, an ACK to wait for)."""
        deadlines = transaction.deadlines
        if len(deadlines) != 1:
            return False
        if isinstance(transaction, ServerNonInviteTransaction):
            if "J" not in deadlines or transaction.reliable:  # over TCP, Timer J is 0: forgotten at once
                return False
            acked, deadline = "", deadlines["J"]
        elif isinstance(transaction, ServerInviteTransaction):
            if "L" not in deadlines or not transaction.acked:
                return False
            self._accepted_invites.pop((transaction.call_id, transaction.cseq_number), None)
            acked, deadline = ack_key(transaction.call_id, transaction.cseq_number), deadlines["L"]
            self._lingering_acks.add(acked)
        else:
            return False
        key = transaction.key
        del self._transactions[key]
        self._requests.pop(key, None)
        text_key = lingering_key(key)
        if text_key in self._lingering:  # the same key again (a peer reusing a branch): one entry, expiring first
            self._lingering[text_key] = transaction.last_response or b""
            if acked:
                self._lingering_acks.discard(acked)
            return True
        self._lingering[text_key] = transaction.last_response or b""
        self._lingering_until.append(deadline)
        self._lingering_keys.append(text_key)
        self._lingering_ack_keys.append(acked)
        return True

    def _forget(self, transaction: Transaction) -> None:
        self._transactions.pop(transaction.key, None)
        self._requests.pop(transaction.key, None)
        if transaction.timed_out:
            reason = "no-ack" if isinstance(transaction, ServerInviteTransaction) else "no-response"
            self._events.append(TransactionTimedOut(transaction_id=transaction.key, method=transaction.method,
                                                    call_id=transaction.call_id, reason=reason))
        if isinstance(transaction, ServerInviteTransaction):
            self._accepted_invites.pop((transaction.call_id, transaction.cseq_number), None)

    def _send_all(self, datagrams: list[bytes], transaction: Transaction) -> None:
        for data in datagrams:
            self._outbox.append(Datagram(data, transaction.destination, transaction.transport))

    @property
    def transaction_count(self) -> int:
        """Live transactions, lingering ones included (for metrics and leak tests)."""
        return len(self._transactions) + len(self._lingering)


def lingering_key(key: tuple) -> str:
    """A server transaction's key (branch, sent-by, method) as one string (a tuple is an object the
    garbage collector tracks; a string is not)."""
    return "\x00".join(key)


def ack_key(call_id: str, cseq_number: int) -> str:
    """Which INVITE an ACK for a 2xx acknowledges, as one string."""
    return f"{call_id}\x00{cseq_number}"


def _salvage_request(data: bytes) -> Request | None:
    """Read the start line and raw headers of a malformed request, to answer it with 400."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").replace("\r\n", "\n")
    lines = head.split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("SIP/") or not parts[0].isalpha():
        return None
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            headers.add(name.strip(), value.strip())
    return Request(method=parts[0], uri=parts[1], headers=headers)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')[:120]
