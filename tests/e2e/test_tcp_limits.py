"""SIP over TCP under attack, against the real server: slow-loris and idle connections are closed within
the configured timeouts while real calls over UDP and TCP go through; the per-IP cap refuses the
connection beyond it; junk and a CRLF flood are reset at once. Every close is in the log and in
`acd_sip_connections_closed_total`.

Attackers come from 127.0.0.2-11 (loopback answers on all of 127/8), 50 each, under a per-IP cap of 60,
so all 500 are admitted and the must-show is that the timeouts close them."""

from __future__ import annotations

import errno
import selectors
import socket
import time
import urllib.request

import pytest

from .harness import LOOPBACK, free_port, rtp_base, start_server, start_sipp

PARTIAL_TIMEOUT_SECONDS = 2
IDLE_TIMEOUT_SECONDS = 3
PER_IP = 60
# Scheduling slack for a busy 2-core box: the server checks deadlines on its timer, the test polls.
SLACK_SECONDS = 2.5
SLOW_LORIS = 500
IDLE = 50
ATTACKER_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 12)]
PARTIAL_INVITE = b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bK"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    limits = (f"  tcp:\n    idle_timeout_seconds: {IDLE_TIMEOUT_SECONDS}\n"
              f"    partial_message_timeout_seconds: {PARTIAL_TIMEOUT_SECONDS}\n"
              f"    max_connections_per_ip: {PER_IP}\n    max_connections: 1000\n")
    running = start_server(tmp_path_factory.mktemp("acd-tcp-limits"), sip_port=free_port(), rtp_base=rtp_base(),
                           http_port=http_port, sip_extra=limits)
    running.http_port = http_port
    yield running
    running.stop()


def connect(server, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect((LOOPBACK, server.sip_port))
    sock.setblocking(False)
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the server has closed (FIN or reset) a socket that polled readable."""
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def closes(server, reason: str) -> float:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{server.http_port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f'acd_sip_connections_closed_total{{reason="{reason}",transport="TCP"}}'):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_slow_loris_and_idle_connections_are_closed_while_calls_go_through(server, tmp_path):
    """500 connections trickling an INVITE a byte every 0.5 s and 50 silent ones: each is closed within
    its timeout (plus slack), while a 6 s trunk call over UDP and one over TCP (its connection idle
    for longer than the idle timeout, kept because a dialog uses it) both complete."""
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, tuple[str, float]] = {}
    try:
        for index in range(SLOW_LORIS):
            sock = connect(server, ATTACKER_ADDRESSES[index % len(ATTACKER_ADDRESSES)])
            sock.send(PARTIAL_INVITE[:1])
            opened[sock] = ("loris", time.monotonic())
        for _ in range(IDLE):
            sock = connect(server, "127.0.0.12")
            opened[sock] = ("idle", time.monotonic())
        for sock in opened:
            selector.register(sock, selectors.EVENT_READ)
        calls = [start_sipp(tmp_path / "udp", server.target, "load_call.xml", service="1000", timeout=30,
                            args=("-key", "rtp_port", "0")),
                 start_sipp(tmp_path / "tcp", server.target, "load_call.xml", service="1000", timeout=30,
                            args=("-t", "t1", "-key", "rtp_port", "0"))]
        took: dict[str, list[float]] = {"loris": [], "idle": []}
        sent = {sock: 1 for sock, (kind, _) in opened.items() if kind == "loris"}
        deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS + SLACK_SECONDS + 5
        next_byte = time.monotonic() + 0.5
        while opened and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                if closed_by_peer(sock):
                    kind, since = opened.pop(sock)
                    took[kind].append(time.monotonic() - since)
                    selector.unregister(sock)
                    sock.close()
            if time.monotonic() >= next_byte:
                next_byte += 0.5
                for sock in [s for s in opened if opened[s][0] == "loris"]:
                    try:
                        sock.send(PARTIAL_INVITE[sent[sock]:sent[sock] + 1])
                        sent[sock] += 1
                    except OSError as error:
                        assert error.errno in (errno.ECONNRESET, errno.EPIPE), error
        still_open = sorted({kind for kind, _ in opened.values()})
        assert not opened, f"{len(opened)} connections ({still_open}) still open after {deadline} s"
        results = [call.wait(timeout=40) for call in calls]
        stderr = [call.stderr.read().decode(errors="replace")[-1500:] for call in calls]
    finally:
        for sock in opened:
            sock.close()
        selector.close()
    assert len(took["loris"]) == SLOW_LORIS and len(took["idle"]) == IDLE
    assert max(took["loris"]) <= PARTIAL_TIMEOUT_SECONDS + SLACK_SECONDS, max(took["loris"])
    assert min(took["loris"]) >= PARTIAL_TIMEOUT_SECONDS - 0.1, min(took["loris"])
    assert IDLE_TIMEOUT_SECONDS - 0.1 <= min(took["idle"]) and max(took["idle"]) <= IDLE_TIMEOUT_SECONDS + SLACK_SECONDS
    assert results == [0, 0], f"SIPp calls during the attack failed: {stderr}\n{server.log()[-3000:]}"
    log = server.log()
    assert log.count(": partial_message_timeout (") == SLOW_LORIS
    assert log.count(": idle_timeout (") >= IDLE
    assert "closing TCP connection from 127.0.0.2:" in log
    assert "closing TCP connection from 127.0.0.1:" not in log, "the TCP call's connection was cut"
    assert closes(server, "partial_message_timeout") == SLOW_LORIS
    assert closes(server, "idle_timeout") >= IDLE


def test_the_connection_beyond_the_per_ip_cap_is_refused(server):
    """60 connections from one address stay open; the 61st is reset at once and logged; another
    address still gets in."""
    held = [connect(server, "127.0.0.40") for _ in range(PER_IP)]
    try:
        with pytest.raises(ConnectionResetError):  # the reset may even beat connect() back to us
            extra = connect(server, "127.0.0.40")
            try:
                extra.settimeout(3)
                if extra.recv(10) == b"":
                    raise ConnectionResetError("closed")
            finally:
                extra.close()
        server.wait_for_log(r"closing TCP connection from 127\.0\.0\.40:\d+: per_ip_limit \(60 open")
        other = connect(server, "127.0.0.41")
        time.sleep(0.3)
        assert not closed_by_peer(other)
        other.close()
        assert not any(closed_by_peer(sock) for sock in held)
    finally:
        for sock in held:
            sock.close()
    assert closes(server, "per_ip_limit") == 1


@pytest.mark.parametrize("junk, reason", [(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "bad_framing"),
                                          (b"\r\n" * 5000, "keepalive_flood")], ids=["binary", "crlf-flood"])
def test_junk_is_reset_at_once(server, junk, reason):
    sock = connect(server, "127.0.0.50")
    sock.setblocking(True)
    sock.settimeout(3)
    sock.sendall(junk)
    try:
        assert sock.recv(10) == b""
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    server.wait_for_log(rf"closing TCP connection from 127\.0\.0\.50:\d+: {reason} \(")
