"""Unconfirmed calls: INVITEs we took (an RTP port bound, ringing or answered) whose ACK has not come. Pure.

A call is unconfirmed from the moment its INVITE is accepted until the caller's ACK for our 200 OK
(RFC 3261 §13.3.1.4), or until it ends. A well-behaved caller ACKs within one round trip, so even
at hundreds of calls a second only a handful are unconfirmed at any instant; a caller that never
ACKs (a flood, a broken NAT that lets INVITEs in but not our 200s out) keeps each call, and its RTP
port, until our 2xx retransmissions give up after 64*T1 = 32 s. Capping unconfirmed calls per source
address and in total bounds what such a source can hold: beyond a cap the shell refuses the next
INVITE with 503 before it takes a port.

The shell calls `refusal` before taking a port, `add` once the call exists, and `discard` on the
ACK and at the call's end (either may come first; both are idempotent).
"""

from __future__ import annotations

__all__ = ["UnconfirmedCalls", "PER_SOURCE", "TOTAL"]

# Which cap a refused INVITE met (the label of the refusal metric).
PER_SOURCE = "per_source"
TOTAL = "total"


class UnconfirmedCalls:
    """Unconfirmed calls by Call-ID, counted per source address."""

    def __init__(self) -> None:
        self._source_of: dict[str, str] = {}
        self._per_source: dict[str, int] = {}
        self.peak = 0  # the most unconfirmed at once since start (for benchmarks and sizing)

    def refusal(self, source: str, *, max_per_source: int, max_total: int) -> str | None:
        """Which cap a new call from `source` would exceed (`PER_SOURCE`, `TOTAL`), or None if it fits."""
        if self._per_source.get(source, 0) >= max_per_source:
            return PER_SOURCE
        if len(self._source_of) >= max_total:
            return TOTAL
        return None

    def add(self, call_id: str, source: str) -> None:
        """A call from `source` was accepted and waits for its ACK."""
        if call_id in self._source_of:
            return
        self._source_of[call_id] = source
        self._per_source[source] = self._per_source.get(source, 0) + 1
        self.peak = max(self.peak, len(self._source_of))

    def discard(self, call_id: str) -> None:
        """The call was ACKed, or ended; no-op when it is not counted."""
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
