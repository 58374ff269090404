"""Records of a cluster: each call carries the node hosting it and that node's incarnation; the
calls of a node that died are closed as "interrupted" by a survivor, its agents freed once, whoever
runs it and however often, and only the dead incarnation's (a restarted node's next incarnation
keeps its calls); a restarted node closes only its own calls. Both backends (tests/conftest.py
`store_location`)."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest

from acd.store.records_pg import PgRecordStore
from acd.store.records_process import ProcessRecordStore
from tests.store_backends import open_records, read_rows

REASON = "node n2 stopped unexpectedly"


def calls(location) -> dict[str, tuple]:
    """Every CDR: call id -> (node, outcome, end reason, ended_at, talk_seconds)."""
    return {row["call_id"]: (row["node"], row["outcome"], row["end_reason"], row["ended_at"], row["talk_seconds"])
            for row in read_rows(location, "SELECT * FROM calls")}


def presence(location) -> dict[str, tuple]:
    """Every agent's current state: agent -> (state, pause reason, pending, queues)."""
    return {row["agent_id"]: (row["state"], row["pause_reason"], row["pending"], row["queues"])
            for row in read_rows(location, "SELECT * FROM agent_presence")}


def states_at(location, at: float) -> list[tuple]:
    """The agent state history rows written at `at`."""
    return [(row["agent_id"], row["state"], row["reason"])
            for row in read_rows(location, "SELECT * FROM agent_states WHERE at = ? ORDER BY agent_id", at)]


def talking(store, call_id: str, agent: str, at: float, **presence_options) -> None:
    """`agent` answered `call_id` at `at`, its presence on_call."""
    store.call_connected(call_id, agent=agent, at=at, queue="support")
    store.agent_presence(agent, state="on_call", queues={"support": 0}, reason=f"answered {call_id}", at=at,
                         **presence_options)


@pytest.fixture
def two_nodes(store_location):
    """The same records written by node n1 and node n2 (one store each, as two servers)."""
    n1 = open_records(store_location, node="n1")
    n2 = open_records(store_location, node="n2")
    yield n1, n2
    n1.close()
    n2.close()


def populate(n1, n2) -> None:
    """n2 hosts: a call in talk with alice, one with bob (pause asked), one waiting, one ended; one
    whose agent's leg is over (carol, wrap-up); n1 hosts one in talk with dave."""
    for store, call_id in ((n2, "talk-alice"), (n2, "talk-bob"), (n2, "waiting"), (n2, "done"), (n2, "after-talk"),
                           (n1, "n1-talk")):
        store.call_arrived(call_id, trunk="t", caller="1", dialled="2", at=10.0)
    talking(n2, "talk-alice", "alice", 20.0)
    talking(n2, "talk-bob", "bob", 21.0, pending="pause", pending_reason="lunch")
    n2.call_connected("done", agent="erin", at=15.0)
    n2.call_ended("done", outcome="caller_hangup", reason="bye", at=18.0)
    n2.agent_presence("erin", state="available", queues={"support": 0}, reason="wrap-up over", at=19.0)
    talking(n2, "after-talk", "carol", 12.0)
    n2.talk_ended("after-talk", at=16.0)
    n2.agent_presence("carol", state="wrap_up", queues={"support": 0}, reason="after-talk ended", at=16.0)
    talking(n1, "n1-talk", "dave", 22.0)
    n1.flush()
    n2.flush()


def test_each_call_record_carries_the_node_hosting_it(two_nodes, store_location):
    n1, n2 = two_nodes
    n1.call_arrived("a", trunk="t", caller="1", dialled="2", at=1.0)
    n2.call_arrived("b", trunk="t", caller="1", dialled="2", at=1.0)
    alone = open_records(store_location)
    alone.call_arrived("c", trunk="t", caller="1", dialled="2", at=1.0)
    alone.close()
    n1.flush()
    n2.flush()
    assert {call_id: row[0] for call_id, row in calls(store_location).items()} == {"a": "n1", "b": "n2", "c": None}


def test_a_dead_nodes_open_calls_are_closed_interrupted_and_its_agents_freed_once(two_nodes, store_location):
    n1, n2 = two_nodes
    populate(n1, n2)
    n1.close_node_calls("n2", at=100.0)
    n1.flush()
    ended = calls(store_location)
    assert ended["talk-alice"] == ("n2", "interrupted", REASON, 100.0, 80.0)
    assert ended["waiting"] == ("n2", "interrupted", REASON, 100.0, None)
    assert ended["after-talk"] == ("n2", "interrupted", REASON, 100.0, 4.0)  # its talk time kept
    assert ended["done"] == ("n2", "caller_hangup", "bye", 18.0, 3.0)
    assert ended["n1-talk"][1:] == (None, None, None, None)
    now = presence(store_location)
    assert now["alice"] == ("available", None, None, '{"support": 0}')
    assert now["bob"] == ("paused", "lunch", None, '{"support": 0}')  # the pause asked for during the call
    assert now["carol"][0] == "wrap_up" and now["erin"][0] == "available" and now["dave"][0] == "on_call"
    assert states_at(store_location, 100.0) == [
        ("alice", "available", f"call talk-alice interrupted: {REASON}"),
        ("bob", "paused", f"call talk-bob interrupted: {REASON}")]

    n1.close_node_calls("n2", at=200.0)  # again (another death report): nothing changes
    n1.flush()
    assert calls(store_location) == ended
    assert states_at(store_location, 200.0) == []


def test_an_agent_who_moved_on_to_another_call_is_not_freed_by_the_old_one(two_nodes, store_location):
    """A caller transferred back to a queue keeps its old agent in the CDR until the next answer;
    that agent now talks on another node's call and must stay on_call."""
    n1, n2 = two_nodes
    n2.call_arrived("old", trunk="t", caller="1", dialled="2", at=10.0)
    talking(n2, "old", "alice", 11.0)
    n2.call_queued("old", queue="support", at=12.0)
    n1.call_arrived("new", trunk="t", caller="1", dialled="2", at=13.0)
    talking(n1, "new", "alice", 14.0)
    n2.flush()
    n1.flush()
    n1.close_node_calls("n2", at=50.0)
    n1.flush()
    assert calls(store_location)["old"][1] == "interrupted"
    assert presence(store_location)["alice"][0] == "on_call"
    assert states_at(store_location, 50.0) == []


def test_an_agent_who_asked_to_log_out_during_the_call_is_logged_out(two_nodes, store_location):
    n1, n2 = two_nodes
    n2.call_arrived("c", trunk="t", caller="1", dialled="2", at=10.0)
    talking(n2, "c", "alice", 11.0, pending="logout")
    n2.flush()
    n1.close_node_calls("n2", at=50.0, reason="node n2 died: no heartbeat for 3 s")
    n1.flush()
    assert presence(store_location)["alice"] == ("logged_out", None, None, "{}")
    assert states_at(store_location, 50.0) == [
        ("alice", "logged_out", "call c interrupted: node n2 died: no heartbeat for 3 s")]


def test_a_restarted_cluster_node_closes_only_its_own_calls_and_those_of_no_node(two_nodes, store_location):
    n1, n2 = two_nodes
    n1.call_arrived("mine", trunk="t", caller="1", dialled="2", at=1.0)
    n2.call_arrived("theirs", trunk="t", caller="1", dialled="2", at=1.0)
    alone = open_records(store_location)
    alone.call_arrived("before-the-cluster", trunk="t", caller="1", dialled="2", at=1.0)
    alone.close()
    n2.flush()
    n1.close_interrupted(at=5.0)
    n1.flush()
    outcomes = {call_id: row[1] for call_id, row in calls(store_location).items()}
    assert outcomes == {"mine": "interrupted", "theirs": None, "before-the-cluster": "interrupted"}


def test_close_node_calls_needs_a_node(two_nodes):
    with pytest.raises(ValueError, match="dead node's id"):
        two_nodes[0].close_node_calls("", at=1.0)


def test_the_records_process_writes_its_node_too(tmp_path):
    store = ProcessRecordStore(tmp_path / "records.db", node="n7")
    try:
        store.call_arrived("c", trunk="t", caller="1", dialled="2", at=1.0)
        store.close_node_calls("n7", at=2.0)
        assert store.flush()
    finally:
        store.close()
    assert calls(tmp_path / "records.db") == {"c": ("n7", "interrupted", "node n7 stopped unexpectedly", 2.0, None)}


def test_two_survivors_closing_a_dead_nodes_calls_at_once_close_each_call_and_free_each_agent_once(pg_url, caplog):
    """Two PostgreSQL writers (two survivors) run the clean-up at the same instant: both wait on the
    calls' rows, locked by a third transaction, then go; one closes everything, the other nothing."""
    caplog.set_level(logging.INFO, logger="acd.store.records")
    dead = PgRecordStore(pg_url, node="n2")
    survivors = [PgRecordStore(pg_url, node=name) for name in ("n1", "n3")]
    try:
        for index in range(10):
            dead.call_arrived(f"c{index}", trunk="t", caller="1", dialled="2", at=10.0)
            talking(dead, f"c{index}", f"agent{index}", 11.0)
        dead.flush()
        with psycopg.connect(pg_url) as holder:  # a transaction, held open
            holder.execute("SELECT 1 FROM calls WHERE node = 'n2' FOR UPDATE")
            for survivor in survivors:
                survivor.close_node_calls("n2", at=50.0, reason=f"declared dead by {survivor.node}")
            time.sleep(0.2)  # both writers now wait on the locked rows
            holder.commit()
        flushed = []
        threads = [threading.Thread(target=lambda s=s: flushed.append(s.flush(10.0))) for s in survivors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert flushed == [True, True]
    finally:
        for store in [dead] + survivors:
            store.close()
    closed = sorted(record.getMessage() for record in caplog.records if "interrupted call(s) closed" in record.getMessage())
    assert closed == ["records: node n2: 0 interrupted call(s) closed, 0 agent(s) freed",
                      "records: node n2: 10 interrupted call(s) closed, 10 agent(s) freed"]
    reasons = {row[2] for row in calls(pg_url).values()}
    assert len(reasons) == 1 and reasons.pop().startswith("declared dead by n")  # one survivor closed them all
    written = states_at(pg_url, 50.0)
    assert sorted(agent for agent, _state, _reason in written) == sorted(f"agent{i}" for i in range(10))
    assert {state for _agent, state, _reason in written} == {"available"}


def test_each_cluster_node_has_its_own_runs_and_counts_its_own_open_calls(store_location):
    """A clean stop of n1 is not n2's; a restart of n2 after a crash counts only its calls left open."""
    n1 = open_records(store_location, node="n1")
    assert n1.start_run(at=1.0).first_start
    n1.call_arrived("on-n1", trunk="t", caller="1", dialled="2", at=3.0)
    n1.call_ended("on-n1", outcome="completed", reason="flow ended", at=4.0)
    n2 = open_records(store_location, node="n2")  # (SQLite: one writer at a time; PostgreSQL would not mind)
    assert n2.start_run(at=2.0).first_start
    n2.call_arrived("on-n2", trunk="t", caller="1", dialled="2", at=3.0)
    n2.call_arrived("on-n2-too", trunk="t", caller="1", dialled="2", at=3.0)
    n2.close()  # as a kill -9 would: no stop written
    n1.stop_run(at=5.0)
    n1.close()
    first = _restart(store_location, "n1", at=10.0)
    second = _restart(store_location, "n2", at=11.0)
    assert (first.ending, first.stopped_at, first.open_calls) == ("a clean stop", 5.0, 0)
    assert (second.ending, second.stopped_at, second.open_calls) == ("a crash", None, 2)
    runs = read_rows(store_location, "SELECT node, started_at, stopped_at FROM server_runs ORDER BY started_at")
    assert [(r["node"], r["started_at"], r["stopped_at"]) for r in runs] == [
        ("n1", 1.0, 5.0), ("n2", 2.0, None), ("n1", 10.0, None), ("n2", 11.0, None)]


def _restart(location, node: str, *, at: float):
    """What node `node` finds about its previous run when it starts again at `at`."""
    store = open_records(location, node=node)
    try:
        return store.start_run(at=at)
    finally:
        store.close()


def test_a_schema_6_database_gets_the_node_columns_and_keeps_its_runs(tmp_path):
    """calls.node and server_runs.node are added in place (schema 7); the old rows have no node."""
    import sqlite_utils

    from acd.store.records import SCHEMA_VERSION, RecordStore

    path = tmp_path / "records.db"
    db = sqlite_utils.Database(path)
    db["calls"].create({"call_id": str, "arrived_at": float, "ended_at": float}, pk="call_id")
    db["server_runs"].create({"id": int, "started_at": float, "stopped_at": float}, pk="id")
    db["server_runs"].insert({"started_at": 1.0, "stopped_at": 2.0})
    db.close()
    store = RecordStore(path, node="n1")
    try:
        previous = store.start_run(at=3.0)
        store.stop_run(at=4.0)
        assert store.flush()
    finally:
        store.close()
    assert previous.first_start  # n1's first run: the old run belongs to no node
    runs = read_rows(path, "SELECT node, started_at, stopped_at FROM server_runs ORDER BY id")
    assert [(r["node"], r["started_at"], r["stopped_at"]) for r in runs] == [(None, 1.0, 2.0), ("n1", 3.0, 4.0)]
    assert read_rows(path, "PRAGMA user_version") == [{"user_version": SCHEMA_VERSION}] and SCHEMA_VERSION == 8
    assert {"node", "incarnation"} <= {row["name"] for row in read_rows(path, "PRAGMA table_info(calls)")}


def test_the_call_story_names_the_node_that_hosted_the_call_and_why_it_was_interrupted(two_nodes, store_location):
    from acd.call_story import call_story

    n1, n2 = two_nodes
    n2.call_arrived("c", trunk="carrier", caller="100", dialled="200", at=10.0)
    n2.flush()
    n1.close_node_calls("n2", at=20.0)
    n1.flush()
    assert call_story(store_location, "c") == [
        (10.0, "arrived on trunk carrier from 100 dialling 200 (cluster node n2)"),
        (20.0, "ended interrupted: node n2 stopped unexpectedly")]


def test_each_call_record_carries_its_nodes_incarnation(two_nodes, store_location):
    n1, n2 = two_nodes
    n1.call_arrived("before-the-join", trunk="t", caller="1", dialled="2", at=1.0)
    n1.incarnation = 3  # what ClusterLife sets once the node joined
    n1.call_arrived("joined", trunk="t", caller="1", dialled="2", at=2.0)
    n1.flush()
    rows = read_rows(store_location, "SELECT call_id, node, incarnation FROM calls ORDER BY call_id")
    assert [(r["call_id"], r["node"], r["incarnation"]) for r in rows] == [
        ("before-the-join", "n1", None), ("joined", "n1", 3)]


def test_a_late_close_of_a_dead_incarnation_leaves_the_next_incarnations_calls_open(two_nodes, store_location):
    """The race: n2 (incarnation 1) dies, n1 wins the death claim and queues the close; n2 is
    restarted at once (incarnation 2), closes its own leftovers, takes a call that bob answers; only
    then does n1's close of incarnation 1 reach the database. It closes alice's call of incarnation 1
    and frees her, and leaves bob's call of incarnation 2 open and bob on it."""
    n1, n2 = two_nodes
    n2.incarnation = 1
    n2.call_arrived("old", trunk="t", caller="1", dialled="2", at=10.0)
    talking(n2, "old", "alice", 11.0)
    n2.call_arrived("old-waiting", trunk="t", caller="1", dialled="2", at=12.0)
    n2.flush()
    n2.incarnation = 2  # the same node id, restarted (or rejoining) as its next incarnation
    n2.call_arrived("new", trunk="t", caller="1", dialled="2", at=30.0)
    talking(n2, "new", "bob", 31.0)
    n2.call_arrived("new-waiting", trunk="t", caller="1", dialled="2", at=32.0)
    n2.flush()
    n1.close_node_calls("n2", at=40.0, incarnation=1, reason="node n2 stopped unexpectedly (no heartbeat for 3 s)")
    n1.flush()
    outcomes = {call_id: row[1] for call_id, row in calls(store_location).items()}
    assert outcomes == {"old": "interrupted", "old-waiting": "interrupted", "new": None, "new-waiting": None}
    now = presence(store_location)
    assert (now["alice"][0], now["bob"][0]) == ("available", "on_call")
    assert [agent for agent, _state, _reason in states_at(store_location, 40.0)] == ["alice"]

    n1.close_node_calls("n2", at=50.0, incarnation=2)  # incarnation 2 dies too: now its calls go
    n1.flush()
    assert {call_id: row[1] for call_id, row in calls(store_location).items()} == dict.fromkeys(outcomes, "interrupted")
    assert presence(store_location)["bob"][0] == "available"


def test_a_dead_incarnations_close_takes_the_earlier_ones_and_the_calls_written_without_one(two_nodes,
                                                                                           store_location):
    """Calls left open by earlier incarnations (a restart that could not close them) and calls written
    before incarnations were (schema 7 rows) are dead too when a later incarnation dies."""
    n1, n2 = two_nodes
    n2.call_arrived("no-incarnation", trunk="t", caller="1", dialled="2", at=1.0)
    n2.incarnation = 4
    n2.call_arrived("fourth", trunk="t", caller="1", dialled="2", at=2.0)
    n2.incarnation = 5
    n2.call_arrived("fifth", trunk="t", caller="1", dialled="2", at=3.0)
    n2.incarnation = 6
    n2.call_arrived("sixth", trunk="t", caller="1", dialled="2", at=4.0)
    n2.flush()
    n1.close_node_calls("n2", at=9.0, incarnation=5)
    n1.flush()
    outcomes = {call_id: row[1] for call_id, row in calls(store_location).items()}
    assert outcomes == {"no-incarnation": "interrupted", "fourth": "interrupted", "fifth": "interrupted",
                        "sixth": None}


def test_the_records_process_writes_the_incarnation_and_closes_by_it(tmp_path):
    store = ProcessRecordStore(tmp_path / "records.db", node="n7")
    try:
        store.incarnation = 1
        store.call_arrived("first", trunk="t", caller="1", dialled="2", at=1.0)
        store.incarnation = 2
        store.call_arrived("second", trunk="t", caller="1", dialled="2", at=2.0)
        store.close_node_calls("n7", at=3.0, incarnation=1)
        assert store.flush()
    finally:
        store.close()
    rows = read_rows(tmp_path / "records.db", "SELECT call_id, incarnation, outcome FROM calls ORDER BY call_id")
    assert [(r["call_id"], r["incarnation"], r["outcome"]) for r in rows] == [
        ("first", 1, "interrupted"), ("second", 2, None)]
