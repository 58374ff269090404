"""`build_report` on a scripted day: every KPI below is worked out by hand in the comments.

Period [1000, 2000). Queue "sales" has a 20 s service level; "support" uses the default (30 s).
"""

from __future__ import annotations

import uuid

import pytest

from acd.report import AgentKpis, IvrContainment, IvrDropOff, PauseTime, QueueKpis, Satisfaction, build_report
from acd.store.records import RecordStore
from tests.store_backends import open_records

SINCE, UNTIL = 1000.0, 2000.0


def ivr_call(store, call_id, at, steps, outcome, *, answered=True, flow="main", end=None):
    store.call_arrived(call_id, trunk="carrier", caller="5550100", dialled="1000", at=at)
    if answered:
        store.call_answered(call_id, at=at)
    for index, step in enumerate(steps):
        flow_name, _, step_name = step.rpartition("/")
        store.ivr_step(call_id, flow=flow_name or flow, step=step_name, at=at + index)
    store.call_ended(call_id, outcome=outcome, reason=outcome, at=end or at + 30)


def queued_call(store, call_id, queue, enter, *, agent=None, connect=None, finish=None, finish_event=None,
                left=None, left_event=None, wrap=None, survey=None, outcome="agent_hangup"):
    """One queued call as the shell records it: the CDR and the queue log side by side.
    It arrives 5 s before `enter` (two IVR steps first)."""
    store.call_arrived(call_id, trunk="carrier", caller="5550100", dialled="1000", at=enter - 5)
    store.call_answered(call_id, at=enter - 5)
    store.ivr_step(call_id, flow="main", step="welcome", at=enter - 5)
    store.ivr_step(call_id, flow="main", step="menu", at=enter - 3)
    store.call_queued(call_id, queue=queue, at=enter)
    store.queue_log(at=enter, call_id=call_id, queue=queue, agent="", event="ENTERQUEUE", data2="5550100", data3=1)
    if connect is not None:
        store.call_connected(call_id, agent=agent, at=connect)
        store.queue_log(at=connect, call_id=call_id, queue=queue, agent=agent, event="CONNECT",
                        data1=connect - enter, data2=f"leg-{call_id}", data3=2)
        store.queue_log(at=finish, call_id=call_id, queue=queue, agent=agent, event=finish_event,
                        data1=connect - enter, data2=finish - connect, data3=1)
        store.call_ended(call_id, outcome=outcome, reason=outcome, at=finish)
    else:
        store.queue_log(at=left, call_id=call_id, queue=queue, agent="", event=left_event, data1=1, data2=1,
                        data3=left - enter)
        store.call_ended(call_id, outcome=outcome, reason=outcome, at=left)
    if wrap is not None:
        store.set_field(call_id, "wrap_up_seconds", wrap)
    if survey is not None:
        store.set_field(call_id, "survey", survey)


def write_scripted_day(path):
    """The scripted calls and agent states, written through a RecordStore as the shell would."""
    store = open_records(path)
    # sales: s1 answered in 10 s, talk 60, wrap 15; s2 answered in exactly 20 s (within SL), talk 90;
    # s3 answered late (45 s), talk 30, wrap 5; s4 abandoned after 30 s.
    queued_call(store, "s1", "sales", 1005, agent="alice", connect=1015, finish=1075, finish_event="COMPLETEAGENT",
                wrap=15, survey={"q1": 5, "q2": 4}, outcome="completed")
    store.queue_log(at=1115, call_id="s2", queue="sales", agent="bob", event="RINGNOANSWER", data1=15)
    queued_call(store, "s2", "sales", 1100, agent="alice", connect=1120, finish=1210, finish_event="COMPLETECALLER",
                survey={"q1": 3}, outcome="caller_hangup")
    queued_call(store, "s3", "sales", 1300, agent="bob", connect=1345, finish=1375, finish_event="COMPLETECALLER",
                wrap=5, survey={"q1": 2, "q2": 9})  # 9 is not a valid answer: skipped
    queued_call(store, "s4", "sales", 1400, left=1430, left_event="ABANDON", outcome="caller_hangup")
    # support: t1 asked for a callback after 60 s, t2 timed out after 300 s.
    queued_call(store, "t1", "support", 1500, left=1560, left_event="CALLBACK", outcome="callback")
    queued_call(store, "t2", "support", 1600, left=1900, left_event="EXITWITHTIMEOUT", outcome="failed")
    # Outside the period: before `since`, and at `until` (exclusive).
    queued_call(store, "early", "sales", 900, left=950, left_event="ABANDON", outcome="caller_hangup")
    queued_call(store, "late", "sales", 2010, agent="alice", connect=2011, finish=2050, finish_event="COMPLETEAGENT")
    ivr_call(store, "i0", 500, ["welcome"], "completed")
    # IVR-only calls: i1 served by the IVR; i2, i3 hung up at main/menu; i4 at billing/pin; i5 never answered.
    ivr_call(store, "i1", 1000, ["welcome", "menu", "hours"], "completed")
    ivr_call(store, "i2", 1010, ["welcome", "menu"], "caller_hangup")
    ivr_call(store, "i3", 1020, ["welcome", "menu"], "caller_hangup")
    ivr_call(store, "i4", 1030, ["welcome", "billing/pin"], "caller_hangup")
    ivr_call(store, "i5", 1040, [], "cancelled", answered=False)
    # Agent states: alice lunch 1500-1800 (300 s), training from 1900 to the end (100 s);
    # bob on break since 950, back at 1050 (50 s inside the period); carol logged out before the period.
    for agent, state, reason, at in [("alice", "available", "login", 900), ("alice", "paused", "lunch", 1500),
                                     ("alice", "available", "ready", 1800), ("alice", "paused", "training", 1900),
                                     ("bob", "paused", "break", 950), ("bob", "available", "ready", 1050),
                                     ("carol", "paused", "lunch", 800), ("carol", "logged_out", "bye", 850)]:
        store.agent_state(agent, state=state, reason=reason, at=at)
    store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def report(request, tmp_path_factory):
    """The scripted day's report, from SQLite then from PostgreSQL: the same figures."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("report") / "records.db"
    else:
        path = request.getfixturevalue("pg_cluster").create_schema(f"report_{uuid.uuid4().hex[:12]}")
    write_scripted_day(path)
    return build_report(path, SINCE, UNTIL, service_level_seconds={"sales": 20.0}, default_sl=30.0)


def test_queue_kpis_match_the_hand_computation(report):
    sales, support = report.queues
    assert sales == QueueKpis(
        queue="sales", offered=4, answered=3, answered_within_sl=2, abandoned=1, timed_out=0, callbacks=0,
        service_level_seconds=20.0,
        abandon_rate=1 / 4,  # 1 abandoned of 4 offered
        asa_seconds=(10 + 20 + 45) / 3,  # = 25
        aht_seconds=((60 + 15) + 90 + (30 + 5)) / 3,  # talk + wrap-up = 200 / 3
        service_level=2 / (3 + 1),  # within 20 s / (answered + abandoned) = 50 %
    )
    assert support == QueueKpis(
        queue="support", offered=2, answered=0, answered_within_sl=0, abandoned=0, timed_out=1, callbacks=1,
        service_level_seconds=30.0, abandon_rate=0.0, asa_seconds=None, aht_seconds=None, service_level=None)


def test_agent_kpis_match_the_hand_computation(report):
    assert report.agents == (
        AgentKpis(agent="alice", calls=2, missed=0, talk_seconds=60 + 90, wrap_up_seconds=15,
                  aht_seconds=((60 + 15) + 90) / 2, paused_seconds=300 + 100),
        AgentKpis(agent="bob", calls=1, missed=1, talk_seconds=30, wrap_up_seconds=5, aht_seconds=35.0,
                  paused_seconds=50),
    )


def test_pause_time_by_reason_is_clipped_to_the_period(report):
    assert report.pauses == (PauseTime(agent="alice", reason="lunch", seconds=300),
                             PauseTime(agent="alice", reason="training", seconds=100),
                             PauseTime(agent="bob", reason="break", seconds=50))


def test_ivr_containment_and_drop_off_by_step(report):
    """Answered in the period: s1-s4, t1, t2 and i1-i4 = 10; contained: i1 only (s1 'completed' but queued).
    Drop-off: the last step of callers who hung up without queueing (s4 hung up in the queue: not counted)."""
    assert report.ivr == IvrContainment(answered=10, contained=1, rate=0.1)
    assert report.ivr_drop_off == (IvrDropOff(flow="main", step="menu", hangups=2),
                                   IvrDropOff(flow="billing", step="pin", hangups=1))


def test_satisfaction_per_queue_and_agent(report):
    """sales: s1 {5, 4}, s2 {3}, s3 {2} -> 14 / 4 = 3.5; alice: s1, s2 -> 12 / 3 = 4; bob: s3 -> 2."""
    assert report.satisfaction == (
        Satisfaction(scope="agent", name="alice", surveys=2, average=4.0, by_question=(("q1", 4.0), ("q2", 4.0))),
        Satisfaction(scope="agent", name="bob", surveys=1, average=2.0, by_question=(("q1", 2.0),)),
        Satisfaction(scope="queue", name="sales", surveys=3, average=3.5,
                     by_question=(("q1", (5 + 3 + 2) / 3), ("q2", 4.0))),
    )


def test_missing_duration_fields_fall_back_to_event_times(tmp_path):
    """A CONNECT without holdtime and a COMPLETE without calltime still give ASA and AHT."""
    path = tmp_path / "r.db"
    store = RecordStore(path)
    store.queue_log(at=100, call_id="c", queue="q", agent="", event="ENTERQUEUE")
    store.queue_log(at=112, call_id="c", queue="q", agent="a", event="CONNECT")
    store.queue_log(at=160, call_id="c", queue="q", agent="a", event="COMPLETEAGENT")
    store.close()
    (queue,) = build_report(path, 0, 1000).queues
    assert (queue.asa_seconds, queue.aht_seconds, queue.service_level) == (12.0, 48.0, 1.0)


def test_a_phone_going_away_during_a_pause_does_not_split_the_pause(tmp_path):
    """Reachability rows (same state, "phone unreachable: ..." / "phone reachable: ...") keep
    the pause's own reason; a new pause after them starts its own."""
    path = tmp_path / "r.db"
    store = RecordStore(path)
    for state, reason, at in [("paused", "paused: lunch", 100), ("paused", "phone unreachable: unregistered", 150),
                              ("paused", "phone reachable: registered", 250), ("available", "ready", 400),
                              ("available", "phone unreachable: registration expired", 450),
                              ("paused", "paused: break", 500), ("logged_out", "logged out", 560)]:
        store.agent_state("alice", state=state, reason=reason, at=at)
    store.close()
    report = build_report(path, 0, 1000)
    assert report.pauses == (PauseTime(agent="alice", reason="paused: break", seconds=60),
                             PauseTime(agent="alice", reason="paused: lunch", seconds=300))


def test_empty_database_gives_an_empty_report(tmp_path):
    RecordStore(tmp_path / "r.db").close()
    report = build_report(tmp_path / "r.db", 0, now=50)
    assert (report.until, report.queues, report.agents, report.ivr.rate) == (50, (), (), None)


def test_missing_database_is_refused_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope.db", 0, 1)
    assert not (tmp_path / "nope.db").exists()
