"""AcdService's half of the cluster rule (acd/calls/cluster_routing.py), on the one-node shell.

In a cluster, decisions reach AcdService with a `Scope`: it acts only on those of the calls it
hosts, writes the agent-level records only when the scope says this node writes them, and undoes
what it did for an event the leader refused later. These tests hand AcdService such decisions
directly (the routing authority's callback, `AcdService._apply`), as ClusterRouting does; the
authority itself is tested with PostgreSQL in test_cluster_routing.py.
"""

from __future__ import annotations

from acd.calls.routing_authority import Scope
from acd.routing import AgentState, AgentStateChanged, CallArrived, Offer

from .harness import queue_files

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join}"


def test_decisions_for_calls_hosted_elsewhere_are_not_acted_on_and_agent_writes_are_left_to_one_node(make_harness):
    harness = make_harness(extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}))
    phone = harness.agent("1001")
    assert phone.register().status == 200
    assert harness.api("GET", "/api/cluster") == (200, {"node_id": None, "role": "single"})  # no `cluster:`
    assert "acd_cluster_is_leader" not in harness.metrics_text()
    decide = harness.running.acd._apply  # the routing authority's callback
    wallboard = harness.event_stream("wallboard")

    decide([AgentStateChanged(agent_id="1001", previous=AgentState.LOGGED_OUT, state=AgentState.AVAILABLE,
                              reason="logged in on another node")], Scope(agent_writes=False, hosted_only=True))
    assert harness.records("select count(*) from agent_states where agent_id = '1001'") == [(0,)]
    assert harness.queue_log() == []
    assert [data["state"] for kind, data in wallboard() if kind == "agent-state"] == ["available"]  # desks here hear it

    decide([Offer(call_id="hosted-elsewhere", agent_id="1001", queue="q", ring_deadline=harness.now + 4,
                  callback=False, explanation="test")], Scope(agent_writes=True, hosted_only=True))
    harness.advance(0.5)
    assert phone.requests("INVITE") == [] and not harness.logged(r"offer agent=1001")


def test_a_caller_whose_arrival_the_leader_refused_goes_back_to_its_flow(make_harness):
    harness = make_harness(extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}))
    caller, call = harness.answered_call("3000")
    harness.advance(1)
    assert harness.queue_waiting("q") == 1
    harness.running.acd._apply([], Scope(event=CallArrived(call_id=call.call_id, queue="q"), hosted_only=True,
                                         error_id="unknown-queue", error="queue 'q' is not configured"))
    harness.advance(0.1)
    assert harness.logged(rf"call={call.call_id} event=queue-failed flow=to_q step=busy")  # on_failure: busy
    harness.advance(5)
    assert caller.expect_request("BYE", call_id=call.call_id)
