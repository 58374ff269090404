"""A routing config in the routing log (`Reconfigured`): it survives the wire, and a replica applying
the entry changes config at that point, as the leader did; a damaged one is refused the same way
on every replica."""

from __future__ import annotations

import json

import pytest

from acd.cluster.routing_log import LogEntry, RoutingReplica
from acd.cluster.snapshot import SnapshotError, dump_config, dump_engine, load_config
from acd.cluster.wire import Reconfigured, decode_event, encode_event
from acd.routing import AgentLoggedIn, AgentProfile, CallArrived, QueueConfig, QueueRemoved, RoutingConfig

OLD = RoutingConfig(queues=(QueueConfig(name="support"), QueueConfig(name="sales")), skills=frozenset({"fr"}),
                    agents=(AgentProfile(agent_id="alice", queues=(("support", 0),), skills=(("fr", 2),)),))
NEW = RoutingConfig(queues=(QueueConfig(name="support", wrap_up_seconds=9.0),), skills=frozenset({"fr"}))


def test_a_config_survives_the_wire():
    event = Reconfigured(routing=dump_config(OLD))
    decoded = decode_event(json.loads(json.dumps(encode_event(event))))
    assert decoded == event and load_config(decoded.routing) == OLD


def test_only_a_config_loads_as_one():
    with pytest.raises(SnapshotError, match="holds a RoutingEngine, not a RoutingConfig"):
        from acd.routing import RoutingEngine
        load_config(dump_engine(RoutingEngine(OLD)))


def test_replicas_change_config_at_the_entry_like_the_leader():
    leader, follower = RoutingReplica(OLD), RoutingReplica(OLD)
    entries = []
    for event in (AgentLoggedIn(agent_id="alice", queues={"support": 0}), CallArrived(call_id="c1", queue="sales"),
                  Reconfigured(routing=dump_config(NEW))):
        written, outcome = leader.record(event, 1.0, epoch=1)
        entries.extend(written)
    assert any(isinstance(d, QueueRemoved) for d in outcome.decisions)
    for entry in entries:
        follower.apply(entry)
    assert follower.engine.queue_config("support").wrap_up_seconds == 9.0
    assert dump_engine(follower.engine) == dump_engine(leader.engine)


def test_a_damaged_config_is_refused_by_every_replica_alike():
    replica = RoutingReplica(OLD)
    damaged = dump_config(NEW) | {"sha256": "0" * 64}
    entry = LogEntry(epoch=1, seq=1, kind="event", payload={"at": 1.0, "input": encode_event(
        Reconfigured(routing=damaged))})
    outcome = replica.apply(entry)
    assert outcome.error_id == "bad-routing-config" and "damaged" in outcome.error
    assert replica.engine.queue_config("sales") is not None
