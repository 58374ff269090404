"""Graceful shutdown in process: SIGTERM drains (new calls refused 503), then ends what is left
properly (goodbye and BYE to callers, CANCEL to ringing agents, BYE to both legs of a bridged call),
records every call "server shutdown", and stops the reactor; a second signal ends everything at once.

Queue tests use a queue `q` (number 3000) whose agents ring for a minute, so an offer is still
ringing when the drain ends.
"""

from __future__ import annotations

from .harness import queue_files
from .wire import build_request

Q = "{strategy: longest-idle, ring_timeout: 60, wrap_up: 5, when_no_agents: join}"
GOODBYE_SECONDS = 2.8  # sounds/goodbye.wav


def queue_harness(make_harness, agents=("1001",), **options):
    return make_harness(extra_files=queue_files({"q": Q}, {agent: "{q: 0}" for agent in agents}), **options)


def options_ping(caller, call_id: str = "options-drain@test") -> None:
    caller.send(build_request("OPTIONS", "sip:127.0.0.1:5060", [
        ("Via", caller.via()), ("From", "<sip:probe@127.0.0.1>;tag=o1"), ("To", "<sip:127.0.0.1>"),
        ("Call-ID", call_id), ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70")]))


def test_new_invite_during_the_drain_is_refused_503_with_retry_after_and_binds_no_rtp_port(make_harness):
    """While a call drains: a new INVITE gets 503 + Retry-After at once (no 180/200, no RTP port),
    an OPTIONS ping gets 503; the call in progress still gets its INFO answered and agents still
    register."""
    harness = make_harness(drain_seconds=10)
    caller, call = harness.answered_call()
    harness.signal("SIGTERM")
    assert harness.logged(r"shutdown requested \(SIGTERM\): draining 1 calls for up to 10 s; "
                          r"new calls refused with 503")
    ports = harness.bound_rtp_ports()
    late = harness.caller(port=5072)
    refused = late.invite("1000")
    response = refused.expect(503, timeout=0.1)
    assert int(response.headers.get("Retry-After")) > 0
    assert not late.responses(call_id=refused.call_id, method="INVITE")[:-1], "no 100/180 before the 503"
    assert harness.bound_rtp_ports() == ports
    assert harness.metric("acd_calls_refused_total", status="503") == 1
    options_ping(late)
    assert late.expect_response(503, method="OPTIONS", timeout=0.1).headers.get("Retry-After")
    call.info_digit("2")
    call.expect(200, method="INFO", timeout=0.1)
    assert harness.agent("1001").register().status == 200
    assert not harness.stopped


def test_calls_that_finish_during_the_drain_let_the_server_exit_at_once(make_harness):
    """The only call ends by itself during the drain: the server stops without waiting the full
    drain time, the call keeps its own end reason, and the summary says it finished."""
    harness = make_harness(drain_seconds=30)
    caller, call = harness.answered_call()
    harness.signal()
    harness.advance(1)
    call.bye()
    call.expect(200, method="BYE", timeout=0.1)
    harness.advance_until(lambda: harness.stopped, timeout=1, what="the server to stop")
    assert harness.call_record(call.call_id)["outcome"] == "caller_hangup"
    assert harness.logged(r"shutdown: 1 calls finished during drain, 0 ended by the server \(0 callers, "
                          r"0 agent offers cancelled, 0 bridged\); exiting")


def test_a_caller_in_the_menu_hears_goodbye_then_bye_when_the_drain_time_is_over(make_harness):
    """The IVR goes on during the drain; then the caller hears the goodbye prompt and gets our BYE;
    the record and the metrics say "server shutdown"; the reactor stops once the BYE is answered."""
    harness = make_harness(drain_seconds=2)
    caller, call = harness.answered_call()
    harness.signal()
    harness.advance(1.9)
    assert not caller.requests("BYE")
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=0.2 + GOODBYE_SECONDS + 0.5)
    assert harness.prompts_heard(call.rtp_received())[-1] == "goodbye"
    assert not harness.stopped, "waits for the BYE's final response"
    call.respond(bye, 200)
    harness.advance_until(lambda: harness.stopped, timeout=0.5, what="the server to stop")
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["end_reason"]) == ("shutdown", "server shutdown")
    assert harness.metric("acd_calls_total", trunk="test", result="shutdown") == 1
    assert harness.logged(r"shutdown: 0 calls finished during drain, 1 ended by the server \(1 callers, "
                          r"0 agent offers cancelled, 0 bridged\); exiting")
    assert harness.leaks() == {}


def test_ringing_offer_is_cancelled_and_waiting_callers_hear_goodbye_agents_stay_logged_in(make_harness):
    """One agent rings for the first caller, the second caller waits. At the end of the drain: CANCEL
    to the agent's phone (its 487 is ACKed), goodbye and BYE to both callers, ABANDON in the queue
    log; the agent is available again and is never logged out."""
    harness = queue_harness(make_harness, drain_seconds=1)
    phone = harness.logged_in_agent("1001")
    first_caller, first = harness.answered_call("3000")
    offer = phone.offer()
    offer.ring()
    second_caller, second = harness.answered_call("3000", port=5072)
    harness.advance(0.5)
    harness.signal()
    cancel = offer.expect_request("CANCEL", timeout=1.2)
    offer.respond(cancel, 200)
    offer.decline(487)
    offer.expect_ack(timeout=0.1)
    for caller, call in ((first_caller, first), (second_caller, second)):
        bye = caller.expect_request("BYE", call_id=call.call_id, timeout=GOODBYE_SECONDS + 0.5)
        assert harness.prompts_heard(call.rtp_received())[-1] == "goodbye"
        call.respond(bye, 200)
    harness.advance_until(lambda: harness.stopped, timeout=0.5, what="the server to stop")
    for call in (first, second):
        assert harness.call_record(call.call_id)["end_reason"] == "server shutdown"
        assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "ABANDON"]
    states = [row[0] for row in harness.records("select state from agent_states where agent_id = '1001' order by id")]
    assert states[-1] == "available" and "logged_out" not in states
    assert harness.logged(r"shutdown: 0 calls finished during drain, 2 ended by the server \(2 callers, "
                          r"1 agent offers cancelled, 0 bridged\); exiting")


def test_bridged_call_gets_bye_on_both_legs_at_once(make_harness):
    """A caller talking to an agent: BYE to the caller and to the agent's phone together, no goodbye;
    the record keeps the agent; the agent wraps up (not logged out)."""
    harness = queue_harness(make_harness, drain_seconds=0.5)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    harness.advance(1)
    harness.signal()
    caller_bye = caller.expect_request("BYE", call_id=call.call_id, timeout=0.7)
    agent_bye = offer.expect_request("BYE", timeout=0)
    call.respond(caller_bye, 200)
    offer.respond(agent_bye, 200)
    harness.advance_until(lambda: harness.stopped, timeout=0.5, what="the server to stop")
    record = harness.call_record(call.call_id)
    assert (record["end_reason"], record["agent"]) == ("server shutdown", "1001")
    assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]
    states = [row[0] for row in harness.records("select state from agent_states where agent_id = '1001' order by id")]
    assert states[-1] == "wrap_up" and "logged_out" not in states
    assert harness.logged(r"shutdown: 0 calls finished during drain, 1 ended by the server \(0 callers, "
                          r"0 agent offers cancelled, 1 bridged\); exiting")


def test_a_second_signal_during_the_drain_ends_every_call_at_once(make_harness):
    """SIGTERM starts a 30 s drain; SIGINT a second later: BYE at once (no goodbye), still recorded,
    and the server stops once it is answered."""
    harness = make_harness(drain_seconds=30)
    caller, call = harness.answered_call()
    harness.signal("SIGTERM")
    harness.advance(1)
    harness.signal("SIGINT")
    assert harness.logged(r"shutdown requested again \(SIGINT\): ending every call at once")
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=0.1)
    call.respond(bye, 200)
    harness.advance_until(lambda: harness.stopped, timeout=0.5, what="the server to stop")
    assert harness.call_record(call.call_id)["end_reason"] == "server shutdown"


def test_a_second_signal_during_the_goodbye_cuts_it_short(make_harness):
    """Goodbye playing after the drain: another SIGTERM sends the BYE at once."""
    harness = make_harness(drain_seconds=0)
    caller, call = harness.answered_call()
    harness.signal()
    harness.advance(0.5)
    assert not caller.requests("BYE")
    harness.signal()
    caller.expect_request("BYE", call_id=call.call_id, timeout=0.1)


def test_a_caller_who_never_answers_our_bye_is_still_recorded_and_the_server_exits(make_harness):
    """No 200 for our BYE: it is retransmitted (RFC 3261 Timer E) for a few seconds, then the server
    writes the record anyway and stops."""
    harness = make_harness(drain_seconds=0)
    caller, call = harness.answered_call()
    harness.signal()
    harness.advance_until(lambda: harness.stopped, timeout=10, what="the server to stop")
    assert len(caller.requests("BYE", call_id=call.call_id)) >= 2
    assert harness.call_record(call.call_id)["end_reason"] == "server shutdown"
    assert harness.logged(r"1 calls and 0 agent legs still had no final response")


def test_a_server_with_no_calls_stops_at_once(make_harness):
    """Nothing to drain: the server stops on its next turns."""
    harness = make_harness()
    harness.signal()
    harness.advance_until(lambda: harness.stopped, timeout=0.5, what="the server to stop")
    assert harness.logged(r"draining 0 calls for up to 30 s")
    assert harness.logged(r"shutdown: 0 calls finished during drain, 0 ended by the server")


def test_a_callback_in_progress_gets_bye_to_the_agent_and_cancel_to_the_ringing_customer(make_harness):
    """The agent took a callback and the customer's phone rings (our outbound leg through the trunk):
    at the end of the drain the agent's leg gets BYE and the customer's INVITE a CANCEL."""
    harness = queue_harness(make_harness, drain_seconds=0.5, trunk_outbound="127.0.0.1:5090")
    customer = harness.phone(("127.0.0.1", 5090), "trunk")
    caller, call = harness.answered_call("3000")
    harness.advance(1)
    call.info_digit("*")
    call.respond(caller.expect_request("BYE", call_id=call.call_id, timeout=7), 200)
    phone = harness.logged_in_agent("1001")
    offer = phone.take_offer()
    callback = customer.incoming(timeout=1)
    callback.ring()
    harness.signal()
    offer.respond(offer.expect_request("BYE", timeout=0.7), 200)
    cancel = callback.expect_request("CANCEL", timeout=0.1)
    callback.respond(cancel, 200)
    callback.decline(487)
    callback.expect_ack(timeout=0.1)
    harness.advance_until(lambda: harness.stopped, timeout=0.5, what="the server to stop")
    assert harness.logged(r"released by the ACD \(server shutdown\): was callback in queue q")
    assert harness.leaks() == {}


def test_behind_a_probing_proxy_an_idle_server_answers_503_for_the_minimum_drain_then_stops(make_harness):
    """`acd serve --drain-min-seconds 2` (Kamailio in front probes with OPTIONS): no call to drain, yet
    the server keeps answering OPTIONS and INVITEs 503 for 2 s, so the proxy skips it at once instead
    of sending it calls until its next probe times out; then it stops."""
    harness = make_harness(drain_seconds=30)
    harness.running.shutdown.min_drain_seconds = 2.0
    harness.signal()
    harness.advance(1.5)
    assert not harness.stopped
    probe = harness.caller(port=5072)
    options_ping(probe)
    assert probe.expect_response(503, method="OPTIONS", timeout=0.1)
    probe.invite("1000").expect(503, timeout=0.1)
    harness.advance_until(lambda: harness.stopped, timeout=1.0, what="the server to stop after 2 s")
    assert harness.logged(r"shutdown: every call finished during the drain")


def test_a_cluster_node_declared_dead_hangs_up_its_calls_closes_their_records_and_goes_on(make_harness):
    """acd/calls/cluster_life.end_hosted_calls (a node declared dead by the others): BYE to the caller
    and the agent's phone at once, the record closed, the node not stopping (it rejoins)."""
    from acd.calls.cluster_life import end_hosted_calls

    harness = queue_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    harness.advance(1)
    running = harness.running
    end_hosted_calls(running.acd, running.calls, running.records, "node n1 was declared dead by the other nodes",
                     harness.reactor.seconds())
    caller_bye = caller.expect_request("BYE", call_id=call.call_id, timeout=0.2)
    agent_bye = offer.expect_request("BYE", timeout=0)
    call.respond(caller_bye, 200)
    offer.respond(agent_bye, 200)
    harness.advance(1)
    assert not harness.stopped and not running.acd.releasing and not running.calls.sessions
    record = harness.call_record(call.call_id)
    assert record["ended_at"] is not None and record["agent"] == "1001"
    assert harness.logged(r"cluster: node n1 was declared dead by the other nodes: 1 caller\(s\) hung up, "
                          r"1 call\(s\) released by the ACD")
