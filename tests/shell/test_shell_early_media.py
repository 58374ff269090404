"""RFC 3262 (PRACK / 100rel) and early media on the calls we answer, on the wire: number 1010's flow
announces "calls may be recorded" before the answer (183 with SDP, the prompt on RTP, then 200 with
the same SDP); the 183 is reliable when the caller requires or supports 100rel (RSeq, retransmitted
T1 doubling, the 200 held until its PRACK, 500 and a failed record when no PRACK ever comes), and a
CANCEL or BYE during early media ends the call with 487 to the INVITE."""

from __future__ import annotations

from .wire import offer_sdp

ANNOUNCED = "1010"  # ivr_flows/recorded_line.yaml: announce_before_answer: calls_recorded
REQUIRE = ("Require", "100rel")
SUPPORTED = ("Supported", "100rel")
ANNOUNCEMENT_SECONDS = 4.2  # sounds/calls_recorded.wav is 4.13 s


def early_call(harness, *headers: tuple[str, str], port: int = 5070):
    """A caller on `port` whose INVITE to 1010 carries `headers`; (caller, call, its first 183)."""
    caller = harness.caller(port=port)
    call = caller.invite(ANNOUNCED, headers=list(headers))
    progress = call.expect(183, timeout=0.2)
    call.early_dialog(progress)  # its SDP tells where our early media comes from
    return caller, call, progress


def test_a_caller_requiring_100rel_gets_a_reliable_183_early_media_then_the_200_after_its_prack(harness):
    caller, call, progress = early_call(harness, REQUIRE)
    assert progress.headers.get("Require") == "100rel" and progress.headers.get("RSeq").isdigit()
    assert progress.headers.get("Contact") and progress.body and "100rel" in progress.headers.get("Supported")
    call.prack(progress)
    caller.expect_response(200, method="PRACK", call_id=call.call_id, timeout=0.2)
    assert harness.logged(rf"call={call.call_id} PRACK for our reliable 183 \(RSeq {progress.headers.get('RSeq')}\)")
    harness.advance(1.0)
    early = call.rtp_received()
    assert early and harness.prompts_heard(early) == ["calls_recorded"]
    assert caller.responses(call_id=call.call_id, method="INVITE")[-1].status == 183  # not answered yet
    ok = call.expect(200, timeout=ANNOUNCEMENT_SECONDS)
    assert ok.body == progress.body  # the answer the 183 gave, unchanged
    call.ack()
    harness.advance(3.0)
    assert "welcome" in harness.prompts_heard(call.rtp_received())  # the main flow goes on
    assert harness.active_call_ids() == [call.call_id]
    assert [r.status for r in caller.responses(call_id=call.call_id, method="INVITE")].count(183) == 1


def test_a_caller_supporting_100rel_gets_the_183_reliably_too(harness):
    _, call, progress = early_call(harness, SUPPORTED)
    assert progress.headers.get("Require") == "100rel" and progress.headers.get("RSeq")
    call.prack(progress)
    call.expect(200, timeout=ANNOUNCEMENT_SECONDS + 0.5)


def test_a_caller_without_100rel_gets_an_unreliable_183_and_the_200_without_any_prack(harness):
    caller, call, progress = early_call(harness)
    assert progress.headers.get("RSeq") is None and "100rel" not in progress.headers.get_all("Require")
    assert progress.body
    harness.advance(1.0)
    assert harness.prompts_heard(call.rtp_received()) == ["calls_recorded"]
    ok = call.expect(200, timeout=ANNOUNCEMENT_SECONDS)
    call.ack()
    assert ok.body == progress.body
    assert [r.status for r in caller.responses(call_id=call.call_id, method="INVITE")].count(183) == 1


def test_the_183_is_retransmitted_t1_doubling_and_the_200_waits_for_the_prack(harness):
    caller, call, progress = early_call(harness, REQUIRE)
    harness.advance(ANNOUNCEMENT_SECONDS + 1.0)  # the announcement is over: the 200 is held
    copies = [r for r in caller.responses(call_id=call.call_id, method="INVITE") if r.status == 183]
    assert len(copies) == 4  # at 0, then 0.5, 1.5 and 3.5 s
    assert {c.headers.get("RSeq") for c in copies} == {progress.headers.get("RSeq")}
    assert all(r.status == 183 for r in caller.responses(call_id=call.call_id, method="INVITE"))
    assert harness.logged(rf"call={call.call_id} 200 OK held until the PRACK of our reliable 183")
    call.prack(progress)
    caller.expect_response(200, method="PRACK", call_id=call.call_id, timeout=0.1)
    call.expect(200, timeout=0.1)  # released by the PRACK at once
    call.ack()
    harness.advance(5.0)
    assert len([r for r in caller.responses(call_id=call.call_id, method="INVITE") if r.status == 183]) == 4


def test_a_caller_that_never_pracks_gets_500_after_64_t1_and_the_call_fails(harness):
    caller, call, _ = early_call(harness, REQUIRE)
    refused = call.expect(500, timeout=33.0)
    assert "no PRACK" in (refused.headers.get("Warning") or "")
    copies = [r for r in caller.responses(call_id=call.call_id, method="INVITE") if r.status == 183]
    assert len(copies) == 7  # 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s
    assert harness.active_call_ids() == [] and harness.bound_rtp_ports() == []
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "failed"
    assert record["end_reason"] == "no PRACK for our reliable 183 within 32 s"
    assert harness.logged(rf"call={call.call_id} no PRACK for our reliable 183 \(RSeq \d+\) within 64\*T1")


def test_a_prack_with_the_wrong_rseq_gets_481_and_the_right_one_still_counts(harness):
    caller, call, progress = early_call(harness, REQUIRE)
    call.prack(progress, rseq=str(int(progress.headers.get("RSeq")) + 1))
    caller.expect_response(481, method="PRACK", call_id=call.call_id, timeout=0.2)
    call.prack(progress)
    caller.expect_response(200, method="PRACK", call_id=call.call_id, timeout=0.2)
    call.expect(200, timeout=ANNOUNCEMENT_SECONDS + 0.5)


def test_a_cancel_during_early_media_gets_487_and_stops_media_and_retransmissions(harness):
    caller, call, _ = early_call(harness, REQUIRE)
    harness.advance(1.0)
    call.cancel()
    caller.expect_response(200, method="CANCEL", call_id=call.call_id, timeout=0.2)
    call.expect(487, timeout=0.2)
    before = len(caller.responses(call_id=call.call_id, method="INVITE"))
    stopped = harness.reactor.seconds()
    harness.advance(10.0, step=0.1)
    assert len(caller.responses(call_id=call.call_id, method="INVITE")) == before  # no 183 after the 487
    assert call.rtp_received(since=stopped + 0.1) == []
    assert harness.call_record(call.call_id)["end_reason"] == "caller cancelled before answer"
    assert harness.bound_rtp_ports() == []


def test_a_bye_in_the_early_dialog_before_any_prack_gets_200_and_487_to_the_invite(harness):
    caller, call, _ = early_call(harness, REQUIRE)
    call.bye()
    caller.expect_response(200, method="BYE", call_id=call.call_id, timeout=0.2)
    call.expect(487, timeout=0.2)
    harness.advance(5.0, step=0.1)
    assert not any(r.status == 200 for r in caller.responses(call_id=call.call_id, method="INVITE"))
    assert harness.call_record(call.call_id)["end_reason"] == "caller cancelled before answer"
    assert harness.active_call_ids() == []


def test_a_ringing_route_sends_a_reliable_180_to_a_caller_requiring_100rel_and_answers_without_its_prack(harness):
    """The 180 has no SDP: RFC 3262 lets the 200 go before its PRACK, and retransmissions then stop."""
    caller = harness.caller()
    call = caller.invite("1001", headers=[REQUIRE])
    ringing = call.expect(180, timeout=0.2)
    assert ringing.headers.get("Require") == "100rel" and ringing.headers.get("RSeq") and not ringing.body
    call.expect(200, timeout=3.5)
    call.ack()
    harness.advance(10.0, step=0.1)
    assert len([r for r in caller.responses(call_id=call.call_id, method="INVITE") if r.status == 180]) == 3  # 0, 0.5, 1.5 s


def test_a_prack_for_a_call_that_sent_nothing_reliably_gets_481(harness):
    caller = harness.caller()
    call = caller.invite("1001")
    ringing = call.expect(180, timeout=0.2)
    assert ringing.headers.get("RSeq") is None
    call.prack(ringing, rseq="1")
    caller.expect_response(481, method="PRACK", call_id=call.call_id, timeout=0.2)


def test_options_lists_100rel_and_an_unknown_required_extension_still_gets_420(harness):
    caller = harness.caller()
    call = caller.invite("1000", headers=[("Require", "100rel, foo")])
    refused = call.expect(420, timeout=0.2)
    assert refused.headers.get("Unsupported") == "foo"
    assert harness.active_call_ids() == []
    _, answered = harness.answered_call(port=5072)
    answered.reinvite()
    ok = answered.peer.expect_response(200, method="INVITE", call_id=answered.call_id, timeout=0.2)
    answered.ack()
    assert "PRACK" in ok.headers.get("Allow") and ok.headers.get("Supported") == "100rel, timer"


def test_a_route_that_answers_later_than_the_announcement_ends_waits_for_its_answer_after_seconds(make_harness):
    harness = make_harness(extra_files={"dialplans/later.yaml": (
        "routes:\n  - number: \"1011\"\n    flow: recorded_line\n    answer_after_seconds: 6\n")})
    caller = harness.caller()
    invited = harness.reactor.seconds()
    call = caller.invite("1011")
    call.expect(183, timeout=0.2)
    call.expect(200, timeout=6.5)
    assert 6.0 <= harness.reactor.seconds() - invited < 6.1


def test_an_invite_without_sdp_skips_the_announcement_and_gets_our_offer_in_the_200(harness):
    caller = harness.caller()
    call = caller.invite(ANNOUNCED, sdp=b"", headers=[REQUIRE])
    ok = call.expect(200, timeout=0.2)
    assert ok.body and not [r for r in caller.responses(call_id=call.call_id) if r.status == 183]
    assert harness.logged(rf"call={call.call_id} no early media announcement: the INVITE has no SDP offer")
    call.ack(sdp=offer_sdp(caller.rtp_address))
    harness.advance(1.0)
    assert harness.active_call_ids() == [call.call_id]
