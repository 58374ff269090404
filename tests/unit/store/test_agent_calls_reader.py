"""The desktop's "my calls today": one agent's calls since a time, newest first, with the wrap-up
(disposition and notes) the writer stored; nothing of other agents; [] before any database exists."""

from acd.store.agent_calls import agent_calls_since
from tests.store_backends import open_records


def test_an_agents_calls_since_a_time_carry_their_disposition_and_notes(store_location, tmp_path):
    path = store_location  # SQLite, then PostgreSQL
    store = open_records(path)
    try:
        for call_id, agent, at in (("old", "1001", 100.0), ("a", "1001", 1000.0), ("b", "1002", 1010.0),
                                   ("c", "1001", 1020.0)):
            store.call_arrived(call_id, trunk="t", caller="5550100", dialled="3000", at=at)
            store.call_queued(call_id, queue="sales", at=at + 1)
            store.call_connected(call_id, agent=agent, at=at + 5)
            store.call_ended(call_id, outcome="caller_hangup", reason="BYE", at=at + 65)
        store.set_field("a", "disposition", "sale")
        store.set_field("a", "notes", "wants fibre")
        assert store.flush()
    finally:
        store.close()
    calls = agent_calls_since(path, "1001", 900.0)
    assert [call["call_id"] for call in calls] == ["c", "a"]
    assert (calls[1]["disposition"], calls[1]["notes"], calls[1]["talk_seconds"]) == ("sale", "wants fibre", 60.0)
    assert calls[1]["wait_seconds"] == 4.0 and calls[1]["caller"] == "5550100"
    assert agent_calls_since(tmp_path / "missing.db", "1001", 0) == []
