"""A supervisor's commands on calls in progress, over the REST API: hang up, and transfer to a queue
or a number, from the IVR, from a queue line, and from an agent's call."""

from __future__ import annotations

from .harness import queue_files

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join, max_missed_offers: 1}"


def control_harness(make_harness, agents=("1001",)):
    """Queue `q` (number 3000) and `q2` (number 3001); agents are members of q2 only."""
    files = queue_files({"q": Q, "q2": Q}, {agent: "{q2: 0}" for agent in agents})
    return make_harness(extra_files=files)


def test_hangup_of_an_ivr_call_sends_bye_and_records_who(make_harness):
    harness = control_harness(make_harness)
    caller, call = harness.answered_call("1000")
    harness.advance(1)
    assert harness.api("POST", f"/api/calls/{call.call_id}/hangup") == (
        200, {"call_id": call.call_id, "result": "hung-up"})
    bye = caller.expect_request("BYE", call_id=call.call_id)
    call.respond(bye, 200)
    harness.advance(0.1)
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "supervisor_hangup" and record["end_reason"] == "hung up by API"
    assert harness.api("POST", f"/api/calls/{call.call_id}/hangup")[0] == 404
    assert harness.logged(rf"call={call.call_id} hung up by API")
    assert harness.leaks() == {}


def test_transfer_of_an_ivr_call_to_a_queue_reaches_its_agent(make_harness):
    harness = control_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("1000")
    harness.advance(1)
    assert harness.api("POST", f"/api/calls/{call.call_id}/transfer", {"to": "q2"}) == (
        200, {"call_id": call.call_id, "result": "transferred"})
    offer = phone.take_offer()
    assert offer.header("X-ACD-Queue") == "q2"
    assert harness.call_record(call.call_id)["transfer_target"] == "q2"


def test_transfer_of_a_waiting_call_to_another_queue_and_to_a_number(make_harness):
    """Waiting in q (no member): moved to q2 (agent 1001 is offered it); a second waiting caller is
    moved to number 1000 (the demo flow) and leaves q with a TRANSFER line."""
    harness = control_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    first, first_call = harness.answered_call("3000")
    second, second_call = harness.answered_call("3000", port=5072)
    harness.advance(1)
    assert harness.queue_waiting("q") == 2
    assert harness.api("POST", f"/api/calls/{first_call.call_id}/transfer", {"to": "q2"})[1]["result"] == "transferred"
    offer = phone.take_offer()
    assert offer.header("X-ACD-Queue") == "q2"
    assert harness.api("POST", f"/api/calls/{second_call.call_id}/transfer", {"to": "1000"})[1]["result"] == "transferred"
    harness.advance(0.5)
    assert harness.queue_waiting("q") == 0
    assert [row[0] for row in harness.queue_log(second_call.call_id)] == ["ENTERQUEUE", "TRANSFER"]
    assert harness.logged(rf"call={second_call.call_id} transferred by API to 1000")


def test_transfer_of_a_call_talking_to_an_agent_takes_it_from_the_agent(make_harness):
    harness = control_harness(make_harness, agents=("1001", "1002"))
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3001")
    offer = phone.take_offer()
    harness.advance(2)
    harness.api("POST", "/api/agents/1001/pause", {"reason": "coaching"})
    other = harness.logged_in_agent("1002")
    assert harness.api("POST", f"/api/calls/{call.call_id}/transfer", {"to": "q2"})[1]["result"] == "transferred"
    bye = offer.expect_request("BYE")
    offer.respond(bye, 200)
    second_offer = other.take_offer()
    assert second_offer.header("X-ACD-Caller") == offer.header("X-ACD-Caller")
    assert "TRANSFER" in [row[0] for row in harness.queue_log(call.call_id)]


def test_bad_commands_are_refused_with_the_reason(make_harness):
    harness = control_harness(make_harness)
    caller, call = harness.answered_call("1000")
    status, body = harness.api("POST", f"/api/calls/{call.call_id}/transfer", {"to": "nowhere"})
    assert status == 400 and "no queue or dialplan number 'nowhere'" in body["message"]
    assert harness.api("POST", f"/api/calls/{call.call_id}/transfer", {})[0] == 400
    assert harness.api("POST", "/api/calls/no-such-call/transfer", {"to": "q"})[0] == 404


def test_membership_added_at_runtime_takes_a_waiting_call_at_once_and_survives_a_reload(make_harness):
    """1001 belongs to q2 only; a caller waits in q. Adding 1001 to q (API) offers it the call at once;
    a reload keeps the change; removing it takes 1001 out of q again."""
    harness = control_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    harness.advance(1)
    assert harness.queue_waiting("q") == 1
    assert harness.api("POST", "/api/agents/1001/queues", {"queue": "q", "penalty": 2}) == (
        200, {"id": "1001", "queue": "q", "penalty": 2, "result": "added"})
    offer = phone.take_offer()
    assert offer.header("X-ACD-Queue") == "q"
    assert harness.logged(r"agent=1001 added queue q penalty 2 by API \(until restart\)")
    assert harness.reload()
    queues = {q["queue"]: q for q in harness.api("GET", "/api/queues")[1]}
    assert queues["q"]["members"] == {"1001": 2}, "a reload keeps the runtime change"
    assert harness.api("DELETE", "/api/agents/1001/queues/q")[1]["result"] == "removed"
    queues = {q["queue"]: q for q in harness.api("GET", "/api/queues")[1]}
    assert queues["q"]["members"] == {}
    agent = next(a for a in harness.api("GET", "/api/agents")[1] if a["id"] == "1001")
    assert agent["queues"] == {"q2": 0}


def test_membership_changes_are_checked(make_harness):
    harness = control_harness(make_harness)
    assert harness.api("POST", "/api/agents/1001/queues", {"queue": "nope"})[0] == 404
    assert harness.api("POST", "/api/agents/9999/queues", {"queue": "q"})[0] == 404
    assert harness.api("POST", "/api/agents/1001/queues", {"queue": "q", "penalty": -1})[0] == 400
    assert harness.api("DELETE", "/api/agents/1001/queues/q")[0] == 409
