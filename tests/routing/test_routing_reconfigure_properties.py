"""Property tests of `reconfigure`: the same config changes no decision; switching between
configs at random moments keeps every routing invariant of `test_routing_properties`."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd.routing import AgentState, CallArrived, OverflowStep, QueueConfig, RoutingConfig, RoutingError
from acd.routing.config import AgentProfile
from test_routing_properties import (
    AGENTS,
    WRAP_UP,
    Model,
    apply_decisions,
    build,
    check_invariants,
    make_event,
    operations,
    record_sent,
    run_sequence,
    snapshot,
)

STRATEGY_PAIRS = st.tuples(
    st.sampled_from(["longest-idle", "fewest-calls", "round-robin", "ring-all", "skills"]),
    st.sampled_from(["skills", "longest-idle", "ring-all"]),
)


def variant(number: int) -> RoutingConfig:
    """Other configs with the same queues: strategies, timers, limits, overflow and aging differ
    (wrap-up stays, so the model's wrap-up check holds)."""
    strategy = ["round-robin", "skills", "fewest-calls"][number % 3]
    common = dict(wrap_up_seconds=WRAP_UP, ring_timeout_seconds=5 + 5 * number, reoffer_after_seconds=10 * number,
                  max_missed_offers=number, sticky_seconds=10, max_concurrent_offers=1 + number, max_waiting=4 + number)
    front = QueueConfig(name="front", strategy=strategy, **common)
    back = QueueConfig(
        name="back", strategy="ring-all" if number == 1 else "longest-idle",
        overflow=(OverflowStep(after_seconds=5 + 10 * number, relax=(("billing", 1),), add_queues=("front",)),),
        **common,
    )
    return RoutingConfig(queues=(front, back), skills={"billing", "spanish"},
                         priority_aging_seconds=None if number == 2 else 15.0 * (number + 1),
                         agents=PROFILES[number])


# Variant 0 leaves agents as they logged in; 1 makes everybody able to take everything (many
# new matches at once); 2 drops two agents and changes the others' skills and memberships.
PROFILES = [
    None,
    tuple(AgentProfile(agent_id=a, queues=(("front", 0), ("back", 0)), skills=(("billing", 9), ("spanish", 9)))
          for a in AGENTS),
    tuple(AgentProfile(agent_id=a, queues=(("back", n % 2), ("front", 0))[: 1 + n % 2],
                       skills=(("billing", 2 + n),)) for n, a in enumerate(AGENTS[:4])),
]


def check_nobody_idle_could_serve(model: Model, router, now: float) -> None:
    """The engine's invariant: no available, reachable agent may take a waiting call (sticky calls
    and agents who missed the call aside)."""
    available = [router.agent_view(a) for a in router.agent_ids()]
    available = [a for a in available if a.state is AgentState.AVAILABLE and a.reachable]
    for call_id in router.call_ids():
        call = router.call_view(call_id)
        if call.state != "waiting" or (call.sticky_until is not None and call.sticky_until > now):
            continue
        for agent in available:
            skills = dict(agent.skills)
            if (
                any(queue in dict(agent.queues) for queue in call.queues)
                and all(skills.get(skill, 0) >= level for skill, level in call.requirements)
                and (call_id, agent.agent_id) not in model.missed
            ):
                raise AssertionError(f"{agent.agent_id} is available and could take waiting {call_id}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies=STRATEGY_PAIRS, ops=st.lists(st.one_of(operations, st.just(("reconfigure",))), min_size=10,
                                                max_size=80))
def test_reconfiguring_to_the_same_config_changes_no_decision(strategies, ops):
    """Two engines get the same events and timers; one is also reconfigured to its own config at
    random moments. Every decision, view and deadline stays identical."""
    plain, touched = build(*strategies), build(*strategies)
    model, counter, now = Model(), [0], 0.0
    for op in ops:
        if op[0] == "reconfigure":
            assert touched.reconfigure(touched.config, now) == []
            assert snapshot(touched) == snapshot(plain)
            continue
        if op[0] == "advance":
            target = now + op[1]
            while (deadline := plain.next_deadline()) is not None and deadline <= target:
                now = max(now, deadline)
                decisions = plain.handle_timers(now)
                assert touched.handle_timers(now) == decisions
                apply_decisions(model, decisions, now, from_timer=True)
            now = target
            assert snapshot(touched) == snapshot(plain)
            continue
        event = make_event(op, model, counter)
        if event is None:
            continue
        try:
            decisions = plain.handle(event, now)
        except RoutingError as error:
            try:
                touched.handle(event, now)
            except RoutingError as same:
                assert type(same) is type(error)
                continue
            raise AssertionError(f"{event} refused by one engine only") from error
        assert touched.handle(event, now) == decisions
        if not (isinstance(event, CallArrived) and any(type(d).__name__ == "CallRefused" for d in decisions)):
            record_sent(model, event, plain, now)
            apply_decisions(model, decisions, now, from_timer=False)
        assert snapshot(touched) == snapshot(plain)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies=STRATEGY_PAIRS,
       ops=st.lists(st.one_of(operations, st.tuples(st.just("reconfigure"), st.integers(0, 2))), min_size=10,
                    max_size=80))
def test_random_reconfigurations_keep_every_invariant(strategies, ops):
    def reconfigure(op, router, model: Model, now: float) -> bool:
        if op[0] != "reconfigure":
            return False
        new = variant(op[1])
        for profile in new.agents or ():
            model.agent_skills[profile.agent_id] = dict(profile.skills)
        apply_decisions(model, router.reconfigure(new, now), now, from_timer=False)
        check_invariants(model, router)
        check_nobody_idle_could_serve(model, router, now)
        return True

    run_sequence(strategies, ops, extra=reconfigure)
