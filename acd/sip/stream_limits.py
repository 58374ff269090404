"""Limits on SIP stream connections (TCP, TLS), sans-IO: who may connect, and when a connection must go.

An outsider can hold a stream connection for free: connect and say nothing (idle), or start a message
and never finish it (slow-loris), from as many connections as the server accepts. Each one costs a
file descriptor, which RTP ports need too. So:

- `ConnectionAdmission` counts open connections per source IP and in total and refuses beyond the caps.
- `StreamGuard` frames one connection's bytes into messages and reports when it must be closed:
  no complete message for `idle_timeout_seconds`, a message (or a TLS handshake) started and not
  finished within `partial_message_timeout_seconds`, junk bytes, a message over the size limit, or
  a flood of keep-alive CRLFs. CRLFs are not activity: RFC 5626 pings keep NAT bindings open, not
  our connection slots.

A connection that carries a live registration or dialog is the shell's business: when the guard says
"idle", the shell may `keep` it for another idle period (see acd/calls/stream_transports.py).

Time is an argument (STYLE 2): the shell arms one timer at `next_deadline()` and asks `expired(now)`.
"""

from __future__ import annotations

from .errors import RemoteProtocolError
from .framing import StreamFramer
from .message import MAX_MESSAGE_SIZE

__all__ = ["ConnectionAdmission", "StreamGuard", "CloseReason", "KeepaliveFlood", "DEFAULT_IDLE_TIMEOUT_SECONDS",
           "DEFAULT_PARTIAL_MESSAGE_TIMEOUT_SECONDS", "DEFAULT_MAX_CONNECTIONS_PER_IP", "DEFAULT_MAX_CONNECTIONS",
           "MAX_KEEPALIVE_BYTES_PER_IDLE_PERIOD"]

# Limits (STYLE 7). Each is a setting under `sip: tcp:` in conf/acd.yaml; these are the defaults.
# Kamailio closes a stream connection with no traffic after 120 s (DEFAULT_TCP_CONNECTION_LIFETIME_S in
# src/core/tcp_init.h). Connections that carry an agent's registration or a call are kept beyond it.
DEFAULT_IDLE_TIMEOUT_SECONDS = 120.0
# A SIP message (64 KiB at most) takes milliseconds on any link a phone can use; 20 s leaves room for a
# congested mobile uplink and still frees a slow-loris slot quickly.
DEFAULT_PARTIAL_MESSAGE_TIMEOUT_SECONDS = 20.0
# Office phones behind one NAT address share it: 200 TCP/TLS phones per address, then refuse.
DEFAULT_MAX_CONNECTIONS_PER_IP = 200
# Kamailio's tcp_max_connections default (DEFAULT_TCP_MAX_CONNECTIONS, src/core/tcp_init.h).
DEFAULT_MAX_CONNECTIONS = 2048
# RFC 5626 §4.4.1 pings are 4 bytes, every 30 s or more in practice: a few dozen bytes per idle period.
# Beyond 1 KiB of bare CRLFs without a message the peer is not keeping a flow alive but flooding.
MAX_KEEPALIVE_BYTES_PER_IDLE_PERIOD = 1024


class CloseReason:
    """Why a connection was closed or refused: the `reason` label of the metric, and the log's word."""

    IDLE = "idle_timeout"
    PARTIAL_MESSAGE = "partial_message_timeout"
    TLS_HANDSHAKE = "tls_handshake_timeout"
    BAD_FRAMING = "bad_framing"
    TOO_LARGE = "message_too_large"
    KEEPALIVE_FLOOD = "keepalive_flood"
    PER_IP_LIMIT = "per_ip_limit"
    TOTAL_LIMIT = "total_limit"
    TLS_ERROR = "tls_error"


class KeepaliveFlood(RemoteProtocolError):
    """Bare CRLFs beyond keep-alive use, with no message: the connection is closed."""


class ConnectionAdmission:
    """Open stream connections per source IP and in total; `admit` refuses beyond the caps."""

    def __init__(self, *, max_connections_per_ip: int = DEFAULT_MAX_CONNECTIONS_PER_IP,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        if max_connections_per_ip < 1 or max_connections < 1:
            raise ValueError("connection limits must be at least 1")
        self.max_connections_per_ip = max_connections_per_ip
        self.max_connections = max_connections
        self.open = 0
        self._per_ip: dict[str, int] = {}

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip` and return None, or refuse it: the CloseReason (not counted)."""
        if self.open >= self.max_connections:
            return CloseReason.TOTAL_LIMIT
        count = self._per_ip.get(ip, 0)
        if count >= self.max_connections_per_ip:
            return CloseReason.PER_IP_LIMIT
        self._per_ip[ip] = count + 1
        self.open += 1
        return None

    def release(self, ip: str) -> None:
        """An admitted connection from `ip` closed."""
        count = self._per_ip.get(ip, 0)
        if count <= 0:
            raise ValueError(f"release of a connection from {ip} that was never admitted")
        if count == 1:
            del self._per_ip[ip]
        else:
            self._per_ip[ip] = count - 1
        self.open -= 1

    def open_from(self, ip: str) -> int:
        """Open connections from `ip`."""
        return self._per_ip.get(ip, 0)


class StreamGuard:
    """One connection's framing and deadlines.

    `receive` returns whole messages or raises RemoteProtocolError (close the connection:
    `reason_of(error)` names why). `next_deadline()` is when `expired(now)` may next say
    "close"; after an IDLE verdict the shell may `keep(now)` the connection for another period.
    """

    def __init__(self, *, now: float, idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
                 partial_message_timeout_seconds: float = DEFAULT_PARTIAL_MESSAGE_TIMEOUT_SECONDS,
                 max_message_bytes: int = MAX_MESSAGE_SIZE,
                 max_keepalive_bytes: int = MAX_KEEPALIVE_BYTES_PER_IDLE_PERIOD) -> None:
        self.idle_timeout_seconds = idle_timeout_seconds
        self.partial_message_timeout_seconds = partial_message_timeout_seconds
        self.max_keepalive_bytes = max_keepalive_bytes
        self.framer = StreamFramer(max_message_bytes)
        self.messages = 0
        self._idle_since = now  # start of the current idle period: the last message, or the open
        self._partial_since: float | None = None  # when the unfinished message's first byte came
        self._handshake_since: float | None = None  # a TLS handshake in progress
        self._keepalive_base = 0  # framer.keepalive_bytes at the start of the idle period

    def handshake_started(self, now: float) -> None:
        """A TLS handshake begins (at connect): it must finish within the partial-message timeout."""
        self._handshake_since = now

    def handshake_done(self) -> None:
        """The TLS handshake finished."""
        self._handshake_since = None

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Feed received bytes; the complete messages now available (each one is activity)."""
        messages = self.framer.feed(data)
        if messages:
            self.messages += len(messages)
            self._new_idle_period(now)
            self._partial_since = None  # what is pending now is a new message
        if self.framer.keepalive_bytes - self._keepalive_base > self.max_keepalive_bytes:
            raise KeepaliveFlood(f"more than {self.max_keepalive_bytes} bytes of CRLF without a message")
        if self.framer.pending == 0:
            self._partial_since = None
        elif self._partial_since is None:
            self._partial_since = now
        return messages

    def keep(self, now: float) -> None:
        """The shell keeps an idle connection (it carries a registration or a call): a new idle period."""
        self._new_idle_period(now)

    def _new_idle_period(self, now: float) -> None:
        self._idle_since = now
        self._keepalive_base = self.framer.keepalive_bytes

    def next_deadline(self) -> float:
        """The earliest moment `expired` can return a reason."""
        deadline = self._idle_since + self.idle_timeout_seconds
        for since in (self._partial_since, self._handshake_since):
            if since is not None:
                deadline = min(deadline, since + self.partial_message_timeout_seconds)
        return deadline

    def expired(self, now: float) -> str | None:
        """The CloseReason if a deadline has passed at `now`, else None."""
        if self._handshake_since is not None and now >= self._handshake_since + self.partial_message_timeout_seconds:
            return CloseReason.TLS_HANDSHAKE
        if self._partial_since is not None and now >= self._partial_since + self.partial_message_timeout_seconds:
            return CloseReason.PARTIAL_MESSAGE
        if now >= self._idle_since + self.idle_timeout_seconds:
            return CloseReason.IDLE
        return None

    @staticmethod
    def reason_of(error: RemoteProtocolError) -> str:
        """The CloseReason for an error `receive` raised."""
        if error.status == 513:
            return CloseReason.TOO_LARGE
        if isinstance(error, KeepaliveFlood):
            return CloseReason.KEEPALIVE_FLOOD
        return CloseReason.BAD_FRAMING
