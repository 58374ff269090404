"""A routing decision that comes back late, as in a cluster (issue 20): the leader's CallConnected
reaches the node hosting the call a moment after the agent answered. Whatever ends in that moment
must end the call cleanly, as if it had ended just after the connection.

The routing authority is `LateRouting` (tests/shell/late_routing.py, `harness.late_routing()`):
ClusterRouting's timing around the server's own engine, without PostgreSQL. `hold()` keeps the
agent's answer (OfferAnswered) from the engine while the test hangs up one side; `release()` lets
it through, and the CallConnected decision arrives after the hang-up. The 3-node e2e
(tests/e2e/test_cluster_e2e.py) sees the same race by chance; these see it every time.
"""

from __future__ import annotations

from acd.routing import CallEnded, OfferAnswered

from .harness import queue_files
from .test_shell_records import differences

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join}"


def late_harness(make_harness, **options):
    """Number 3000 into queue q (agent 1001, logged in), with the routing decisions coming back late."""
    harness = make_harness(extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}), **options)
    late = harness.late_routing()
    phone = harness.logged_in_agent("1001")
    return harness, late, phone


def answered_while_held(harness, late, phone):
    """A caller of 3000 whose offer 1001 answered, the answer held back from the engine."""
    caller, call = harness.answered_call("3000")
    offer = phone.offer()
    offer.ring()
    harness.advance(0.5)
    late.hold()
    offer.answer()
    offer.expect_ack(timeout=1)
    assert late.inbox == [OfferAnswered(call_id=call.call_id, agent_id="1001")]
    return caller, call, offer


def connected_late(harness, late) -> None:
    """Let the held answer through: the engine connects the call, and the decision arrives now."""
    late.release()
    harness.advance(0.1)


def test_agent_hanging_up_before_the_late_connection_ends_the_call_as_an_agent_hangup(make_harness):
    """The agent answers and hangs up at once; the CallConnected comes after the agent's BYE. The
    caller gets a BYE (not silence forever), the call ends as answered then hung up by the agent
    (record, queue log, counters agree), the agent wraps up then is available; nothing is left."""
    harness, late, phone = late_harness(make_harness)
    caller, call, offer = answered_while_held(harness, late, phone)
    offer.bye()
    phone.expect_response(200, method="BYE", call_id=offer.call_id)
    assert caller.requests("BYE", call_id=call.call_id) == [], "nothing to do before the decision"

    connected_late(harness, late)
    bye = caller.expect_request("BYE", call_id=call.call_id)
    call.respond(bye, 200)
    assert harness.logged(rf"call={call.call_id} connect to agent=1001 impossible")
    assert late.answered[-2:] == [OfferAnswered(call_id=call.call_id, agent_id="1001"),
                                  CallEnded(call_id=call.call_id)] and not late.refused
    harness.advance(0.1)
    assert harness.agent_state("1001") == "wrap_up"
    harness.advance(2.1)
    assert harness.agent_state("1001") == "available"
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["agent"], record["queue"]) == ("agent_hangup", "1001", "q")
    assert record["talk_seconds"] <= 0.1 + 1e-6, "no talk: connected as the caller's BYE went out"
    assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    assert differences(harness) == []
    assert harness.leaks() == {} and harness.bound_rtp_ports() == []


def test_caller_hanging_up_before_the_late_connection_hangs_up_the_agent(make_harness):
    """The mirror: the caller hangs up while the agent's answer is on its way. The agent's leg gets
    a BYE at once (the call is gone), the late CallConnected finds nothing to connect; the call is
    an abandon in the books, the engine takes the agent's answer back (CallEnded not `reached`),
    the agent wraps up then is available; nothing is left. (The caller's own end does it all: the
    late CallConnected is for a call this node no longer holds, which a cluster node drops.)"""
    harness, late, phone = late_harness(make_harness)
    caller, call, offer = answered_while_held(harness, late, phone)
    call.bye()
    call.expect(200, method="BYE")
    bye = offer.expect_request("BYE")
    offer.respond(bye, 200)

    connected_late(harness, late)
    assert late.answered[-2:] == [OfferAnswered(call_id=call.call_id, agent_id="1001"),
                                  CallEnded(call_id=call.call_id, reached=False)] and not late.refused
    assert not harness.logged(rf"call={call.call_id} connect to agent"), "a call this node no longer holds"
    assert harness.agent_state("1001") == "wrap_up"
    harness.advance(2.1)
    assert harness.agent_state("1001") == "available"
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["agent"], record["connected_at"]) == ("caller_hangup", None, None)
    assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "ABANDON"]
    assert differences(harness) == []
    assert harness.leaks() == {} and harness.bound_rtp_ports() == []



def test_caller_asking_for_a_callback_then_hanging_up_before_the_late_connection_is_called_back(make_harness):
    """The caller presses * (callback) and hangs up while the agent's answer is on its way: the
    engine connects first and refuses the callback request later (call-not-waiting). The agent who
    answered calls the customer back at once (what one node does when * is pressed while the agent
    rings), instead of the agent being hung up on with the call stuck: the customer is rung, greeted
    and bridged; the agent's hang-up ends the call as a callback answered by 1001; nothing is left."""
    harness, late, phone = late_harness(make_harness, trunk_outbound="127.0.0.1:5090")
    customer = harness.phone(("127.0.0.1", 5090), "trunk")
    caller, call, offer = answered_while_held(harness, late, phone)
    call.info_digit("*")
    harness.advance(0.1)
    call.bye()
    call.expect(200, method="BYE")
    assert harness.logged(rf"call={call.call_id} callback requested to 5551")

    connected_late(harness, late)
    assert late.answered[-1] == OfferAnswered(call_id=call.call_id, agent_id="1001")
    assert [(type(event).__name__, error) for event, error in late.refused] == [
        ("CallbackRequested", "call-not-waiting")]
    assert phone.requests("BYE", call_id=offer.call_id) == [], "the agent who answered stays on"
    callback = customer.incoming(timeout=1)
    callback.ring()
    callback.answer()
    callback.expect_ack(timeout=1)
    harness.advance(3.2)  # callback_intro, then the bridge
    assert harness.agent_state("1001") == "on_call"
    offer.bye()
    phone.expect_response(200, method="BYE", call_id=offer.call_id)
    callback.respond(callback.expect_request("BYE", timeout=1), 200)
    harness.advance(0.1)
    assert harness.agent_state("1001") == "wrap_up"
    harness.advance(2.1)
    assert harness.agent_state("1001") == "available"
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["agent"]) == ("agent_hangup", "1001")
    assert record["callback_requested_at"] < record["connected_at"] < record["ended_at"]
    assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "CALLBACK", "CONNECT",
                                                                    "COMPLETEAGENT"]
    assert differences(harness) == []
    assert harness.leaks() == {} and harness.bound_rtp_ports() == []
