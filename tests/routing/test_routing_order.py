"""Queue order that explains and steers itself: `Offer.order` says why this call went first,
`CallChanged` re-sorts a waiting call at once."""

from __future__ import annotations

import pytest

from acd.routing import (
    CallArrived,
    CallChanged,
    CallEnded,
    CallNotWaiting,
    CallWaiting,
    Offer,
    OfferAnswered,
    QueueConfig,
    RoutingConfig,
    RoutingEngine,
    UnknownQueue,
)
from routing_helpers import SKILLS, engine, login, offered_to, only


def busy_agent(router, now: float = 0.0):
    """One agent, kept busy with call 'c0' so that later callers wait."""
    login(router, "a", now, skills={"billing": 3})
    router.handle(CallArrived(call_id="c0", queue="q"), now)
    router.handle(OfferAnswered(call_id="c0", agent_id="a"), now)


def test_a_vip_served_before_four_waiting_callers_says_why():
    router = engine(wrap_up_seconds=0)
    busy_agent(router)
    for n in range(1, 5):
        router.handle(CallArrived(call_id=f"c{n}", queue="q"), n)
    decisions = router.handle(CallArrived(call_id="vip", queue="q", priority=5), 10)
    assert router.waiting_status("vip", 10).position == 1
    offer = only(router.handle(CallEnded(call_id="c0"), 20), Offer)[0]
    assert offer.call_id == "vip"
    assert offer.order.startswith("1st of 5 in line for q, priority 5, waited 10s")
    assert "before c1: priority 5 > 0: worth 300s of waiting (60s per level), more than the 9s c1 waited longer" \
        in offer.order
    assert only(decisions, CallWaiting)[0].position == 1


def test_calls_passed_over_are_named_with_the_reason():
    router = engine(wrap_up_seconds=0)
    busy_agent(router)
    router.handle(CallArrived(call_id="expert", queue="q", requirements={"billing": 7}), 1)
    router.handle(CallArrived(call_id="plain", queue="q"), 2)
    router.handle(CallArrived(call_id="later", queue="q"), 3)
    offer = only(router.handle(CallEnded(call_id="c0"), 10), Offer)[0]
    assert offer.call_id == "plain"
    assert offer.order == ("2nd of 3 in line for q, priority 0, waited 8s; passed over expert (needs billing>=7, "
                           "a has 3); before later: same priority, waited 1s longer")


def test_strict_tiers_are_named_as_such():
    router = engine(aging=None, wrap_up_seconds=0)
    busy_agent(router)
    router.handle(CallArrived(call_id="old", queue="q"), 1)
    router.handle(CallArrived(call_id="vip", queue="q", priority=2), 500)
    offer = only(router.handle(CallEnded(call_id="c0"), 600), Offer)[0]
    assert offer.call_id == "vip" and "priority 2 > 0 (strict priority tiers)" in offer.order


def test_raising_a_waiting_callers_priority_moves_them_ahead_and_updates_the_others():
    router = engine(wrap_up_seconds=0)
    busy_agent(router)
    for n in range(1, 4):
        router.handle(CallArrived(call_id=f"c{n}", queue="q"), n)
    decisions = router.handle(CallChanged(call_id="c3", priority=9), 5)
    moved = {d.call_id: d.position for d in only(decisions, CallWaiting)}
    assert moved == {"c3": 1, "c1": 2, "c2": 3}  # everyone whose place changed hears it
    assert router.call_view("c3").priority == 9
    assert offered_to(router.handle(CallEnded(call_id="c0"), 6)) == [("c3", "a")]


def test_lowering_priority_back_keeps_the_arrival_order():
    router = engine(wrap_up_seconds=0)
    busy_agent(router)
    router.handle(CallArrived(call_id="c1", queue="q", priority=3), 1)
    router.handle(CallArrived(call_id="c2", queue="q"), 2)
    router.handle(CallChanged(call_id="c1", priority=0), 3)
    assert [router.waiting_status(c, 3).position for c in ("c1", "c2")] == [1, 2]


def test_relaxing_requirements_or_moving_queue_offers_at_once():
    router = RoutingEngine(RoutingConfig(queues=(QueueConfig(name="q"), QueueConfig(name="other")), skills=SKILLS))
    login(router, "b", 0, queues={"other": 0}, skills={"billing": 2})
    router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 5}), 1)
    assert offered_to(router.handle(CallChanged(call_id="c1", queue="other"), 2)) == []
    decisions = router.handle(CallChanged(call_id="c1", requirements={"billing": 1}), 3)
    assert offered_to(decisions) == [("c1", "b")]
    assert router.call_view("c1").queue == "other"


def test_changing_a_connected_or_unknown_call_is_refused_and_changes_nothing():
    router = engine()
    busy_agent(router)
    with pytest.raises(CallNotWaiting):
        router.handle(CallChanged(call_id="c0", priority=5), 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    with pytest.raises(UnknownQueue):
        router.handle(CallChanged(call_id="c1", priority=5, queue="nope"), 2)
    assert router.call_view("c1").priority == 0
