"""The routing-log replica: order, gaps, stale epochs, decision checks, snapshots and replay, and
determinism (the same log gives every replica the same decisions)."""

from __future__ import annotations

import json
import random

import pytest

from acd.cluster.routing_log import (
    LogEntry,
    LogError,
    LogGap,
    ReplicaDiverged,
    RoutingReplica,
    StaleEpoch,
    replay,
)
from acd.cluster.snapshot import SnapshotError, dump_engine, load_engine
from acd.cluster.wire import TimersDue, encode_decisions
from acd.routing import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPauseRequested,
    AgentReachable,
    AgentReadyRequested,
    AgentUnreachable,
    CallArrived,
    CallEnded,
    Offer,
    OfferAnswered,
    OfferDeclined,
    OfferFailed,
    OverflowStep,
    QueueConfig,
    RoutingConfig,
)

CONFIG = RoutingConfig(
    queues=(
        QueueConfig(name="front", strategy="skills", wrap_up_seconds=5.0, ring_timeout_seconds=8.0,
                    overflow=(OverflowStep(after_seconds=20.0, add_queues=("back",)),)),
        QueueConfig(name="back", strategy="round-robin", wrap_up_seconds=3.0, ring_timeout_seconds=6.0),
    ),
    skills={"billing", "spanish"},
)
AGENTS = [f"agent{n}" for n in range(5)]


def logged_day(seed: int, steps: int, snapshot_every: int = 0) -> tuple[RoutingReplica, list[LogEntry]]:
    """A leader's replica after a seeded random day, and the log it wrote (snapshots every
    `snapshot_every` events when set)."""
    rng = random.Random(seed)
    leader = RoutingReplica(CONFIG)
    log: list[LogEntry] = []
    offers: list[tuple[str, str]] = []
    calls: list[str] = []
    now = 0.0
    for step in range(steps):
        now += rng.choice((0.0, 0.5, 1.0, 3.0))
        deadline = leader.engine.next_deadline()
        agent = rng.choice(AGENTS)
        roll = rng.random()
        if deadline is not None and deadline <= now:
            event, now = TimersDue(), deadline
        elif roll < 0.15:
            event = AgentLoggedIn(agent_id=agent, queues=rng.choice(({"front": 0}, {"back": 0}, {"front": 1, "back": 0})),
                                  skills=rng.choice(({}, {"billing": 6}, {"spanish": 4, "billing": 2})))
        elif roll < 0.2:
            event = rng.choice((AgentLoggedOut(agent_id=agent), AgentPauseRequested(agent_id=agent, reason="break"),
                                AgentReadyRequested(agent_id=agent), AgentUnreachable(agent_id=agent, reason="expired"),
                                AgentReachable(agent_id=agent)))
        elif roll < 0.45:
            calls.append(f"call{step}")
            event = CallArrived(call_id=calls[-1], queue=rng.choice(("front", "back")), priority=rng.randrange(3),
                                requirements=rng.choice(({}, {"billing": 2})))
        elif roll < 0.7 and offers:
            call_id, agent_id = offers.pop(rng.randrange(len(offers)))
            event = rng.choice((OfferAnswered, OfferAnswered, OfferDeclined))(call_id=call_id, agent_id=agent_id)
            if rng.random() < 0.1:
                event = OfferFailed(call_id=call_id, agent_id=agent_id, reason="480")
        elif calls:
            event = CallEnded(call_id=calls.pop(rng.randrange(len(calls))))
        else:
            event = TimersDue()
        entries, outcome = leader.record(event, now, epoch=1 + step // 100)
        log.extend(entries)
        offers.extend((d.call_id, d.agent_id) for d in outcome.decisions if isinstance(d, Offer))
        if snapshot_every and step % snapshot_every == snapshot_every - 1:
            log.append(leader.snapshot(epoch=1 + step // 100))
    return leader, log


def engine_view(replica: RoutingReplica, now: float = 10_000.0) -> tuple:
    """Everything a replica's engine shows: agents, calls, queue figures, next deadline."""
    engine = replica.engine
    return ([engine.agent_view(a) for a in engine.agent_ids()], [engine.call_view(c) for c in engine.call_ids()],
            [engine.queue_stats(q, now) for q in ("front", "back")], engine.next_deadline())


def through_json(entries: list[LogEntry]) -> list[LogEntry]:
    """The entries as they come back from the store: payloads through JSON text."""
    return [LogEntry(epoch=e.epoch, seq=e.seq, kind=e.kind, payload=json.loads(json.dumps(e.payload)))
            for e in entries]


def test_two_replicas_fed_the_same_log_make_identical_decisions():
    _leader, log = logged_day(seed=20, steps=400)
    first, second = RoutingReplica(CONFIG), RoutingReplica(CONFIG)
    decided = []
    for entry in through_json(log):
        one, two = first.apply(entry), second.apply(entry)
        if entry.kind == "event":
            assert encode_decisions(one.decisions) == encode_decisions(two.decisions)
            assert one.error_id == two.error_id
            decided.extend(one.decisions)
    assert any(isinstance(d, Offer) for d in decided)
    assert first.last_seq == second.last_seq == len(log)
    assert engine_view(first) == engine_view(second) == engine_view(_leader)


def test_a_replica_rebuilt_from_the_last_snapshot_continues_exactly_like_the_leader():
    leader, log = logged_day(seed=7, steps=300, snapshot_every=60)
    rebuilt = replay(CONFIG, through_json(log))
    assert rebuilt.last_seq == leader.last_seq and rebuilt.epoch == leader.epoch
    assert engine_view(rebuilt) == engine_view(leader)
    continued_leader, _ = leader.record(CallArrived(call_id="late", queue="front"), 5000.0, epoch=9)
    continued_rebuilt, _ = rebuilt.record(CallArrived(call_id="late", queue="front"), 5000.0, epoch=9)
    assert continued_leader == continued_rebuilt
    assert engine_view(rebuilt) == engine_view(leader)


def test_replay_starts_at_the_last_snapshot_not_at_seq_one():
    _leader, log = logged_day(seed=3, steps=120, snapshot_every=50)
    last_snapshot = max(e.seq for e in log if e.kind == "snapshot")
    rebuilt = replay(CONFIG, [e for e in log if e.seq >= last_snapshot])
    assert rebuilt.last_seq == len(log)


def test_a_gap_is_reported_with_the_seq_to_read_from_and_changes_nothing():
    _leader, log = logged_day(seed=1, steps=10)
    replica = RoutingReplica(CONFIG)
    replica.apply(log[0])
    with pytest.raises(LogGap) as caught:
        replica.apply(log[2])
    assert (caught.value.expected, caught.value.got) == (2, 3)
    assert replica.last_seq == 1
    replica.apply(log[1])
    with pytest.raises(LogError, match="already applied"):
        replica.apply(log[1])


def test_an_entry_from_a_deposed_leaders_epoch_is_refused():
    replica = RoutingReplica(CONFIG)
    login = AgentLoggedIn(agent_id="agent1", queues={"front": 0})
    replica.record(login, 1.0, epoch=2)
    late = LogEntry(epoch=1, seq=3, kind="event", payload={"at": 2.0, "input": {"type": "TimersDue"}})
    with pytest.raises(StaleEpoch, match="epoch 1, older than epoch 2"):
        replica.apply(late)
    assert replica.last_seq == 2


def test_decisions_that_differ_from_the_replicas_own_are_a_divergence():
    leader = RoutingReplica(CONFIG)
    leader.record(AgentLoggedIn(agent_id="agent1", queues={"front": 0}), 1.0, epoch=1)
    entries, _ = leader.record(CallArrived(call_id="c1", queue="front"), 2.0, epoch=1)
    follower = RoutingReplica(CONFIG)
    follower.apply(LogEntry(epoch=1, seq=1, kind="event",
                            payload={"at": 1.0, "input": {"type": "AgentLoggedIn", "agent_id": "agent2",
                                                          "queues": [["front", 0]], "skills": [],
                                                          "paused_reason": None, "reachable": True}}))
    with pytest.raises(ReplicaDiverged, match="same version and routing config"):
        follower.apply(LogEntry(epoch=1, seq=2, kind="decision", payload={
            "for_seq": 1, "decisions": entries[1].payload["decisions"], "error": None}))


def test_a_routing_error_is_an_outcome_every_replica_reproduces():
    leader = RoutingReplica(CONFIG)
    entries, outcome = leader.record(OfferAnswered(call_id="nobody", agent_id="agent1"), 1.0, epoch=1)
    assert outcome.error_id == "no-such-call" and outcome.decisions == []
    follower = RoutingReplica(CONFIG)
    for entry in through_json(entries):
        follower.apply(entry)
    assert follower.last_seq == 2 and follower.unconfirmed() == []


def test_a_new_leader_answers_the_event_its_predecessor_left_without_decisions():
    leader = RoutingReplica(CONFIG)
    login, _ = leader.record(AgentLoggedIn(agent_id="agent1", queues={"front": 0}), 1.0, epoch=1)
    entries, outcome = leader.record(CallArrived(call_id="c1", queue="front"), 2.0, epoch=1)
    written = [*login, entries[0]]  # the leader died before appending the decision entry
    successor = replay(CONFIG, through_json(written))
    assert [o.seq for o in successor.unconfirmed()] == [3]
    with pytest.raises(LogError, match="every event entry answered"):
        successor.snapshot(epoch=2)
    answered = successor.confirm_unconfirmed(epoch=2)
    assert answered[0].payload["decisions"] == entries[1].payload["decisions"] == outcome.payload()["decisions"]
    assert successor.snapshot(epoch=2).seq == 5


def test_times_never_go_backwards_in_the_log():
    leader = RoutingReplica(CONFIG)
    leader.record(AgentLoggedIn(agent_id="agent1", queues={"front": 0}), 10.0, epoch=1)
    entries, _ = leader.record(TimersDue(), 9.5, epoch=2)  # a new leader's clock lags a little
    assert entries[0].payload["at"] == 10.0


def test_a_damaged_or_foreign_snapshot_is_refused_saying_what_to_do():
    leader, _log = logged_day(seed=5, steps=40)
    snapshot = dump_engine(leader.engine)
    assert json.loads(json.dumps(snapshot)) == snapshot
    with pytest.raises(SnapshotError, match="replay the log from its start"):
        load_engine({**snapshot, "format": "other/1"})
    with pytest.raises(SnapshotError, match="SHA-256 does not match"):
        load_engine({**snapshot, "sha256": "0" * 64})
    with pytest.raises(SnapshotError, match="no valid base64"):
        load_engine({**snapshot, "data": "***"})


def test_a_snapshot_can_only_build_routing_classes():
    import base64
    import hashlib
    import pickle

    data = pickle.dumps(print)
    hostile = {"format": dump_engine(RoutingReplica(CONFIG).engine)["format"],
               "sha256": hashlib.sha256(data).hexdigest(), "data": base64.b64encode(data).decode()}
    with pytest.raises(SnapshotError, match="may not hold builtins.print"):
        load_engine(hostile)


def test_entries_check_themselves():
    with pytest.raises(LogError, match="kind must be one of"):
        LogEntry(epoch=1, seq=1, kind="gossip", payload={})
    with pytest.raises(LogError, match="seq must be a positive integer"):
        LogEntry(epoch=1, seq=0, kind="event", payload={})
