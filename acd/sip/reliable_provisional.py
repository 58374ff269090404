# SPDX-License-Identifier: MIT
"""RFC 3262 reliable provisional responses (100rel) on INVITEs we answer: the UAS side, sans-IO.

The rules of RFC 3262 §3 this file keeps, for one INVITE server transaction:

- A provisional response other than 100 goes reliably when the INVITE has `Require: 100rel`; with
  only `Supported: 100rel` the UAS may choose, and we choose it for a provisional with SDP (early
  media), whose answer then counts (`wants_reliable`).
- It carries `Require: 100rel` and `RSeq`: the first between 1 and 2**31-1 (chosen at random by the
  shell), one more for each next one. No second reliable provisional leaves before the first is
  acknowledged: it waits in line.
- It is retransmitted at T1, then 2*T1, 4*T1... (no T2 cap, unlike a 2xx) until its PRACK, over UDP
  only (a 2xx is not retransmitted over stream transports by this endpoint either).
- A PRACK matches by `RAck: rseq cseq method`; one that matches no unacknowledged response gets 481
  (§4: "MUST respond to the PRACK with a 481").
- No 2xx to the INVITE while a reliable provisional with SDP is unacknowledged: the 2xx is held and
  released by the PRACK. Any other final may go at once, and retransmissions then stop.
- Nothing PRACKed within 64*T1 of its first sending: "the UAS SHOULD reject the original request with
  a 5xx response" (§3); `due` says GIVE_UP and the shell answers 500.

State table (STYLE 5), one row per state, `{event: next state}`:

    PROCEEDING    --send-->  UNACKNOWLEDGED --prack--> PROCEEDING (or UNACKNOWLEDGED: the next in line)
    UNACKNOWLEDGED --hold 2xx--> FINAL_HELD --prack--> PROCEEDING (the held 2xx goes now)
    UNACKNOWLEDGED / FINAL_HELD --timeout (64*T1)--> GAVE_UP
    any but GAVE_UP --final sent--> FINISHED (PRACKs still matched and answered)

Pure: time is an argument; the shell keeps one timer at `next_deadline()` and asks `due(now)`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .message import Request

__all__ = ["DueAction", "PrackOutcome", "Provisional", "RAck", "Reliability", "ReliableProvisionals", "RSEQ_MAX",
           "peer_reliability", "wants_reliable"]

# §7.1: "The value of the header field for the first reliable provisional response in a transaction
# MUST be between 1 and 2**31 - 1."
RSEQ_MAX = 2 ** 31 - 1
# §3: retransmissions stop, and the INVITE is rejected, after 64*T1 without a PRACK.
GIVE_UP_T1_MULTIPLE = 64


class Reliability(enum.Enum):
    """What the caller's INVITE says of 100rel."""

    NONE = "none"            # neither Require nor Supported: provisionals go unreliably
    SUPPORTED = "supported"  # Supported: 100rel: we may send them reliably
    REQUIRED = "required"    # Require: 100rel: every provisional but 100 must go reliably


def _has_tag(request: Request, header: str) -> bool:
    return any(tag.strip().lower() == "100rel" for tag in request.headers.get_all(header))


def peer_reliability(request: Request) -> Reliability:
    """What an INVITE asks for: `Require: 100rel`, `Supported: 100rel` (compact `k`) or neither."""
    if _has_tag(request, "Require"):
        return Reliability.REQUIRED
    return Reliability.SUPPORTED if _has_tag(request, "Supported") else Reliability.NONE


def wants_reliable(reliability: Reliability, *, has_sdp: bool) -> bool:
    """Whether a provisional response goes reliably: always when required; when only supported, the
    ones with SDP (early media: the answer in it then is final, §5 of RFC 3262)."""
    return reliability is Reliability.REQUIRED or (reliability is Reliability.SUPPORTED and has_sdp)


@dataclass(frozen=True, slots=True, kw_only=True)
class RAck:
    """The RAck header of a PRACK (§7.2): `response-num CSeq-num Method`."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, text: str | None) -> "RAck":
        """Read `RAck: 776656 1 INVITE`; 400 when missing or malformed."""
        parts = (text or "").split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise RemoteProtocolError(f"PRACK RAck {text!r} is not 'response-num CSeq-num Method' (RFC 3262 §7.2)")
        return cls(rseq=int(parts[0]), cseq=int(parts[1]), method=parts[2].upper())


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisional:
    """One reliable provisional response: its status, RSeq, and whether it carries SDP."""

    status: int
    rseq: int
    has_sdp: bool

    def __post_init__(self) -> None:
        if not 101 <= self.status <= 199:
            raise ValueError(f"a reliable provisional response is 101-199 (§3: never 100), not {self.status}")
        if not 1 <= self.rseq <= 2 ** 32 - 1:
            raise ValueError(f"RSeq {self.rseq} is outside 1..2**32-1 (§7.1)")

    def headers(self) -> tuple[tuple[str, str], ...]:
        """`Require: 100rel` and `RSeq` (§3), for the response."""
        return (("Require", "100rel"), ("RSeq", str(self.rseq)))


class DueAction(enum.Enum):
    """What a due timer asks of the shell."""

    RETRANSMIT = "retransmit"  # send the unacknowledged provisional again
    GIVE_UP = "give-up"        # 64*T1 without PRACK: reject the INVITE with a 5xx


@dataclass(frozen=True, slots=True, kw_only=True)
class PrackOutcome:
    """What a matched PRACK releases: the provisional it acknowledged, the next one in line to send
    now (or None), and whether the held 2xx may go now."""

    acknowledged: Provisional
    send_next: Provisional | None
    send_final: bool


class State(enum.Enum):
    """Where the reliable provisionals of one INVITE are."""

    PROCEEDING = "proceeding"          # nothing unacknowledged
    UNACKNOWLEDGED = "unacknowledged"  # one sent, retransmitted until its PRACK
    FINAL_HELD = "final-held"          # and a 2xx waits for that PRACK
    FINISHED = "finished"              # the final response went; PRACKs are still answered
    GAVE_UP = "gave-up"                # no PRACK within 64*T1: the INVITE is rejected


TRANSITIONS: dict[State, dict[str, State]] = {
    State.PROCEEDING: {"send": State.UNACKNOWLEDGED, "final": State.FINISHED},
    State.UNACKNOWLEDGED: {"send": State.UNACKNOWLEDGED, "prack": State.PROCEEDING, "hold 2xx": State.FINAL_HELD,
                           "final": State.FINISHED, "timeout": State.GAVE_UP},
    State.FINAL_HELD: {"prack": State.PROCEEDING, "final": State.FINISHED, "timeout": State.GAVE_UP},
    State.FINISHED: {"prack": State.FINISHED, "final": State.FINISHED},
    State.GAVE_UP: {},
}


class ReliableProvisionals:
    """The reliable provisional responses to one INVITE (CSeq number `invite_cseq`).

    `first_rseq`: the RSeq of the first one (1..2**31-1); `t1_seconds`: RFC 3261's T1;
    `retransmit`: False over stream transports (the give-up deadline still runs)."""

    def __init__(self, *, invite_cseq: int, first_rseq: int, t1_seconds: float, retransmit: bool = True) -> None:
        if not 1 <= first_rseq <= RSEQ_MAX:
            raise ValueError(f"the first RSeq must be 1..2**31-1 (§7.1), not {first_rseq}")
        self.invite_cseq = invite_cseq
        self.t1_seconds = t1_seconds
        self.retransmit = retransmit
        self.state = State.PROCEEDING
        self._next_rseq = first_rseq
        self._unacknowledged: Provisional | None = None
        self._in_line: list[Provisional] = []
        self._acknowledged: set[int] = set()
        self._interval = t1_seconds
        self._retransmit_at: float | None = None
        self._give_up_at: float | None = None

    def _step(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise LocalProtocolError(f"reliable provisionals cannot take '{event}' in state {self.state.value}") from None

    @property
    def unacknowledged(self) -> Provisional | None:
        """The reliable provisional waiting for its PRACK (retransmitted until then), if any."""
        return self._unacknowledged

    # ---- sending ----------------------------------------------------------------------------
    def send(self, status: int, *, has_sdp: bool, now: float) -> Provisional:
        """A reliable provisional is to go: it gets its RSeq, and goes now when it becomes `unacknowledged`;
        else it waits in line behind the unacknowledged one (whose PRACK hands it out in
        `PrackOutcome.send_next`)."""
        provisional = Provisional(status=status, rseq=self._next_rseq, has_sdp=has_sdp)
        self._next_rseq += 1
        self._step("send")
        if self._unacknowledged is not None:
            self._in_line.append(provisional)
        else:
            self._sent(provisional, now)
        return provisional

    def _sent(self, provisional: Provisional, now: float) -> None:
        self._unacknowledged = provisional
        self._interval = self.t1_seconds
        self._retransmit_at = now + self._interval if self.retransmit else None
        self._give_up_at = now + GIVE_UP_T1_MULTIPLE * self.t1_seconds

    def may_send_2xx(self) -> bool:
        """Whether a 2xx to the INVITE may go now. False while a reliable provisional with SDP waits
        for its PRACK (§3 "MUST NOT send a final response until those provisional responses are
        acknowledged"): the 2xx is then held, and the PRACK's outcome says `send_final`."""
        pending = self._unacknowledged
        if pending is None or not pending.has_sdp:
            return True
        if self.state is State.UNACKNOWLEDGED:
            self._step("hold 2xx")
        return False

    def final_sent(self) -> None:
        """The INVITE's final response went: retransmissions stop (§3 "SHOULD NOT continue"), the ones
        in line are dropped; a PRACK for the unacknowledged one is still matched."""
        if self.state is State.GAVE_UP:
            return
        self._step("final")
        self._in_line.clear()
        self._retransmit_at = self._give_up_at = None

    # ---- PRACK ------------------------------------------------------------------------------
    def receive_prack(self, rack: RAck, now: float) -> PrackOutcome:
        """Match a PRACK by its RAck (§7.2); raises RemoteProtocolError 481 when it acknowledges no
        unacknowledged reliable provisional of this INVITE (§4)."""
        pending = self._unacknowledged
        if (pending is None or rack.method != "INVITE" or rack.cseq != self.invite_cseq or rack.rseq != pending.rseq
                or self.state is State.GAVE_UP):
            already = " (already acknowledged)" if rack.rseq in self._acknowledged else ""
            raise RemoteProtocolError(f"PRACK RAck {rack.rseq} {rack.cseq} {rack.method} matches no unacknowledged "
                                      f"reliable provisional response{already}", 481)
        held = self.state is State.FINAL_HELD
        self._step("prack")
        self._acknowledged.add(pending.rseq)
        self._unacknowledged = None
        self._retransmit_at = self._give_up_at = None
        send_next = None
        if held:
            self._in_line.clear()  # the 2xx goes now: nothing more to say before it
        elif self._in_line and self.state is State.PROCEEDING:
            send_next = self._in_line.pop(0)
            self._step("send")
            self._sent(send_next, now)
        return PrackOutcome(acknowledged=pending, send_next=send_next, send_final=held)

    # ---- time -------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When `due` must next be asked (None: nothing waits)."""
        deadlines = [d for d in (self._retransmit_at, self._give_up_at) if d is not None]
        return min(deadlines) if deadlines else None

    def due(self, now: float) -> tuple[DueAction, Provisional] | None:
        """What is due at `now` for the unacknowledged provisional: giving up (64*T1 after it was
        first sent) before a retransmission (T1, 2*T1, 4*T1... apart)."""
        pending = self._unacknowledged
        if pending is None:
            return None
        if self._give_up_at is not None and now >= self._give_up_at:
            self._step("timeout")
            self._retransmit_at = self._give_up_at = None
            self._in_line.clear()
            return DueAction.GIVE_UP, pending
        if self._retransmit_at is not None and now >= self._retransmit_at:
            self._interval *= 2  # §3: the interval doubles each time, with no T2 cap
            self._retransmit_at += self._interval
            return DueAction.RETRANSMIT, pending
        return None
