"""The SIP listener's TLS context (RFC 3261 §26): our certificate chain and key, TLS 1.2 or newer.

Built with Twisted's `CertificateOptions` over pyOpenSSL. Clients are not asked for certificates:
agents prove who they are with Digest, trunks by their source address, as over UDP and TCP.
"""

from __future__ import annotations

import datetime
import logging

from twisted.internet import ssl

from ..config.model import TlsSettings
from ..config.tls_files import read_tls_identity

__all__ = ["server_tls_options", "TLS_MINIMUM"]

log = logging.getLogger("acd.sip")

# conf/acd.yaml `sip: tls: min_version` → the lowest version the server accepts. Twisted's own floor
# is TLS 1.2 already; "1.3" raises it.
TLS_MINIMUM = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_tls_options(settings: TlsSettings, now: datetime.datetime | None = None) -> ssl.CertificateOptions:
    """The context factory for the TLS listener; ValueError (as the config check says) on bad files.
    Logs the certificate's subject and expiry, and warns when it has expired at `now`."""
    if settings.certificate is None or settings.private_key is None:
        raise ValueError("sip tls needs 'certificate' and 'private_key'")
    identity = read_tls_identity(settings.certificate, settings.private_key)
    # pyOpenSSL takes cryptography's certificate and key objects (its own X509/PKey are deprecated);
    # CertificateOptions only hands them to SSL.Context.
    options = ssl.CertificateOptions(privateKey=identity.private_key, certificate=identity.certificate,
                                     extraCertChain=list(identity.certificates[1:]),
                                     raiseMinimumTo=TLS_MINIMUM[settings.min_version])
    certificate = identity.certificate
    expires = certificate.not_valid_after_utc
    log.info("TLS certificate %s (from %s), valid until %s; TLS %s or newer", certificate.subject.rfc4514_string(),
             settings.certificate, expires.isoformat(), settings.min_version)
    if expires < (now or datetime.datetime.now(datetime.timezone.utc)):
        log.warning("the TLS certificate %s expired on %s: phones and trunks will refuse it; renew it",
                    settings.certificate, expires.isoformat())
    return options
