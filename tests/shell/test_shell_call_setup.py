"""Call set-up and tear-down on the trunk side, in process: what the caller sees on the wire.

Demo config: 1000 answers at once into the `main` flow, 1001 rings 3 s first; 127.0.0.1 is the trunk.
"""

from __future__ import annotations

import pytest

from .harness import RTP_BASE
from .wire import Sdp, build_request, offer_sdp, tag_of


def test_invite_is_answered_with_an_sdp_answer_and_the_welcome_prompt_streams(harness):
    """200 OK carries our Contact, Allow and an SDP answer (PCMU + telephone-event) on a port of the
    RTP range; RTP then flows from that port at 50 packets/s, starting with the welcome prompt."""
    caller = harness.caller()
    call = caller.invite("1000")
    ok = call.expect(200)
    assert ok.headers.get("Contact") == "<sip:acd@127.0.0.1:5060>"
    assert "INVITE" in ok.headers.get("Allow") and "BYE" in ok.headers.get("Allow")
    assert ok.headers.get("Content-Type") == "application/sdp"
    assert tag_of(ok.headers.get("To"))
    answer = call.answer
    assert answer.address == "127.0.0.1" and RTP_BASE <= answer.port < RTP_BASE + 400 and answer.port % 2 == 0
    assert answer.formats == [0, 101] and answer.rtpmap[101] == "telephone-event/8000"
    assert answer.direction == "sendrecv"
    call.ack()
    harness.advance(1.0)
    packets = call.rtp_received()
    assert 48 <= len(packets) <= 52
    assert {p.payload_type for p in packets} == {0} and len({p.ssrc for p in packets}) == 1
    assert [(b.sequence - a.sequence) & 0xFFFF for a, b in zip(packets, packets[1:])] == [1] * (len(packets) - 1)
    assert harness.prompts_heard(packets) == ["welcome"]
    assert [c["state"] for c in harness.active_calls()] == ["confirmed"]


def test_number_with_an_answer_delay_rings_first_then_answers_after_three_seconds(harness):
    """Route 1001 has answer_after_seconds: 3: 180 Ringing at once, 200 OK three seconds later."""
    caller = harness.caller()
    call = caller.invite("1001")
    ringing = call.expect(180)
    assert not caller.responses(call_id=call.call_id, method="INVITE")[1:], "nothing but 180 yet"
    harness.advance(2.9)
    assert [r.status for r in caller.responses(call_id=call.call_id)] == [180]
    harness.advance(0.2)
    ok = call.expect(200)
    assert tag_of(ok.headers.get("To")) == tag_of(ringing.headers.get("To")), "one dialog, one To tag"


def test_invite_from_a_source_that_is_no_trunk_is_refused_403(harness):
    """Only configured trunk sources may call in: 403, no RTP port taken, counted as refused."""
    stranger = harness.caller(host="10.9.9.9", port=5060)
    call = stranger.invite("1000")
    call.expect(403)
    assert harness.bound_rtp_ports() == []
    assert harness.logged(r"refused 403: source 10\.9\.9\.9:5060 is not a configured trunk")
    assert harness.metric("acd_calls_refused_total", status="403") == 1


def test_unknown_number_is_refused_404(harness):
    """A dialled number no dialplan routes gets 404 Not Found and no media."""
    caller = harness.caller()
    call = caller.invite("9999")
    call.expect(404)
    assert harness.bound_rtp_ports() == [] and harness.active_calls() == []
    assert harness.metric("acd_calls_refused_total", status="404") == 1


def test_offer_without_a_common_codec_is_refused_488_and_the_port_is_released(harness):
    """Only G.729 offered: 488 Not Acceptable Here with a Warning; the RTP port bound for the
    negotiation is given back."""
    caller = harness.caller()
    call = caller.invite("1000", sdp=offer_sdp(caller.rtp_address, codecs=(18,)))
    refused = call.expect(488)
    assert "no common audio codec" in refused.headers.get("Warning")
    harness.advance(0.1)
    assert harness.bound_rtp_ports() == []


def test_unparseable_sdp_is_refused_488(harness):
    """A body that is not SDP is refused 488 before any port is bound."""
    caller = harness.caller()
    call = caller.invite("1000", sdp=b"this is not sdp\r\n")
    call.expect(488)
    assert harness.bound_rtp_ports() == []


def test_no_free_rtp_port_is_refused_503_with_retry_after(make_harness):
    """A two-port RTP range holds one call: the second caller gets 503 Service Unavailable and
    Retry-After, and the first call is not disturbed. (Admission control's call ceiling, 3/4 of the
    legs by default, would refuse it first: raised here to reach the port allocator.)"""
    harness = make_harness(rtp_ports=2, sip_extra="  admission:\n    max_calls: 10\n")
    first_caller, first = harness.answered_call()
    second = harness.caller(port=5072).invite("1000")
    refused = second.expect(503)
    assert refused.headers.get("Retry-After") == "5"
    assert harness.logged(r"refused 503: no free RTP port in 20000-20001")
    harness.advance(0.5)
    assert len(first.rtp_received()) >= 24


def test_rtp_port_held_by_another_program_is_skipped(harness):
    """The allocator moves on when a port of the range cannot be bound (CannotListenError). On the
    worker plane the port is already in the SDP answer: test_shell_media_workers covers that."""
    if harness.media_workers is not None:
        pytest.skip("in-process media plane only")
    harness.reactor.take_port(RTP_BASE)
    _, call = harness.answered_call()
    assert call.answer.port == RTP_BASE + 2


def test_second_invite_with_the_same_call_id_is_refused_482_and_the_call_goes_on(harness):
    """A new INVITE (new branch, no To tag) reusing a live Call-ID is a loop or a replay: 482."""
    caller, call = harness.answered_call()
    duplicate = caller.invite("1000", call_id=call.call_id)
    duplicate.expect(482)
    harness.advance(0.5)
    assert harness.active_call_ids() == [call.call_id]
    assert len(call.rtp_received()) >= 24


def test_retransmitted_invite_gets_the_same_answer_and_makes_no_second_call(harness):
    """The same INVITE again (same branch) is absorbed by the transaction: the 200 is sent again."""
    caller = harness.caller()
    call = caller.invite("1000")
    first = call.expect(200)
    call.resend_invite()
    again = call.expect(200)
    assert again.body == first.body and tag_of(again.headers.get("To")) == tag_of(first.headers.get("To"))
    assert not caller.responses(call_id=call.call_id, method="INVITE")[2:]
    assert len(harness.active_calls()) == 1


def test_options_outside_a_dialog_is_answered_200_with_allow(harness):
    """OPTIONS pings (trunk keep-alives) get 200 OK with Allow and Accept."""
    caller = harness.caller()
    caller.send(build_request("OPTIONS", "sip:127.0.0.1:5060", [
        ("Via", caller.via()), ("From", "<sip:probe@127.0.0.1>;tag=o1"), ("To", "<sip:127.0.0.1>"),
        ("Call-ID", "options-1@test"), ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70")]))
    ok = caller.expect_response(200, method="OPTIONS")
    assert "INVITE" in ok.headers.get("Allow") and "application/sdp" in ok.headers.get("Accept")


def test_caller_reinvite_refresh_is_answered_with_the_same_session(harness):
    """A session refresh (re-INVITE, same media) gets 200 with our unchanged SDP; media goes on."""
    caller, call = harness.answered_call()
    first_answer = call.answer
    call.reinvite()
    call.expect(200)
    call.ack()
    assert call.answer == first_answer
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert len(call.rtp_received(since=since)) >= 24


def test_caller_reinvite_to_hold_is_answered_recvonly(harness):
    """RFC 3264 §6.1: an answer to a sendonly stream is recvonly (or inactive)."""
    caller, call = harness.answered_call()
    call.reinvite(offer_sdp(caller.rtp_address, direction="sendonly", version=2))
    call.expect(200)
    call.ack()
    assert call.answer.direction in ("recvonly", "inactive")


def test_caller_reinvite_with_a_new_media_port_moves_our_media_there(harness):
    """The trunk re-anchors media (new port in a re-INVITE): our RTP follows it."""
    caller, call = harness.answered_call()
    harness.advance(0.2)
    call.reinvite(offer_sdp(("127.0.0.1", 41000), version=2))
    call.expect(200)
    call.ack()
    harness.advance(0.5)
    moved = [sent for sent in harness.reactor.network.log if sent.destination == ("127.0.0.1", 41000)]
    assert len(moved) >= 20


def test_invite_without_sdp_gets_our_offer_in_the_200(harness):
    """Delayed offer, as some trunks send by default (RFC 3261 §13.2.1): our offer in the 200 OK,
    nothing sent until the ACK brings the answer, then the welcome prompt in the codec answered."""
    caller = harness.caller()
    call = caller.invite("1000", sdp=b"")
    call.expect(200)
    assert call.answer.formats[0] in (0, 8)
    harness.advance(0.5)
    assert call.rtp_received() == []
    call.ack(offer_sdp(caller.rtp_address, codecs=(0,)))
    since = harness.reactor.seconds()
    harness.advance(0.5)
    packets = call.rtp_received(since=since)
    assert len(packets) >= 20 and {packet.payload_type for packet in packets} == {0}
    assert harness.prompts_heard(packets) == ["welcome"]
    assert harness.logged(rf"call={call.call_id} ACK answers our offer: sendrecv PCMU -> 127\.0\.0\.1:")


def test_a_delayed_offer_answered_in_pcma_sends_pcma(harness):
    caller = harness.caller()
    call = caller.invite("1000", sdp=b"")
    call.expect(200)
    call.ack(offer_sdp(caller.rtp_address, codecs=(8,)))
    since = harness.reactor.seconds()
    harness.advance(0.5)
    packets = call.rtp_received(since=since)
    assert len(packets) >= 20 and {packet.payload_type for packet in packets} == {8}


@pytest.mark.parametrize("ack_body, why", [
    (b"", "the ACK carries no answer to our offer in the 200 OK"),
    (offer_sdp(("127.0.0.1", 41070), codecs=(18,), telephone_event=None),
     "the answer takes none of the codecs we offered (0 8 101)"),
])
def test_a_delayed_offer_call_whose_ack_has_no_usable_answer_ends_with_bye(harness, ack_body, why):
    caller = harness.caller()
    call = caller.invite("1000", sdp=b"")
    call.expect(200)
    call.ack(ack_body)
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=0.5)
    call.respond(bye)
    harness.advance(0.1)
    assert harness.active_call_ids() == [] and harness.bound_rtp_ports() == []
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "failed" and record["end_reason"] == f"no usable answer in the ACK: {why}"


def test_options_inside_a_dialog_is_answered_200(harness):
    """In-dialog OPTIONS (a trunk probing a long call) gets 200 OK and the call goes on."""
    caller, call = harness.answered_call()
    call._in_dialog("OPTIONS")
    call.expect(200, method="OPTIONS")
    assert harness.active_call_ids() == [call.call_id]


def test_cancel_before_the_answer_gets_200_then_487_and_is_recorded_as_cancelled(harness):
    """CANCEL while 1001 rings: 200 for the CANCEL, 487 for the INVITE, no answer later."""
    caller = harness.caller()
    call = caller.invite("1001")
    call.expect(180)
    harness.advance(1)
    call.cancel()
    call.expect(200, method="CANCEL")
    call.expect(487)
    harness.advance(3)
    assert not [r for r in caller.responses(call_id=call.call_id, method="INVITE") if r.status == 200]
    assert caller.untaken() == [], "the ACK for the 487 stopped its retransmissions"
    assert harness.bound_rtp_ports() == []
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "cancelled" and record["answered_at"] is None


def test_cancel_that_crosses_the_200_leaves_the_call_up(harness):
    """The CANCEL arrives just after our 200 OK: it gets 200 (RFC 3261 §9.2) but changes nothing;
    the caller ACKs the 2xx and hangs up with BYE, as §9.1 asks."""
    caller = harness.caller()
    call = caller.invite("1001")
    call.expect(180)
    harness.advance(3.0)
    call.expect(200)
    call.cancel()
    call.expect(200, method="CANCEL")
    harness.advance(0.2)
    assert not caller.responses(call_id=call.call_id, method="INVITE")[2:], "no 487 after the 200"
    assert harness.active_call_ids() == [call.call_id]
    call.ack()
    call.bye()
    call.expect(200, method="BYE")
    assert harness.active_calls() == []


def test_caller_bye_in_the_ivr_ends_the_call_stops_media_and_is_recorded(harness):
    """BYE during the menu: 200, no more RTP, the port is freed, the record says caller_hangup."""
    caller, call = harness.answered_call()
    harness.advance(4)
    call.bye()
    call.expect(200, method="BYE")
    ended = harness.reactor.seconds()
    harness.advance(1)
    assert call.rtp_received(since=ended) == []
    assert harness.bound_rtp_ports() == [] and harness.leaks() == {}
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "caller_hangup" and record["end_reason"] == "caller hung up"
    assert [row[0] for row in harness.records("select step from ivr_steps where call_id = ? order by id",
                                              call.call_id)] == ["welcome", "check_hours", "main_menu"]


def test_missing_ack_ends_the_call_with_bye_after_64_t1(harness):
    """No ACK for our 200: it is retransmitted (Timer G) and after 64*T1 = 32 s we send BYE."""
    caller = harness.caller()
    call = caller.invite("1000")
    call.expect(200)
    harness.advance(31.5)
    assert not caller.requests("BYE")
    retransmissions = [r for r in caller.responses(call_id=call.call_id, method="INVITE") if r.status == 200]
    assert 8 <= len(retransmissions) <= 12
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=1.0)
    call.respond(bye, 200)
    harness.advance(0.1)
    assert harness.logged(r"no ACK for 200 OK within 64\*T1; hanging up")
    assert harness.active_calls() == [] and harness.bound_rtp_ports() == []


def test_request_in_an_unknown_dialog_is_answered_481(harness):
    """A BYE whose tags match no dialog: 481 Call/Transaction Does Not Exist."""
    caller, call = harness.answered_call()
    call.remote_tag = "not-our-tag"
    call.bye()
    caller.expect_response(481, method="BYE")
    assert harness.active_call_ids() == [call.call_id]


@pytest.mark.parametrize("method,status", [("MESSAGE", 405), ("SUBSCRIBE", 405), ("FROB", 501)])
def test_methods_we_do_not_serve_get_405_with_allow_or_501(harness, method, status):
    """Known methods we do not serve: 405 with Allow; unknown methods: 501 Not Implemented."""
    caller = harness.caller()
    caller.send(build_request(method, "sip:1000@127.0.0.1:5060", [
        ("Via", caller.via()), ("From", "<sip:5551@127.0.0.1>;tag=m1"), ("To", "<sip:1000@127.0.0.1>"),
        ("Call-ID", f"{method}-1@test"), ("CSeq", f"1 {method}"), ("Max-Forwards", "70")]))
    response = caller.expect_response(status, method=method)
    assert "INVITE" in response.headers.get("Allow")


def test_malformed_request_is_answered_400_and_breaks_nothing(harness):
    """A request with a CSeq that does not match its method: 400 with a Warning; calls go on."""
    caller, call = harness.answered_call()
    caller.send(build_request("BYE", "sip:1000@127.0.0.1:5060", [
        ("Via", caller.via()), ("From", "<sip:5551@127.0.0.1>;tag=x"), ("To", "<sip:1000@127.0.0.1>;tag=y"),
        ("Call-ID", "broken@test"), ("CSeq", "1 INVITE")]))
    bad = caller.expect_response(400)
    assert "does not match" in bad.headers.get("Warning")
    caller.send(b"\x00\x01 not sip at all")
    harness.advance(0.2)
    assert harness.active_call_ids() == [call.call_id]


def test_sdp_answer_follows_the_callers_codec_preference(harness):
    """PCMA offered first (then PCMU): the answer picks PCMA and the prompts are sent as PCMA."""
    caller = harness.caller()
    call = caller.invite("1000", sdp=offer_sdp(caller.rtp_address, codecs=(8, 0)))
    call.expect(200)
    call.ack()
    assert call.answer.formats[0] == 8 and Sdp.parse(caller.responses()[0].body).rtpmap[8] == "PCMA/8000"
    harness.advance(0.2)
    assert {p.payload_type for p in call.rtp_received()} == {8}
