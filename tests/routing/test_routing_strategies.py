"""Each queue strategy picks the agent its scoring function ranks first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from acd.routing import (
    AgentState,
    CallArrived,
    CallEnded,
    Candidate,
    Offer,
    OfferAnswered,
    QueueConfig,
    STRATEGIES,
)
from routing_helpers import engine, login, offered_to, only


def _answer_and_end(router, call_id, agent_id, now):
    router.handle(OfferAnswered(call_id=call_id, agent_id=agent_id), now)
    router.handle(CallEnded(call_id=call_id), now + 1)


def test_longest_idle_picks_agent_idle_longest():
    router = engine(strategy="longest-idle")
    login(router, "late", 5)
    login(router, "early", 1)
    login(router, "middle", 3)
    decisions = router.handle(CallArrived(call_id="c1", queue="q"), 10)
    assert offered_to(decisions) == [("c1", "early")]


def test_fewest_calls_picks_agent_with_fewest_handled_calls():
    router = engine(strategy="fewest-calls", wrap_up_seconds=0)
    login(router, "a", 0)
    login(router, "b", 1)
    router.handle(CallArrived(call_id="c1", queue="q"), 2)  # a: both 0 calls, a idle longer
    _answer_and_end(router, "c1", "a", 3)  # a idle again since 4
    router.handle(CallArrived(call_id="c2", queue="q"), 5)  # b: fewer calls (0 vs 1)
    _answer_and_end(router, "c2", "b", 6)
    router.handle(CallArrived(call_id="c3", queue="q"), 8)  # tie 1-1: a idle longer
    assert router.call_view("c3").agent_ids == ("a",)
    _answer_and_end(router, "c3", "a", 9)
    decisions = router.handle(CallArrived(call_id="c4", queue="q"), 20)
    assert offered_to(decisions) == [("c4", "b")]  # b 1 call, a 2 calls


def test_round_robin_rotates_through_members():
    router = engine(strategy="round-robin", wrap_up_seconds=0)
    for name in ("a", "b", "c"):
        login(router, name, 0)
    order = []
    for index in range(6):
        call_id = f"c{index}"
        (offer,) = only(router.handle(CallArrived(call_id=call_id, queue="q"), 10 + index), Offer)
        order.append(offer.agent_id)
        _answer_and_end(router, call_id, offer.agent_id, 10 + index)
    assert order == ["a", "b", "c", "a", "b", "c"]


def test_ring_all_rings_every_available_agent_up_to_the_limit():
    router = engine(strategy="ring-all", max_concurrent_offers=2)
    for index, name in enumerate(("a", "b", "c")):
        login(router, name, index)
    decisions = router.handle(CallArrived(call_id="c1", queue="q"), 10)
    assert offered_to(decisions) == [("c1", "a"), ("c1", "b")]
    assert "a, b" in only(decisions, Offer)[0].explanation
    assert router.agent_view("c").state is AgentState.AVAILABLE


def test_ring_all_first_answer_wins_and_others_are_cancelled():
    from acd.routing import OfferCancelled

    router = engine(strategy="ring-all")
    login(router, "a", 0)
    login(router, "b", 0)
    router.handle(CallArrived(call_id="c1", queue="q"), 1)
    decisions = router.handle(OfferAnswered(call_id="c1", agent_id="b"), 2)
    (cancel,) = only(decisions, OfferCancelled)
    assert (cancel.agent_id, cancel.reason) == ("a", "answered-elsewhere")
    assert router.agent_view("a").state is AgentState.AVAILABLE
    assert router.agent_view("b").state is AgentState.ON_CALL


def test_skills_best_proficiency_first_then_longest_idle():
    router = engine(strategy="skills")
    login(router, "novice", 0, skills={"billing": 5})
    login(router, "expert_late", 2, skills={"billing": 9})
    login(router, "expert_early", 1, skills={"billing": 9})
    login(router, "unskilled", 0, skills={"tech": 10})
    decisions = router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 5}), 10)
    (offer,) = only(decisions, Offer)
    assert offer.agent_id == "expert_early"
    assert "billing 9" in offer.explanation
    assert "expert_late lost on idle" in offer.explanation


def test_skills_tie_break_is_configurable():
    router = engine(strategy="skills", tie_break=("fewest-calls", "longest-idle"), wrap_up_seconds=0)
    login(router, "a", 0, skills={"billing": 7})
    login(router, "b", 5, skills={"billing": 7})
    router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 1}), 6)
    _answer_and_end(router, "c1", "a", 7)  # a: 1 call, idle since 8 -> b has fewer calls
    decisions = router.handle(CallArrived(call_id="c2", queue="q", requirements={"billing": 1}), 20)
    assert offered_to(decisions) == [("c2", "b")]


def test_penalty_makes_a_backup_tier():
    router = engine(strategy="skills")
    login(router, "backup", 0, queues={"q": 2}, skills={"billing": 10})
    login(router, "primary", 5, queues={"q": 0}, skills={"billing": 3})
    decisions = router.handle(CallArrived(call_id="c1", queue="q", requirements={"billing": 2}), 9)
    (offer,) = only(decisions, Offer)
    assert offer.agent_id == "primary"
    assert "backup lost on penalty 2" in offer.explanation


def test_secondary_requirements_are_filters():
    router = engine(strategy="skills")
    login(router, "mono", 0, skills={"billing": 10})
    login(router, "bilingual", 1, skills={"billing": 4, "spanish": 6})
    requirements = {"billing": 3, "spanish": 5}
    decisions = router.handle(CallArrived(call_id="c1", queue="q", requirements=requirements), 5)
    assert offered_to(decisions) == [("c1", "bilingual")]


agent_specs = st.lists(
    st.tuples(
        st.integers(0, 2),  # penalty
        st.dictionaries(st.sampled_from(["billing", "spanish", "tech"]), st.integers(1, 10)),
        st.integers(0, 50),  # login time
    ),
    min_size=1,
    max_size=12,
)
requirement_specs = st.dictionaries(
    st.sampled_from(["billing", "spanish", "tech"]), st.integers(1, 10), max_size=2
)


@settings(max_examples=150, deadline=None)
@given(
    strategy=st.sampled_from(["longest-idle", "fewest-calls", "round-robin", "skills"]),
    specs=agent_specs,
    requirements=requirement_specs,
)
def test_choice_matches_brute_force_scoring(strategy, specs, requirements):
    """The indexed choice equals scoring every qualifying agent with the strategy function."""
    router = engine(strategy=strategy)
    candidates = []
    for number, (penalty, skills, at) in enumerate(sorted(specs, key=lambda s: s[2])):
        agent_id = f"agent{number:02d}"
        login(router, agent_id, at, queues={"q": penalty}, skills=skills)
        if all(skills.get(s, 0) >= m for s, m in requirements.items()):
            level = skills.get(next(iter(requirements)), 0) if requirements else 0
            candidates.append(Candidate(agent_id, penalty, level, at, 0, number + 1))
    decisions = router.handle(CallArrived(call_id="c", queue="q", requirements=requirements), 100)
    offers = only(decisions, Offer)
    if not candidates:
        assert offers == []
        return
    score = STRATEGIES[strategy].score
    best = min(candidates, key=lambda c: score(c, ("longest-idle",)))
    assert [o.agent_id for o in offers] == [best.agent_id]
    assert best.agent_id in offers[0].explanation


def test_unknown_strategy_and_tie_break_are_config_errors():
    import pytest

    from acd.routing import InvalidConfig

    with pytest.raises(InvalidConfig) as info:
        QueueConfig(name="q", strategy="random")
    assert info.value.error_id == "invalid-routing-config"
    with pytest.raises(InvalidConfig):
        QueueConfig(name="q", tie_break=("coin-toss",))


def test_multi_skill_call_scans_the_rarest_skill_and_still_ranks_by_primary():
    """With many billing agents and two Spanish speakers, the choice is the better biller."""
    router = engine(strategy="skills")
    for number in range(30):
        login(router, f"biller{number:02d}", number, skills={"billing": 10})
    login(router, "es_low", 0, skills={"billing": 3, "spanish": 9})
    login(router, "es_high", 50, skills={"billing": 7, "spanish": 2})
    login(router, "es_none", 0, skills={"billing": 9, "spanish": 1})
    requirements = {"billing": 2, "spanish": 2}
    decisions = router.handle(CallArrived(call_id="c", queue="q", requirements=requirements), 100)
    (offer,) = only(decisions, Offer)
    assert offer.agent_id == "es_high"
    assert "es_low lost on level 3 vs level 7" in offer.explanation


@settings(max_examples=200, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    tie_break=st.lists(st.sampled_from(["longest-idle", "fewest-calls", "round-robin"]), max_size=3),
    candidate=st.builds(
        Candidate,
        st.text(min_size=1, max_size=5),
        st.integers(0, 5),
        st.integers(0, 10),
        st.floats(0, 1e6),
        st.integers(0, 500),
        st.integers(0, 10_000),
    ),
)
def test_compiled_scorer_equals_the_scoring_function(strategy, tie_break, candidate):
    from acd.routing.strategies import compile_score

    spec = STRATEGIES[strategy]
    assert compile_score(spec, tuple(tie_break))(candidate) == spec.score(candidate, tuple(tie_break))
