"""`acd report --call CALL-ID`: one call's whole story from the records, for a supervisor.

Merges, in time order, what the records database holds about one call: its arrival and answer
(calls table), each IVR step (ivr_steps), its queue events (queue_log: entry, offers rung and not
answered, callback, connection, completion), each routing decision with its reason (routing_events,
when the server wrote them), each supervisor's monitoring (start, mode changes, end) and its end (outcome and reason). Times are printed in local time.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .store.records import open_for_reading

__all__ = ["call_story", "format_story"]


def _rows(db, sql: str, *parameters) -> list[dict]:
    return [dict(row) for row in db.query(sql, parameters)]


def call_story(db_path: str | Path, call_id: str) -> list[tuple[float, str]] | None:
    """(time, what happened) for one call, oldest first; None when the records have no such call."""
    db = open_for_reading(db_path)
    try:
        calls = _rows(db, "SELECT * FROM calls WHERE call_id = ?", call_id)
        if not calls:
            return None
        record = calls[0]
        host = f" (cluster node {record['node']})" if record.get("node") else ""
        story = [(record["arrived_at"], f"arrived on trunk {record['trunk']} from {record['caller'] or '-'} "
                                        f"dialling {record['dialled'] or '-'}{host}")]
        if record.get("answered_at") is not None:
            story.append((record["answered_at"], "answered by the IVR"))
        for step in _rows(db, "SELECT flow, step, at FROM ivr_steps WHERE call_id = ? ORDER BY id", call_id):
            story.append((step["at"], f"IVR {step['flow']}: {step['step']}"))
        for row in _rows(db, "SELECT * FROM queue_log WHERE call_id = ? ORDER BY id", call_id):
            agent = f" agent {row['agent']}" if row["agent"] else ""
            data = " ".join(str(row[name]) for name in ("data1", "data2", "data3") if row[name] not in ("", None))
            story.append((row["at"], f"queue {row['queue']}{agent}: {row['event']} {data}".rstrip()))
        if "routing_events" in db.table_names():
            for row in _rows(db, "SELECT at, what FROM routing_events WHERE call_id = ? ORDER BY id", call_id):
                story.append((row["at"], f"routing: {row['what']}"))
        if "monitoring" in db.table_names():
            for row in _rows(db, "SELECT * FROM monitoring WHERE call_id = ? ORDER BY id", call_id):
                story.append((row["at"], _monitoring_line(row)))
        if record.get("ended_at") is not None:
            agent = f", agent {record['agent']}" if record.get("agent") else ""
            story.append((record["ended_at"], f"ended {record['outcome']}: {record['end_reason'] or '-'}{agent}"))
        story.sort(key=lambda item: item[0])
        return story
    finally:
        db.close()


def _monitoring_line(row: dict) -> str:
    """One monitoring event as the story tells it."""
    who = f"supervisor {row['supervisor']}"
    event, mode = row["event"], row["mode"]
    if event == "calling":
        return f"{who}: calling their phone to {mode} (agent {row['agent']}, via {row['via']})"
    if event == "start":
        return f"{who}: {mode} started (agent {row['agent']}, via {row['via']})"
    if event == "mode":
        return f"{who}: switched to {mode}"
    return f"{who}: monitoring ended ({row['detail'] or '-'})"


def format_story(call_id: str, story: list[tuple[float, str]]) -> str:
    """The story as text: one line per event, with the time and seconds since arrival."""
    start = story[0][0] if story else 0.0
    lines = [f"call {call_id}"]
    for at, what in story:
        stamp = dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"  {stamp} +{at - start:6.1f}s  {what}")
    return "\n".join(lines)
