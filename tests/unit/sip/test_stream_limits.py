"""Stream connection limits, sans-IO: junk detection in the framer, the guard's deadlines, admission caps."""

from __future__ import annotations

import pytest

from acd.sip.errors import RemoteProtocolError
from acd.sip.framing import MAX_START_LINE_BYTES, StreamFramer
from acd.sip.stream_limits import CloseReason, ConnectionAdmission, StreamGuard

MESSAGE = (b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\n"
           b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
RESPONSE = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"


# ---- junk: closed at the first byte that cannot be SIP ------------------------------------------

@pytest.mark.parametrize("junk", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the TCP port
    b"\x00\x00\x00\x00",
    b"\xff\xfe\xfd",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a start line, but not SIP
    b"INVITE\r\n",  # no Request-URI
    b" INVITE sip:a@b SIP/2.0\r\n",
    b"INV\x01TE sip:a@b SIP/2.0\r\n",
    b"A" * 40,  # no method is this long
    b"INVITE sip:a@b SIP/2.0\r\nVia: x\x00\r\n",  # NUL in a header
], ids=["tls-hello", "nul", "binary", "http", "no-uri", "leading-space", "control-in-method", "long-word",
        "nul-header"])
def test_junk_is_refused_before_a_whole_message_arrives(junk):
    """Bytes no SIP message can start with are refused at once (no waiting for 64 KiB or a timeout)."""
    with pytest.raises(RemoteProtocolError) as error:
        StreamFramer().feed(junk)
    assert error.value.status == 400


@pytest.mark.parametrize("message", [MESSAGE, RESPONSE], ids=["request", "response"])
def test_requests_and_responses_pass_byte_by_byte(message):
    """The start-line checks accept every prefix of a valid request and status line."""
    framer = StreamFramer()
    out = []
    for byte in message:
        out += framer.feed(bytes([byte]))
    assert out == [message]


def test_start_line_longer_than_the_limit_is_junk():
    """A Request-URI that never ends is refused at the start-line limit, long before 64 KiB."""
    framer = StreamFramer()
    framer.feed(b"INVITE sip:")
    with pytest.raises(RemoteProtocolError):
        framer.feed(b"a" * MAX_START_LINE_BYTES)


def test_keepalives_are_counted_and_a_crlf_split_in_two_is_one():
    """CRLF and bare LF keep-alives between messages are skipped and counted; a CR alone waits for its LF."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == [] and framer.pending == 0
    assert framer.feed(b"\n" + MESSAGE + b"\n") == [MESSAGE]
    assert framer.keepalive_bytes == 5


def test_a_message_split_at_every_byte_still_frames_after_a_first_one():
    """Offsets the framer keeps for linear scanning are reset between messages."""
    body = MESSAGE.replace(b"Content-Length: 0", b"Content-Length: 4") + b"body"
    for split in range(1, len(body)):
        framer = StreamFramer()
        assert framer.feed(MESSAGE + body[:split]) == [MESSAGE]
        assert framer.feed(body[split:]) == [body]


# ---- the guard's deadlines ---------------------------------------------------------------------

def guard(now: float = 0.0, **limits) -> StreamGuard:
    return StreamGuard(now=now, **{"idle_timeout_seconds": 10.0, "partial_message_timeout_seconds": 3.0, **limits})


def test_idle_connection_expires_after_the_idle_timeout():
    """No message since the connection opened: closed at open + idle timeout, not before."""
    g = guard()
    assert g.next_deadline() == 10.0
    assert g.expired(9.99) is None
    assert g.expired(10.0) == CloseReason.IDLE


def test_a_complete_message_starts_a_new_idle_period():
    g = guard()
    assert g.receive(MESSAGE, now=8.0) == [MESSAGE]
    assert g.next_deadline() == 18.0 and g.expired(17.0) is None


def test_crlf_keepalives_are_not_activity():
    """RFC 5626 pings keep a NAT binding, not our slot: the idle deadline stays."""
    g = guard()
    g.receive(b"\r\n\r\n", now=5.0)
    assert g.next_deadline() == 10.0


def test_a_slow_loris_message_expires_after_the_partial_timeout():
    """A message started at t=1 and fed a byte per second is closed at t=4, though bytes keep coming."""
    g = guard()
    g.receive(MESSAGE[:1], now=1.0)
    for second in (2.0, 3.0):
        g.receive(MESSAGE[int(second):int(second) + 1], now=second)
    assert g.next_deadline() == 4.0
    assert g.expired(4.0) == CloseReason.PARTIAL_MESSAGE


def test_a_new_partial_message_gets_its_own_time():
    """A message completed in the same chunk that starts the next: the next one's clock starts then."""
    g = guard()
    g.receive(MESSAGE[:5], now=1.0)
    g.receive(MESSAGE[5:] + MESSAGE[:5], now=3.5)
    assert g.next_deadline() == 6.5


def test_a_kept_connection_gets_another_idle_period():
    g = guard()
    g.keep(10.0)
    assert g.expired(15.0) is None and g.next_deadline() == 20.0


def test_tls_handshake_must_finish_within_the_partial_timeout():
    g = guard()
    g.handshake_started(0.0)
    assert g.expired(3.0) == CloseReason.TLS_HANDSHAKE
    g.handshake_done()
    assert g.expired(3.0) is None and g.next_deadline() == 10.0


def test_a_crlf_flood_is_closed():
    """5,000 CRLFs without a message: refused as a keep-alive flood, not an open connection for ever."""
    g = guard()
    with pytest.raises(RemoteProtocolError) as error:
        g.receive(b"\r\n" * 5000, now=1.0)
    assert StreamGuard.reason_of(error.value) == CloseReason.KEEPALIVE_FLOOD


def test_pings_over_many_idle_periods_are_no_flood():
    """A phone pinging every 5 s for an hour on a kept connection: the count restarts each period."""
    g = guard()
    for second in range(0, 3600, 5):
        if g.expired(float(second)) == CloseReason.IDLE:
            g.keep(float(second))
        g.receive(b"\r\n\r\n", now=float(second))


def test_oversized_message_is_too_large():
    g = guard(max_message_bytes=2000)
    with pytest.raises(RemoteProtocolError) as error:
        g.receive(MESSAGE.replace(b"Content-Length: 0", b"Content-Length: 5000"), now=1.0)
    assert StreamGuard.reason_of(error.value) == CloseReason.TOO_LARGE


def test_junk_is_bad_framing():
    with pytest.raises(RemoteProtocolError) as error:
        guard().receive(b"\x16\x03\x01", now=1.0)
    assert StreamGuard.reason_of(error.value) == CloseReason.BAD_FRAMING


# ---- admission -------------------------------------------------------------------------------

def test_the_connection_beyond_the_per_ip_cap_is_refused_and_others_still_come_in():
    admission = ConnectionAdmission(max_connections_per_ip=2, max_connections=10)
    assert admission.admit("192.0.2.1") is None and admission.admit("192.0.2.1") is None
    assert admission.admit("192.0.2.1") == CloseReason.PER_IP_LIMIT
    assert admission.admit("192.0.2.2") is None
    admission.release("192.0.2.1")
    assert admission.admit("192.0.2.1") is None
    assert admission.open == 3


def test_the_connection_beyond_the_total_cap_is_refused():
    admission = ConnectionAdmission(max_connections_per_ip=10, max_connections=2)
    assert admission.admit("192.0.2.1") is None and admission.admit("192.0.2.2") is None
    assert admission.admit("192.0.2.3") == CloseReason.TOTAL_LIMIT


def test_releasing_a_connection_never_admitted_is_a_bug():
    with pytest.raises(ValueError):
        ConnectionAdmission().release("192.0.2.1")
