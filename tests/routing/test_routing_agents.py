"""Agent lifecycle: the state table, wrap-up, pause, ring-no-answer, auto-pause, logout."""

from __future__ import annotations

import pytest

from acd.routing import (
    TRANSITIONS,
    AgentLoggedOut,
    AgentPauseRequested,
    AgentReadyRequested,
    AgentState,
    AgentStateChanged,
    CallArrived,
    CallEnded,
    CallWaiting,
    IllegalAgentTransition,
    Offer,
    OfferAnswered,
    OfferCancelled,
    OfferDeclined,
    Trigger,
    state_diagram,
)
from acd.routing.agent_states import next_agent_state
from routing_helpers import engine, login, offered_to, only


def test_state_table_names_every_state_and_only_offers_from_available():
    assert set(TRANSITIONS) == set(AgentState)
    offering = [state for state, edges in TRANSITIONS.items() if Trigger.OFFER in edges]
    assert offering == [AgentState.AVAILABLE]


def test_illegal_transition_names_agent_trigger_and_state():
    with pytest.raises(IllegalAgentTransition) as info:
        next_agent_state("alice", AgentState.PAUSED, Trigger.ANSWER)
    assert info.value.error_id == "illegal-agent-transition"
    assert "alice" in str(info.value) and "answer" in str(info.value) and "paused" in str(info.value)


def test_state_diagram_is_generated_from_the_table():
    diagram = state_diagram()
    assert diagram.startswith("stateDiagram-v2")
    assert "available --> offered: offer" in diagram


def test_full_call_cycle_goes_through_wrap_up_then_available():
    router = engine(wrap_up_seconds=30)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 3)
    decisions = router.handle(CallEnded(call_id="c1"), 60)
    assert router.agent_view("a").state is AgentState.WRAP_UP
    assert [d.state for d in only(decisions, AgentStateChanged)] == [AgentState.WRAP_UP]
    assert router.next_deadline() == 90
    # A call arriving during wrap-up waits for it to end.
    router.handle(CallArrived(call_id="c2", queue="q"), 70)
    assert router.call_view("c2").state == "waiting"
    assert router.handle_timers(89.9) == []
    decisions = router.handle_timers(90)
    assert offered_to(decisions) == [("c2", "a")]
    assert router.queue_stats("q", 90).average_handle_seconds == pytest.approx(89)


def test_ready_ends_wrap_up_early():
    router = engine(wrap_up_seconds=30)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 2)
    router.handle(CallEnded(call_id="c1"), 10)
    router.handle(AgentReadyRequested(agent_id="a"), 12)
    assert router.agent_view("a").state is AgentState.AVAILABLE
    assert router.next_deadline() is None


def test_paused_agent_gets_no_offer_until_ready():
    router = engine()
    login(router, "a", 0)
    router.handle(AgentPauseRequested(agent_id="a", reason="lunch"), 1)
    assert router.agent_view("a").pause_reason == "lunch"
    decisions = router.handle(CallArrived(call_id="c1", queue="q"), 2)
    assert only(decisions, CallWaiting)[0].position == 1
    decisions = router.handle(AgentReadyRequested(agent_id="a"), 5)
    assert offered_to(decisions) == [("c1", "a")]


def test_login_paused_takes_no_call():
    router = engine()
    login(router, "a", 0, paused="training")
    assert router.agent_view("a").state is AgentState.PAUSED
    decisions = router.handle(CallArrived(call_id="c1", queue="q"), 1)
    assert offered_to(decisions) == []


def test_pause_during_a_call_applies_after_wrap_up():
    router = engine(wrap_up_seconds=5)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 2)
    router.handle(AgentPauseRequested(agent_id="a", reason="break"), 3)
    assert router.agent_view("a").state is AgentState.ON_CALL
    assert router.agent_view("a").pending == "pause"
    router.handle(CallEnded(call_id="c1"), 10)
    router.handle(CallArrived(call_id="c2", queue="q"), 11)
    decisions = router.handle_timers(15)
    assert offered_to(decisions) == []
    assert router.agent_view("a").state is AgentState.PAUSED
    assert router.agent_view("a").pause_reason == "break"


def test_logout_during_a_call_applies_after_wrap_up():
    router = engine(wrap_up_seconds=0)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 2)
    router.handle(AgentLoggedOut(agent_id="a"), 3)
    assert router.agent_view("a").state is AgentState.ON_CALL
    decisions = router.handle(CallEnded(call_id="c1"), 10)
    assert only(decisions, AgentStateChanged)[-1].state is AgentState.LOGGED_OUT
    assert router.agent_ids() == []


def test_ring_no_answer_cancels_and_offers_the_next_agent():
    router = engine(ring_timeout_seconds=15, max_missed_offers=3)
    login(router, "a", 0)
    login(router, "b", 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 10)
    assert router.next_deadline() == 25
    decisions = router.handle_timers(25)
    (cancel,) = only(decisions, OfferCancelled)
    assert (cancel.agent_id, cancel.reason) == ("a", "ring-no-answer")
    assert offered_to(decisions) == [("c1", "b")]
    assert "1 skipped after missing this call" in only(decisions, Offer)[0].explanation
    assert router.agent_view("a").state is AgentState.AVAILABLE
    assert router.agent_view("a").missed_offers == 1


def test_missed_call_is_reoffered_to_the_same_agent_after_the_avoid_window():
    router = engine(ring_timeout_seconds=10, reoffer_after_seconds=20, max_missed_offers=5)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 0)
    decisions = router.handle_timers(10)
    assert offered_to(decisions) == []
    assert router.next_deadline() == 30
    decisions = router.handle_timers(30)
    assert offered_to(decisions) == [("c1", "a")]


def test_auto_pause_after_consecutive_misses():
    router = engine(ring_timeout_seconds=10, max_missed_offers=2, reoffer_after_seconds=1)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 0)
    router.handle_timers(10)  # miss 1
    router.handle_timers(11)  # re-offered after the avoid window
    decisions = router.handle_timers(21)  # miss 2 -> paused
    changes = only(decisions, AgentStateChanged)
    assert changes[-1].state is AgentState.PAUSED
    assert "auto-pause" in changes[-1].reason
    assert router.agent_view("a").pause_reason == "auto-pause: 2 missed offers"
    assert router.call_view("c1").state == "waiting"


def test_answer_resets_the_consecutive_miss_count_not_the_missed_offers():
    """`consecutive_misses` (what auto-pause compares) starts again at an answer; `missed_offers`
    counts every miss since login, as the queue log's RINGNOANSWER lines do."""
    router = engine(ring_timeout_seconds=10, max_missed_offers=2, reoffer_after_seconds=0)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 0)
    router.handle_timers(10)
    router.handle_timers(10)
    view = router.agent_view("a")
    assert (view.missed_offers, view.consecutive_misses) == (1, 1)
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 12)
    view = router.agent_view("a")
    assert (view.missed_offers, view.consecutive_misses) == (1, 0)


def test_decline_counts_as_a_miss_and_moves_on():
    router = engine(max_missed_offers=1)
    login(router, "a", 0)
    login(router, "b", 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 5)
    decisions = router.handle(OfferDeclined(call_id="c1", agent_id="a", reason="busy"), 6)
    assert offered_to(decisions) == [("c1", "b")]
    assert router.agent_view("a").state is AgentState.PAUSED


def test_logout_while_ringing_cancels_and_requeues_without_a_miss():
    router = engine()
    login(router, "a", 0)
    login(router, "b", 1)
    router.handle(AgentPauseRequested(agent_id="b", reason="x"), 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 2)
    decisions = router.handle(AgentLoggedOut(agent_id="a"), 3)
    assert only(decisions, OfferCancelled)[0].reason == "agent-logged-out"
    assert router.call_view("c1").state == "waiting"
    decisions = router.handle(AgentReadyRequested(agent_id="b"), 4)
    assert offered_to(decisions) == [("c1", "b")]


def test_pause_while_ringing_requeues_the_call():
    router = engine()
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 2)
    decisions = router.handle(AgentPauseRequested(agent_id="a", reason="x"), 3)
    assert only(decisions, OfferCancelled)[0].reason == "agent-paused"
    assert router.call_view("c1").state == "waiting"
    assert router.agent_view("a").missed_offers == 0


def test_agent_in_two_queues_takes_the_oldest_call_across_them():
    from acd.routing import QueueConfig

    router = engine(QueueConfig(name="sales"), QueueConfig(name="support"))
    router.handle(CallArrived(call_id="s1", queue="support"), 1)
    router.handle(CallArrived(call_id="x1", queue="sales"), 2)
    decisions = login(router, "a", 3, queues={"sales": 0, "support": 0})
    assert offered_to(decisions) == [("s1", "a")]


def test_double_booking_is_impossible():
    router = engine()
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    decisions = router.handle(CallArrived(call_id="c2", queue="q"), 2)
    assert offered_to(decisions) == []
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 3)
    assert router.agent_view("a").call_id == "c1"
    assert router.call_view("c2").state == "waiting"
