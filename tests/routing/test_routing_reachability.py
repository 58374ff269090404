"""Reachability: an agent is offered calls only while their phone can be reached.

Unreachable is a flag beside the agent's state (as Asterisk keeps a member's device state apart
from `paused`): the agent stays logged in, in the same state, is offered nothing, counts for no
`when_no_agents: refuse` and no language rule, and is offered the next call when the phone is back.
"""

from __future__ import annotations

from acd.context.routing_hints import queue_requirements
from acd.routing import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPauseRequested,
    AgentReachabilityChanged,
    AgentReachable,
    AgentReadyRequested,
    AgentState,
    AgentStateChanged,
    AgentUnreachable,
    CallArrived,
    CallEnded,
    CallRefused,
    CallWaiting,
    OfferAnswered,
    OfferCancelled,
    OfferFailed,
    QueueConfig,
    RoutingConfig,
)
from routing_helpers import engine, login, offered_to, only


def lose(router, agent_id: str, now: float, reason: str = "unregistered"):
    return router.handle(AgentUnreachable(agent_id=agent_id, reason=reason), now)


def back(router, agent_id: str, now: float):
    return router.handle(AgentReachable(agent_id=agent_id), now)


def test_an_unreachable_available_agent_is_never_offered_and_gets_the_next_call_when_back():
    router = engine()
    login(router, "a", 0)
    decisions = lose(router, "a", 1)
    change = only(decisions, AgentReachabilityChanged)[0]
    assert (change.reachable, change.state, change.reason) == (False, AgentState.AVAILABLE,
                                                                "phone unreachable: unregistered")
    assert not only(decisions, AgentStateChanged), "the state stays: the agent is still logged in, available"
    assert offered_to(router.handle(CallArrived(call_id="c1", queue="q"), 2)) == []
    assert router.call_view("c1").state == "waiting"
    view = router.agent_view("a")
    assert (view.state, view.reachable) == (AgentState.AVAILABLE, False)
    decisions = back(router, "a", 30)
    assert only(decisions, AgentReachabilityChanged)[0].reachable is True
    assert offered_to(decisions) == [("c1", "a")]


def test_an_offer_that_fails_makes_the_agent_unreachable_without_a_miss_or_a_pause():
    """The issue's case: two offers failing at once used to count two misses and auto-pause."""
    router = engine(max_missed_offers=1)
    login(router, "a", 0)
    login(router, "b", 1)
    assert offered_to(router.handle(CallArrived(call_id="c1", queue="q"), 2)) == [("c1", "a")]
    decisions = router.handle(OfferFailed(call_id="c1", agent_id="a", reason="480 Temporarily Unavailable"), 2)
    assert offered_to(decisions) == [("c1", "b")], "the call goes on to the next agent at once"
    assert not only(decisions, OfferCancelled), "the failed leg is over already: nothing to cancel"
    view = router.agent_view("a")
    assert (view.state, view.reachable, view.missed_offers, view.consecutive_misses) == (
        AgentState.AVAILABLE, False, 0, 0)
    assert "480" in only(decisions, AgentReachabilityChanged)[0].reason


def test_a_failed_offer_keeps_the_call_in_its_place_for_the_agent_back():
    router = engine()
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.handle(CallArrived(call_id="c2", queue="q"), 2)
    decisions = router.handle(OfferFailed(call_id="c1", agent_id="a", reason="no response"), 3)
    assert offered_to(decisions) == []
    assert [router.waiting_status(c, 3).position for c in ("c1", "c2")] == [1, 2]
    assert offered_to(back(router, "a", 10)) == [("c1", "a")], "no re-offer delay: it was not a miss"


def test_refuse_counts_only_reachable_agents():
    router = engine(when_no_agents="refuse")
    login(router, "a", 0)
    lose(router, "a", 1)
    refusal = only(router.handle(CallArrived(call_id="c1", queue="q"), 2), CallRefused)[0]
    assert refusal.error_id == "no-agents-logged-in"
    assert "1 logged in, unreachable" in refusal.reason
    back(router, "a", 3)
    assert offered_to(router.handle(CallArrived(call_id="c2", queue="q"), 4)) == [("c2", "a")]


def test_refuse_still_counts_a_paused_reachable_agent_but_not_a_paused_unreachable_one():
    router = engine(when_no_agents="refuse")
    login(router, "a", 0, paused="lunch")
    assert not only(router.handle(CallArrived(call_id="c1", queue="q"), 1), CallRefused)
    lose(router, "a", 2)
    assert only(router.handle(CallArrived(call_id="c2", queue="q"), 3), CallRefused)


def test_a_login_without_a_phone_is_logged_in_unreachable():
    router = engine(when_no_agents="refuse")
    decisions = router.handle(AgentLoggedIn(agent_id="a", queues={"q": 0}, reachable=False), 0)
    assert [d.state for d in only(decisions, AgentStateChanged)] == [AgentState.AVAILABLE]
    assert only(decisions, AgentReachabilityChanged)[0].reachable is False
    stats = router.queue_stats("q", 0)
    assert (stats.agents["available"], stats.agents["unreachable"]) == (0, 1)
    assert stats.estimated_wait_seconds is None, "an unreachable agent staffs nothing"
    assert only(router.handle(CallArrived(call_id="c1", queue="q"), 1), CallRefused)


def test_unreachable_while_ringing_withdraws_the_offer_without_a_miss():
    router = engine(max_missed_offers=1)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    decisions = lose(router, "a", 2, "registration expired")
    assert [(d.call_id, d.reason) for d in only(decisions, OfferCancelled)] == [("c1", "agent-unreachable")]
    assert router.call_view("c1").state == "waiting"
    view = router.agent_view("a")
    assert (view.state, view.missed_offers) == (AgentState.AVAILABLE, 0)


def test_unreachable_during_a_call_keeps_the_call_and_offers_nothing_after_it():
    router = engine(wrap_up_seconds=5)
    login(router, "a", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    router.handle(OfferAnswered(call_id="c1", agent_id="a"), 2)
    assert not only(lose(router, "a", 3), AgentStateChanged)
    assert router.agent_view("a").state is AgentState.ON_CALL
    router.handle(CallArrived(call_id="c2", queue="q"), 4)
    router.handle(CallEnded(call_id="c1"), 10)
    assert offered_to(router.handle_timers(15)) == []
    assert router.agent_view("a").state is AgentState.AVAILABLE
    assert offered_to(back(router, "a", 20)) == [("c2", "a")]


def test_a_paused_agent_made_ready_while_unreachable_waits_for_the_phone():
    router = engine()
    login(router, "a", 0)
    router.handle(AgentPauseRequested(agent_id="a", reason="lunch"), 1)
    lose(router, "a", 2)
    router.handle(CallArrived(call_id="c1", queue="q"), 3)
    assert offered_to(router.handle(AgentReadyRequested(agent_id="a"), 4)) == []
    assert offered_to(back(router, "a", 5)) == [("c1", "a")]


def test_a_sticky_call_does_not_wait_for_an_unreachable_preferred_agent():
    router = engine(sticky_seconds=20)
    login(router, "a", 0)
    login(router, "b", 1)
    router.handle(AgentPauseRequested(agent_id="b", reason="x"), 1)
    router.handle(CallArrived(call_id="c1", queue="q", preferred_agent="b"), 2)
    assert router.call_view("c1").sticky_until == 22
    decisions = lose(router, "b", 3)
    assert router.call_view("c1").sticky_until is None
    assert offered_to(decisions) == [("c1", "a")]
    router.handle(CallArrived(call_id="c2", queue="q", preferred_agent="b"), 4)
    assert router.call_view("c2").sticky_until is None, "no window for an agent who cannot be rung"


def test_reachability_events_that_change_nothing_decide_nothing():
    router = engine()
    login(router, "a", 0)
    assert back(router, "a", 1) == []
    lose(router, "a", 2)
    assert lose(router, "a", 3, "registration expired") == []


def test_logout_of_an_unreachable_agent_leaves_no_count_behind():
    router = engine(when_no_agents="refuse")
    login(router, "a", 0)
    lose(router, "a", 1)
    router.handle(AgentLoggedOut(agent_id="a"), 2)
    agents = router.queue_stats("q", 2).agents
    assert sum(agents.values()) == 0
    login(router, "a", 3)
    assert router.agent_view("a").reachable, "a new login starts reachable unless told otherwise"


def test_member_skills_lists_only_logged_in_reachable_members():
    """What the language rule counts: a logged-out or unreachable speaker does not make the
    language required; a paused one does (the call may wait for them)."""
    router = engine()
    login(router, "a", 0, skills={"spanish": 5})
    login(router, "b", 0, skills={"french": 5}, paused="lunch")
    login(router, "c", 0, skills={"tech": 5})
    lose(router, "c", 1)
    assert list(router.member_skills("q")) == [{"spanish": 5}, {"french": 5}]
    router.handle(AgentLoggedOut(agent_id="a"), 2)
    assert list(router.member_skills("q")) == [{"french": 5}]


def test_reconfigure_keeps_unreachable_agents_counted_apart_and_unoffered():
    router = engine()
    login(router, "a", 0)
    lose(router, "a", 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 2)
    config = RoutingConfig(queues=(QueueConfig(name="q", strategy="round-robin"),), skills=router.config.skills)
    assert offered_to(router.reconfigure(config, 3)) == []
    assert router.queue_stats("q", 3).agents["unreachable"] == 1
    assert offered_to(back(router, "a", 4)) == [("c1", "a")]


def test_explanations_count_unreachable_members():
    router = engine()
    login(router, "a", 0)
    login(router, "b", 0)
    lose(router, "b", 1)
    offer = router.handle(CallArrived(call_id="c1", queue="q"), 2)[0]
    assert offer.agent_id == "a" and "1 unreachable" in offer.explanation
    waiting = only(router.handle(CallArrived(call_id="c2", queue="q"), 3), CallWaiting)[0]
    assert "1 ringing, 1 unreachable" in waiting.explanation


def test_language_becomes_required_only_when_a_reachable_logged_in_agent_speaks_it():
    """The issue's case: a Spanish speaker logged out (or whose phone went away) made Spanish a
    required skill, so the caller waited while an idle agent could help."""
    languages = {"es": "spanish"}
    customer = {"language": "es"}
    router = engine()
    login(router, "a", 0, skills={"tech": 5})
    login(router, "b", 0, skills={"spanish": 7})
    assert queue_requirements({}, customer, languages, router.member_skills("q")) == {"spanish": 1}
    lose(router, "b", 1)
    assert queue_requirements({}, customer, languages, router.member_skills("q")) == {}
    back(router, "b", 2)
    router.handle(AgentLoggedOut(agent_id="b"), 3)
    requirements = queue_requirements({}, customer, languages, router.member_skills("q"))
    assert requirements == {}
    decisions = router.handle(CallArrived(call_id="c1", queue="q", requirements=requirements), 4)
    assert offered_to(decisions) == [("c1", "a")]
