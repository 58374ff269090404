"""`acd show` tables, from API-shaped data (no server)."""

from __future__ import annotations

from acd.show import duration, format_table, show_agents, show_calls, show_queues


def test_durations_read_like_a_clock():
    assert [duration(s) for s in (None, 0, 12, 754, 4000, -3)] == ["-", "0:00", "0:12", "12:34", "1:06:40", "0:00"]


def test_tables_align_columns_and_show_none_as_a_dash():
    assert format_table(["A", "LONGER"], [["xyz", None], ["q", 7]]).splitlines() == [
        "A    LONGER", "xyz  -", "q    7"]


def test_queues_agents_and_calls():
    queues = show_queues([{"queue": "sales", "strategy": "longest-idle", "waiting": 2, "longest_wait_seconds": 75.2,
                           "agents": 1, "offered": 3, "answered": 2, "abandoned": 1, "service_level": 0.5,
                           "average_handle_seconds": 130.0, "members": {"1002": 1, "1001": 0}, "retired": False}])
    assert queues.splitlines()[1].split() == ["sales", "longest-idle", "2", "1:15", "1", "3", "2", "1", "50%", "2:10"]
    assert "  sales: 1001 (penalty 0), 1002 (penalty 1)" in queues and queues.endswith("1 queue(s)")
    agents = show_agents([{"id": "1001", "name": "Ann", "state": "paused", "pause_reason": "lunch", "state_since": 940.0,
                           "registered": True, "queues": {"sales": 0}, "call_id": None, "calls_handled": 4,
                           "missed_offers": 0},
                          {"id": "1003", "name": "Cy", "state": "logged_out", "registered": False, "queues": {}}],
                         now=1000.0)
    lines = agents.splitlines()
    assert lines[1].split() == ["1001", "Ann", "paused", "(lunch)", "1:00", "yes", "sales", "-", "4", "0"]
    assert lines[2].split() == ["1003", "Cy", "logged_out", "-", "no", "-", "-", "-", "-"]
    calls = show_calls([{"call_id": "abc", "state": "ivr", "dialled": "1000", "queue": None, "agent": None,
                         "ivr_step": "main_menu", "seconds": 8.4}])
    assert calls.splitlines()[1].split() == ["abc", "ivr", "1000", "-", "-", "ivr", "main_menu", "0:08"]
    assert calls.endswith("1 call(s) in progress")


def test_an_unreachable_agent_and_queue_members_by_state():
    """The API's `reachable: false` shows in the agent's state; a queue's members by state (as
    /api/queues gives them) show as counts, unreachable ones apart."""
    agents = show_agents([{"id": "1001", "name": "Ann", "state": "available", "pause_reason": None,
                           "reachable": False, "state_since": 990.0, "registered": False, "queues": {"sales": 0},
                           "call_id": None, "calls_handled": 0, "missed_offers": 0},
                          {"id": "1002", "name": "Bo", "state": "paused", "pause_reason": "lunch", "reachable": False,
                           "state_since": 990.0, "registered": False, "queues": {"sales": 0}, "call_id": None,
                           "calls_handled": 0, "missed_offers": 0}], now=1000.0)
    assert "available (unreachable)" in agents.splitlines()[1]
    assert "paused (lunch, unreachable)" in agents.splitlines()[2]
    queues = show_queues([{"queue": "sales", "strategy": "longest-idle", "waiting": 0, "agents": {
        "available": 1, "offered": 0, "on_call": 0, "wrap_up": 0, "paused": 0, "unreachable": 2}, "offered": 0,
        "answered": 0, "abandoned": 0, "service_level": None, "average_handle_seconds": 0.0, "members": {}}])
    assert "1 available, 2 unreachable" in queues.splitlines()[1]
