"""SipEndpoint on hostile input: garbage, keep-alives and malformed messages are handled events.

Only `RemoteProtocolError` is caught inside the core (STYLE 6); any other exception escaping
`receive` is a bug. Every reply the endpoint sends must itself be a well-formed SIP response.
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd.sip.endpoint import SipEndpoint
from acd.sip.events import MessageDropped, MessageRejected, RequestReceived, ResponseReceived
from acd.sip.message import MAX_MESSAGE_SIZE, Response, parse_message

from conftest import load

SOURCE = ("192.0.2.50", 5060)
GOLDEN = ["sipp_invite", "pjsua_invite", "response_100", "response_180", "response_200", "bye", "cancel",
          "options", "register", "torture_wsinv", "torture_compact", "torture_intmeth", "torture_semiuri_multivia"]
HANDLED = (MessageDropped, MessageRejected, RequestReceived, ResponseReceived)


def make_endpoint():
    counter = itertools.count(1)
    return SipEndpoint(local_host="192.0.2.1", local_port=5060, branch_factory=lambda: f"z9hG4bKfz{next(counter)}")


def feed(data, transport="UDP"):
    """Receive one datagram on a fresh endpoint; returns (events, replies parsed)."""
    endpoint = make_endpoint()
    endpoint.receive(data, SOURCE, transport, 0.0)
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    replies = []
    for datagram in endpoint.datagrams_to_send():
        assert datagram.destination == SOURCE and datagram.transport == transport
        reply = parse_message(datagram.data)  # what we send must parse
        assert isinstance(reply, Response)
        replies.append(reply)
    return events, replies


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n", b"  \t\r\n"])
def test_keepalives_and_empty_datagrams_are_ignored(data):
    """RFC 5626 §3.5.1: a CRLF keep-alive is no message at all."""
    assert feed(data) == ([], [])


@pytest.mark.parametrize("data", [b"\x00\x01\x02\xff" * 10, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                  bytes(range(256)), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"])
def test_binary_junk_is_dropped_without_a_reply(data):
    events, replies = feed(data)
    assert len(events) == 1 and isinstance(events[0], MessageDropped) and events[0].raw == data
    assert replies == []


def test_response_without_via_is_dropped():
    data = load("response_180").replace(b"Via: SIP/2.0/UDP 10.0.0.10:5061;branch=z9hG4bK-12345-1-0\r\n", b"")
    events, replies = feed(data)
    assert isinstance(events[0], MessageDropped) and "Via" in events[0].reason
    assert replies == []


def test_response_with_bad_cseq_is_dropped():
    events, replies = feed(load("response_180").replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"))
    assert isinstance(events[0], MessageDropped) and replies == []


def test_cseq_method_mismatch_is_answered_400():
    """RFC 4475 §3.1.2.17 "mismatch01"."""
    events, replies = feed(load("invalid_mismatch01"))
    (event,) = events
    assert isinstance(event, MessageRejected) and event.status == 400 and "CSeq" in event.reason
    (reply,) = replies
    assert reply.status == 400
    assert reply.call_id == "mismatch01.dj0234sxdfl3"
    assert reply.headers.get("Warning").startswith('399 acd "')


@pytest.mark.parametrize("name, status", [("invalid_badvers", 505), ("invalid_clerr", 400), ("invalid_ncl", 400),
                                          ("invalid_no_empty_line", 400), ("sipp_invite_truncated", 400)])
def test_unparseable_request_with_enough_headers_is_answered(name, status):
    events, replies = feed(load(name))
    (event,) = events
    assert isinstance(event, MessageRejected) and event.status == status
    (reply,) = replies
    assert reply.status == status


def test_huge_request_is_answered_513():
    data = load("options").replace(b"Content-Length: 0", b"X-Pad: " + b"p" * MAX_MESSAGE_SIZE + b"\r\nContent-Length: 0")
    events, replies = feed(data)
    assert events[0].status == 513 and replies[0].status == 513


def test_request_missing_call_id_is_dropped_not_answered():
    """Without Call-ID no well-formed response can be built (§8.1.1): the request is dropped."""
    events, replies = feed(load("invalid_no_call_id"))
    (event,) = events
    assert isinstance(event, MessageDropped) and "Call-ID" in event.reason
    assert replies == []


def test_malformed_ack_is_never_answered():
    """§17.1.1.3: an ACK is never responded to, even when it is broken."""
    data = load("bye").replace(b"BYE sip", b"ACK sip").replace(b"CSeq: 2 BYE", b"CSeq: 2 BYE")
    events, replies = feed(data)
    assert isinstance(events[0], MessageDropped) and replies == []


@pytest.mark.parametrize("via", [b"Via: ,", b"Via: , ,", b"Via:", b"Via: SIP/2.0/UDP", b"Via: garbage"])
def test_request_with_empty_or_malformed_via_is_handled(via):
    data = load("options").replace(b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK2b7c.0e1f2a3b;rport", via)
    events, replies = feed(data)
    (event,) = events
    assert isinstance(event, (MessageDropped, MessageRejected))


def test_response_status_000_is_dropped():
    events, replies = feed(load("response_180").replace(b"SIP/2.0 180 Ringing", b"SIP/2.0 000 Zero"))
    assert isinstance(events[0], MessageDropped) and replies == []


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_requests_open_transactions_and_responses_are_dropped_as_strays(name):
    events, replies = feed(load(name))
    (event,) = events if events else (None,)
    message = parse_message(load(name))
    if isinstance(message, Response) and message.status == 200:
        # A 2xx to an INVITE with no transaction: a retransmission the dialog must ACK again (§13.2.2.4).
        assert isinstance(event, ResponseReceived) and event.transaction_id is None and replies == []
    elif isinstance(message, Response):
        assert events == [] and replies == []  # no transaction of ours: a stray response
    elif message.method == "CANCEL":
        assert events == [] and replies[0].status == 481
    else:
        assert isinstance(event, RequestReceived) and event.request.method == message.method


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise(data):
    events, _ = feed(data)
    assert all(isinstance(event, HANDLED) for event in events)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(GOLDEN), edits=st.lists(
    st.tuples(st.integers(min_value=0, max_value=4000), st.integers(0, 8), st.binary(max_size=6)), max_size=4),
    transport=st.sampled_from(["UDP", "TCP"]))
def test_mutated_golden_messages_never_raise(name, edits, transport):
    """Splice random bytes into real messages: near-valid input reaches the deeper code paths."""
    data = bytearray(load(name))
    for position, length, insert in edits:
        position %= len(data) + 1
        data[position:position + length] = insert
    events, _ = feed(bytes(data), transport)
    assert all(isinstance(event, HANDLED) for event in events)


SIP_TOKENS = [b"INVITE", b"ACK", b"CANCEL", b"BYE", b"SIP/2.0", b" ", b"\r\n", b":", b";", b",", b"<", b">",
              b'"', b"\\", b"sip:", b"Via", b"v", b"CSeq", b"Call-ID", b"i", b"From", b"To", b"t", b"f", b"l",
              b"Content-Length", b"tag=", b"branch=z9hG4bK", b"0", b"1", b"200", b"2147483648", b"SIP/2.0/UDP",
              b"[::1]", b"\t", b"\r\n\r\n", b"\r\n ", b"\x00", b"\xff", b"@", b"=", b"h"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SIP_TOKENS), max_size=60))
def test_sip_shaped_noise_never_raises(parts):
    events, _ = feed(b"".join(parts))
    assert all(isinstance(event, HANDLED) for event in events)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(GOLDEN + ["invalid_mismatch01", "sipp_invite_truncated"]),
                          st.floats(min_value=0, max_value=5)), max_size=12))
def test_a_stream_of_messages_and_timers_never_raises(script):
    """Messages and timer jumps interleaved on one endpoint: state stays consistent."""
    endpoint = make_endpoint()
    now = 0.0
    for name, step in script:
        now += step
        endpoint.receive(load(name), SOURCE, "UDP", now)
        while (deadline := endpoint.next_deadline()) is not None and deadline <= now:
            endpoint.handle_timers(deadline)
        while (event := endpoint.next_event()) is not None:
            if isinstance(event, RequestReceived) and event.request.method != "INVITE":
                endpoint.respond(event.transaction_id, 200, now=now, to_tag="t")
    while (deadline := endpoint.next_deadline()) is not None:
        endpoint.handle_timers(deadline)
    endpoint.datagrams_to_send()
    while endpoint.next_event() is not None:
        pass
    # Unanswered INVITEs wait for the TU forever; everything else has ended.
    assert endpoint.transaction_count == len({k for k in endpoint._transactions if k[2] == "INVITE"})


@pytest.mark.parametrize("name, status, header", [
    ("invalid_unkscm", 416, None),                      # RFC 4475 §3.3.3 "unkscm"
    ("invalid_bext01", 420, ("Unsupported", "nothingSupportsThis, nothingSupportsThisEither")),  # §3.3.11
    ("invalid_multi_content_length", 400, None),        # two different Content-Length values
    ("invalid_invite_text_body", 415, ("Accept", "application/sdp")),  # RFC 3261 §8.2.3
])
def test_uas_checks_answer_as_the_rfc_says_statelessly(name, status, header):
    """Each gets one stateless reply (no transaction: nothing retransmitted, no event to the shell)."""
    endpoint = make_endpoint()
    endpoint.receive(load(name), SOURCE, "UDP", 0.0)
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    (event,) = events
    assert isinstance(event, MessageRejected) and event.status == status
    (datagram,) = endpoint.datagrams_to_send()
    reply = parse_message(datagram.data)
    assert reply.status == status
    if header is not None:
        assert reply.headers.get(header[0]) == header[1]
    assert endpoint.next_deadline() is None, "a stateless reply arms no retransmission timer"


def test_require_is_ignored_in_ack_and_cancel():
    """RFC 3261 §8.2.2.3: a UAS must not answer 420 to CANCEL or ACK."""
    cancel = load("cancel").replace(b"Content-Length:", b"Require: nothingSupportsThis\r\nContent-Length:")
    events, replies = feed(cancel)
    assert not any(isinstance(event, MessageRejected) and event.status == 420 for event in events)
