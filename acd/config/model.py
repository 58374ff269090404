"""The checked configuration as frozen dataclasses (what the loader returns)."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from typing import Any

from ..ivr.flow import Flow
from ..ivr.hours import BusinessHours
from ..sip import stream_limits
from ..sip.admission import MEASURED_NEW_CALLS_PER_SECOND, Ceilings, auto_max_calls
from ..sip.message import MAX_MESSAGE_SIZE
from ..sip.session_timer import DEFAULT_INTERVAL_SECONDS, MIN_SE_SECONDS
from ..sip.digest_client import DigestCredentials
from .trunk_accounts import TrunkRegistration

__all__ = ["SipLimits", "SipSettings", "StreamSettings", "TlsSettings", "RtpSettings", "HttpSettings", "Trunk", "Route", "Config",
           "AdmissionSettings", "SessionTimerSettings"]


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Limits on SIP stream connections, TCP and TLS alike (`sip: tcp:`; reasons in acd/sip/stream_limits.py)."""

    idle_timeout_seconds: float = stream_limits.DEFAULT_IDLE_TIMEOUT_SECONDS
    partial_message_timeout_seconds: float = stream_limits.DEFAULT_PARTIAL_MESSAGE_TIMEOUT_SECONDS
    max_connections_per_ip: int = stream_limits.DEFAULT_MAX_CONNECTIONS_PER_IP
    max_connections: int = stream_limits.DEFAULT_MAX_CONNECTIONS
    max_message_bytes: int = MAX_MESSAGE_SIZE


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """SIP over TLS (RFC 3261 §26), on when "tls" is in the transports: its port, the certificate chain
    and private key (PEM files, checked at load) and the lowest TLS version accepted ("1.2" or "1.3")."""

    port: int = 5061
    certificate: Path | None = None
    private_key: Path | None = None
    min_version: str = "1.2"


@dataclass(frozen=True, slots=True)
class SipLimits:
    """What one source address, and all together, may cost: calls waiting for their ACK (None: "auto",
    a share of the RTP range), and requests a second by the kind of source (a rate of 0 is no limit).
    Why the defaults: conf/acd.yaml."""

    max_unconfirmed_calls_per_source: int | None = None
    max_unconfirmed_calls: int | None = None
    unknown_source_requests_per_second: float = 10
    unknown_source_request_burst: int = 40
    agent_requests_per_second: float = 100
    agent_request_burst: int = 400
    trunk_requests_per_second: float = 0
    trunk_request_burst: int = 2000

    def unconfirmed_caps(self, rtp: "RtpSettings") -> tuple[int, int]:
        """(per source, in all): as set, or "auto": a quarter and three quarters of the call legs `rtp` has
        ports for."""
        legs = (rtp.port_max - rtp.port_min) // 2 + 1
        per_source = self.max_unconfirmed_calls_per_source
        total = self.max_unconfirmed_calls
        return (per_source if per_source is not None else max(1, legs // 4),
                total if total is not None else max(1, legs * 3 // 4))


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """Admission control of new calls (`sip: admission:`, issue 21; reasons in acd/sip/admission.py):
    ceilings on calls in progress and on new calls a second (None: "auto"; a rate of 0 is no limit),
    the event-loop lag that means overload (0: not watched) and the Retry-After of a refusal."""

    max_calls: int | None = None
    max_new_calls_per_second: float | None = None
    overload_loop_lag_seconds: float = 0.1
    retry_after_seconds: int = 2

    def ceilings(self, rtp: "RtpSettings") -> Ceilings:
        """The limits in force with the RTP range `rtp` ("auto" resolved)."""
        legs = (rtp.port_max - rtp.port_min) // 2 + 1
        rate = self.max_new_calls_per_second
        return Ceilings(max_calls=self.max_calls if self.max_calls is not None else auto_max_calls(legs),
                        new_calls_per_second=rate if rate is not None else MEASURED_NEW_CALLS_PER_SECOND,
                        overload_loop_lag_seconds=self.overload_loop_lag_seconds)


@dataclass(frozen=True, slots=True)
class SessionTimerSettings:
    """RFC 4028 session timers on calls we answer (`sip: session_timer:`; rules in acd/sip/session_timer.py):
    the interval we use when a caller supports timers but names none, and the shortest we accept (422 below)."""

    default_seconds: int = DEFAULT_INTERVAL_SECONDS
    min_seconds: int = MIN_SE_SECONDS


@dataclass(frozen=True, slots=True)
class SipSettings:
    """Where the SIP listener binds and what address it advertises in Contact and Via; RFC 3261's T1
    (the round-trip estimate all transaction timers derive from) and the flood limits."""

    listen: str = "127.0.0.1"
    port: int = 5060
    public_address: str = "127.0.0.1"
    transports: tuple[str, ...] = ("udp", "tcp")
    tcp: StreamSettings = field(default_factory=StreamSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    timer_t1_seconds: float = 0.5
    limits: SipLimits = field(default_factory=SipLimits)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    session_timer: SessionTimerSettings = field(default_factory=SessionTimerSettings)


@dataclass(frozen=True, slots=True)
class RtpSettings:
    """The RTP address (also put in SDP) and the even port range media legs use."""

    address: str = "127.0.0.1"
    port_min: int = 20000
    port_max: int = 29999
    # Media worker processes carrying the RTP legs: "auto" (one per core beyond the first, at most 4;
    # none on one core) or a number; 0 keeps media in the call process (acd.calls.remote_media).
    workers: int | str = "auto"
    # Symmetric RTP (send to where a peer's RTP comes from): "auto" (SDP addresses behind NAT),
    # "always" or "off" (acd.media.symmetric_rtp).
    symmetric: str = "auto"
    # RTCP reports per leg on its RTP port + 1 (acd/calls/rtcp_port.py): RFC 3550's 5 s, randomised; 0: no RTCP.
    rtcp_interval_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The HTTP listener (REST API; later /metrics and the wallboard); port 0 disables it."""

    listen: str = "127.0.0.1"
    port: int = 8080
    token_file: str = "api.token"
    # Web sign-in sessions (agent desktop, supervisors): ended after this long without a request,
    # and after this long in all (a shift), whatever the activity.
    web_session_idle_seconds: float = 1800.0
    web_session_max_seconds: float = 43200.0


@dataclass(frozen=True, slots=True)
class Trunk:
    """A carrier (or PBX) allowed to send us calls, by source network and optionally port."""

    name: str
    sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    port: int | None = None
    # Where calls we place through this trunk go (callbacks); None: this trunk takes no outbound calls.
    outbound: tuple[str, int] | None = None
    # SDES-SRTP media: "required", "optional" or "off" (acd/config/srtp_policy.py).
    srtp: str = "optional"
    # Where callers' key presses come from: auto, rfc4733, info or inband (acd/config/dtmf_mode.py).
    dtmf: str = "auto"
    # Our account at the carrier: registration and answers to its challenges (acd/config/trunk_accounts.py).
    register: TrunkRegistration | None = None
    # The From user of calls we place through this trunk (None: the queue's name).
    caller_id: str | None = None
    # True: the caller's number is taken from P-Asserted-Identity when the trunk sends one (RFC 3325).
    trusted: bool = False
    # How the trunk proves itself by Digest (407) when its source is not in `sources` (None: it cannot).
    auth: DigestCredentials | None = None

    def allows(self, host: str, port: int) -> bool:
        """True if a request from host:port comes from this trunk."""
        address = _ip_address(host)
        if address is None:
            return False
        if self.port is not None and port != self.port:
            return False
        return any(address in network for network in self.sources)


@functools.lru_cache(maxsize=4096)
def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`host` read as an IP address (None if it is none), remembered: every INVITE asks for its
    source, and ipaddress takes ~3 µs to read one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """A dialplan entry: a dialled number (exact) or pattern (regex, full match) → a flow."""

    flow: str
    number: str | None = None
    pattern: re.Pattern[str] | None = None
    answer_after_seconds: float = 0.0
    record: bool = False
    source: str = ""

    def matches(self, dialled: str) -> bool:
        """True if this route takes calls to `dialled`."""
        if self.number is not None:
            return dialled == self.number
        return self.pattern is not None and self.pattern.fullmatch(dialled) is not None


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the server runs on; replaced whole on reload."""

    root: Path
    sip: SipSettings
    rtp: RtpSettings
    trunks: tuple[Trunk, ...]
    routes: tuple[Route, ...]
    flows: dict[str, Flow]
    prompts: dict[str, Path]
    data_dir: Path
    files: tuple[str, ...] = field(default=())
    calendars: dict[str, BusinessHours] = field(default_factory=dict)
    queues: dict[str, Any] = field(default_factory=dict)
    agents: Any = None
    http: HttpSettings = field(default_factory=HttpSettings)
    country_code: str = "44"
    crm_lookup_url: str | None = None
    crm_webhook_url: str | None = None
    crm_timeout_seconds: float = 1.0
    incidents: tuple = ()
    lookups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    store: str | None = None  # None: SQLite files in data_dir; else a postgresql:// URL (acd/store/location.py)
    cluster: Any = None  # None: one node; else ClusterSettings (acd/config/cluster_settings.py)

    def route_for(self, dialled: str) -> Route | None:
        """The first route (in file order) that matches the dialled number."""
        for route in self.routes:
            if route.matches(dialled):
                return route
        return None

    def trunk_for(self, host: str, port: int) -> Trunk | None:
        """The trunk a source address belongs to, or None."""
        for trunk in self.trunks:
            if trunk.allows(host, port):
                return trunk
        return None
