"""RequestGate: a per-source request budget in front of the SipServer (issue 15).

The transports hand every received message to the gate, which passes it on to the SipServer unless
the source has spent its budget (a token bucket per source address, `acd.sip.rate_limit`). Over-rate
requests are dropped without an answer (an answer would let a spoofed source aim us at a victim) and
counted in `acd_sip_requests_throttled_total`; the log says so once per source per interval, with how
many were dropped, not once per packet.

Budgets go by what the source is, from `sip: limits:`: a configured trunk (no limit by default: one
carrier address sends the whole call load, 700+ calls a second in the benchmark), an address an
agent's phone is registered from (generous: an office behind one NAT), anything else (low: a phone
that is not registered yet needs two REGISTERs; a scanner needs thousands).

Responses are never limited: they can only match transactions we opened (offers to agents, BYEs,
callbacks), and dropping one would break that transaction; an unmatched one is dropped by the
endpoint after a parse. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterable

from ..sip.events import Datagram
from ..sip.rate_limit import Budget, ReportThrottle, TokenBuckets
from .ports import ConfigSource
from .transports import SipReceiver

if TYPE_CHECKING:
    from ..config.model import Config, SipLimits
    from ..metrics import Metrics

__all__ = ["RequestGate", "TRUNK", "AGENT", "UNKNOWN"]

log = logging.getLogger("acd.sip")

# What a source is (the label of the throttle metric).
TRUNK, AGENT, UNKNOWN = "trunk", "agent", "unknown"
# How long a source's kind is trusted before it is looked up again: a phone that just registered
# gets the agent budget within this time, one whose binding expired loses it.
CLASSIFY_SECONDS = 1.0
# Bound on remembered source kinds (cleared every CLASSIFY_SECONDS anyway).
MAX_CLASSIFIED = 10_000
REPORT_INTERVAL_SECONDS = 10.0


def budgets(limits: "SipLimits") -> dict[str, Budget]:
    """The token-bucket budget of each kind of source."""
    return {TRUNK: Budget(limits.trunk_requests_per_second, limits.trunk_request_burst),
            AGENT: Budget(limits.agent_requests_per_second, limits.agent_request_burst),
            UNKNOWN: Budget(limits.unknown_source_requests_per_second, limits.unknown_source_request_burst)}


class RequestGate:
    """Implements `SipReceiver` for the transports; passes what fits the budgets on to `server`.

    `agent_hosts(now)` gives the addresses agents' phones are registered from (asked at most once
    per CLASSIFY_SECONDS, and only when a source that is no trunk sends).
    """

    def __init__(self, *, server: SipReceiver, config: ConfigSource, agent_hosts: Callable[[float], Iterable[str]],
                 metrics: "Metrics", reactor) -> None:
        self.server = server
        self.live = config
        self.agent_hosts = agent_hosts
        self.metrics = metrics
        self.reactor = reactor
        self.buckets = TokenBuckets()
        self.reports = ReportThrottle(interval_seconds=REPORT_INTERVAL_SECONDS)
        self._config: Config | None = None
        self._budgets: dict[str, Budget] = {}
        self._kinds: dict[tuple[str, int], str] = {}
        self._agent_hosts: frozenset[str] | None = None
        self._classified_until = 0.0

    def set_sender(self, transport: str, send: Callable[[Datagram], None]) -> None:
        """Senders are the server's business: passed through."""
        self.server.set_sender(transport, send)

    def datagram_received(self, data: bytes, source: tuple[str, int], transport: str) -> None:
        """Pass one received message on, unless it is a request over its source's budget."""
        if data.startswith(b"SIP/2.0 "):
            self.server.datagram_received(data, source, transport)
            return
        now = self.reactor.seconds()
        kind = self._kind(source, now)
        if self.buckets.allow(source[0], self._budgets[kind], now):
            self.server.datagram_received(data, source, transport)
            return
        self.metrics.sip_throttled.labels(kind).inc()
        dropped = self.reports.report(source[0], now)
        if dropped is not None:
            budget = self._budgets[kind]
            log.warning("dropping requests from %s:%s (%s source) over its budget of %g/s (burst %g): %d dropped "
                        "since the last report; %s", source[0], source[1], kind, budget.per_second, budget.burst,
                        dropped, _first_line(data))

    def _kind(self, source: tuple[str, int], now: float) -> str:
        config = self.live.config
        if config is not self._config or now >= self._classified_until:
            self._config = config
            self._budgets = budgets(config.sip.limits)
            self._kinds.clear()
            self._agent_hosts = None
            self._classified_until = now + CLASSIFY_SECONDS
        kind = self._kinds.get(source)
        if kind is None:
            if config.trunk_for(*source) is not None:
                kind = TRUNK
            else:
                if self._agent_hosts is None:
                    self._agent_hosts = frozenset(self.agent_hosts(now))
                kind = AGENT if source[0] in self._agent_hosts else UNKNOWN
            if len(self._kinds) < MAX_CLASSIFIED:
                self._kinds[source] = kind
        return kind


def _first_line(data: bytes) -> str:
    return repr(data[:80].split(b"\r\n", 1)[0])
