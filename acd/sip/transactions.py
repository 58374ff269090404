"""RFC 3261 §17 transactions, with RFC 6026's Accepted state, as deadline-driven state machines.

Each transaction is a table of legal transitions plus named states (STYLE 5). Methods never send:
they return the datagrams to send, and they report their next timer as a deadline (STYLE 2). The
endpoint owns the transactions and a heap of deadlines.

Timers (§17, Table 4): T1 = RTT estimate (500 ms), T2 = max retransmit interval for non-INVITE
requests and INVITE responses (4 s), T4 = max time a message stays in the network (5 s).
Over reliable transports (TCP) nothing is retransmitted and the "wait" timers (D, I, J, K) are 0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import LocalProtocolError

__all__ = [
    "TimerConfig", "State", "ServerInviteTransaction", "ServerNonInviteTransaction",
    "ClientInviteTransaction", "ClientNonInviteTransaction", "Transaction",
]


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 timer values in seconds (Table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class State(enum.Enum):
    """Transaction states, named as in RFC 3261 §17 and RFC 6026 §7."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


def _response_class(status: int) -> str:
    if status < 200:
        return "1xx"
    if status < 300:
        return "2xx"
    return "final-error"


# Legal transitions: {state: {input: next state}}. An input absent from a state's row is illegal
# for our own actions (LocalProtocolError), and ignored for peer messages (RFC 3261 says absorb).
SERVER_INVITE_TRANSITIONS = {
    State.PROCEEDING: {"send 1xx": State.PROCEEDING, "send 2xx": State.ACCEPTED,
                       "send final-error": State.COMPLETED, "request": State.PROCEEDING},
    State.ACCEPTED: {"request": State.ACCEPTED, "ack": State.ACCEPTED, "send 2xx": State.ACCEPTED,
                     "timer L": State.TERMINATED},
    State.COMPLETED: {"request": State.COMPLETED, "ack": State.CONFIRMED, "timer G": State.COMPLETED,
                      "timer H": State.TERMINATED},
    State.CONFIRMED: {"request": State.CONFIRMED, "ack": State.CONFIRMED, "timer I": State.TERMINATED},
    State.TERMINATED: {},
}
SERVER_NON_INVITE_TRANSITIONS = {
    State.TRYING: {"send 1xx": State.PROCEEDING, "send 2xx": State.COMPLETED,
                   "send final-error": State.COMPLETED, "request": State.TRYING},
    State.PROCEEDING: {"send 1xx": State.PROCEEDING, "send 2xx": State.COMPLETED,
                       "send final-error": State.COMPLETED, "request": State.PROCEEDING},
    State.COMPLETED: {"request": State.COMPLETED, "timer J": State.TERMINATED},
    State.TERMINATED: {},
}
CLIENT_INVITE_TRANSITIONS = {
    State.CALLING: {"timer A": State.CALLING, "timer B": State.TERMINATED, "1xx": State.PROCEEDING,
                    "2xx": State.ACCEPTED, "final-error": State.COMPLETED},
    State.PROCEEDING: {"1xx": State.PROCEEDING, "2xx": State.ACCEPTED, "final-error": State.COMPLETED,
                       "timer B": State.TERMINATED},  # B is re-armed in Proceeding only by cancel_sent
    State.ACCEPTED: {"2xx": State.ACCEPTED, "timer M": State.TERMINATED},
    State.COMPLETED: {"final-error": State.COMPLETED, "timer D": State.TERMINATED},
    State.TERMINATED: {},
}
CLIENT_NON_INVITE_TRANSITIONS = {
    State.TRYING: {"timer E": State.TRYING, "timer F": State.TERMINATED, "1xx": State.PROCEEDING,
                   "2xx": State.COMPLETED, "final-error": State.COMPLETED},
    State.PROCEEDING: {"timer E": State.PROCEEDING, "timer F": State.TERMINATED,
                       "1xx": State.PROCEEDING, "2xx": State.COMPLETED, "final-error": State.COMPLETED},
    State.COMPLETED: {"1xx": State.COMPLETED, "2xx": State.COMPLETED, "final-error": State.COMPLETED,
                      "timer K": State.TERMINATED},
    State.TERMINATED: {},
}


class Transaction:
    """Common machinery: state, table, named timers as absolute deadlines."""

    TRANSITIONS: dict[State, dict[str, State]] = {}
    role = "transaction"

    def __init__(self, key: tuple, method: str, reliable: bool, timers: TimerConfig,
                 destination: tuple[str, int], transport: str, initial: State) -> None:
        self.key = key
        self.method = method
        self.reliable = reliable
        self.timers = timers
        self.destination = destination
        self.transport = transport
        self.state = initial
        self.deadlines: dict[str, float] = {}
        self.timed_out = False
        self.last_status = 0
        self.call_id = ""  # of the request (set by the endpoint): for TransactionTimedOut
        self.cseq_number = 0

    def _step(self, event: str, local: bool) -> bool:
        """Apply one input; return False if it is illegal here (peer input is then absorbed)."""
        row = self.TRANSITIONS[self.state]
        if event not in row:
            if local:
                raise LocalProtocolError(f"{self.role} {self.method} cannot '{event}' in state {self.state.value}")
            return False
        self.state = row[event]
        if self.state is State.TERMINATED:
            self.deadlines.clear()
        return True

    def next_deadline(self) -> float | None:
        """The earliest armed timer, or None."""
        return min(self.deadlines.values()) if self.deadlines else None

    @property
    def terminated(self) -> bool:
        """True once the transaction can be forgotten."""
        return self.state is State.TERMINATED


class ServerInviteTransaction(Transaction):
    """§17.2.1 with RFC 6026: the UAS side of an INVITE."""

    TRANSITIONS = SERVER_INVITE_TRANSITIONS
    role = "server INVITE transaction"

    def __init__(self, key: tuple, reliable: bool, timers: TimerConfig,
                 destination: tuple[str, int], transport: str) -> None:
        super().__init__(key, "INVITE", reliable, timers, destination, transport, State.PROCEEDING)
        self.last_response: bytes | None = None
        self._retransmit_interval = timers.t1
        self.acked = False
        self.cancelled = False  # CancelReceived was reported (once per INVITE, however many CANCELs)

    def send_response(self, status: int, data: bytes, now: float) -> list[bytes]:
        """Send a response; returns the datagrams to put on the wire."""
        kind = _response_class(status)
        self._step(f"send {kind}", local=True)
        self.last_response = data
        self.last_status = status
        if kind == "2xx":
            # RFC 6026 §7.1: Timer L = 64*T1 waits for retransmitted INVITEs; §13.3.1.4 the 2xx is
            # retransmitted (T1 doubling up to T2) until the ACK comes, over UDP only.
            self.deadlines["L"] = now + 64 * self.timers.t1
            if not self.reliable:
                self._retransmit_interval = self.timers.t1
                self.deadlines["G2xx"] = now + self._retransmit_interval
        elif kind == "final-error":
            if not self.reliable:  # Timer G: retransmit the final response (§17.2.1).
                self._retransmit_interval = self.timers.t1
                self.deadlines["G"] = now + self._retransmit_interval
            self.deadlines["H"] = now + 64 * self.timers.t1  # Timer H: give up waiting for ACK.
        return [data]

    def receive_request(self, now: float) -> list[bytes]:
        """A retransmission of the INVITE: resend the last response (§17.2.1)."""
        if not self._step("request", local=False) or self.last_response is None:
            return []
        return [self.last_response]

    def receive_ack(self, now: float) -> bool:
        """An ACK for our final response; returns True if it is the first ACK for a 2xx."""
        was = self.state
        if not self._step("ack", local=False):
            return False
        if was is State.ACCEPTED:
            first = not self.acked
            self.acked = True
            self.deadlines.pop("G2xx", None)
            return first
        if was is State.COMPLETED:
            self.deadlines.pop("G", None)
            self.deadlines.pop("H", None)
            self.deadlines["I"] = now + (0 if self.reliable else self.timers.t4)  # Timer I
        return False

    def handle_timers(self, now: float) -> list[bytes]:
        """Fire every expired timer; returns datagrams to send. Sets `timed_out` on Timer H/L without ACK."""
        out: list[bytes] = []
        for name, deadline in sorted(self.deadlines.items(), key=lambda item: item[1]):
            if deadline > now or name not in self.deadlines:
                continue
            del self.deadlines[name]
            if name in ("G", "G2xx"):
                if self.last_response is not None:
                    out.append(self.last_response)
                self._retransmit_interval = min(2 * self._retransmit_interval, self.timers.t2)
                self.deadlines[name] = now + self._retransmit_interval
                if name == "G":
                    self._step("timer G", local=False)
            elif name == "H":
                self.timed_out = True
                self._step("timer H", local=False)
            elif name == "L":
                self.timed_out = not self.acked
                self._step("timer L", local=False)
            elif name == "I":
                self._step("timer I", local=False)
        return out


class ServerNonInviteTransaction(Transaction):
    """§17.2.2: the UAS side of BYE, OPTIONS, INFO, CANCEL, REGISTER..."""

    TRANSITIONS = SERVER_NON_INVITE_TRANSITIONS
    role = "server non-INVITE transaction"

    def __init__(self, key: tuple, method: str, reliable: bool, timers: TimerConfig,
                 destination: tuple[str, int], transport: str) -> None:
        super().__init__(key, method, reliable, timers, destination, transport, State.TRYING)
        self.last_response: bytes | None = None

    def send_response(self, status: int, data: bytes, now: float) -> list[bytes]:
        """Send a response; a final one arms Timer J (64*T1 over UDP, 0 over TCP)."""
        kind = _response_class(status)
        self._step(f"send {kind}", local=True)
        self.last_response = data
        self.last_status = status
        if kind != "1xx":
            self.deadlines["J"] = now + (0 if self.reliable else 64 * self.timers.t1)
        return [data]

    def receive_request(self, now: float) -> list[bytes]:
        """A retransmitted request: resend the last response, if any (§17.2.2)."""
        if not self._step("request", local=False) or self.last_response is None:
            return []
        return [self.last_response]

    def handle_timers(self, now: float) -> list[bytes]:
        """Timer J ends the transaction."""
        if self.deadlines.get("J", now + 1) <= now:
            del self.deadlines["J"]
            self._step("timer J", local=False)
        return []


class ClientNonInviteTransaction(Transaction):
    """§17.1.2: our BYE, OPTIONS, NOTIFY... Timer E retransmits, Timer F gives up, Timer K lingers."""

    TRANSITIONS = CLIENT_NON_INVITE_TRANSITIONS
    role = "client non-INVITE transaction"

    def __init__(self, key: tuple, method: str, request: bytes, reliable: bool, timers: TimerConfig,
                 destination: tuple[str, int], transport: str, now: float) -> None:
        super().__init__(key, method, reliable, timers, destination, transport, State.TRYING)
        self.request = request
        self._interval = timers.t1
        if not reliable:
            self.deadlines["E"] = now + timers.t1
        self.deadlines["F"] = now + 64 * timers.t1

    def receive_response(self, status: int, now: float) -> bool:
        """Returns True if the response must be passed up (not a retransmission)."""
        was = self.state
        if not self._step(_response_class(status), local=False):
            return False
        if was is State.COMPLETED:
            return False
        self.last_status = status
        if status >= 200:
            self.deadlines.pop("E", None)
            self.deadlines.pop("F", None)
            self.deadlines["K"] = now + (0 if self.reliable else self.timers.t4)
        elif "E" in self.deadlines:
            self._interval = self.timers.t2  # §17.1.2.2: in Proceeding, retransmit every T2.
        return True

    def handle_timers(self, now: float) -> list[bytes]:
        """Fire E (retransmit), F (timeout) and K (terminate)."""
        out: list[bytes] = []
        if self.deadlines.get("F", now + 1) <= now:
            self.timed_out = True
            self._step("timer F", local=False)
            return out
        if self.deadlines.get("E", now + 1) <= now:
            out.append(self.request)
            self._interval = min(2 * self._interval, self.timers.t2) if self.state is State.TRYING else self.timers.t2
            self.deadlines["E"] = now + self._interval
            self._step("timer E", local=False)
        if self.deadlines.get("K", now + 1) <= now:
            del self.deadlines["K"]
            self._step("timer K", local=False)
        return out


class ClientInviteTransaction(Transaction):
    """§17.1.1 with RFC 6026: our INVITE (offers to agents). Timer A retransmits, B gives up."""

    TRANSITIONS = CLIENT_INVITE_TRANSITIONS
    role = "client INVITE transaction"

    def __init__(self, key: tuple, request: bytes, ack_for_error: "callable", reliable: bool,
                 timers: TimerConfig, destination: tuple[str, int], transport: str, now: float) -> None:
        super().__init__(key, "INVITE", reliable, timers, destination, transport, State.CALLING)
        self.request = request
        self._ack_for_error = ack_for_error
        self._ack: bytes | None = None
        self._interval = timers.t1
        if not reliable:
            self.deadlines["A"] = now + timers.t1
        self.deadlines["B"] = now + 64 * timers.t1

    def receive_response(self, status: int, response_bytes_for_ack: object, now: float) -> tuple[bool, list[bytes]]:
        """Returns (pass the response up?, datagrams to send: the ACK for a 3xx-6xx)."""
        was = self.state
        kind = _response_class(status)
        if not self._step(kind, local=False):
            return False, []
        self.deadlines.pop("A", None)
        if kind == "1xx":
            # §17.1.1.2 (Figure 5): Timer B only runs in Calling. Once the phone rings, how long to
            # let it ring is the TU's decision (it CANCELs); B must not cut a ringing call at 64*T1.
            self.deadlines.pop("B", None)
            self.last_status = status
            return True, []
        self.deadlines.pop("B", None)
        if kind == "2xx":
            # RFC 6026 §7.2: Timer M = 64*T1; each 2xx retransmission goes to the TU (it ACKs).
            if was is not State.ACCEPTED:
                self.deadlines["M"] = now + 64 * self.timers.t1
            self.last_status = status
            return True, []
        if self._ack is None:
            self._ack = self._ack_for_error(response_bytes_for_ack)
        if was is State.COMPLETED:
            return False, [self._ack]  # a retransmitted final response: ACK again, absorb
        self.last_status = status
        self.deadlines["D"] = now + (0 if self.reliable else 32.0)  # Timer D: > 32 s over UDP
        return True, [self._ack]

    def cancel_sent(self, now: float) -> None:
        """§9.1: with no final response 64*T1 after our CANCEL, give up on the INVITE (as Timer B)."""
        if self.state in (State.CALLING, State.PROCEEDING):
            self.deadlines["B"] = min(self.deadlines.get("B", now + 64 * self.timers.t1), now + 64 * self.timers.t1)

    def handle_timers(self, now: float) -> list[bytes]:
        """Fire A (retransmit), B (timeout), D and M (terminate)."""
        out: list[bytes] = []
        if self.deadlines.get("B", now + 1) <= now:
            self.timed_out = True
            self._step("timer B", local=False)
            return out
        if self.deadlines.get("A", now + 1) <= now:
            out.append(self.request)
            self._interval *= 2
            self.deadlines["A"] = now + self._interval
            self._step("timer A", local=False)
        for name in ("D", "M"):
            if self.deadlines.get(name, now + 1) <= now:
                del self.deadlines[name]
                self._step(f"timer {name}", local=False)
        return out
