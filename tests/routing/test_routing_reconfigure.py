"""`RoutingEngine.reconfigure`: every kind of config change applies to the next decision, and
what is under way (waiting places, ringing offers, calls, wrap-ups) is kept."""

from __future__ import annotations

import pytest

from acd.routing import (
    AgentState,
    AgentStateChanged,
    CallArrived,
    CallEnded,
    CallRefused,
    CallWaiting,
    Offer,
    OfferAnswered,
    OfferCancelled,
    OverflowStep,
    QueueConfig,
    RoutingConfig,
    RoutingEngine,
    UnknownQueue,
)
from acd.routing.config import AgentProfile
from acd.routing.decisions import QueueRemoved
from routing_helpers import SKILLS, login, offered_to, only


def config(*queues: QueueConfig, agents=None, aging: float | None = 60.0) -> RoutingConfig:
    return RoutingConfig(queues=queues, skills=SKILLS, priority_aging_seconds=aging, agents=agents)


def profiles(**members) -> tuple[AgentProfile, ...]:
    """profiles(a=({"q": 0}, {"billing": 3})) -> AgentProfile tuple."""
    return tuple(AgentProfile(agent_id=name, queues=tuple(q.items()), skills=tuple(s.items()))
                 for name, (q, s) in members.items())


def answer(router: RoutingEngine, call: str, agent: str, now: float) -> None:
    router.handle(OfferAnswered(call_id=call, agent_id=agent), now)


def test_strategy_change_applies_to_the_next_call():
    """longest-idle picks a (idle since 0); after the switch to fewest-calls, b (0 calls) wins."""
    q = QueueConfig(name="q", wrap_up_seconds=0)
    router = RoutingEngine(config(q))
    login(router, "a", 0)
    login(router, "b", 5)
    router.handle(CallArrived(call_id="c1", queue="q"), 10)
    answer(router, "c1", "a", 11)
    router.handle(CallEnded(call_id="c1"), 12)  # a: 1 call, idle since 12; b idle since 5
    assert router.reconfigure(config(QueueConfig(name="q", wrap_up_seconds=0, strategy="fewest-calls")), 13) == []
    assert offered_to(router.handle(CallArrived(call_id="c2", queue="q"), 14)) == [("c2", "b")]
    answer(router, "c2", "b", 15)
    router.handle(CallEnded(call_id="c2"), 16)
    router.reconfigure(config(QueueConfig(name="q", wrap_up_seconds=0, strategy="ring-all")), 17)
    assert sorted(offered_to(router.handle(CallArrived(call_id="c3", queue="q"), 18))) == [("c3", "a"), ("c3", "b")]


def test_wrap_up_change_applies_to_the_next_call_and_keeps_the_current_one():
    router = RoutingEngine(config(QueueConfig(name="q", wrap_up_seconds=1)))
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    answer(router, "c1", "a", 2)
    router.handle(CallEnded(call_id="c1"), 10)
    assert router.next_deadline() == 11
    router.reconfigure(config(QueueConfig(name="q", wrap_up_seconds=6)), 10.5)
    assert router.next_deadline() == 11  # the wrap-up under way keeps its end
    router.handle_timers(11)
    assert router.agent_view("a").state is AgentState.AVAILABLE
    router.handle(CallArrived(call_id="c2", queue="q"), 20)
    answer(router, "c2", "a", 21)
    router.handle(CallEnded(call_id="c2"), 30)
    assert router.next_deadline() == 36


def test_ring_timeout_change_keeps_the_ringing_offer_deadline():
    router = RoutingEngine(config(QueueConfig(name="q", ring_timeout_seconds=15)))
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.reconfigure(config(QueueConfig(name="q", ring_timeout_seconds=40)), 2)
    assert router.next_deadline() == 16
    assert router.call_view("c1").state == "offered"


def test_skill_change_applies_without_logging_in_again():
    q = QueueConfig(name="q", strategy="skills")
    before = config(q, agents=profiles(a=({"q": 0}, {"billing": 2})))
    router = RoutingEngine(before)
    login(router, "a", 0, skills={"billing": 2})
    decisions = router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 5}), 1)
    assert only(decisions, CallWaiting) and not offered_to(decisions)
    after = config(q, agents=profiles(a=({"q": 0}, {"billing": 9})))
    decisions = router.reconfigure(after, 2)
    assert offered_to(decisions) == [("c1", "a")]  # the waiting call gets the now-qualified agent
    assert dict(router.agent_view("a").skills) == {"billing": 9}


def test_penalty_change_reorders_the_agents():
    q = QueueConfig(name="q")
    router = RoutingEngine(config(q, agents=profiles(a=({"q": 0}, {}), b=({"q": 1}, {}))))
    login(router, "a", 0, queues={"q": 0})
    login(router, "b", 5, queues={"q": 1})
    router.reconfigure(config(q, agents=profiles(a=({"q": 2}, {}), b=({"q": 0}, {}))), 6)
    assert offered_to(router.handle(CallArrived(call_id="c1", queue="q"), 7)) == [("c1", "b")]


def test_new_queue_is_answered_by_its_new_member():
    q = QueueConfig(name="q")
    router = RoutingEngine(config(q, agents=profiles(a=({"q": 0}, {}))))
    login(router, "a", 0)
    with pytest.raises(UnknownQueue):
        router.handle(CallArrived(call_id="c0", queue="qn"), 1)
    qn = QueueConfig(name="qn")
    router.reconfigure(config(q, qn, agents=profiles(a=({"q": 0, "qn": 0}, {}))), 2)
    assert dict(router.agent_view("a").queues) == {"q": 0, "qn": 0}
    assert offered_to(router.handle(CallArrived(call_id="c1", queue="qn"), 3)) == [("c1", "a")]
    assert router.queue_stats("qn", 3).offered == 1
    assert router.queue_stats("qn", 3).agents["offered"] == 1


def test_waiting_calls_keep_their_place_when_their_queue_changes():
    router = RoutingEngine(config(QueueConfig(name="q", strategy="longest-idle")))
    for n in range(3):
        router.handle(CallArrived(call_id=f"c{n}", queue="q"), n)
    router.reconfigure(config(QueueConfig(name="q", strategy="round-robin", max_waiting=2)), 5)
    assert [router.waiting_status(f"c{n}", 5).position for n in range(3)] == [1, 2, 3]
    refused = router.handle(CallArrived(call_id="c9", queue="q"), 6)
    assert only(refused, CallRefused)[0].error_id == "queue-full"  # new limit, old callers kept
    login(router, "a", 7)
    assert router.call_view("c0").state == "offered"


def test_queue_stats_survive_a_change():
    router = RoutingEngine(config(QueueConfig(name="q", wrap_up_seconds=0)))
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    answer(router, "c1", "a", 2)
    router.reconfigure(config(QueueConfig(name="q", wrap_up_seconds=0, service_level_seconds=1)), 3)
    stats = router.queue_stats("q", 3)
    assert (stats.offered, stats.answered, stats.agents) == (1, 1, {"available": 0, "offered": 0, "on_call": 1,
                                                                  "wrap_up": 0, "paused": 0,
                                                                  "unreachable": 0})
    router.handle(CallEnded(call_id="c1"), 4)  # the connected call ends normally
    assert router.agent_view("a").state is AgentState.AVAILABLE


def test_removed_queue_with_overflow_moves_its_callers_keeping_their_place():
    q = QueueConfig(name="q")
    old = QueueConfig(name="old", overflow=(OverflowStep(after_seconds=60, add_queues=("q",)),))
    router = RoutingEngine(config(q, old))
    router.handle(CallArrived(call_id="early", queue="old"), 1)
    router.handle(CallArrived(call_id="mid", queue="q"), 2)
    router.handle(CallArrived(call_id="late", queue="old"), 3)
    decisions = router.reconfigure(config(q), 10)
    removed = only(decisions, QueueRemoved)
    assert [(r.queue, r.waiting, r.moved_to) for r in removed] == [("old", 2, ("q",))]
    assert "moved" in removed[0].explanation
    assert {d.call_id for d in only(decisions, CallWaiting)} == {"early", "late"}
    assert [router.waiting_status(c, 10).position for c in ("early", "mid", "late")] == [1, 2, 3]
    assert router.retired_queues() == []  # nothing refers to it any more
    with pytest.raises(UnknownQueue, match="not configured"):
        router.handle(CallArrived(call_id="new", queue="old"), 11)
    login(router, "a", 12)
    assert router.call_view("early").state == "offered"


def test_removed_queue_without_overflow_keeps_callers_until_served_then_goes():
    q = QueueConfig(name="q")
    old = QueueConfig(name="old", wrap_up_seconds=0)
    router = RoutingEngine(config(q, old, agents=profiles(a=({"old": 0, "q": 0}, {}), b=({"old": 0}, {}))))
    login(router, "a", 0, queues={"old": 0, "q": 0})
    login(router, "b", 0, queues={"old": 0})
    router.handle(CallArrived(call_id="c1", queue="old"), 1)
    answer(router, "c1", router.call_view("c1").agent_ids[0], 2)
    router.handle(CallArrived(call_id="c2", queue="old"), 3)
    router.handle(CallArrived(call_id="c3", queue="old"), 4)
    on_call = router.call_view("c1").agent_ids[0]
    ringing = router.call_view("c2").agent_ids[0]
    decisions = router.reconfigure(config(q, agents=profiles(a=({"q": 0}, {}), b=({"q": 0}, {}))), 5)
    removed = only(decisions, QueueRemoved)[0]
    assert (removed.waiting, removed.moved_to) == (1, ()) and "stay" in removed.explanation
    assert router.retired_queues() == ["old"]
    with pytest.raises(UnknownQueue, match="removed from the configuration"):
        router.handle(CallArrived(call_id="new", queue="old"), 5)
    assert router.call_view("c2").agent_ids == (ringing,)  # the ringing offer is untouched
    answer(router, "c2", ringing, 6)
    router.handle(CallEnded(call_id="c1"), 7)  # the freed former member serves the waiting caller
    assert router.call_view("c3").agent_ids == (on_call,)
    answer(router, "c3", on_call, 8)
    router.handle(CallEnded(call_id="c2"), 9)
    router.handle(CallEnded(call_id="c3"), 10)
    assert router.retired_queues() == []
    assert {a: dict(router.agent_view(a).queues) for a in ("a", "b")} == {"a": {"q": 0}, "b": {"q": 0}}


def test_agent_left_with_only_a_retired_queue_is_logged_out_when_it_goes():
    q, old = QueueConfig(name="q"), QueueConfig(name="old", wrap_up_seconds=0)
    router = RoutingEngine(config(q, old))
    login(router, "b", 0, queues={"old": 0})
    router.handle(CallArrived(call_id="c1", queue="old"), 1)
    answer(router, "c1", "b", 2)
    router.reconfigure(config(q), 3)
    assert router.agent_view("b").state is AgentState.ON_CALL
    decisions = router.handle(CallEnded(call_id="c1"), 4)
    changes = [(d.state, d.reason) for d in only(decisions, AgentStateChanged)]
    assert changes[-1][0] is AgentState.LOGGED_OUT and "'old' was removed" in changes[-1][1]
    assert router.agent_ids() == []


def test_agent_removed_while_available_ringing_or_on_call():
    q = QueueConfig(name="q", wrap_up_seconds=2)
    everyone = profiles(a=({"q": 0}, {}), b=({"q": 0}, {}), c=({"q": 0}, {}), d=({"q": 0}, {}))
    router = RoutingEngine(config(q, agents=everyone))
    for n, agent in enumerate("abcd"):
        login(router, agent, n)
    router.handle(CallArrived(call_id="talk", queue="q"), 10)  # to a (longest idle)
    answer(router, "talk", "a", 11)
    router.handle(CallArrived(call_id="ring", queue="q"), 12)  # rings b
    decisions = router.reconfigure(config(q, agents=profiles(d=({"q": 0}, {}))), 13)
    assert only(decisions, OfferCancelled)[0].reason == "agent-removed"
    assert offered_to(decisions) == [("ring", "d")]  # the withdrawn call is offered again at once
    gone = {d.agent_id: d.reason for d in only(decisions, AgentStateChanged) if d.state is AgentState.LOGGED_OUT}
    assert gone == {"b": "removed from the configuration", "c": "removed from the configuration"}
    assert router.agent_view("a").pending == "logout"  # on a call: after the call and wrap-up
    decisions = router.handle(CallEnded(call_id="talk"), 20)
    assert router.agent_view("a").state is AgentState.WRAP_UP
    decisions = router.handle_timers(22)
    assert [d.reason for d in only(decisions, AgentStateChanged)] == [
        "removed from the configuration (after the call)"]
    assert router.agent_ids() == ["d"]


def test_agents_not_managed_by_the_config_keep_their_profile():
    router = RoutingEngine(config(QueueConfig(name="q")))
    login(router, "a", 0, skills={"billing": 4})
    router.reconfigure(config(QueueConfig(name="q", strategy="skills")), 1)
    view = router.agent_view("a")
    assert (dict(view.queues), dict(view.skills)) == ({"q": 0}, {"billing": 4})


def test_overflow_change_applies_from_each_callers_arrival():
    q = QueueConfig(name="q", overflow=(OverflowStep(after_seconds=100, relax=(("billing", 0),)),))
    router = RoutingEngine(config(q))
    router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 5}), 0)
    assert router.next_deadline() == 100
    quicker = QueueConfig(name="q", overflow=(OverflowStep(after_seconds=30, relax=(("billing", 0),)),))
    router.reconfigure(config(quicker), 10)
    assert router.next_deadline() == 30
    router.handle_timers(30)
    assert router.call_view("c1").requirements == ()
    assert router.handle_timers(100) == []  # the old step does not apply twice
    router.reconfigure(config(QueueConfig(name="q")), 40)
    assert router.next_deadline() is None


def test_priority_aging_change_rekeys_waiting_calls_from_their_arrival():
    router = RoutingEngine(config(QueueConfig(name="q"), aging=None))
    router.handle(CallArrived(call_id="old", queue="q", priority=0), 0)
    router.handle(CallArrived(call_id="vip", queue="q", priority=1), 100)
    assert router.waiting_status("vip", 100).position == 1  # strict tiers
    router.reconfigure(config(QueueConfig(name="q"), aging=60.0), 101)
    assert router.waiting_status("old", 101).position == 1  # waited 100 s > one level's 60 s


def test_reconfiguring_to_the_same_config_decides_nothing():
    q = QueueConfig(name="q", strategy="skills")
    same = config(q, agents=profiles(a=({"q": 0}, {"billing": 3})))
    router = RoutingEngine(same)
    login(router, "a", 0, skills={"billing": 3})
    router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 5}), 1)
    assert router.reconfigure(same, 2) == []
    assert router.reconfigure(same, 3) == []


def test_removed_agents_sticky_callers_are_released():
    q = QueueConfig(name="q")
    router = RoutingEngine(config(q, agents=profiles(a=({"q": 0}, {}), b=({"q": 0}, {}))))
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c0", queue="q"), 1)  # a is busy ringing
    router.handle(CallArrived(call_id="c1", queue="q", preferred_agent="a", sticky_seconds=60), 2)
    assert router.call_view("c1").sticky_until == 62
    login(router, "b", 3)  # c1 waits for a (sticky), b takes nothing
    assert router.call_view("c1").state == "waiting"
    decisions = router.reconfigure(config(q, agents=profiles(b=({"q": 0}, {}))), 4)
    assert ("c1", "b") in offered_to(decisions) or ("c0", "b") in offered_to(decisions)
    assert router.call_view("c1").sticky_until is None


def test_offers_are_still_the_engine_decision_types():
    """QueueRemoved joins the Decision union the shell dispatches on."""
    from acd.routing import decisions

    assert QueueRemoved in decisions.Decision.__args__
    assert Offer in decisions.Decision.__args__
