"""RFC 3261 §17 transactions (with RFC 6026), driven through SipEndpoint with time as an argument.

Nothing sleeps: tests jump straight to `endpoint.next_deadline()`. A scripted peer feeds raw
requests/responses into one endpoint; `EndpointPair` joins two endpoints by an in-memory link, like
h11's ConnectionPair.
"""

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from acd.sip.build import build_cancel
from acd.sip.endpoint import SipEndpoint
from acd.sip.errors import LocalProtocolError
from acd.sip.events import (AckReceived, CancelReceived, MessageDropped, RequestReceived, ResponseReceived,
                            TransactionTimedOut)
from acd.sip.headers import CSeq, NameAddr, Via
from acd.sip.message import Headers, Request, Response, parse_message
from acd.sip.transactions import TimerConfig

T1, T2, T4 = 0.5, 4.0, 5.0
ACD = ("10.0.0.1", 5060)
PHONE = ("10.0.0.2", 5062)


def make_endpoint(host=ACD[0], port=ACD[1], prefix="z9hG4bKacd"):
    counter = itertools.count(1)
    return SipEndpoint(local_host=host, local_port=port, timers=TimerConfig(T1, T2, T4),
                       branch_factory=lambda: f"{prefix}{next(counter)}")


def peer_request(method, *, branch="z9hG4bKphone1", cseq=1, cseq_method=None, call_id="call-1",
                 from_tag="caller-1", to_tag=None, uri="sip:queue@10.0.0.1", body=b"", transport="UDP"):
    """A request as a phone at PHONE would send it."""
    headers = Headers([
        ("Via", f"SIP/2.0/{transport} {PHONE[0]}:{PHONE[1]};branch={branch};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:caller@{PHONE[0]}>;tag={from_tag}"),
        ("To", f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {cseq_method or method}"),
        ("Contact", f"<sip:caller@{PHONE[0]}:{PHONE[1]}>"),
    ])
    if body:
        headers.add("Content-Type", "application/sdp")
    return bytes(Request(method, uri, headers, body))


def peer_response(request_bytes, status, reason="", *, to_tag="agent-1"):
    """The response a phone sends to a request it received (§8.2.6.2 copying rules)."""
    request = parse_message(request_bytes)
    headers = Headers()
    for via in request.headers.get_all("Via"):
        headers.add("Via", via)
    headers.add("From", request.headers.get("From"))
    to = request.headers.get("To")
    headers.add("To", to if status == 100 or "tag=" in to else f"{to};tag={to_tag}")
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", request.headers.get("CSeq"))
    return bytes(Response(status, reason or "Reason", headers))


def drain(endpoint):
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return events


def run_timers(endpoint, until=float("inf")):
    """Jump from deadline to deadline up to `until`; returns [(time, Datagram)] sent by timers."""
    sent = []
    while (deadline := endpoint.next_deadline()) is not None and deadline <= until:
        endpoint.handle_timers(deadline)
        sent.extend((deadline, datagram) for datagram in endpoint.datagrams_to_send())
    return sent


def intervals(times, start=0.0):
    points = [start, *times]
    return [round(b - a, 6) for a, b in zip(points, points[1:])]


def received_invite(endpoint, now=0.0, **kwargs):
    """Feed an INVITE from the phone; returns (transaction id, raw INVITE)."""
    raw = peer_request("INVITE", **kwargs)
    endpoint.receive(raw, PHONE, kwargs.get("transport", "UDP"), now)
    (event,) = drain(endpoint)
    assert isinstance(event, RequestReceived)
    return event.transaction_id, raw


def ack_for_2xx(call_id="call-1", cseq=1, branch="z9hG4bKphone-ack", to_tag="acd-tag"):
    headers = Headers([
        ("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};branch={branch}"),
        ("From", f"<sip:caller@{PHONE[0]}>;tag=caller-1"),
        ("To", f"<sip:queue@10.0.0.1>;tag={to_tag}"),
        ("Call-ID", call_id), ("CSeq", f"{cseq} ACK"), ("Max-Forwards", "70"),
    ])
    return bytes(Request("ACK", "sip:acd@10.0.0.1", headers))


class EndpointPair:
    """A UAC endpoint (the ACD offering a call) and a UAS endpoint (an agent phone), joined in memory."""

    def __init__(self, transport="UDP"):
        self.transport = transport
        self.uac = make_endpoint("10.0.0.1", 5060, "z9hG4bKuac")
        self.uas = make_endpoint("10.0.0.2", 5062, "z9hG4bKuas")
        self.address = {id(self.uac): ("10.0.0.1", 5060), id(self.uas): ("10.0.0.2", 5062)}

    def deliver(self, sender, now, *, drop=False):
        """Move every queued datagram of `sender` to the other side; returns the datagrams moved."""
        receiver = self.uas if sender is self.uac else self.uac
        datagrams = sender.datagrams_to_send()
        if not drop:
            for datagram in datagrams:
                assert datagram.destination == self.address[id(receiver)]
                receiver.receive(datagram.data, self.address[id(sender)], datagram.transport, now)
        return datagrams

    def invite(self, now=0.0):
        headers = Headers([("From", "<sip:acd@10.0.0.1>;tag=acd-from"), ("To", "<sip:agent@10.0.0.2>"),
                           ("Call-ID", "offer-1@10.0.0.1"), ("CSeq", "1 INVITE"),
                           ("Contact", "<sip:acd@10.0.0.1:5060>")])
        request = Request("INVITE", "sip:agent@10.0.0.2:5062", headers)
        return request, self.uac.send_request(request, ("10.0.0.2", 5062), self.transport, now)


# ---- server INVITE transaction (§17.2.1, RFC 6026 §7.1) ----------------------------------------

def test_invite_retransmission_is_absorbed_and_last_response_resent():
    endpoint = make_endpoint()
    key, raw = received_invite(endpoint)
    endpoint.receive(raw, PHONE, "UDP", 0.2)  # before any response: nothing to resend
    assert endpoint.datagrams_to_send() == [] and drain(endpoint) == []
    endpoint.respond(key, 180, now=0.3, to_tag="acd-tag")
    (ringing,) = endpoint.datagrams_to_send()
    endpoint.receive(raw, PHONE, "UDP", 0.4)
    assert drain(endpoint) == []  # no second RequestReceived
    (again,) = endpoint.datagrams_to_send()
    assert again == ringing and again.destination == PHONE
    assert parse_message(again.data).status == 180
    assert endpoint.counters["retransmissions_received"] == 2
    assert endpoint.transaction_count == 1


def test_2xx_is_retransmitted_with_doubling_interval_capped_at_t2_until_ack():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint)
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag", body=b"v=0\r\n")
    (ok,) = endpoint.datagrams_to_send()
    sent = run_timers(endpoint, until=20.0)
    assert all(d.data == ok.data for _, d in sent)
    assert intervals([t for t, _ in sent]) == [T1, 2 * T1, 4 * T1, T2, T2, T2, T2]  # 0.5, 1.5, 3.5, 7.5 ... 19.5
    endpoint.receive(ack_for_2xx(), PHONE, "UDP", 20.0)
    events = drain(endpoint)
    assert len(events) == 1 and isinstance(events[0], AckReceived)
    assert events[0].request.method == "ACK" and events[0].source == PHONE
    endpoint.receive(ack_for_2xx(), PHONE, "UDP", 20.1)  # retransmitted ACK: absorbed
    assert drain(endpoint) == []
    assert run_timers(endpoint) == []  # ACK stopped the 2xx retransmissions
    assert drain(endpoint) == []  # Timer L ended the transaction without a timeout
    assert endpoint.transaction_count == 0 and endpoint.next_deadline() is None


def test_2xx_without_ack_times_out_after_64_t1():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, call_id="lost-ack")
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    sent = run_timers(endpoint)
    assert max(t for t, _ in sent) < 64 * T1
    (event,) = drain(endpoint)
    assert event == TransactionTimedOut(transaction_id=key, method="INVITE", call_id="lost-ack", reason="no-ack")
    assert endpoint.transaction_count == 0


def test_invite_retransmission_after_2xx_gets_the_2xx_again():
    endpoint = make_endpoint()
    key, raw = received_invite(endpoint)
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag")
    (ok,) = endpoint.datagrams_to_send()
    endpoint.receive(raw, PHONE, "UDP", 0.1)
    assert endpoint.datagrams_to_send() == [ok] and drain(endpoint) == []


def test_an_acknowledged_invite_lingers_as_plain_values_until_timer_l():
    """Issue 21: after the ACK only Timer L is left; the transaction object goes (the collector has
    nothing to walk) but a retransmitted INVITE still gets the 2xx, a repeated ACK is absorbed, a
    late CANCEL gets 200, and at Timer L everything is forgotten."""
    endpoint = make_endpoint()
    key, raw = received_invite(endpoint)
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag")
    (ok,) = endpoint.datagrams_to_send()
    endpoint.receive(ack_for_2xx(), PHONE, "UDP", 0.05)
    assert [type(event) for event in drain(endpoint)] == [AckReceived]
    assert endpoint._transactions == {} and endpoint.transaction_count == 1
    endpoint.receive(raw, PHONE, "UDP", 1.0)
    assert endpoint.datagrams_to_send() == [ok] and drain(endpoint) == []
    endpoint.receive(ack_for_2xx(), PHONE, "UDP", 1.1)
    assert drain(endpoint) == [] and endpoint.datagrams_to_send() == []
    endpoint.receive(peer_request("CANCEL"), PHONE, "UDP", 1.2)
    assert drain(endpoint) == [] and parse_message(endpoint.datagrams_to_send()[0].data).status == 200
    assert run_timers(endpoint) == [] and endpoint.transaction_count == 0
    endpoint.receive(ack_for_2xx(), PHONE, "UDP", 40.0)  # after Timer L the ACK matches nothing
    assert [type(event) for event in drain(endpoint)] == [MessageDropped]


def test_non_2xx_final_is_retransmitted_by_timer_g_until_ack_then_timer_i():
    endpoint = make_endpoint()
    key, raw = received_invite(endpoint, branch="z9hG4bKbusy")
    endpoint.respond(key, 486, now=0.0, to_tag="acd-tag")
    (busy,) = endpoint.datagrams_to_send()
    sent = run_timers(endpoint, until=12.0)
    assert intervals([t for t, _ in sent]) == [T1, 2 * T1, 4 * T1, T2, T2]  # Timer G: 0.5, 1.5, 3.5, 7.5, 11.5
    assert all(d.data == busy.data for _, d in sent)
    ack = peer_request("ACK", branch="z9hG4bKbusy", to_tag="acd-tag")  # same branch as the INVITE (§17.1.1.3)
    endpoint.receive(ack, PHONE, "UDP", 12.0)
    assert drain(endpoint) == []  # the ACK for a non-2xx belongs to the transaction: no event
    endpoint.receive(ack, PHONE, "UDP", 12.5)  # retransmitted ACK in Confirmed: absorbed
    assert drain(endpoint) == [] and endpoint.datagrams_to_send() == []
    assert endpoint.next_deadline() == pytest.approx(12.0 + T4)  # Timer I = T4
    assert run_timers(endpoint) == []
    assert endpoint.transaction_count == 0 and drain(endpoint) == []


def test_non_2xx_final_without_ack_times_out_with_timer_h():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, call_id="no-ack-486")
    endpoint.respond(key, 486, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    sent = run_timers(endpoint)
    assert max(t for t, _ in sent) < 64 * T1
    (event,) = drain(endpoint)
    assert (event.reason, event.call_id, event.method) == ("no-ack", "no-ack-486", "INVITE")
    assert endpoint.transaction_count == 0


def test_responding_twice_with_a_final_response_is_a_local_error():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint)
    endpoint.respond(key, 486, now=0.0, to_tag="acd-tag")
    with pytest.raises(LocalProtocolError):
        endpoint.respond(key, 200, now=0.1, to_tag="acd-tag")
    with pytest.raises(LocalProtocolError):
        endpoint.respond(("z9hG4bKnope", "x", "INVITE"), 200, now=0.1)


def test_responses_carry_the_to_tag_and_copy_via_from_call_id_cseq():
    endpoint = make_endpoint()
    key, raw = received_invite(endpoint)
    endpoint.respond(key, 100, now=0.0, to_tag="acd-tag")
    endpoint.respond(key, 180, now=0.0, to_tag="acd-tag")
    trying, ringing = (parse_message(d.data) for d in endpoint.datagrams_to_send())
    request = parse_message(raw)
    assert NameAddr.parse(trying.headers.get("To")).tag is None  # §8.2.6.2: 100 may omit it
    assert NameAddr.parse(ringing.headers.get("To")).tag == "acd-tag"
    for name in ("Via", "From", "Call-ID", "CSeq"):
        assert ringing.headers.get_all(name) == request.headers.get_all(name)


# ---- CANCEL (§9.2) ---------------------------------------------------------------------------

def test_cancel_on_pending_invite_is_answered_200_and_reported():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, branch="z9hG4bKcancelme")
    endpoint.respond(key, 180, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    endpoint.receive(peer_request("CANCEL", branch="z9hG4bKcancelme"), PHONE, "UDP", 1.0)
    (event,) = drain(endpoint)
    assert isinstance(event, CancelReceived) and event.invite_transaction_id == key
    (reply,) = endpoint.datagrams_to_send()
    reply = parse_message(reply.data)
    assert reply.status == 200 and CSeq.parse(reply.headers.get("CSeq")) == CSeq(1, "CANCEL")
    endpoint.respond(key, 487, now=1.0, to_tag="acd-tag")
    (terminated,) = endpoint.datagrams_to_send()
    assert parse_message(terminated.data).status == 487
    # A retransmitted CANCEL gets the same 200 and no second event.
    endpoint.receive(peer_request("CANCEL", branch="z9hG4bKcancelme"), PHONE, "UDP", 1.5)
    assert drain(endpoint) == []
    assert parse_message(endpoint.datagrams_to_send()[0].data).status == 200


def test_cancel_without_invite_is_481():
    endpoint = make_endpoint()
    endpoint.receive(peer_request("CANCEL", branch="z9hG4bKorphan"), PHONE, "UDP", 0.0)
    assert drain(endpoint) == []
    (reply,) = endpoint.datagrams_to_send()
    assert parse_message(reply.data).status == 481 and reply.destination == PHONE


def test_cancel_after_final_response_is_200_without_event():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, branch="z9hG4bKlate")
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    endpoint.receive(peer_request("CANCEL", branch="z9hG4bKlate"), PHONE, "UDP", 0.1)
    assert drain(endpoint) == []
    assert parse_message(endpoint.datagrams_to_send()[0].data).status == 200


# ---- server non-INVITE transaction (§17.2.2) ---------------------------------------------------

def test_non_invite_retransmission_resends_last_response_and_timer_j_cleans_up():
    endpoint = make_endpoint()
    raw = peer_request("OPTIONS", branch="z9hG4bKopt")
    endpoint.receive(raw, PHONE, "UDP", 0.0)
    (event,) = drain(endpoint)
    assert isinstance(event, RequestReceived) and event.transport == "UDP" and event.source == PHONE
    endpoint.receive(raw, PHONE, "UDP", 0.1)  # Trying, no response yet: nothing to resend
    assert endpoint.datagrams_to_send() == [] and drain(endpoint) == []
    endpoint.respond(event.transaction_id, 200, now=0.2)
    (ok,) = endpoint.datagrams_to_send()
    endpoint.receive(raw, PHONE, "UDP", 1.0)
    assert endpoint.datagrams_to_send() == [ok] and drain(endpoint) == []
    assert endpoint.transaction_count == 1
    assert endpoint.next_deadline() == pytest.approx(0.2 + 64 * T1)  # Timer J
    assert run_timers(endpoint) == []
    assert endpoint.transaction_count == 0 and drain(endpoint) == []
    endpoint.receive(raw, PHONE, "UDP", 40.0)  # after Timer J it is a new request again
    assert isinstance(drain(endpoint)[0], RequestReceived)


def test_non_invite_over_tcp_terminates_at_once():
    endpoint = make_endpoint()
    endpoint.receive(peer_request("BYE", branch="z9hG4bKtcpbye", transport="TCP"), PHONE, "TCP", 0.0)
    (event,) = drain(endpoint)
    endpoint.respond(event.transaction_id, 200, now=1.0)
    (ok,) = endpoint.datagrams_to_send()
    assert ok.transport == "TCP"
    assert endpoint.next_deadline() == 1.0  # Timer J = 0 over TCP
    run_timers(endpoint)
    assert endpoint.transaction_count == 0


# ---- client non-INVITE transaction (§17.1.2) ---------------------------------------------------

def send_bye(endpoint, transport="UDP", now=0.0):
    headers = Headers([("From", "<sip:acd@10.0.0.1>;tag=a"), ("To", "<sip:caller@10.0.0.2>;tag=b"),
                       ("Call-ID", "bye-call"), ("CSeq", "2 BYE")])
    request = Request("BYE", "sip:caller@10.0.0.2:5062", headers)
    key = endpoint.send_request(request, PHONE, transport, now)
    (datagram,) = endpoint.datagrams_to_send()
    return key, datagram


def test_client_bye_is_retransmitted_by_timer_e_and_times_out_with_timer_f():
    endpoint = make_endpoint()
    key, bye = send_bye(endpoint)
    message = parse_message(bye.data)
    via = Via.parse(message.headers.get("Via"))
    assert (via.host, via.port, via.branch) == ("10.0.0.1", 5060, key[0]) and "rport" in via.params
    assert message.headers.get("Max-Forwards") == "70"
    sent = run_timers(endpoint)
    times = [t for t, _ in sent]
    assert intervals(times) == [T1, 2 * T1, 4 * T1] + [T2] * 7  # 0.5, 1.5, 3.5, 7.5 ... 31.5; F at 32
    assert all(d.data == bye.data and d.destination == PHONE for _, d in sent)
    (event,) = drain(endpoint)
    assert event == TransactionTimedOut(transaction_id=key, method="BYE", call_id="bye-call", reason="no-response")
    assert endpoint.transaction_count == 0


def test_client_bye_completed_by_200_then_timer_k():
    endpoint = make_endpoint()
    key, bye = send_bye(endpoint)
    run_timers(endpoint, until=1.0)  # one retransmission at 0.5
    endpoint.receive(peer_response(bye.data, 200, "OK"), PHONE, "UDP", 1.2)
    (event,) = drain(endpoint)
    assert isinstance(event, ResponseReceived) and event.transaction_id == key and event.method == "BYE"
    assert event.response.status == 200
    endpoint.receive(peer_response(bye.data, 200, "OK"), PHONE, "UDP", 1.3)  # retransmitted 200
    assert drain(endpoint) == []
    assert endpoint.next_deadline() == pytest.approx(1.2 + T4)  # Timer K = T4
    assert run_timers(endpoint) == []
    assert endpoint.transaction_count == 0 and drain(endpoint) == []


def test_client_bye_in_proceeding_retransmits_every_t2():
    endpoint = make_endpoint()
    _, bye = send_bye(endpoint)
    endpoint.receive(peer_response(bye.data, 100, "Trying"), PHONE, "UDP", 0.1)
    assert isinstance(drain(endpoint)[0], ResponseReceived)
    sent = run_timers(endpoint, until=20.0)
    assert intervals([t for t, _ in sent]) == [T1, T2, T2, T2, T2]


def test_client_bye_over_tcp_is_never_retransmitted():
    endpoint = make_endpoint()
    key, _ = send_bye(endpoint, transport="TCP")
    assert run_timers(endpoint) == []
    (event,) = drain(endpoint)
    assert event.reason == "no-response" and event.transaction_id == key


def test_response_to_unknown_transaction_is_dropped_silently():
    endpoint = make_endpoint()
    _, bye = send_bye(endpoint)
    stray = peer_response(bye.data, 200, "OK").replace(b"branch=z9hG4bKacd1", b"branch=z9hG4bKother")
    endpoint.receive(stray, PHONE, "UDP", 0.1)
    assert drain(endpoint) == [] and endpoint.counters["dropped"] == 1


# ---- client INVITE transaction (§17.1.1, RFC 6026 §7.2) ----------------------------------------

def send_invite(endpoint, transport="UDP", now=0.0):
    headers = Headers([("From", "<sip:acd@10.0.0.1>;tag=acd-from"), ("To", "<sip:agent@10.0.0.2>"),
                       ("Call-ID", "offer-1"), ("CSeq", "7 INVITE"), ("Route", "<sip:10.0.0.9;lr>"),
                       ("Contact", "<sip:acd@10.0.0.1:5060>")])
    request = Request("INVITE", "sip:agent@10.0.0.2:5062", headers)
    key = endpoint.send_request(request, PHONE, transport, now)
    (datagram,) = endpoint.datagrams_to_send()
    return key, datagram


def test_client_invite_timer_a_doubles_and_timer_b_times_out():
    endpoint = make_endpoint()
    key, invite = send_invite(endpoint)
    sent = run_timers(endpoint)
    assert intervals([t for t, _ in sent]) == [T1, 2 * T1, 4 * T1, 8 * T1, 16 * T1, 32 * T1]  # A: no T2 cap
    assert all(d.data == invite.data for _, d in sent)
    (event,) = drain(endpoint)
    assert event == TransactionTimedOut(transaction_id=key, method="INVITE", call_id="offer-1", reason="no-response")
    assert endpoint.transaction_count == 0


def test_client_invite_error_response_is_acked_with_same_branch_and_to_tag():
    endpoint = make_endpoint()
    key, invite = send_invite(endpoint)
    busy = peer_response(invite.data, 486, "Busy Here", to_tag="busy-tag")
    endpoint.receive(busy, PHONE, "UDP", 0.2)
    (event,) = drain(endpoint)
    assert isinstance(event, ResponseReceived) and event.response.status == 486 and event.transaction_id == key
    (ack_datagram,) = endpoint.datagrams_to_send()
    assert ack_datagram.destination == PHONE
    ack = parse_message(ack_datagram.data)
    request = parse_message(invite.data)
    assert ack.method == "ACK" and ack.uri == request.uri
    assert ack.headers.get_all("Via") == request.headers.get_all("Via")[:1]  # same branch (§17.1.1.3)
    assert NameAddr.parse(ack.headers.get("To")).tag == "busy-tag"
    assert ack.headers.get("From") == request.headers.get("From")
    assert ack.call_id == "offer-1" and ack.headers.get("CSeq") == "7 ACK"
    assert ack.headers.get_all("Route") == ["<sip:10.0.0.9;lr>"]
    # The retransmitted 486 is ACKed again, without a second event.
    endpoint.receive(busy, PHONE, "UDP", 1.0)
    assert drain(endpoint) == []
    assert endpoint.datagrams_to_send() == [ack_datagram]
    assert endpoint.next_deadline() == pytest.approx(0.2 + 32.0)  # Timer D
    assert run_timers(endpoint) == []
    assert endpoint.transaction_count == 0 and drain(endpoint) == []


def test_client_invite_ringing_longer_than_timer_b_does_not_time_out():
    """§17.1.1.2: Timer B only runs in Calling; an agent phone may ring for a minute."""
    endpoint = make_endpoint()
    key, invite = send_invite(endpoint)
    endpoint.receive(peer_response(invite.data, 180, "Ringing"), PHONE, "UDP", 0.1)
    assert drain(endpoint)[0].response.status == 180
    assert run_timers(endpoint, until=60.0) == []  # no retransmission once Proceeding
    assert drain(endpoint) == []
    endpoint.receive(peer_response(invite.data, 487, "Request Terminated"), PHONE, "UDP", 60.0)
    (event,) = drain(endpoint)
    assert event.transaction_id == key and event.response.status == 487
    assert len(endpoint.datagrams_to_send()) == 1  # the ACK


def test_client_invite_2xx_and_its_retransmissions_go_up_until_timer_m():
    endpoint = make_endpoint()
    key, invite = send_invite(endpoint)
    ok = peer_response(invite.data, 200, "OK")
    endpoint.receive(ok, PHONE, "UDP", 0.1)
    endpoint.receive(ok, PHONE, "UDP", 0.6)
    events = drain(endpoint)
    assert [e.transaction_id for e in events] == [key, key]  # RFC 6026: the TU ACKs each 2xx
    assert endpoint.datagrams_to_send() == []  # the transaction never ACKs a 2xx
    run_timers(endpoint)
    assert endpoint.transaction_count == 0 and drain(endpoint) == []
    endpoint.receive(ok, PHONE, "UDP", 40.0)  # after Timer M: still reported, without a transaction
    (late,) = drain(endpoint)
    assert late.transaction_id is None and late.method == "INVITE"


def test_client_invite_over_tcp_is_never_retransmitted():
    endpoint = make_endpoint()
    key, invite = send_invite(endpoint, transport="TCP")
    assert Via.parse(parse_message(invite.data).headers.get("Via")).transport == "TCP"
    assert run_timers(endpoint) == []
    assert drain(endpoint)[0].reason == "no-response"


def test_ack_cannot_be_sent_in_a_transaction():
    endpoint = make_endpoint()
    with pytest.raises(LocalProtocolError):
        endpoint.send_request(Request("ACK", "sip:a@b", Headers([("CSeq", "1 ACK")])), PHONE, "UDP", 0.0)


# ---- UAC/UAS pair over an in-memory link --------------------------------------------------------

def test_pair_invite_ringing_answer_ack():
    pair = EndpointPair()
    _, key = pair.invite(now=0.0)
    pair.deliver(pair.uac, 0.0)
    (incoming,) = drain(pair.uas)
    assert isinstance(incoming, RequestReceived) and incoming.request.method == "INVITE"
    pair.uas.respond(incoming.transaction_id, 180, now=0.1, to_tag="agent-tag")
    pair.deliver(pair.uas, 0.1)
    pair.uas.respond(incoming.transaction_id, 200, now=2.0, to_tag="agent-tag", body=b"v=0\r\n")
    pair.deliver(pair.uas, 2.0)
    ringing, answered = drain(pair.uac)
    assert (ringing.response.status, answered.response.status) == (180, 200)
    assert ringing.transaction_id == answered.transaction_id == key
    assert answered.response.body == b"v=0\r\n"
    # The ACK for a 2xx is its own request with a new branch, sent outside the transaction (§13.2.2.4).
    ack_headers = Headers([("Via", pair.uac.new_via("UDP")), ("From", "<sip:acd@10.0.0.1>;tag=acd-from"),
                           ("To", answered.response.headers.get("To")), ("Call-ID", "offer-1@10.0.0.1"),
                           ("CSeq", "1 ACK"), ("Max-Forwards", "70")])
    ack = Request("ACK", "sip:agent@10.0.0.2:5062", ack_headers)
    pair.uac.send_stateless(ack, ("10.0.0.2", 5062), "UDP")
    pair.deliver(pair.uac, 2.1)
    (acked,) = drain(pair.uas)
    assert isinstance(acked, AckReceived)
    # Nothing more flows: run both clocks to the end.
    assert run_timers(pair.uas) == [] and run_timers(pair.uac) == []
    assert drain(pair.uas) == [] and drain(pair.uac) == []
    assert pair.uas.transaction_count == pair.uac.transaction_count == 0


def test_pair_lost_invite_is_retransmitted_and_answered_once():
    pair = EndpointPair()
    pair.invite(now=0.0)
    pair.deliver(pair.uac, 0.0, drop=True)  # the first INVITE is lost
    pair.uac.handle_timers(pair.uac.next_deadline())  # Timer A
    pair.deliver(pair.uac, T1)
    (incoming,) = drain(pair.uas)
    pair.uas.respond(incoming.transaction_id, 486, now=T1, to_tag="agent-tag")
    pair.deliver(pair.uas, T1)
    (busy,) = drain(pair.uac)
    assert busy.response.status == 486
    pair.deliver(pair.uac, T1)  # the transaction's ACK reaches the phone's INVITE transaction
    assert drain(pair.uas) == []
    assert pair.uas.next_deadline() == pytest.approx(T1 + T4)  # Confirmed: Timer I
    assert run_timers(pair.uas) == [] and pair.uas.transaction_count == 0


def test_pair_bye_over_tcp():
    pair = EndpointPair(transport="TCP")
    headers = Headers([("From", "<sip:acd@10.0.0.1>;tag=a"), ("To", "<sip:agent@10.0.0.2>;tag=b"),
                       ("Call-ID", "c"), ("CSeq", "2 BYE")])
    key = pair.uac.send_request(Request("BYE", "sip:agent@10.0.0.2:5062", headers), ("10.0.0.2", 5062), "TCP", 0.0)
    pair.deliver(pair.uac, 0.0)
    (bye,) = drain(pair.uas)
    assert bye.transport == "TCP"
    pair.uas.respond(bye.transaction_id, 200, now=0.1)
    pair.deliver(pair.uas, 0.1)
    (ok,) = drain(pair.uac)
    assert ok.transaction_id == key
    assert run_timers(pair.uac) == [] and run_timers(pair.uas) == []
    assert pair.uac.transaction_count == pair.uas.transaction_count == 0


def test_stray_ack_is_dropped_with_an_event():
    endpoint = make_endpoint()
    endpoint.receive(ack_for_2xx(call_id="nobody"), PHONE, "UDP", 0.0)
    (event,) = drain(endpoint)
    assert isinstance(event, MessageDropped) and "ACK" in event.reason
    assert endpoint.datagrams_to_send() == []


def test_pair_cancel_reaches_the_ringing_invite():
    """§9.1: our CANCEL carries the INVITE's top Via, so the phone matches it and answers 487."""
    pair = EndpointPair()
    invite, invite_key = pair.invite(now=0.0)
    pair.deliver(pair.uac, 0.0)
    (incoming,) = drain(pair.uas)
    pair.uas.respond(incoming.transaction_id, 180, now=0.1, to_tag="agent-tag")
    pair.deliver(pair.uas, 0.1)
    drain(pair.uac)
    cancel = build_cancel(invite)
    assert cancel.uri == invite.uri and cancel.headers.get("CSeq") == "1 CANCEL"
    assert cancel.headers.get_all("Via") == invite.headers.get_all("Via")[:1]
    assert NameAddr.parse(cancel.headers.get("To")).tag is None  # the INVITE's To, not the 180's
    cancel_key = pair.uac.send_request(cancel, ("10.0.0.2", 5062), "UDP", 5.0)
    assert cancel_key == (invite_key[0], "CANCEL")
    (datagram,) = pair.deliver(pair.uac, 5.0)
    assert len(parse_message(datagram.data).headers.get_all("Via")) == 1
    (cancelled,) = drain(pair.uas)
    assert isinstance(cancelled, CancelReceived) and cancelled.invite_transaction_id == incoming.transaction_id
    pair.uas.respond(incoming.transaction_id, 487, now=5.0, to_tag="agent-tag")
    pair.deliver(pair.uas, 5.0)
    cancel_ok, terminated = drain(pair.uac)
    assert (cancel_ok.method, cancel_ok.response.status, cancel_ok.transaction_id) == ("CANCEL", 200, cancel_key)
    assert (terminated.method, terminated.response.status, terminated.transaction_id) == ("INVITE", 487, invite_key)
    pair.deliver(pair.uac, 5.0)  # the ACK for the 487
    assert drain(pair.uas) == []
    run_timers(pair.uac)
    run_timers(pair.uas)
    assert pair.uac.transaction_count == pair.uas.transaction_count == 0
    assert drain(pair.uac) == [] and drain(pair.uas) == []


# ---- reliable transport, RFC 2543 peers, late timer calls ---------------------------------------

def test_server_invite_over_tcp_never_retransmits_responses():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, transport="TCP", call_id="tcp-call")
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag")
    (ok,) = endpoint.datagrams_to_send()
    assert ok.transport == "TCP"
    assert run_timers(endpoint) == []  # no 2xx retransmission over TCP; Timer L still ends it
    (event,) = drain(endpoint)
    assert event.reason == "no-ack" and event.call_id == "tcp-call"


def test_server_invite_error_over_tcp_ends_right_after_the_ack():
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, transport="TCP", branch="z9hG4bKtcp486")
    endpoint.respond(key, 486, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    endpoint.receive(peer_request("ACK", branch="z9hG4bKtcp486", to_tag="acd-tag", transport="TCP"), PHONE, "TCP", 1.0)
    assert endpoint.next_deadline() == 1.0  # Timer I = 0 over TCP
    assert run_timers(endpoint) == [] and endpoint.transaction_count == 0 and drain(endpoint) == []


def test_rfc2543_peer_without_magic_cookie_is_matched_by_call_id_and_cseq():
    """§17.2.3 fallback: branch without z9hG4bK; retransmission and CANCEL still match."""
    endpoint = make_endpoint()
    key, raw = received_invite(endpoint, branch="390skdjuw")
    assert key[0].startswith("2543:call-1:caller-1:1")
    endpoint.respond(key, 180, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    endpoint.receive(raw, PHONE, "UDP", 0.5)
    assert drain(endpoint) == [] and len(endpoint.datagrams_to_send()) == 1
    endpoint.receive(peer_request("CANCEL", branch="390skdjuw"), PHONE, "UDP", 1.0)
    (event,) = drain(endpoint)
    assert isinstance(event, CancelReceived) and event.invite_transaction_id == key


def test_one_late_handle_timers_call_fires_everything_due():
    """A shell that wakes up late (GC pause, busy reactor) still ends every expired transaction."""
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint)
    endpoint.respond(key, 200, now=0.0, to_tag="acd-tag")
    endpoint.datagrams_to_send()
    send_bye(endpoint)
    endpoint.handle_timers(100.0)
    reasons = sorted(event.reason for event in drain(endpoint))
    assert reasons == ["no-ack", "no-response"]
    assert endpoint.transaction_count == 0 and endpoint.next_deadline() is None


def test_next_deadline_is_the_earliest_across_transactions():
    endpoint = make_endpoint()
    assert endpoint.next_deadline() is None
    send_bye(endpoint, now=10.0)  # Timer E at 10.5
    send_invite(endpoint, now=10.2)  # Timer A at 10.7
    assert endpoint.next_deadline() == pytest.approx(10.5)
    endpoint.handle_timers(10.5)
    assert endpoint.next_deadline() == pytest.approx(10.7)
    endpoint.handle_timers(10.6)  # nothing due yet: nothing sent
    assert len(endpoint.datagrams_to_send()) == 1  # only the BYE retransmission at 10.5


# ---- properties -------------------------------------------------------------------------------

STEPS = st.lists(st.one_of(
    st.tuples(st.just("response"), st.sampled_from([100, 180, 183, 200, 202, 404, 486, 487, 503, 603])),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=40.0)),
), max_size=15)


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from(["INVITE", "BYE"]), transport=st.sampled_from(["UDP", "TCP"]), steps=STEPS)
def test_client_transaction_reports_one_final_answer_and_always_ends(method, transport, steps):
    """Whatever the peer answers and whenever: at most one final response goes up (2xx to an INVITE
    excepted, RFC 6026), every 3xx-6xx to an INVITE is ACKed, and the transaction ends."""
    endpoint = make_endpoint()
    key, request = (send_invite if method == "INVITE" else send_bye)(endpoint, transport)
    now, finals, error_responses, acks, timed_out = 0.0, [], 0, 0, False
    for kind, value in steps:
        if kind == "wait":
            now += value
            while (deadline := endpoint.next_deadline()) is not None and deadline <= now:
                endpoint.handle_timers(deadline)
        else:
            transaction = endpoint._transactions.get(key)
            if method == "INVITE" and value >= 300 and transaction is not None:
                # Calling, Proceeding and Completed ACK a 3xx-6xx; Accepted (after a 2xx) ignores it.
                error_responses += transaction.state.value != "Accepted"
            endpoint.receive(peer_response(request.data, value), PHONE, transport, now)
        for datagram in endpoint.datagrams_to_send():
            message = parse_message(datagram.data)
            if message.method == "ACK":
                acks += 1
                assert Via.parse(message.headers.get("Via")).branch == key[0]
            else:
                assert datagram.data == request.data and transport == "UDP"  # retransmissions: UDP only
        while (event := endpoint.next_event()) is not None:
            if isinstance(event, TransactionTimedOut):
                assert not finals and event.reason == "no-response"
                timed_out = True
            elif event.transaction_id is None:
                assert 200 <= event.response.status < 300  # a 2xx after the transaction ended (§13.2.2.4)
            elif event.response.status >= 200:
                finals.append(event.response.status)
    assert acks == error_responses
    non_2xx = [s for s in finals if s >= 300]
    assert len(non_2xx) <= 1 and (method == "INVITE" or len(finals) <= 1)
    assert not (timed_out and finals)
    if key in endpoint._transactions and endpoint._transactions[key].state.value == "Proceeding":
        # Ringing forever is the TU's business: it CANCELs, and §9.1 bounds the wait after that.
        endpoint.send_request(build_cancel(parse_message(request.data)), PHONE, transport, now)
    run_timers(endpoint)
    assert endpoint.transaction_count == 0


def test_cancelled_invite_without_final_response_gives_up_after_64_t1():
    """§9.1: a phone that rang, was CANCELled and then vanished must not leak the INVITE transaction."""
    endpoint = make_endpoint()
    key, invite = send_invite(endpoint)
    endpoint.receive(peer_response(invite.data, 180, "Ringing"), PHONE, "UDP", 0.1)
    drain(endpoint)
    assert run_timers(endpoint, until=100.0) == [] and endpoint.transaction_count == 1
    cancel_key = endpoint.send_request(build_cancel(parse_message(invite.data)), PHONE, "UDP", 100.0)
    endpoint.datagrams_to_send()
    run_timers(endpoint)
    events = {event.transaction_id: event for event in drain(endpoint)}
    assert events[key].reason == "no-response" and events[cancel_key].reason == "no-response"
    assert endpoint.transaction_count == 0


SERVER_STEPS = st.lists(st.one_of(
    st.sampled_from([("peer", "INVITE"), ("peer", "ACK-error"), ("peer", "ACK-2xx"), ("peer", "CANCEL")]),
    st.tuples(st.just("respond"), st.sampled_from([100, 180, 200, 486, 487])),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=40.0)),
), max_size=20)


@settings(max_examples=150, deadline=None)
@given(transport=st.sampled_from(["UDP", "TCP"]), steps=SERVER_STEPS)
@example(transport="UDP", steps=[("respond", 200), ("peer", "ACK-error"), ("peer", "INVITE")])  # lingering 2xx
def test_server_invite_reports_each_thing_once_and_always_ends(transport, steps):
    """Retransmissions, stray ACKs and CANCELs in any order: one RequestReceived, at most one
    AckReceived and one CancelReceived per transaction, no unexpected exception, and it always ends."""
    endpoint = make_endpoint()
    raw_invite = peer_request("INVITE", branch="z9hG4bKprop", transport=transport)
    peer = {
        "INVITE": raw_invite,
        "ACK-error": peer_request("ACK", branch="z9hG4bKprop", to_tag="acd-tag", transport=transport),
        "ACK-2xx": ack_for_2xx(),
        "CANCEL": peer_request("CANCEL", branch="z9hG4bKprop", transport=transport),
    }
    now, counts, final_sent, generations = 0.0, {}, False, 0
    for kind, value in [("peer", "INVITE"), *steps]:
        if kind == "peer":
            if value == "INVITE" and not any(k[2] == "INVITE" for k in endpoint._transactions) and not any(
                    k.endswith("\x00INVITE") for k in endpoint._lingering):
                generations += 1  # first INVITE, or a retransmission after the transaction ended
                final_sent = False
            endpoint.receive(peer[value], PHONE, transport, now)
        elif kind == "wait":
            now += value
            while (deadline := endpoint.next_deadline()) is not None and deadline <= now:
                endpoint.handle_timers(deadline)
        elif not final_sent and endpoint.transaction_count and any(
                getattr(t, "method", "") == "INVITE" for t in endpoint._transactions.values()):
            key = next(k for k in endpoint._transactions if k[2] == "INVITE")
            endpoint.respond(key, value, now=now, to_tag="acd-tag")
            final_sent = value >= 200
        for datagram in endpoint.datagrams_to_send():
            assert isinstance(parse_message(datagram.data), Response)
            assert transport == "UDP" or datagram.transport == "TCP"
        while (event := endpoint.next_event()) is not None:
            counts[type(event).__name__] = counts.get(type(event).__name__, 0) + 1
    assert counts.get("RequestReceived") == generations
    assert counts.get("AckReceived", 0) <= generations and counts.get("CancelReceived", 0) <= generations
    assert counts.get("TransactionTimedOut", 0) <= generations
    if not final_sent:
        key = next((k for k in endpoint._transactions if k[2] == "INVITE"), None)
        if key is not None:
            endpoint.respond(key, 487, now=now, to_tag="acd-tag")
    run_timers(endpoint)
    assert endpoint.transaction_count == 0


@pytest.mark.parametrize("transport, gap", [("TCP", 0.0), ("UDP", 40.0)])
def test_second_cancel_after_the_first_ended_is_not_reported_again(transport, gap):
    """After the first CANCEL's transaction ended (Timer J), another CANCEL for the same INVITE
    is answered 200 but must not make the TU answer the INVITE with 487 a second time."""
    endpoint = make_endpoint()
    key, _ = received_invite(endpoint, branch="z9hG4bKtwice", transport=transport)
    cancel = peer_request("CANCEL", branch="z9hG4bKtwice", transport=transport)
    endpoint.receive(cancel, PHONE, transport, 0.0)
    assert isinstance(drain(endpoint)[0], CancelReceived)
    endpoint.handle_timers(gap)  # Timer J ends the CANCEL transaction (0 over TCP, 64*T1 over UDP)
    endpoint.receive(cancel, PHONE, transport, gap)
    assert drain(endpoint) == []
    assert [parse_message(d.data).status for d in endpoint.datagrams_to_send()] == [200, 200]
    endpoint.respond(key, 487, now=gap, to_tag="acd-tag")
