"""An agent whose phone went away is logged in but unreachable: offered nothing, counted by no
`refuse` queue, shown as such; a REGISTER makes them reachable and they get the next call.
Offers that never reach the phone are not the agent's misses (issue 17, item 3).
"""

from __future__ import annotations

from acd.report import build_report
from acd.show import show_agents

from .harness import queue_files

REFUSE = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 0, when_no_agents: refuse, max_missed_offers: 1}"
JOIN = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 0, when_no_agents: join, max_missed_offers: 1}"


def harness_for(make_harness, queue: str, agents=("1001",)):
    return make_harness(extra_files=queue_files({"q": queue}, {agent: "{q: 0}" for agent in agents}))


def refused_calls(harness) -> list:
    return harness.logged(r"refused by queue q: .*\(no-agents-logged-in\)")


def test_unregistered_agent_is_never_offered_refuse_queue_refuses_and_the_agent_comes_back(make_harness):
    """*45, then REGISTER expires=0: still logged in (available, reachable false, in the API, the
    history and `acd show`), the refuse queue turns the caller away at once without ringing the
    phone; a new REGISTER makes the agent reachable and they get the next call."""
    harness = harness_for(make_harness, REFUSE)
    phone = harness.logged_in_agent("1001")
    wallboard = harness.event_stream("wallboard")
    assert phone.register(expires=0).status == 200
    info = harness.agent_info("1001")
    assert (info["state"], info["reachable"], info["registered"]) == ("available", False, False)
    assert [(kind, event["reachable"], event["reason"]) for kind, event in wallboard()] == [
        ("agent-reachability", False, "phone unreachable: unregistered")]
    assert "available (unreachable)" in show_agents(harness.api("GET", "/api/agents")[1], now=harness.reactor.seconds())
    assert harness.records("select state, reason from agent_states where agent_id = '1001' order by id")[-1] == \
        ("available", "phone unreachable: unregistered")
    assert harness.metric("acd_agents_unreachable") == 1
    queue = next(q for q in harness.api("GET", "/api/queues")[1] if q["queue"] == "q")
    assert (queue["agents"]["available"], queue["agents"]["unreachable"]) == (0, 1)

    caller, call = harness.answered_call("3000")
    harness.advance(0.1)
    assert len(refused_calls(harness)) == 1, "refused at once, not after waiting"
    assert harness.logged(r"no agent is logged in to q with a reachable phone \(1 logged in, unreachable\)")
    harness.advance(3)
    assert not phone.requests("INVITE"), "never offered"
    assert [row[0] for row in harness.queue_log(call.call_id)] == []

    assert phone.register().status == 200
    assert harness.agent_info("1001")["reachable"] is True
    caller2, call2 = harness.answered_call("3000", port=5072)
    phone.take_offer()
    assert harness.agent_state("1001") == "on_call"
    assert len(refused_calls(harness)) == 1


def test_registration_expiry_makes_a_waiting_caller_wait_for_the_agents_return(make_harness):
    """The registrar's expiry sweep: the agent becomes unreachable ("registration expired"); a
    caller of a `join` queue waits, and is offered to the agent as soon as it registers again."""
    harness = harness_for(make_harness, JOIN)
    phone = harness.logged_in_agent("1001")
    assert phone.register(expires=60).status == 200
    harness.advance(61)
    assert harness.agent_info("1001")["reachable"] is False
    assert harness.logged(r"agent=1001 phone unreachable: registration expired \(state available\)")
    harness.answered_call("3000")
    harness.advance(2)
    assert harness.queue_waiting("q") == 1 and not phone.requests("INVITE")
    assert phone.register().status == 200
    phone.take_offer()


def test_an_offer_failing_at_once_is_no_miss_and_the_next_agent_gets_the_call(make_harness):
    """480 from the phone: the agent is unreachable, not auto-paused (max_missed_offers 1), no
    RINGNOANSWER, `missed_offers` 0; the second agent is offered the call at once."""
    harness = harness_for(make_harness, JOIN, agents=("1001", "1002"))
    first = harness.logged_in_agent("1001")
    second = harness.logged_in_agent("1002")
    caller, call = harness.answered_call("3000")
    first.offer().decline(480)
    second.take_offer()
    info = harness.agent_info("1001")
    assert (info["state"], info["reachable"], info["missed_offers"]) == ("available", False, 0)
    assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "CONNECT"]
    assert harness.metric("acd_offers_total", queue="q", result="unreachable") == 1


def test_a_busy_agent_misses_the_offer_in_the_api_and_in_the_report_alike(make_harness):
    """486: a miss by the agent, RINGNOANSWER in the queue log as Asterisk writes for a busy member;
    the report's missed offers and the API's `missed_offers` agree."""
    harness = harness_for(make_harness, JOIN, agents=("1001", "1002"))
    first = harness.logged_in_agent("1001")
    second = harness.logged_in_agent("1002")
    caller, call = harness.answered_call("3000")
    first.offer().decline(486)
    second.take_offer()
    info = harness.agent_info("1001")
    assert (info["state"], info["reachable"], info["missed_offers"]) == ("paused", True, 1)
    assert [row[0] for row in harness.queue_log(call.call_id)] == ["ENTERQUEUE", "RINGNOANSWER", "CONNECT"]
    harness.flush_records()
    report = build_report(harness.config.data_dir / "records.db", 0, harness.reactor.seconds() + 1)
    assert {agent.agent: agent.missed for agent in report.agents}["1001"] == info["missed_offers"]


def test_offers_to_a_phone_without_registration_fail_without_pausing(make_harness):
    """The issue's case: logged in from the API with no phone registered (or the binding gone
    between two refreshes): nothing is rung, the agent is not paused, the caller waits."""
    harness = harness_for(make_harness, JOIN)
    status, body = harness.api("POST", "/api/agents/1001/login")
    assert status == 200, body
    info = harness.agent_info("1001")
    assert (info["state"], info["reachable"]) == ("available", False)
    harness.answered_call("3000")
    harness.advance(6)
    info = harness.agent_info("1001")
    assert (info["state"], info["missed_offers"]) == ("available", 0)
    assert harness.queue_waiting("q") == 1


def test_a_binding_gone_unnoticed_fails_the_offer_at_once(make_harness):
    """Between a binding's expiry and the registrar's sweep the engine still thinks the phone is
    reachable: the offer finds no contact and fails at once (not a miss), the agent turns unreachable."""
    harness = harness_for(make_harness, JOIN)
    phone = harness.logged_in_agent("1001")
    registrar = harness.running.registrar
    registrar.table.expire(harness.reactor.seconds() + 10_000)  # gone, the sweep not yet run
    harness.answered_call("3000")
    harness.advance(0.5)
    assert not phone.requests("INVITE")
    info = harness.agent_info("1001")
    assert (info["state"], info["reachable"], info["missed_offers"]) == ("available", False, 0)
    assert harness.logged(r"agent=1001 phone unreachable: not registered")
    assert harness.metric("acd_offers_total", queue="q", result="unreachable") == 1
