"""The leader lease machine: roles from the store's answers, deadlines, fencing token."""

from __future__ import annotations

import pytest

from acd.cluster.lease import (
    TRANSITIONS,
    AcquireLease,
    BecameLeader,
    LeaseError,
    LeaseGranted,
    LeaseMachine,
    LeaseRefused,
    RenewLease,
    Role,
    SteppedDown,
    StoreLost,
    Trigger,
    state_diagram,
)

LEASE = 3.0
MARGIN = 0.25


def leader(now: float = 0.0, epoch: int = 1) -> LeaseMachine:
    """A machine that asked for the lease at `now` and got it at `epoch`."""
    machine = LeaseMachine("node-a", lease_seconds=LEASE, safety_margin_seconds=MARGIN, start=now)
    assert machine.handle_timers(now) == [AcquireLease()]
    assert machine.handle(LeaseGranted(epoch=epoch, requested_at=now), now + 0.01) == [BecameLeader(epoch=epoch)]
    return machine


def test_a_new_node_asks_for_the_lease_at_its_first_deadline_and_waits_for_the_answer():
    machine = LeaseMachine("node-a", start=5.0)
    assert machine.role is Role.FOLLOWER and machine.next_deadline() == 5.0
    assert machine.handle_timers(4.9) == []
    assert machine.handle_timers(5.0) == [AcquireLease()]
    assert machine.role is Role.CANDIDATE and machine.next_deadline() is None
    assert machine.fencing_token is None


def test_a_grant_makes_a_leader_whose_fencing_token_is_the_epoch():
    machine = leader(epoch=7)
    assert machine.role is Role.LEADER
    assert machine.fencing_token == 7


def test_a_leader_renews_at_a_third_of_the_lease_counted_from_the_request():
    machine = leader(now=10.0)
    assert machine.next_deadline() == pytest.approx(11.0)
    assert machine.handle_timers(11.0) == [RenewLease(epoch=1)]
    assert machine.handle(LeaseGranted(epoch=1, requested_at=11.0), 11.05) == []
    assert machine.role is Role.LEADER and machine.next_deadline() == pytest.approx(12.0)


def test_a_leader_whose_renewals_are_not_confirmed_steps_down_before_the_store_expires_the_lease():
    machine = leader(now=0.0)
    assert machine.handle_timers(1.0) == [RenewLease(epoch=1)]
    assert machine.handle_timers(2.0) == [RenewLease(epoch=1)]  # retried, still unanswered
    assert machine.next_deadline() == pytest.approx(LEASE - MARGIN)
    assert machine.handle_timers(LEASE - MARGIN) == [
        SteppedDown(epoch=1, reason="no renewal confirmed before the lease expired")]
    assert machine.role is Role.FOLLOWER and machine.fencing_token is None


def test_a_renewal_confirmed_after_the_lease_ran_out_is_not_used():
    machine = leader(now=0.0)
    machine.handle_timers(1.0)
    actions = machine.handle(LeaseGranted(epoch=1, requested_at=0.0), LEASE)
    assert actions == [SteppedDown(epoch=1, reason="renewal confirmed after the lease expired")]
    assert machine.role is Role.FOLLOWER


def test_a_late_grant_to_a_node_that_already_stepped_down_is_ignored():
    machine = leader(now=0.0)
    machine.handle_timers(1.0)
    machine.handle_timers(LEASE)  # stepped down
    assert machine.handle(LeaseGranted(epoch=1, requested_at=1.0), LEASE + 0.1) == []
    assert machine.role is Role.FOLLOWER


def test_a_refused_candidate_follows_and_tries_again_when_the_holders_lease_expires():
    machine = LeaseMachine("node-b", start=0.0)
    machine.handle_timers(0.0)
    assert machine.handle(LeaseRefused(holder="node-a", epoch=3, remaining_seconds=2.5), 0.1) == []
    assert (machine.role, machine.holder, machine.epoch) == (Role.FOLLOWER, "node-a", 3)
    assert machine.next_deadline() == pytest.approx(2.6)
    assert machine.handle_timers(2.6) == [AcquireLease()]


def test_a_refused_renewal_deposes_the_leader():
    machine = leader()
    machine.handle_timers(1.0)
    actions = machine.handle(LeaseRefused(holder="node-b", epoch=2, remaining_seconds=3.0), 1.1)
    assert actions == [SteppedDown(epoch=1, reason="the store gave the lease to node-b")]
    assert machine.fencing_token is None and machine.epoch == 2
    again = leader()
    again.handle_timers(1.0)
    assert again.handle(LeaseRefused(holder="node-a", epoch=1, remaining_seconds=0.0), 1.1) == [
        SteppedDown(epoch=1, reason="the lease expired in the store before the renewal reached it")]


def test_losing_the_store_deposes_a_leader_and_makes_a_follower_retry_soon():
    machine = leader()
    assert machine.handle(StoreLost(reason="connection closed"), 0.5) == [
        SteppedDown(epoch=1, reason="store lost: connection closed")]
    candidate = LeaseMachine("node-b")
    candidate.handle_timers(0.0)
    assert candidate.handle(StoreLost(reason="timeout"), 0.2) == []
    assert candidate.next_deadline() == pytest.approx(0.2 + 1.0)


def test_the_epoch_may_only_grow():
    machine = leader(epoch=5)
    machine.handle_timers(1.0)
    with pytest.raises(LeaseError, match="older than epoch 5"):
        machine.handle(LeaseGranted(epoch=4, requested_at=1.0), 1.1)
    with pytest.raises(LeaseError, match="may not change the epoch"):
        machine.handle(LeaseGranted(epoch=6, requested_at=1.0), 1.1)


def test_an_observation_with_no_transition_names_the_trigger_the_node_and_the_role():
    machine = LeaseMachine("node-a")
    with pytest.raises(LeaseError, match="node node-a: expired is not allowed while follower"):
        machine._move(Trigger.EXPIRED)


def test_settings_and_observations_check_themselves():
    with pytest.raises(LeaseError, match="non-empty"):
        LeaseMachine("")
    with pytest.raises(LeaseError, match="below a third"):
        LeaseMachine("n", lease_seconds=3.0, safety_margin_seconds=1.0)
    with pytest.raises(LeaseError, match="positive integer"):
        LeaseGranted(epoch=0, requested_at=0.0)
    with pytest.raises(LeaseError, match=">= 0"):
        LeaseRefused(holder="x", epoch=1, remaining_seconds=-1.0)


def test_the_state_diagram_is_drawn_from_the_table():
    diagram = state_diagram()
    edges = sum(len(row) for row in TRANSITIONS.values())
    assert diagram.count("-->") == edges + 1
    assert "candidate --> leader: granted" in diagram


def test_the_readme_shows_the_diagram_of_the_table():
    from pathlib import Path

    import acd.cluster

    readme = (Path(acd.cluster.__file__).parent / "README.md").read_text()
    assert state_diagram() in readme
