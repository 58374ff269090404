"""The TLS certificate chain and private key of the SIP listener: read, and checked to belong together.

Used twice: by the config loader, so a missing or broken file is a `file:line` error before anything
listens, and by the shell, which builds the TLS context from what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = ["TlsIdentity", "read_tls_identity", "SETUP_HINT"]

SETUP_HINT = "run scripts/setup to make the self-signed demo pair in data/tls/, or point it at your own PEM file"


@dataclass(frozen=True)
class TlsIdentity:
    """The server's certificate (first), its chain (the rest) and the matching private key."""

    certificates: tuple[x509.Certificate, ...]
    private_key: object

    @property
    def certificate(self) -> x509.Certificate:
        """The server's own certificate."""
        return self.certificates[0]


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist: {SETUP_HINT}")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{what} {path} cannot be read ({error.strerror}): let the server's user read it") from None


def read_tls_identity(certificate: Path, private_key: Path) -> TlsIdentity:
    """Read the PEM certificate chain and private key; ValueError says what is wrong and what to do."""
    chain = _read(certificate, "certificate")
    try:
        certificates = tuple(x509.load_pem_x509_certificates(chain))
    except ValueError:
        raise ValueError(f"certificate {certificate} holds no PEM certificate (-----BEGIN CERTIFICATE-----): "
                         f"{SETUP_HINT}") from None
    key_data = _read(private_key, "private_key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise ValueError(f"private_key {private_key} is encrypted: give an unencrypted key readable only by the "
                         f"server (openssl pkey -in KEY -out PLAIN)") from None
    except ValueError:
        raise ValueError(f"private_key {private_key} holds no PEM private key (-----BEGIN PRIVATE KEY-----): "
                         f"{SETUP_HINT}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
                            ed448.Ed448PrivateKey)):
        raise ValueError(f"private_key {private_key} is a {type(key).__name__}, which TLS cannot use: make an RSA "
                         f"or EC key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            certificates[0].public_key().public_bytes(serialization.Encoding.DER, public):
        raise ValueError(f"private_key {private_key} does not belong to certificate {certificate} (the first "
                         f"certificate in the file must be the server's own)")
    return TlsIdentity(certificates=certificates, private_key=key)
