"""Agents' phones REGISTER over real UDP: Digest challenge, wrong passwords, blocking, persistence."""

from __future__ import annotations

import re
import socket

import pytest

from acd.sip.digest import client_authorization

from .harness import LOOPBACK, free_port, port_is_free, rtp_base, start_server, wait_until


class RegisteringPhone:
    """A bare UDP SIP client that registers extension `user` from its own port (on `host`, any 127/8 address)."""

    def __init__(self, server_port: int, user: str, host: str = LOOPBACK) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host = host
        self.sock.settimeout(2.0)
        self.port = self.sock.getsockname()[1]
        self.server = (LOOPBACK, server_port)
        self.user = user
        self.cseq = 0
        self.call_id = f"reg-{user}-{host}-{self.port}"

    def register(self, expires: int = 300, authorization: str | None = None) -> bytes:
        self.cseq += 1
        uri = f"sip:{LOOPBACK}:{self.server[1]}"
        message = (f"REGISTER {uri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {self.host}:{self.port}"
                   f";branch=z9hG4bKreg{self.host}-{self.port}x{self.cseq};rport\r\n"
                   f"From: <sip:{self.user}@{LOOPBACK}>;tag=t{self.port}\r\nTo: <sip:{self.user}@{LOOPBACK}>\r\n"
                   f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} REGISTER\r\nMax-Forwards: 70\r\n"
                   f"Contact: <sip:{self.user}@{self.host}:{self.port}>\r\nExpires: {expires}\r\n"
                   + (f"Authorization: {authorization}\r\n" if authorization else "")
                   + "Content-Length: 0\r\n\r\n")
        self.sock.sendto(message.encode(), self.server)
        return self.sock.recvfrom(65535)[0]

    def register_with_password(self, password: str, expires: int = 300) -> bytes:
        challenge = self.register(expires)
        assert challenge.startswith(b"SIP/2.0 401"), challenge
        values = re.findall(rb"WWW-Authenticate: ([^\r]+)", challenge)
        assert b'algorithm=SHA-256' in values[0] and b'algorithm=MD5' in values[1], "SHA-256 offered first"
        authorization = client_authorization(values[0].decode(), method="REGISTER",
                                             uri=f"sip:{LOOPBACK}:{self.server[1]}", username=self.user,
                                             password=password, cnonce=f"c{self.cseq}")
        return self.register(expires, authorization)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def registrar_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("acd-registrar")
    server = start_server(root, sip_port=free_port(), rtp_base=rtp_base())
    yield server
    server.stop()


def test_register_with_the_right_password_binds_the_contact(registrar_server):
    """401 with SHA-256 and MD5 challenges, then 200 listing the binding with its expiry."""
    phone = RegisteringPhone(registrar_server.sip_port, "1001")
    try:
        reply = phone.register_with_password("demo-1001-pw")
        assert reply.startswith(b"SIP/2.0 200"), reply
        assert f"Contact: <sip:1001@{LOOPBACK}:{phone.port}>;expires=300".encode() in reply
        unregister = phone.register_with_password("demo-1001-pw", expires=0)
        assert unregister.startswith(b"SIP/2.0 200") and b"Contact:" not in unregister
    finally:
        phone.close()
    registrar_server.wait_for_log(r"agent=1001 registered contact=sip:1001@127\.0\.0\.1:\d+")
    registrar_server.wait_for_log(r"agent=1001 unregistered contact=")


def test_wrong_password_is_challenged_again_then_blocked(registrar_server):
    """Wrong passwords get 401 (no binding); the fifth failure in a minute blocks this extension from
    this address with 403 (other extensions behind the same address keep working)."""
    phone = RegisteringPhone(registrar_server.sip_port, "1002")
    try:
        replies = [phone.register_with_password("not-the-password") for _ in range(4)]
        assert all(r.startswith(b"SIP/2.0 401") for r in replies), replies
        assert phone.register_with_password("not-the-password").startswith(b"SIP/2.0 403")
        assert phone.register().startswith(b"SIP/2.0 403"), "blocked sources are refused outright"
        other = RegisteringPhone(registrar_server.sip_port, "1003")
        try:
            assert other.register_with_password("demo-1003-pw").startswith(b"SIP/2.0 200"), \
                "another extension from the same address still registers"
        finally:
            other.close()
    finally:
        phone.close()
    log = registrar_server.log()
    assert re.search(rf'WARNING acd\.registrar auth failure: source=127\.0\.0\.1:{phone.port} transport=UDP '
                     r'method=REGISTER reason=wrong-password user="1002"\n', log)
    assert "agent=1002 registered" not in log


def test_bindings_survive_a_restart(tmp_path):
    """A binding written before a restart is restored from SQLite by the next process."""
    sip_port, base = free_port(), rtp_base()
    server = start_server(tmp_path, sip_port=sip_port, rtp_base=base)
    phone = RegisteringPhone(sip_port, "1003")
    try:
        assert phone.register_with_password("demo-1003-pw", expires=600).startswith(b"SIP/2.0 200")
    finally:
        phone.close()
        server.stop()
    wait_until(lambda: port_is_free(sip_port), 5, f"SIP port {sip_port} free again after the stop")
    again = start_server(tmp_path, sip_port=sip_port, rtp_base=base)
    try:
        again.wait_for_log(r"registrar: realm 'example-acd', 1 bindings restored")
    finally:
        again.stop()
