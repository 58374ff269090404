"""RFC 4028 session timers on the calls we answer, on the wire: the 2xx says what was agreed, an
interval below our minimum gets 422 with Min-SE, a refresh from the caller (re-INVITE or UPDATE)
restarts the timer, we refresh when we are the refresher (UPDATE when allowed, else re-INVITE),
and a call nobody refreshes ends with our BYE and a record "session expired"."""

from __future__ import annotations

from acd.sip.message import Request

from .wire import header_param

# Short intervals so the clock moves little: the config allows down to 1 s for tests (RFC: 90 s).
SHORT = "  session_timer: {default_seconds: 60, min_seconds: 10}\n"
SUPPORTED = ("Supported", "timer")


def timed_call(harness, *headers: tuple[str, str], port: int = 5070):
    """A caller (on `port`) whose INVITE carries `headers`; answered and ACKed. (caller, call, 200 OK)."""
    caller = harness.caller(port=port)
    call = caller.invite("1000", headers=list(headers))
    ok = call.expect(200)
    call.ack()
    return caller, call, ok


def answer_bye(call) -> Request:
    """The server's BYE on this call, answered 200."""
    bye = call.peer.expect_request("BYE", call_id=call.call_id)
    call.respond(bye)
    call.peer.harness.advance(0.1)
    return bye


def test_the_200_states_the_interval_and_the_refresher_and_requires_timer(make_harness):
    harness = make_harness(sip_extra=SHORT)
    _, _, ok = timed_call(harness, SUPPORTED, ("Session-Expires", "30;refresher=uac"), ("Min-SE", "10"))
    assert ok.headers.get("Session-Expires") == "30;refresher=uac"
    assert "timer" in ok.headers.get_all("Require")
    _, _, ok = timed_call(harness, SUPPORTED, port=5072)
    assert ok.headers.get("Session-Expires") == "60;refresher=uac"  # our default


def test_a_caller_that_asks_for_no_timer_gets_none_and_is_never_refreshed(harness):
    _, call, ok = timed_call(harness)
    assert ok.headers.get("Session-Expires") is None and "timer" not in ok.headers.get_all("Require")
    harness.advance(200.0, step=1.0)  # the demo IVR ends the call meanwhile, but not for its session
    assert call.peer.requests("UPDATE") == call.peer.requests("INVITE") == []
    assert not harness.logged("session expired") and harness.metric("acd_calls_session_expired_total") == 0


def test_an_interval_below_our_minimum_is_refused_422_with_our_min_se(make_harness):
    harness = make_harness(sip_extra=SHORT)
    call = harness.caller().invite("1000", headers=[SUPPORTED, ("Session-Expires", "5")])
    refused = call.expect(422)
    assert refused.headers.get("Min-SE") == "10"
    assert harness.active_call_ids() == [] and harness.bound_rtp_ports() == []
    assert harness.logged(rf"call={call.call_id} refused 422: Session-Expires 5 s is below our minimum of 10 s")


def test_a_call_nobody_refreshes_ends_with_our_bye_and_a_session_expired_record(make_harness):
    """Caller refreshes, interval 30 s: expired at 30 - min(32, 30/3) = 20 s after the 200."""
    harness = make_harness(sip_extra=SHORT)
    _, call, _ = timed_call(harness, SUPPORTED, ("Session-Expires", "30;refresher=uac"))
    answered = harness.reactor.seconds()
    harness.advance(19.5, step=0.5)
    assert harness.active_call_ids() == [call.call_id] and call.peer.requests("BYE") == []
    harness.advance(0.6, step=0.1)
    answer_bye(call)
    assert 20.0 <= harness.reactor.seconds() - answered < 20.3
    assert harness.active_call_ids() == []
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "failed" and record["end_reason"] == "session expired: no refresh within 30 s"
    assert harness.metric("acd_calls_session_expired_total") == 1
    assert harness.logged(rf"call={call.call_id} session expired \(RFC 4028\): no refresh within 30 s; sending BYE")


def test_a_refresh_from_the_caller_restarts_the_timer_by_reinvite_and_by_update(make_harness):
    harness = make_harness(sip_extra=SHORT)
    caller, call, _ = timed_call(harness, SUPPORTED, ("Session-Expires", "30;refresher=uac"))
    harness.advance(15.0, step=0.5)
    call.reinvite(headers=[SUPPORTED, ("Session-Expires", "30;refresher=uac")])
    ok = caller.expect_response(200, method="INVITE", call_id=call.call_id)
    call.ack()
    assert ok.headers.get("Session-Expires") == "30;refresher=uac"  # the 200 restates them
    harness.advance(15.0, step=0.5)  # 30 s after the first 200: past its expiry, not the refreshed one's
    call.update(headers=[SUPPORTED, ("Session-Expires", "40;refresher=uac")])
    ok = caller.expect_response(200, method="UPDATE", call_id=call.call_id)
    assert ok.headers.get("Session-Expires") == "40;refresher=uac"
    harness.advance(26.0, step=0.5)  # 40 - 13.3 s: still up
    assert harness.active_call_ids() == [call.call_id] and caller.requests("BYE") == []
    harness.advance(1.0, step=0.1)
    answer_bye(call)
    assert harness.call_record(call.call_id)["end_reason"] == "session expired: no refresh within 40 s"


def test_a_refresh_asking_for_too_short_an_interval_is_refused_422_and_the_call_goes_on(make_harness):
    harness = make_harness(sip_extra=SHORT)
    caller, call, _ = timed_call(harness, SUPPORTED, ("Session-Expires", "30"))
    call.update(headers=[SUPPORTED, ("Session-Expires", "3")])
    refused = caller.expect_response(422, method="UPDATE", call_id=call.call_id)
    assert refused.headers.get("Min-SE") == "10"
    assert harness.active_call_ids() == [call.call_id]


def test_we_refresh_by_update_when_the_caller_allows_it_and_the_call_stays_up(make_harness):
    """A caller without the extension cannot refresh: we do, at half the interval, and keep doing it."""
    harness = make_harness(sip_extra=SHORT)
    caller, call, ok = timed_call(harness, ("Session-Expires", "30"), ("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE"))
    assert ok.headers.get("Session-Expires") == "30;refresher=uas" and "timer" not in ok.headers.get_all("Require")
    for _ in range(3):
        update = caller.expect_request("UPDATE", call_id=call.call_id, timeout=15.5)
        assert header_param(update.headers.get("Session-Expires"), "refresher") == "uas" and not update.body
        call.respond(update, headers=[("Session-Expires", "30;refresher=uas")])
    assert harness.active_call_ids() == [call.call_id] and caller.requests("BYE") == []
    assert harness.logged(rf"call={call.call_id} session refreshed \(our UPDATE answered 200\)")


def test_we_refresh_by_reinvite_with_our_sdp_unchanged_and_ack_its_200(make_harness):
    harness = make_harness(sip_extra=SHORT)
    caller, call, ok = timed_call(harness, ("Session-Expires", "30"))
    reinvite = caller.expect_request("INVITE", call_id=call.call_id, timeout=15.5)
    assert reinvite.body == ok.body  # the SDP we answered with, same o= version: no change
    call.respond(reinvite, body=reinvite.body, headers=[("Contact", caller.contact),
                                                         ("Content-Type", "application/sdp")])
    harness.advance(0.1)
    ack = caller.expect_request("ACK", call_id=call.call_id)
    assert ack.headers.get("CSeq") == f"{reinvite.headers.get('CSeq').split()[0]} ACK"
    assert caller.expect_request("INVITE", call_id=call.call_id, timeout=15.5)  # the next refresh
    assert harness.active_call_ids() == [call.call_id]


def test_a_refresh_of_ours_answered_481_ends_the_call(make_harness):
    harness = make_harness(sip_extra=SHORT)
    caller, call, _ = timed_call(harness, ("Session-Expires", "30"), ("Allow", "INVITE, ACK, BYE, UPDATE"))
    update = caller.expect_request("UPDATE", call_id=call.call_id, timeout=15.5)
    call.respond(update, 481)
    harness.advance(0.1)
    answer_bye(call)
    assert harness.call_record(call.call_id)["end_reason"] == "session expired: our refresh got 481"


def test_a_refresh_of_ours_never_answered_ends_the_call(make_harness):
    """No answer to our UPDATE (64*T1 = 32 s) while the session expires at 20 s: the expiry comes first."""
    harness = make_harness(sip_extra=SHORT)
    caller, call, _ = timed_call(harness, ("Session-Expires", "30"), ("Allow", "INVITE, ACK, BYE, UPDATE"))
    caller.expect_request("UPDATE", call_id=call.call_id, timeout=15.5)
    answer_bye_after = harness.advance_until(lambda: bool(caller.requests("BYE")), timeout=10.0, what="BYE")
    assert answer_bye_after < 5.5
    answer_bye(call)
    assert harness.call_record(call.call_id)["end_reason"] == \
        "session expired: no answer to our refresh within 30 s"
