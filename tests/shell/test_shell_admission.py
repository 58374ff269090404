"""Admission control (issue 21): past the call ceiling, or while the event loop lags, a new call gets
a stateless 503 with Retry-After and leaves nothing behind; its retransmissions get the same answer
from the refusal cache; calls in progress still complete; OPTIONS say 503 while new calls are refused;
refusals are logged once a second, not once per INVITE."""

from __future__ import annotations

from .wire import build_request

STRANGER = ("127.0.0.9", 5090)
CEILING = "  admission: {max_calls: 2}\n"


def state(harness) -> dict:
    """Everything a call would create: sessions, RTP ports, SIP transactions, call records."""
    return {"sessions": len(harness.running.calls.sessions), "ports": harness.bound_rtp_ports(),
            "transactions": harness.running.sip.endpoint.transaction_count,
            "records": harness.records("select count(*) from calls")[0][0]}


def options(peer, *, branch: str) -> bytes:
    host, port = peer.harness.sip_address
    return build_request("OPTIONS", f"sip:{host}:{port}", [
        ("Via", peer.via(branch)), ("Max-Forwards", "70"), ("From", f"<sip:probe@{peer.address[0]}>;tag=p1"),
        ("To", f"<sip:{host}>"), ("Call-ID", f"options-{branch}"), ("CSeq", "1 OPTIONS")])


def overload(harness) -> None:
    """Run the lag timer with the clock jumping 0.2 s at a time: each tick 0.15 s late, three running."""
    harness.running.admission_gate.start()
    for _ in range(3):
        harness.advance(0.2, step=0.2)
    assert harness.running.admission_gate.core.lag.overloaded


def test_at_the_call_ceiling_a_new_call_gets_503_and_its_retransmissions_the_same_answer_without_state(
        make_harness):
    """Two calls in progress at max_calls 2: the third INVITE gets 503 + Retry-After, and its
    retransmissions the very same answer (same To tag), with no transaction, dialog, RTP port or
    record made; its ACK is absorbed; nothing is retransmitted to it. The calls in progress end
    normally and a new call is then admitted."""
    harness = make_harness(sip_extra=CEILING)
    caller, first = harness.answered_call()
    _, second = harness.answered_call(port=5072)
    before = state(harness)
    assert before["sessions"] == 2 and len(before["ports"]) == 2

    late = harness.caller(port=5074)
    refused_call = late.invite("1000")
    refused = refused_call.expect(503, ack=False)
    assert refused.headers.get("Retry-After") == "2"
    assert refused.headers.get("Warning") == '399 acd "overloaded: max_calls"'
    for _ in range(3):
        refused_call.resend_invite()
    harness.advance(0.1)
    answers = late.responses(call_id=refused_call.call_id)
    assert [r.status for r in answers] == [503] * 4
    assert {r.headers.get("To") for r in answers} == {refused.headers.get("To")}
    refused_call._ack_error(refused)
    harness.advance(5)
    assert len(late.responses(call_id=refused_call.call_id)) == 4  # stateless: never retransmitted
    assert state(harness) == before
    assert harness.metric("acd_admission_refused_total", reason="max_calls") == 1
    assert harness.metric("acd_admission_refusals_resent_total") == 3
    assert harness.metric("acd_admission_max_calls") == 2

    first.bye()
    first.expect(200, method="BYE")
    harness.advance(0.1)
    after = harness.caller(port=5076).invite("1000")
    after.expect(200)
    after.ack()
    second.bye()
    second.expect(200, method="BYE")
    assert harness.metric("acd_admission_admitted_total") == 3
    assert caller.untaken() == []


def test_options_answer_503_while_new_calls_are_refused_and_200_otherwise(make_harness):
    harness = make_harness(sip_extra="  admission: {max_calls: 1}\n")
    probe = harness.caller(port=5080)
    probe.send(options(probe, branch="z9hG4bK-o1"))
    assert probe.expect_response(200, method="OPTIONS")
    _, call = harness.answered_call()
    probe.send(options(probe, branch="z9hG4bK-o2"))
    answer = probe.expect_response(503, method="OPTIONS")
    assert answer.headers.get("Retry-After") == "2"
    call.bye()
    call.expect(200, method="BYE")
    probe.send(options(probe, branch="z9hG4bK-o3"))
    assert probe.expect_response(200, method="OPTIONS")


def test_while_the_event_loop_lags_new_calls_are_refused_and_calls_in_progress_complete(harness):
    """Overload (the loop late 3 ticks running): a new INVITE and OPTIONS get 503, while the ACK,
    BYE and re-INVITE of calls already taken are served. On time again, calls are admitted."""
    caller, up = harness.answered_call()
    answered = caller.invite("1000")
    answered.expect(200)  # taken before the overload; its ACK comes during it
    overload(harness)
    refused = harness.caller(port=5074).invite("1000")
    assert refused.expect(503, ack=False).headers.get("Warning") == '399 acd "overloaded: overload"'
    answered.ack()
    up.reinvite()
    up.expect(200, method="INVITE")
    up.bye()
    up.expect(200, method="BYE")
    answered.bye()
    answered.expect(200, method="BYE")
    probe = harness.caller(port=5080)
    probe.send(options(probe, branch="z9hG4bK-lag"))
    probe.expect_response(503, method="OPTIONS")
    assert harness.metric("acd_admission_overloaded") == 1
    assert harness.logged(r"overloaded: the event loop ran 150 ms late 3 ticks running")

    harness.advance(0.3)  # ticks on time again
    assert harness.logged(r"overload over after \d+\.\d s")
    again = harness.caller(port=5076).invite("1000")
    again.expect(200)
    again.ack()
    assert harness.metric("acd_admission_refused_total", reason="overload") == 1
    assert harness.metric("acd_event_loop_lag_seconds_count") >= 6


def test_a_busy_loop_refuses_a_stranger_before_a_trunk_caller(harness):
    """Half the overload lag: an INVITE from a source that is no trunk gets 503 (priority), a trunk's
    call is still taken."""
    gate = harness.running.admission_gate
    gate.start()
    harness.advance(0.11, step=0.11)  # one tick 60 ms late: busy, not overloaded
    assert gate.core.lag.busy and not gate.core.lag.overloaded
    stranger = harness.caller(host=STRANGER[0], port=STRANGER[1])
    stranger.invite("1000").expect(503, ack=False)
    trunk_call = harness.caller().invite("1000")
    trunk_call.expect(200)
    trunk_call.ack()
    assert harness.metric("acd_admission_refused_total", reason="priority") == 1


def test_refusals_are_summarised_once_a_second_not_logged_per_invite(make_harness):
    harness = make_harness(sip_extra="  admission: {max_calls: 1}\n")
    harness.running.admission_gate.start()
    harness.answered_call()
    flood = harness.caller(port=5074)
    for n in range(50):
        flood.invite("1000")
        harness.advance(0.01)
    harness.advance(1.0)
    lines = harness.logged(r"admission: refused (\d+) new call\(s\) with 503 .*\(max_calls \d+\)")
    assert len(lines) == 2 and sum(int(m.group(1)) for m in lines) == 50
    assert len(flood.responses()) == 50
