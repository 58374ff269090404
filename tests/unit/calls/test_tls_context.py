"""The TLS listener's context refuses TLS below its floor (1.2 by default, 1.3 when asked) and serves
our certificate. Handshakes run in memory (pyOpenSSL server, the standard library's client): no sockets.

A refusal only proves something if the client could have spoken the old version: each old-version
test first completes a handshake with a permissive control server, and skips when this OpenSSL build
cannot speak that version at all."""

from __future__ import annotations

import ssl

import pytest
from OpenSSL import SSL

from acd.calls.tls_context import server_tls_options
from acd.config.model import TlsSettings
from tests.tls_material import make_self_signed

VERSIONS = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def client_for(version: str) -> ssl.SSLContext:
    """A client that offers exactly `version` (and old ciphers, so the version is the only obstacle)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = VERSIONS[version]
    return context


def handshake(server_context: SSL.Context, client_context: ssl.SSLContext) -> str | None:
    """Run a handshake in memory; the version agreed, or None when either side refused."""
    server = SSL.Connection(server_context, None)
    server.set_accept_state()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    for _ in range(20):
        client_done = server_done = False
        try:
            client.do_handshake()
            client_done = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            return None
        if outgoing.pending:
            server.bio_write(outgoing.read())
        try:
            server.do_handshake()
            server_done = True
        except SSL.WantReadError:
            pass
        except SSL.Error:
            return None
        try:
            incoming.write(server.bio_read(65536))
        except SSL.WantReadError:
            pass
        if client_done and server_done:
            return client.version()
    raise AssertionError("handshake did not finish")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_self_signed(tmp_path_factory.mktemp("tls"))


def server_context(pair, min_version: str = "1.2") -> SSL.Context:
    certificate, key = pair
    return server_tls_options(TlsSettings(certificate=certificate, private_key=key, min_version=min_version)).getContext()


def permissive_context(pair) -> SSL.Context:
    """A control server that accepts TLS 1.0 and up: shows what the client can speak."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_VERSION)
    context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    context.use_certificate_file(str(pair[0]))
    context.use_privatekey_file(str(pair[1]))
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused_by_default(pair):
    """A client offering only TLS 1.1 (which the control server accepts) gets no session from us."""
    if handshake(permissive_context(pair), client_for("1.1")) != "TLSv1.1":
        pytest.skip("this OpenSSL cannot speak TLS 1.1 at all: the floor cannot be shown here")
    assert handshake(server_context(pair), client_for("1.1")) is None


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_tls_1_2_and_1_3_are_accepted_by_default(pair, version):
    assert handshake(server_context(pair), client_for(version)) == f"TLSv{version}"


def test_min_version_1_3_refuses_tls_1_2(pair):
    assert handshake(permissive_context(pair), client_for("1.2")) == "TLSv1.2"
    assert handshake(server_context(pair, "1.3"), client_for("1.2")) is None
    assert handshake(server_context(pair, "1.3"), client_for("1.3")) == "TLSv1.3"


def test_an_expired_certificate_is_warned_about(pair, caplog):
    """The server starts (phones decide), but the log says the certificate has expired and to renew it."""
    import datetime

    certificate, key = pair
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    server_tls_options(TlsSettings(certificate=certificate, private_key=key), now=later)
    assert any("expired" in record.getMessage() and "renew" in record.getMessage() for record in caplog.records)
