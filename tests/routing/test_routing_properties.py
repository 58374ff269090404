"""Property tests: random event sequences never break the routing invariants.

A shadow model follows the decision stream and checks, after every event:
no agent holds two calls, no call is lost, every offer honours the call's requirements and
names the agent, offers go only to available agents whose phone is reachable, state changes
follow the table, wrap-up lasts its configured time, FIFO holds among interchangeable calls, and
each queue's member counts (by state, unreachable apart) match its members.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd.routing import (
    TRANSITIONS,
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
    CallbackRequested,
    CallChanged,
    CallConnected,
    CallEnded,
    CallOverflowed,
    Offer,
    OfferAnswered,
    OfferCancelled,
    OfferDeclined,
    OfferFailed,
    OverflowStep,
    QueueConfig,
    RoutingConfig,
    RoutingEngine,
    RoutingError,
)

WRAP_UP = 5.0
AGENTS = [f"agent{n}" for n in range(6)]
SKILL_SETS = [{}, {"billing": 3}, {"billing": 8}, {"billing": 6, "spanish": 5}, {"spanish": 9}]
REQUIREMENTS = [{}, {"billing": 5}, {"billing": 2, "spanish": 4}, {"spanish": 7}]
QUEUE_SETS = [{"front": 0}, {"back": 0}, {"front": 1, "back": 0}]


def build(front_strategy: str, back_strategy: str) -> RoutingEngine:
    common = dict(
        wrap_up_seconds=WRAP_UP,
        ring_timeout_seconds=10,
        reoffer_after_seconds=15,
        max_missed_offers=2,
        sticky_seconds=20,
        max_concurrent_offers=2,
        max_waiting=8,
    )
    front = QueueConfig(name="front", strategy=front_strategy, **common)
    back = QueueConfig(
        name="back",
        strategy=back_strategy,
        overflow=(
            OverflowStep(after_seconds=25, relax=(("billing", 1),), add_queues=("front",)),
            OverflowStep(after_seconds=50, relax=(("spanish", 0),), offer_callback=True),
        ),
        **common,
    )
    return RoutingEngine(
        RoutingConfig(queues=(front, back), skills={"billing", "spanish"}, priority_aging_seconds=30)
    )


@dataclass
class Model:
    """What the test believes, built only from the events it sent and the decisions it got."""

    agent_state: dict[str, AgentState] = field(default_factory=dict)
    agent_skills: dict[str, dict[str, int]] = field(default_factory=dict)
    agent_queues: dict[str, set[str]] = field(default_factory=dict)
    wrap_started: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # call -> waiting/offered/connected/ended
    offers: dict[str, set[str]] = field(default_factory=dict)
    requirements: dict[str, dict[str, int]] = field(default_factory=dict)
    queues: dict[str, set[str]] = field(default_factory=dict)
    priority: dict[str, int] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    sticky: set[str] = field(default_factory=set)
    missed: set[tuple[str, str]] = field(default_factory=set)
    reachable: dict[str, bool] = field(default_factory=dict)

    def live_calls(self) -> set[str]:
        return {c for c, s in self.status.items() if s != "ended"}


def snapshot(router: RoutingEngine):
    agents = [router.agent_view(a) for a in router.agent_ids()]
    calls = [router.call_view(c) for c in router.call_ids()]
    return agents, calls, router.next_deadline()


def check_offer(model: Model, offer: Offer) -> None:
    call, agent = offer.call_id, offer.agent_id
    assert model.agent_state[agent] is AgentState.AVAILABLE, f"offer to {agent} in {model.agent_state[agent]}"
    assert model.reachable[agent], f"offer to {agent}, whose phone is unreachable"
    assert model.status[call] in ("waiting", "offered"), f"offer for {call} in {model.status[call]}"
    skills = model.agent_skills[agent]
    for skill, minimum in model.requirements[call].items():
        assert skills.get(skill, 0) >= minimum, f"{agent} lacks {skill}>={minimum} for {call}"
    assert agent in offer.explanation
    if call in model.sticky:
        return
    for other, state in model.status.items():
        if (
            state == "waiting"
            and other != call
            and other not in model.sticky
            and model.order[other] < model.order[call]
            and model.priority[other] == model.priority[call]
            and model.requirements[other] == model.requirements[call]
            and model.queues[other] == model.queues[call]
            and (other, agent) not in model.missed
        ):
            raise AssertionError(f"FIFO: {call} offered to {agent} before older {other}")


def apply_decisions(model: Model, decisions, now: float, from_timer: bool) -> None:
    for decision in decisions:
        if isinstance(decision, Offer):
            check_offer(model, decision)
            model.status[decision.call_id] = "offered"
            model.offers.setdefault(decision.call_id, set()).add(decision.agent_id)
        elif isinstance(decision, OfferCancelled):
            model.offers[decision.call_id].discard(decision.agent_id)
            if decision.reason == "ring-no-answer":
                model.missed.add((decision.call_id, decision.agent_id))
            if model.status[decision.call_id] == "offered" and not model.offers[decision.call_id]:
                model.status[decision.call_id] = "waiting"
        elif isinstance(decision, CallConnected):
            assert model.status[decision.call_id] == "offered"
            model.status[decision.call_id] = "connected"
            model.offers[decision.call_id] = set()
        elif isinstance(decision, CallOverflowed):
            model.requirements[decision.call_id] = dict(decision.requirements)
            model.queues[decision.call_id] = set(decision.queues)
        elif isinstance(decision, AgentStateChanged):
            agent = decision.agent_id
            previous = model.agent_state.get(agent, AgentState.LOGGED_OUT)
            assert decision.previous is previous, f"{agent}: {decision.previous} but model {previous}"
            assert decision.state in TRANSITIONS[previous].values()
            if previous is AgentState.WRAP_UP and decision.reason == "wrap-up over":
                assert from_timer and now >= model.wrap_started[agent] + WRAP_UP
            if decision.state is AgentState.WRAP_UP:
                model.wrap_started[agent] = now
            model.agent_state[agent] = decision.state
        elif isinstance(decision, AgentReachabilityChanged):
            agent = decision.agent_id
            assert decision.state is model.agent_state[agent], "reachability never changes the state"
            assert decision.reachable is not model.reachable[agent], "a reachability change changes it"
            model.reachable[agent] = decision.reachable


def check_invariants(model: Model, router: RoutingEngine) -> None:
    held = set(router.call_ids())
    assert held == model.live_calls(), "a call was lost or invented"
    holder: dict[str, str] = {}
    for call_id in held:
        view = router.call_view(call_id)
        assert view.state == model.status[call_id]
        for agent in view.agent_ids:
            assert agent not in holder, f"{agent} holds {holder.get(agent)} and {call_id}"
            holder[agent] = call_id
    for agent in router.agent_ids():
        view = router.agent_view(agent)
        assert view.state is model.agent_state[agent]
        busy = view.state in (AgentState.OFFERED, AgentState.ON_CALL)
        assert (view.call_id is not None) == busy
        if busy:
            assert holder[agent] == view.call_id
    for agent, state in model.agent_state.items():
        assert (state is AgentState.LOGGED_OUT) == (agent not in router.agent_ids())
    views = [router.agent_view(agent) for agent in router.agent_ids()]
    for agent in views:
        assert agent.reachable is model.reachable[agent.agent_id]
    for queue in ("front", "back"):
        members = [agent for agent in views if queue in dict(agent.queues)]
        expected = {state.value: 0 for state in AgentState if state is not AgentState.LOGGED_OUT}
        expected["unreachable"] = 0
        for agent in members:
            expected[agent.state.value if agent.reachable else "unreachable"] += 1
        assert router.queue_stats(queue, 0).agents == expected, f"{queue}: member counts"


login_op = st.tuples(
    st.just("login"),
    st.sampled_from(AGENTS),
    st.integers(0, len(QUEUE_SETS) - 1),
    st.integers(0, len(SKILL_SETS) - 1),
    st.booleans(),
)
arrive_op = st.tuples(
    st.just("arrive"),
    st.sampled_from(["front", "back"]),
    st.integers(0, 1),
    st.integers(0, len(REQUIREMENTS) - 1),
    st.one_of(st.none(), st.sampled_from(AGENTS[:2])),
)
answer_op = st.tuples(st.just("answer"), st.integers(0, 50))
advance_op = st.tuples(st.just("advance"), st.floats(0.5, 30))
# Repeated branches weight the mix towards logins, arrivals, answers and time passing.
operations = st.one_of(
    login_op,
    login_op,
    st.tuples(st.sampled_from(["logout", "pause", "ready"]), st.sampled_from(AGENTS)),
    st.tuples(st.sampled_from(["unreachable", "reachable"]), st.sampled_from(AGENTS)),
    arrive_op,
    arrive_op,
    st.tuples(st.sampled_from(["end", "callback", "decline", "fail"]), st.integers(0, 50)),
    st.tuples(st.just("change"), st.integers(0, 50), st.integers(0, 3)),
    answer_op,
    answer_op,
    answer_op,
    advance_op,
    advance_op,
)


def make_event(op, model: Model, counter: list[int]):
    kind = op[0]
    if kind == "login":
        _, agent, queues, skills, paused = op
        return AgentLoggedIn(
            agent_id=agent, queues=QUEUE_SETS[queues], skills=SKILL_SETS[skills],
            paused_reason="training" if paused else None,
        )
    if kind == "logout":
        return AgentLoggedOut(agent_id=op[1])
    if kind == "pause":
        return AgentPauseRequested(agent_id=op[1], reason="break")
    if kind == "ready":
        return AgentReadyRequested(agent_id=op[1])
    if kind == "unreachable":
        return AgentUnreachable(agent_id=op[1], reason="unregistered")
    if kind == "reachable":
        return AgentReachable(agent_id=op[1])
    if kind == "arrive":
        counter[0] += 1
        _, queue, priority, requirements, preferred = op
        return CallArrived(
            call_id=f"call{counter[0]}", queue=queue, priority=priority,
            requirements=REQUIREMENTS[requirements], preferred_agent=preferred,
        )
    calls = sorted(model.live_calls(), key=model.order.__getitem__)
    if kind == "change":
        if not calls:
            return None
        return CallChanged(call_id=calls[op[1] % len(calls)], priority=op[2])
    if kind in ("end", "callback"):
        if not calls:
            return None
        connected = [c for c in calls if model.status[c] == "connected"]
        if kind == "end" and connected and op[1] % 2 == 0:
            calls = connected  # half the hang-ups end a conversation, half abandon
        call = calls[op[1] % len(calls)]
        return CallEnded(call_id=call) if kind == "end" else CallbackRequested(call_id=call)
    pairs = sorted((c, a) for c, agents in model.offers.items() for a in agents)
    if not pairs:
        return None
    call, agent = pairs[op[1] % len(pairs)]
    if kind == "answer":
        return OfferAnswered(call_id=call, agent_id=agent)
    if kind == "fail":
        return OfferFailed(call_id=call, agent_id=agent, reason="480 Temporarily Unavailable")
    return OfferDeclined(call_id=call, agent_id=agent)


def record_sent(model: Model, event, router: RoutingEngine, now: float) -> None:
    """Update the model for what the sent event itself means (before its decisions)."""
    if isinstance(event, AgentLoggedIn):
        model.agent_skills[event.agent_id] = dict(event.skills)
        model.agent_queues[event.agent_id] = {q for q, _ in event.queues}
        model.reachable[event.agent_id] = event.reachable
    elif isinstance(event, CallArrived):
        call = event.call_id
        model.status[call] = "waiting"
        model.requirements[call] = dict(event.requirements)
        model.queues[call] = {event.queue}
        model.priority[call] = event.priority
        model.order[call] = len(model.order)
        if event.preferred_agent:
            model.sticky.add(call)
    elif isinstance(event, CallEnded):
        model.status[event.call_id] = "ended"
    elif isinstance(event, CallChanged):
        model.priority[event.call_id] = event.priority
    elif isinstance(event, (OfferDeclined, OfferFailed)):
        if isinstance(event, OfferDeclined):
            model.missed.add((event.call_id, event.agent_id))
        model.offers[event.call_id].discard(event.agent_id)
        if not model.offers[event.call_id]:
            model.status[event.call_id] = "waiting"


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    strategies=st.tuples(
        st.sampled_from(["longest-idle", "fewest-calls", "round-robin", "ring-all", "skills"]),
        st.sampled_from(["skills", "longest-idle", "ring-all"]),
    ),
    ops=st.lists(operations, min_size=10, max_size=80),
)
def test_random_event_sequences_keep_every_invariant(strategies, ops):
    run_sequence(strategies, ops)


def run_sequence(strategies: tuple[str, str], ops: list[tuple], extra=None) -> None:
    """Apply `ops` to a fresh engine, checking the model and invariants after each step.
    `extra(op, router, model, now)` handles ops this file does not know (it returns True if it did)."""
    router = build(*strategies)
    model = Model()
    counter = [0]
    now = 0.0
    for op in ops:
        if extra is not None and extra(op, router, model, now):
            continue
        if op[0] == "advance":
            target = now + op[1]
            while (deadline := router.next_deadline()) is not None and deadline <= target:
                now = max(now, deadline)
                apply_decisions(model, router.handle_timers(now), now, from_timer=True)
                check_invariants(model, router)
            now = target
            continue
        event = make_event(op, model, counter)
        if event is None:
            continue
        before = snapshot(router)
        try:
            decisions = router.handle(event, now)
        except RoutingError:
            assert snapshot(router) == before, "a rejected event changed the engine"
            continue
        if isinstance(event, CallArrived) and any(type(d).__name__ == "CallRefused" for d in decisions):
            continue
        record_sent(model, event, router, now)
        apply_decisions(model, decisions, now, from_timer=False)
        check_invariants(model, router)


def _random_op(rng):
    roll = rng.random()
    if roll < 0.15:
        return ("login", rng.choice(AGENTS), rng.randrange(len(QUEUE_SETS)),
                rng.randrange(len(SKILL_SETS)), rng.random() < 0.2)
    if roll < 0.22:
        return (rng.choice(["logout", "pause", "ready", "ready", "unreachable", "reachable"]), rng.choice(AGENTS))
    if roll < 0.37:
        return ("arrive", rng.choice(["front", "back"]), rng.randrange(2),
                rng.randrange(len(REQUIREMENTS)), rng.choice([None, None, None, AGENTS[0]]))
    if roll < 0.55:
        return (rng.choice(["end", "end", "end", "callback", "decline", "fail"]), rng.randrange(50))
    if roll < 0.75:
        return ("answer", rng.randrange(50))
    return ("advance", rng.uniform(0.5, 20))


def test_a_long_seeded_day_keeps_every_invariant():
    """Deep sequences (thousands of events) that hypothesis' short lists do not reach."""
    import random

    rng = random.Random(20240601)
    for strategies in (("skills", "skills"), ("ring-all", "longest-idle"), ("round-robin", "ring-all")):
        ops = [_random_op(rng) for _ in range(1500)]
        run_sequence(strategies, ops)
