"""Unconfirmed calls: INVITEs we took (an RTP port bound, ringing or answered) whose ACK has not come. Pure.

A call is unconfirmed from the moment its INVITE is accepted until the caller's ACK for our 200 OK
(RFC 3261 §13.3.1.4), or until it ends. A caller that never ACKs (a spoofed flood, a broken NAT that
lets INVITEs in but not our 200s out) keeps each call, and its RTP port, until our 2xx
retransmissions give up after 64*T1 = 32 s. Two caps bound what such callers can hold; beyond one,
the shell refuses the next INVITE with 503 before it takes a port:

- per source address, for a *silent* source only: one that has ACKed none of its calls for
  `CONFIRMING_SECONDS`. A live trunk ACKs within a round trip, but under load the count of its
  unconfirmed calls is its call rate times our own receive backlog, and a lost ACK keeps a call
  unconfirmed until it ACKs our retransmitted 200 (0.5-4 s later): 700 calls/s on a busy machine
  was measured at 1,365 unconfirmed, every call completing. A source that keeps ACKing is a live UA
  whose calls are merely late, so its count does not refuse it.
- in total, over every source: what is left of the RTP range for calls that are up and for agents'
  legs, whoever floods (many sources, or a flood spoofing a trunk that is ACKing its own calls).

The shell calls `refusal` before taking a port, `add` once the call exists, `confirm` on the ACK
and `discard` at the call's end (either may come first; both are idempotent).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["UnconfirmedCalls", "PER_SOURCE", "TOTAL", "CONFIRMING_SECONDS"]

# Which cap a refused INVITE met (the label of the refusal metric).
PER_SOURCE = "per_source"
TOTAL = "total"
# 2*T2 (RFC 3261 Table 4): a live caller that lost an ACK has ACKed one of our retransmitted 200s by
# then, so a source with no ACK for that long has stopped confirming its calls.
CONFIRMING_SECONDS = 8.0
# Sources whose last ACK is remembered (the least recent forgotten first): ~1 MB at most.
MAX_REMEMBERED_SOURCES = 10_000


class UnconfirmedCalls:
    """Unconfirmed calls by Call-ID, counted per source address, and when each source last ACKed."""

    def __init__(self) -> None:
        self._source_of: dict[str, str] = {}
        self._per_source: dict[str, int] = {}
        self._last_ack: OrderedDict[str, float] = OrderedDict()  # least recent first
        self.peak = 0  # the most unconfirmed at once since start (for benchmarks and sizing)

    def refusal(self, source: str, now: float, *, max_per_source: int, max_total: int) -> str | None:
        """Which cap a new call from `source` would exceed (`PER_SOURCE`, `TOTAL`), or None if it fits."""
        if len(self._source_of) >= max_total:
            return TOTAL
        if self._per_source.get(source, 0) >= max_per_source and not self.confirming(source, now):
            return PER_SOURCE
        return None

    def confirming(self, source: str, now: float) -> bool:
        """True when `source` ACKed one of its calls within the last CONFIRMING_SECONDS."""
        last = self._last_ack.get(source)
        return last is not None and now - last < CONFIRMING_SECONDS

    def add(self, call_id: str, source: str) -> None:
        """A call from `source` was accepted and waits for its ACK."""
        if call_id in self._source_of:
            return
        self._source_of[call_id] = source
        self._per_source[source] = self._per_source.get(source, 0) + 1
        self.peak = max(self.peak, len(self._source_of))

    def confirm(self, call_id: str, now: float) -> None:
        """The call's ACK arrived: it no longer counts, and its source is confirming."""
        source = self._source_of.get(call_id)
        if source is None:
            return
        self.discard(call_id)
        self._last_ack[source] = now
        self._last_ack.move_to_end(source)
        while len(self._last_ack) > MAX_REMEMBERED_SOURCES:
            self._last_ack.popitem(last=False)

    def discard(self, call_id: str) -> None:
        """The call ended (or was ACKed); no-op when it is not counted."""
        source = self._source_of.pop(call_id, None)
        if source is None:
            return
        left = self._per_source[source] - 1
        if left:
            self._per_source[source] = left
        else:
            del self._per_source[source]

    def count(self, source: str) -> int:
        """Unconfirmed calls from `source`."""
        return self._per_source.get(source, 0)

    @property
    def total(self) -> int:
        """Unconfirmed calls from everywhere."""
        return len(self._source_of)
