"""Call side: line order, priority aging, sticky agent, overflow, callbacks, limits, errors."""

from __future__ import annotations

import pytest

from acd.routing import (
    AgentLoggedIn,
    AgentReadyRequested,
    CallArrived,
    CallbackOffered,
    CallbackRequested,
    CallConnected,
    CallEnded,
    CallOverflowed,
    CallRefused,
    CallWaiting,
    InvalidEvent,
    NoSuchOffer,
    Offer,
    OfferAnswered,
    OverflowStep,
    QueueConfig,
    RoutingError,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
    UnknownSkill,
)
from routing_helpers import engine, login, offered_to, only


def _free_agent_takes(router, agent_id, now):
    """Log `agent_id` in at `now` and return the call it is offered."""
    (offer,) = only(login(router, agent_id, now), Offer)
    return offer.call_id


def test_fifo_within_a_priority():
    router = engine()
    for index in range(5):
        router.handle(CallArrived(call_id=f"c{index}", queue="q"), index)
    taken = [_free_agent_takes(router, f"a{index}", 10 + index) for index in range(5)]
    assert taken == ["c0", "c1", "c2", "c3", "c4"]


def test_higher_priority_goes_first_when_waits_are_close():
    router = engine(aging=60)
    router.handle(CallArrived(call_id="normal", queue="q", priority=0), 0)
    router.handle(CallArrived(call_id="vip", queue="q", priority=2), 30)
    assert _free_agent_takes(router, "a", 40) == "vip"


def test_aging_prevents_starvation_of_low_priority_callers():
    router = engine(aging=60)
    router.handle(CallArrived(call_id="old", queue="q", priority=0), 0)
    router.handle(CallArrived(call_id="vip", queue="q", priority=1), 61)
    assert _free_agent_takes(router, "a", 62) == "old"


def test_strict_priority_without_aging():
    router = engine(aging=None)
    router.handle(CallArrived(call_id="old", queue="q", priority=0), 0)
    router.handle(CallArrived(call_id="vip", queue="q", priority=1), 5000)
    assert _free_agent_takes(router, "a", 5001) == "vip"


def test_position_and_estimated_wait_follow_staffing_and_handle_time():
    router = engine(initial_handle_seconds=120)
    login(router, "a", 0)
    login(router, "b", 0)
    router.handle(CallArrived(call_id="c0", queue="q"), 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    (waiting,) = only(router.handle(CallArrived(call_id="c2", queue="q"), 2), CallWaiting)
    assert waiting.position == 1
    assert waiting.estimated_wait_seconds == pytest.approx(60)  # 1 * 120 s / 2 agents
    (waiting,) = only(router.handle(CallArrived(call_id="c3", queue="q"), 3), CallWaiting)
    assert (waiting.position, waiting.estimated_wait_seconds) == (2, pytest.approx(120))
    assert router.waiting_status("c3", 4).position == 2


def test_no_estimate_when_nobody_staffs_the_queue():
    router = engine()
    (waiting,) = only(router.handle(CallArrived(call_id="c", queue="q"), 0), CallWaiting)
    assert waiting.estimated_wait_seconds is None


def test_sticky_agent_gets_the_call_first_even_when_others_are_free():
    router = engine(sticky_seconds=30)
    login(router, "owner", 0)
    login(router, "other", 0)
    router.handle(CallArrived(call_id="busy", queue="q", preferred_agent="owner"), 1)
    router.handle(OfferAnswered(call_id="busy", agent_id="owner"), 2)
    decisions = router.handle(CallArrived(call_id="c", queue="q", preferred_agent="owner"), 5)
    assert offered_to(decisions) == []
    assert "preferred agent owner" in only(decisions, CallWaiting)[0].explanation
    decisions = router.handle(CallEnded(call_id="busy"), 10)
    decisions += router.handle_timers(20)  # owner's wrap-up (10 s) ends
    (offer,) = only(decisions, Offer)
    assert offer.agent_id == "owner" and "preferred agent" in offer.explanation


def test_sticky_window_expires_to_the_whole_queue():
    router = engine(sticky_seconds=30)
    login(router, "owner", 0, paused="meeting")
    login(router, "other", 0)
    router.handle(CallArrived(call_id="c", queue="q", preferred_agent="owner"), 5)
    assert router.next_deadline() == 35
    decisions = router.handle_timers(35)
    assert offered_to(decisions) == [("c", "other")]


def test_sticky_is_skipped_when_the_preferred_agent_is_not_logged_in():
    router = engine(sticky_seconds=30)
    login(router, "other", 0)
    decisions = router.handle(CallArrived(call_id="c", queue="q", preferred_agent="ghost"), 5)
    assert offered_to(decisions) == [("c", "other")]


def test_overflow_relaxes_requirements_after_the_wait():
    step = OverflowStep(after_seconds=60, relax=(("billing", 4),))
    router = engine(strategy="skills", overflow=(step,))
    login(router, "junior", 0, skills={"billing": 4})
    router.handle(CallArrived(call_id="c", queue="q", requirements={"billing": 8}), 0)
    assert router.next_deadline() == 60
    decisions = router.handle_timers(60)
    (overflowed,) = only(decisions, CallOverflowed)
    assert overflowed.requirements == (("billing", 4),)
    assert offered_to(decisions) == [("c", "junior")]


def test_overflow_adds_queues_and_keeps_the_callers_seniority():
    first = QueueConfig(
        name="tier1",
        overflow=(
            OverflowStep(after_seconds=30, add_queues=("tier2",)),
            OverflowStep(after_seconds=90, offer_callback=True),
        ),
    )
    router = engine(first, QueueConfig(name="tier2"))
    router.handle(CallArrived(call_id="t1", queue="tier1"), 0)
    router.handle(CallArrived(call_id="t2", queue="tier2"), 10)
    router.handle_timers(30)
    assert router.call_view("t1").queues == ("tier1", "tier2")
    (offer,) = only(login(router, "b", 40, queues={"tier2": 0}), Offer)
    assert offer.call_id == "t1" and "overflow from tier1" in offer.explanation
    router.handle(OfferAnswered(call_id="t1", agent_id="b"), 41)
    router.handle(CallArrived(call_id="t3", queue="tier1"), 41)
    decisions = router.handle_timers(131)
    assert only(decisions, CallbackOffered)[0].call_id == "t3"


def test_callback_keeps_its_place_and_is_flagged_on_the_offer():
    router = engine()
    router.handle(CallArrived(call_id="c0", queue="q"), 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    (waiting,) = only(router.handle(CallbackRequested(call_id="c0"), 2), CallWaiting)
    assert waiting.position == 1
    (offer,) = only(login(router, "a", 3), Offer)
    assert (offer.call_id, offer.callback) == ("c0", True)
    (connected,) = only(router.handle(OfferAnswered(call_id="c0", agent_id="a"), 4), CallConnected)
    assert connected.callback


def test_a_callback_whose_customer_was_not_reached_is_neither_answered_nor_handled():
    """The agent answered the callback, but the customer's line refused it: CallEnded(reached=False)
    takes the answer back, so the queue and the agent count only calls someone talked to."""
    router = engine(service_level_seconds=20)
    router.handle(CallArrived(call_id="cb", queue="q"), 0)
    router.handle(CallbackRequested(call_id="cb"), 1)
    login(router, "a", 2)
    router.handle(OfferAnswered(call_id="cb", agent_id="a"), 3)
    router.handle(CallEnded(call_id="cb", reached=False), 5)
    stats = router.queue_stats("q", 5)
    assert (stats.offered, stats.answered, stats.answered_within_service_level) == (1, 0, 0)
    assert router.agent_view("a").calls_handled == 0


def test_abandonment_and_service_level_are_counted():
    router = engine(service_level_seconds=20, abandon_grace_seconds=5)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="fast", queue="q"), 0)
    router.handle(OfferAnswered(call_id="fast", agent_id="a"), 3)
    router.handle(CallArrived(call_id="quick-hangup", queue="q"), 4)
    router.handle(CallEnded(call_id="quick-hangup"), 6)  # within grace: not counted
    router.handle(CallArrived(call_id="gave-up", queue="q"), 10)
    router.handle(CallEnded(call_id="gave-up"), 100)
    stats = router.queue_stats("q", 100)
    assert (stats.answered, stats.answered_within_service_level, stats.abandoned) == (1, 1, 1)
    assert stats.service_level == pytest.approx(0.5)
    assert stats.offered == 3


def test_abandoning_while_ringing_frees_the_agent():
    router = engine()
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c", queue="q"), 1)
    router.handle(CallArrived(call_id="d", queue="q"), 2)
    decisions = router.handle(CallEnded(call_id="c"), 3)
    assert offered_to(decisions) == [("d", "a")]


def test_queue_full_is_refused_with_a_stable_id():
    router = engine(max_waiting=2)
    router.handle(CallArrived(call_id="c0", queue="q"), 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 0)
    (refused,) = only(router.handle(CallArrived(call_id="c2", queue="q"), 0), CallRefused)
    assert refused.error_id == "queue-full"
    assert router.call_ids() == ["c0", "c1"]


def test_no_agents_logged_in_can_refuse_or_join():
    refusing = engine(when_no_agents="refuse")
    (refused,) = only(refusing.handle(CallArrived(call_id="c", queue="q"), 0), CallRefused)
    assert refused.error_id == "no-agents-logged-in"
    login(refusing, "a", 1, paused="lunch")  # logged in, paused: the call may wait
    assert only(refusing.handle(CallArrived(call_id="c", queue="q"), 2), CallWaiting)
    joining = engine(when_no_agents="join")
    assert only(joining.handle(CallArrived(call_id="c", queue="q"), 0), CallWaiting)


@pytest.mark.parametrize(
    ("event", "error", "error_id"),
    [
        (CallArrived(call_id="c", queue="nope"), UnknownQueue, "unknown-queue"),
        (CallArrived(call_id="c", queue="q", requirements={"klingon": 3}), UnknownSkill, "unknown-skill"),
        (AgentLoggedIn(agent_id="x", queues={"nope": 0}), UnknownQueue, "unknown-queue"),
        (AgentLoggedIn(agent_id="x", queues={"q": 0}, skills={"klingon": 1}), UnknownSkill, "unknown-skill"),
        (AgentReadyRequested(agent_id="ghost"), UnknownAgent, "no-such-agent"),
        (CallEnded(call_id="ghost"), UnknownCall, "no-such-call"),
        (OfferAnswered(call_id="waiting", agent_id="a"), NoSuchOffer, "no-such-offer"),
    ],
)
def test_bad_input_raises_a_domain_error_and_changes_nothing(event, error, error_id):
    router = engine()
    login(router, "a", 0, paused="x")
    router.handle(CallArrived(call_id="waiting", queue="q"), 0)
    before = (router.agent_ids(), router.call_ids(), router.next_deadline())
    with pytest.raises(error) as info:
        router.handle(event, 1)
    assert isinstance(info.value, RoutingError) and info.value.error_id == error_id
    assert (router.agent_ids(), router.call_ids(), router.next_deadline()) == before


def test_duplicate_ids_are_rejected():
    router = engine()
    login(router, "a", 0)
    with pytest.raises(RoutingError) as info:
        login(router, "a", 1)
    assert info.value.error_id == "agent-already-logged-in"
    router.handle(CallArrived(call_id="c", queue="q"), 1)
    with pytest.raises(RoutingError) as info:
        router.handle(CallArrived(call_id="c", queue="q"), 2)
    assert info.value.error_id == "call-already-exists"


@pytest.mark.parametrize(
    "build",
    [
        lambda: CallArrived(call_id="", queue="q"),
        lambda: CallArrived(call_id="c", queue="q", priority=10),
        lambda: CallArrived(call_id="c", queue="q", priority=True),
        lambda: CallArrived(call_id="c", queue="q", requirements={"billing": 11}),
        lambda: CallArrived(call_id="c", queue="q", requirements={"billing": 0}),
        lambda: AgentLoggedIn(agent_id="a", queues={}),
        lambda: AgentLoggedIn(agent_id="a", queues={"q": 0}, skills={"billing": "high"}),
    ],
)
def test_events_validate_themselves(build):
    with pytest.raises(InvalidEvent) as info:
        build()
    assert info.value.error_id == "invalid-event"


def test_events_are_frozen_and_keyword_only():
    event = CallArrived(call_id="c", queue="q", requirements={"billing": 3})
    assert event.requirements == (("billing", 3),)
    with pytest.raises(AttributeError):
        event.queue = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallArrived("c", "q")  # type: ignore[misc]
