"""Cluster membership (pure): heartbeats in, joined / draining / died out, deadlines on an injected
clock, death claims, incarnations."""

from __future__ import annotations

from pathlib import Path

import pytest

import acd.cluster
from acd.cluster.membership import (
    TRANSITIONS,
    ClaimDeath,
    Membership,
    MembershipError,
    NodeDied,
    NodeDraining,
    NodeJoined,
    NodeLeft,
    NodeRestarted,
    NodeSeen,
    ReadNodes,
    SelfDeclaredDead,
    Status,
    Trigger,
    WriteHeartbeat,
    state_diagram,
)

TIMEOUT = 3.0


def row(node_id: str = "b", *, state: str = "up", incarnation: int = 1, age: float = 0.0,
        address: str = "127.0.0.12:5060") -> NodeSeen:
    """A `cluster_nodes` row as read."""
    return NodeSeen(node_id=node_id, address=address, state=state, incarnation=incarnation,
                    heartbeat_age_seconds=age)


def claims(out: list) -> list:
    """The death claims among a machine's output."""
    return [item for item in out if isinstance(item, ClaimDeath)]


def joined(now: float = 0.0) -> Membership:
    """Node "a", joined at incarnation 1 at `now`."""
    membership = Membership("a", node_timeout_seconds=TIMEOUT)
    assert membership.joined(1, now) == [ReadNodes()]
    return membership


def test_a_node_heartbeats_and_reads_its_peers_every_third_of_the_timeout():
    membership = joined(now=10.0)
    assert membership.next_deadline() == pytest.approx(11.0)
    assert membership.handle_timers(10.9) == []
    assert membership.handle_timers(11.0) == [WriteHeartbeat(state="up", incarnation=1), ReadNodes()]
    assert membership.next_deadline() == pytest.approx(12.0)


def test_a_peer_seen_heartbeating_joins_and_its_deadline_counts_from_its_age_on_the_store_clock():
    membership = joined()
    assert membership.observe([row(age=0.5), row("a")], now=100.0) == [
        NodeJoined(node_id="b", address="127.0.0.12:5060", incarnation=1)]
    assert membership.status("b") is Status.UP and membership.live_nodes() == {"b"}
    # our own heartbeat (1.0) comes first; b expires 3.0 - 0.5 after the read, on our clock
    assert membership.next_deadline() == pytest.approx(1.0)
    membership.handle_timers(1.0)
    assert membership.peers["b"].expires_at == pytest.approx(102.5)
    assert membership.observe([row(age=0.0)], now=101.0) == []  # a fresh heartbeat: no event
    assert membership.peers["b"].expires_at == pytest.approx(104.0)


def test_a_silent_peer_is_suspect_and_its_death_is_claimed_once_at_its_deadline():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    membership.handle_timers(1.0)
    membership.observe([row(age=1.0)], now=1.0)  # no heartbeat since
    assert claims(membership.handle_timers(2.9)) == []
    assert claims(membership.handle_timers(3.0)) == [ClaimDeath(node_id="b", incarnation=1)]
    assert membership.status("b") is Status.SUSPECT
    assert claims(membership.handle_timers(3.1)) == []  # no second claim while the first waits for its answer


def test_the_claim_that_wins_is_a_death_this_node_cleans_up():
    membership = joined(now=-10.0)  # has reached the store for longer than a timeout
    membership.observe([row(age=2.9)], now=0.0)
    assert claims(membership.handle_timers(0.2)) == [ClaimDeath(node_id="b", incarnation=1)]
    assert membership.claim_answered("b", True, None, now=0.3) == [
        NodeDied(node_id="b", incarnation=1, claimed=True, reason="no heartbeat for 3 s")]
    assert membership.dead_nodes() == {"b"} and membership.live_nodes() == set()
    assert membership.next_deadline() == pytest.approx(1.2)  # only our heartbeat is left to time


def test_a_claim_lost_to_another_survivor_is_a_death_this_node_does_not_clean_up():
    membership = joined(now=-10.0)
    membership.observe([row(age=3.5)], now=0.0)
    assert membership.status("b") is Status.SUSPECT  # first seen already silent: claimed at once
    assert membership.claim_answered("b", False, row(state="dead", age=3.6), now=0.1) == [
        NodeDied(node_id="b", incarnation=1, claimed=False, reason="declared dead by another node")]
    assert membership.observe([row(state="dead", age=9.0)], now=5.0) == []  # said once


def test_a_claim_lost_to_a_fresh_heartbeat_puts_the_peer_back_up_without_an_event():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    membership.handle_timers(3.0)
    assert membership.claim_answered("b", False, row(age=0.2), now=3.0) == []
    assert membership.status("b") is Status.UP
    assert membership.peers["b"].expires_at == pytest.approx(5.8)


def test_a_claim_refused_while_the_row_still_looks_silent_is_tried_again_a_heartbeat_later():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    membership.handle_timers(3.0)
    assert membership.claim_answered("b", False, row(age=3.0), now=3.0) == []
    assert membership.status("b") is Status.SUSPECT and membership.peers["b"].expires_at == pytest.approx(4.0)
    assert claims(membership.handle_timers(4.0)) == [ClaimDeath(node_id="b", incarnation=1)]


def test_a_peer_learnt_dead_from_its_row_died_and_a_zombie_heartbeat_changes_nothing():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    assert membership.observe([row(state="dead", age=3.2)], now=3.5) == [
        NodeDied(node_id="b", incarnation=1, claimed=False, reason="declared dead by another node")]
    assert membership.observe([row(state="up", age=0.0)], now=4.0) == []
    assert membership.status("b") is Status.DEAD


def test_a_dead_node_restarted_as_a_new_incarnation_joins_again():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    membership.observe([row(state="dead", age=4.0)], now=4.0)
    assert membership.observe([row(incarnation=2, age=0.1)], now=9.0) == [
        NodeJoined(node_id="b", address="127.0.0.12:5060", incarnation=2)]
    assert membership.live_nodes() == {"b"} and membership.dead_nodes() == set()
    assert membership.observe([row(incarnation=1, state="dead", age=9.0)], now=9.5) == []  # an older read


def test_a_node_restarted_before_anyone_noticed_is_a_restart_not_a_death():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    assert membership.observe([row(incarnation=2, age=0.0, address="127.0.0.12:5070")], now=1.0) == [
        NodeRestarted(node_id="b", address="127.0.0.12:5070", previous_incarnation=1, incarnation=2)]
    assert membership.status("b") is Status.UP


def test_a_restarted_node_seen_already_draining_is_reported_restarted_then_draining():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    assert membership.observe([row(incarnation=3, state="draining", age=0.0)], now=1.0) == [
        NodeRestarted(node_id="b", address="127.0.0.12:5060", previous_incarnation=1, incarnation=3),
        NodeDraining(node_id="b", incarnation=3)]


def test_draining_then_a_clean_stop_is_no_death():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    assert membership.observe([row(state="draining", age=0.0)], now=1.0) == [NodeDraining(node_id="b", incarnation=1)]
    assert membership.live_nodes() == {"b"}
    assert membership.observe([row(state="stopped", age=0.5)], now=2.0) == [NodeLeft(node_id="b", incarnation=1)]
    assert membership.live_nodes() == set() and membership.dead_nodes() == set()
    assert membership.handle_timers(50.0) == [WriteHeartbeat(state="up", incarnation=1), ReadNodes()]


def test_nodes_dead_or_stopped_before_this_node_started_raise_no_event():
    membership = joined()
    assert membership.observe([row("b", state="dead", age=60.0), row("c", state="stopped", age=60.0),
                               row("d", state="draining", age=0.0)], now=0.0) == [
        NodeJoined(node_id="d", address="127.0.0.12:5060", incarnation=1), NodeDraining(node_id="d", incarnation=1)]
    assert membership.dead_nodes() == {"b"}


def test_draining_this_node_heartbeats_at_once_with_the_draining_state():
    membership = joined()
    assert membership.drain(0.2) == [WriteHeartbeat(state="draining", incarnation=1), ReadNodes()]
    assert membership.handle_timers(1.2) == [WriteHeartbeat(state="draining", incarnation=1), ReadNodes()]


def test_a_refused_heartbeat_means_this_node_was_declared_dead_and_it_stops_heartbeating():
    membership = joined()
    assert membership.heartbeat_written(True, 1.0) == []
    assert membership.heartbeat_written(False, 2.0) == [SelfDeclaredDead(node_id="a", incarnation=1)]
    assert membership.heartbeat_written(False, 2.1) == []
    assert membership.next_deadline() is None and membership.handle_timers(10.0) == []
    assert membership.joined(2, 11.0) == [ReadNodes()]  # rejoined as a new incarnation
    assert membership.handle_timers(12.0) == [WriteHeartbeat(state="up", incarnation=2), ReadNodes()]


def test_this_nodes_own_row_is_not_a_peer():
    membership = joined()
    assert membership.observe([row("a", age=99.0)], now=0.0) == []
    assert membership.peers == {}


def test_a_claim_won_for_a_peer_not_suspected_is_a_shell_bug_and_a_refusal_is_read_as_its_row():
    membership = joined()
    membership.observe([row(age=0.0)], now=0.0)
    with pytest.raises(MembershipError, match="claim won for b"):
        membership.claim_answered("b", True, None, now=0.0)
    assert membership.claim_answered("b", False, row(state="draining", age=0.1), now=0.5) == [
        NodeDraining(node_id="b", incarnation=1)]


def test_a_trigger_with_no_transition_raises_naming_the_peer_and_the_status():
    membership = joined()
    membership.observe([row(state="stopped", age=9.0)], now=0.0)
    with pytest.raises(MembershipError, match="peer b declared_dead is not allowed while stopped"):
        membership.observe([row(state="dead", age=9.0)], now=1.0)


def test_bad_rows_and_settings_are_refused_naming_the_field():
    with pytest.raises(MembershipError, match="state"):
        row(state="gone")
    with pytest.raises(MembershipError, match="incarnation"):
        row(incarnation=0)
    with pytest.raises(MembershipError, match="heartbeat_age_seconds"):
        row(age=-1.0)
    with pytest.raises(MembershipError, match="heartbeat_interval_seconds"):
        Membership("a", node_timeout_seconds=3.0, heartbeat_interval_seconds=3.0)
    with pytest.raises(MembershipError, match="node_id"):
        Membership("")


def test_every_status_has_a_row_and_the_diagram_shows_every_transition():
    assert set(TRANSITIONS) == set(Status)
    diagram = state_diagram()
    edges = sum(len(edges) for edges in TRANSITIONS.values())
    assert diagram.count(" --> ") == edges + 1
    assert "suspect --> dead: claim_won" in diagram
    assert all(trigger in {t for edges in TRANSITIONS.values() for t in edges} for trigger in Trigger)


def test_the_cluster_readme_shows_the_current_diagram():
    readme = (Path(acd.cluster.__file__).parent / "README.md").read_text()
    assert state_diagram() in readme


def test_no_death_is_claimed_before_this_node_has_reached_the_store_for_a_whole_timeout():
    """Just joined: a row already silent is not claimed until this node has been up a timeout."""
    membership = joined(now=0.0)
    assert membership.observe([row(age=60.0)], now=0.0) == [
        NodeJoined(node_id="b", address="127.0.0.12:5060", incarnation=1)]
    assert membership.peers["b"].expires_at == pytest.approx(3.0)
    assert claims(membership.handle_timers(2.9)) == []
    assert claims(membership.handle_timers(3.0)) == [ClaimDeath(node_id="b", incarnation=1)]


def test_after_the_store_was_lost_deaths_wait_a_timeout_from_the_first_heartbeat_back():
    """The store was down for everyone: all heartbeats are old when it is back; the first node back
    must give the others a timeout to heartbeat again before it claims any death."""
    membership = joined(now=-10.0)
    membership.observe([row(age=0.0)], now=0.0)
    assert membership.store_lost(1.0) == []
    assert claims(membership.handle_timers(5.0)) == [] and membership.peers["b"].expires_at is None
    assert membership.heartbeat_written(True, 6.0) == []  # the store is back
    assert membership.observe([row(age=6.0)], now=6.0) == []  # b silent: not claimable yet
    assert membership.status("b") is Status.UP and membership.peers["b"].expires_at == pytest.approx(9.0)
    assert membership.observe([row(age=0.0)], now=7.0) == []  # b is back too
    assert claims(membership.handle_timers(9.5)) == []
    assert claims(membership.handle_timers(10.0)) == [ClaimDeath(node_id="b", incarnation=1)]  # silent since 7


def test_a_node_declared_dead_claims_no_death():
    membership = joined(now=-10.0)
    membership.observe([row(age=0.0)], now=0.0)
    membership.heartbeat_written(False, 1.0)
    assert claims(membership.handle_timers(5.0)) == []
    assert claims(membership.observe([row(age=9.0)], now=5.0)) == []
