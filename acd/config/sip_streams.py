"""The `sip: tcp:` (stream connection limits, TCP and TLS alike) and `sip: tls:` blocks of conf/acd.yaml."""

from __future__ import annotations

from pathlib import Path

from .checker import Checker
from .model import StreamSettings, TlsSettings
from .tls_files import SETUP_HINT, read_tls_identity
from .yaml_lines import LineDict

__all__ = ["parse_stream_settings", "parse_tls_settings", "TLS_VERSIONS"]

# RFC 8996 deprecates TLS 1.0 and 1.1; RFC 3261 §26.2.1 asks for TLS, so 1.2 is the floor.
TLS_VERSIONS = ("1.2", "1.3")


def parse_stream_settings(check: Checker, sip: LineDict) -> StreamSettings:
    """`sip: tcp:` → StreamSettings (defaults for what is absent; errors at the line of a bad value)."""
    default = StreamSettings()
    if "tcp" not in sip:
        return default
    section = check.mapping(sip["tcp"], sip.line_of("tcp"), "sip tcp")
    if section is None:
        return default
    check.unknown_keys(section, {"idle_timeout_seconds", "partial_message_timeout_seconds", "max_connections_per_ip",
                                 "max_connections", "max_message_bytes"}, "sip tcp")
    what = "sip tcp"
    return StreamSettings(
        idle_timeout_seconds=float(check.number(section, "idle_timeout_seconds", default.idle_timeout_seconds, what,
                                                minimum=1, maximum=86400)),
        partial_message_timeout_seconds=float(check.number(section, "partial_message_timeout_seconds",
                                                           default.partial_message_timeout_seconds, what,
                                                           minimum=0.5, maximum=600)),
        max_connections_per_ip=int(check.number(section, "max_connections_per_ip", default.max_connections_per_ip,
                                                what, minimum=1, maximum=1_000_000, integer=True)),
        max_connections=int(check.number(section, "max_connections", default.max_connections, what, minimum=1,
                                         maximum=1_000_000, integer=True)),
        max_message_bytes=int(check.number(section, "max_message_bytes", default.max_message_bytes, what,
                                           minimum=1500, maximum=default.max_message_bytes, integer=True)),
    )


def parse_tls_settings(check: Checker, sip: LineDict, root: Path, *, enabled: bool, sip_port: int,
                       tcp_enabled: bool) -> TlsSettings:
    """`sip: tls:` → TlsSettings. When "tls" is in the transports the certificate and key must be there,
    readable PEM and a matching pair; when it is not, the block is checked for shape only (so the
    demo config can name a certificate that `scripts/setup` has not made yet)."""
    default = TlsSettings()
    section = check.mapping(sip["tls"], sip.line_of("tls"), "sip tls") if "tls" in sip else None
    if section is None:
        if enabled:
            check.error(sip.line_of("transports"), "sip transports has tls but there is no 'tls:' block with "
                                                   f"'certificate' and 'private_key'; {SETUP_HINT}")
        return default
    check.unknown_keys(section, {"port", "certificate", "private_key", "min_version"}, "sip tls")
    port = int(check.number(section, "port", default.port, "sip tls", minimum=1, maximum=65535, integer=True))
    if enabled and tcp_enabled and port == sip_port:
        check.error(section.line_of("port"), f"sip tls port {port} is the TCP port too: TLS needs its own (5061)")
    version = section.get("min_version", default.min_version)
    version_text = f"{version:.1f}" if isinstance(version, float) else str(version)
    if version_text not in TLS_VERSIONS:
        check.error(section.line_of("min_version"), f"sip tls min_version must be \"1.2\" or \"1.3\", not "
                                                    f"{version!r} (TLS 1.0 and 1.1 are deprecated, RFC 8996)")
        version_text = default.min_version
    paths = {}
    for key in ("certificate", "private_key"):
        text = check.text(section, key, "sip tls")
        if text is None and enabled and key not in section:
            check.error(section.line, f"sip tls needs {key!r} (a PEM file) when tls is in the transports; {SETUP_HINT}")
        paths[key] = (root / text).resolve() if text is not None else None
    settings = TlsSettings(port=port, certificate=paths["certificate"], private_key=paths["private_key"],
                           min_version=version_text)
    if enabled and settings.certificate is not None and settings.private_key is not None:
        try:
            read_tls_identity(settings.certificate, settings.private_key)
        except ValueError as error:
            key = "private_key" if str(error).startswith("private_key") else "certificate"
            check.error(section.line_of(key), f"sip tls {error}")
    return settings
