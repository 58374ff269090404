"""Every kind of call leaves one complete record, and the records agree with the live counters.

A callback, a blind transfer and an abandoned caller each end as one CDR with its true outcome;
`acd.reconcile` compares the records of this run with `/metrics` and `/api/queues` (the same
comparison `acd report --check` prints) and `acd report` counts each call once.
"""

from __future__ import annotations

import pytest

from acd.reconcile import compare, current_run_start, live_figures, record_figures
from acd.report import build_report

from .harness import queue_files

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join, max_missed_offers: 1}"


def differences(harness) -> list:
    """What `acd report --check` would print for this server now."""
    harness.flush_records()
    db = harness.config.data_dir / "records.db"
    status, queues = harness.api("GET", "/api/queues")
    assert status == 200
    return compare(record_figures(db, current_run_start(db)), live_figures(harness.metrics_text(), queues))


def report(harness):
    harness.flush_records()
    return build_report(harness.config.data_dir / "records.db", 0.0, harness.reactor.seconds() + 1)


def callback_waiting(make_harness):
    """Caller 5551 asks for a callback in queue q (no agent logged in yet) and is hung up on."""
    harness = make_harness(extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}), trunk_outbound="127.0.0.1:5090")
    customer = harness.phone(("127.0.0.1", 5090), "trunk")
    caller, call = harness.answered_call("3000")
    harness.advance(1)
    call.info_digit("*")
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=7)
    call.respond(bye, 200)
    return harness, customer, call


def test_callback_answered_by_an_agent_is_one_answered_call_with_its_agent_talk_and_wrap_up(make_harness):
    """The caller's record stays open after they hang up to be called back; once 1001 takes the
    callback and the customer answers, it gets the agent, the connect time (the bridge after the
    greeting), talk, wrap-up and the outcome of the conversation; its wait ends at the request.
    The report counts one answered call for queue q and agent 1001, and the counters agree."""
    harness, customer, call = callback_waiting(make_harness)
    requested = harness.reactor.seconds()
    record = harness.call_record(call.call_id)
    assert record["ended_at"] is None and record["callback_requested_at"] is not None
    assert harness.metric("acd_calls_total", trunk="test", result="callback") == 0
    phone = harness.logged_in_agent("1001")
    offer = phone.take_offer()
    callback = customer.incoming(timeout=1)
    callback.ring()
    callback.answer()
    callback.expect_ack()
    harness.advance(3.2)  # callback_intro, then the bridge
    harness.advance(5)
    callback.bye()
    offer.respond(offer.expect_request("BYE"), 200)
    harness.advance(3)  # wrap-up (2 s) ends
    record = harness.call_record(call.call_id)
    assert record["agent"] == "1001" and record["outcome"] == "caller_hangup"
    assert record["served_queue"] == "q" and record["entry_position"] == 1
    assert record["priority"] == 0 and record["priority_source"] == "flow"
    assert record["callback_requested_at"] <= requested < record["connected_at"] < record["ended_at"]
    assert record["wait_seconds"] == pytest.approx(record["callback_requested_at"] - record["queued_at"])
    assert record["talk_seconds"] == pytest.approx(record["ended_at"] - record["connected_at"]) and 5 <= record["talk_seconds"] < 8.2
    assert record["wrap_up_seconds"] == pytest.approx(2, abs=0.2)
    assert harness.metric("acd_queue_answered_total", queue="q") == 1
    assert harness.metric("acd_calls_total", trunk="test", result="caller_hangup") == 1
    kpis = report(harness)
    assert (kpis.calls.calls, kpis.calls.answered, kpis.calls.callbacks_answered) == (1, 1, 1)
    assert dict(kpis.calls.outcomes) == {"caller_hangup": 1}
    (queue,) = kpis.queues
    assert (queue.offered, queue.answered, queue.callbacks, queue.abandoned) == (1, 1, 1, 0)
    (agent,) = kpis.agents
    assert agent.agent == "1001" and agent.calls == 1
    assert agent.aht_seconds == pytest.approx(7, abs=1.5), "5 s talk + 2 s wrap-up"
    assert differences(harness) == []


def test_callback_the_customer_does_not_answer_ends_callback_failed_with_the_agent(make_harness):
    """The customer declines our call back: outcome "callback_failed", the agent who took it is on
    the record, nothing counts as answered in the records nor live (the engine takes the agent's
    answer back: not answered in the queue, not a call the agent handled), and the check agrees."""
    harness, customer, call = callback_waiting(make_harness)
    phone = harness.logged_in_agent("1001")
    offer = phone.take_offer()
    callback = customer.incoming(timeout=1)
    callback.decline(486)
    callback.expect_ack(timeout=1)
    offer.respond(offer.expect_request("BYE"), 200)
    harness.advance(3)
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["agent"], record["connected_at"]) == ("callback_failed", "1001", None)
    assert harness.metric("acd_calls_total", trunk="test", result="callback_failed") == 1
    assert report(harness).calls.answered == 0
    status, queues = harness.api("GET", "/api/queues")
    assert next(q for q in queues if q["answered"] is not None and q["offered"])["answered"] == 0
    status, agents = harness.api("GET", "/api/agents")
    assert next(a for a in agents if a["id"] == "1001")["calls_handled"] == 0
    assert differences(harness) == []


def test_answered_abandoned_and_transferred_calls_agree_with_the_counters(make_harness):
    """One caller talks to 1001 who transfers them to queue q2 (answered there by 1002), one
    abandons while waiting: outcomes "transferred" (with the target) and "caller_hangup", each
    agent handled one call, and the records agree with /metrics and /api/queues."""
    harness = make_harness(extra_files=queue_files({"q": Q, "q2": Q}, {"1001": "{q: 0}", "1002": "{q2: 0}"}))
    first = harness.logged_in_agent("1001")
    second = harness.logged_in_agent("1002")
    caller, call = harness.answered_call("3000")
    offer = first.take_offer()
    harness.advance(2)
    _, waiting = harness.answered_call("3000", port=5072)
    harness.advance(6)
    waiting.bye()
    harness.advance(0.5)
    offer.refer("q2")
    offer.respond(offer.expect_request("NOTIFY", timeout=1), 200)
    offer.respond(offer.expect_request("BYE", timeout=1), 200)
    transferred = second.take_offer()
    harness.advance(3)
    call.bye()
    harness.advance(3)
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["transfer_target"], record["agent"]) == ("transferred", "q2", "1002")
    assert harness.call_record(waiting.call_id)["outcome"] == "caller_hangup"
    kpis = report(harness)
    assert {a.agent: a.calls for a in kpis.agents} == {"1001": 1, "1002": 1}
    assert dict(kpis.calls.outcomes) == {"transferred": 1, "caller_hangup": 1}
    assert kpis.calls.answered == 1
    assert transferred.call_id
    assert differences(harness) == []
