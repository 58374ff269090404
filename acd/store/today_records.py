"""The wallboard's figures of the day, read from the records database (acd/today_figures.py adds them up).

A reader with its own read-only connection (WAL lets it read while the writer writes); it runs in a
thread of the pool, never on the reactor thread (records.py's rule), as agent_calls.py does. The
wallboard gives the start of its local day; the server never decides what today is.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Iterable, Mapping

from ..report import wrap_ups
from ..today_figures import Today, figures_today

__all__ = ["today_from_records"]

_EVENTS = ("ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "ABANDON", "EXITWITHTIMEOUT",
           "CALLBACK")


def today_from_records(path: str | Path, *, since: float, until: float,
                       service_level_seconds: Mapping[str, float] | None = None,
                       queues: Iterable[str] = (), agents: Iterable[str] = ()) -> Today:
    """The figures of [since, until) from the database at `path` (zeros when it does not exist yet).
    Wrap-ups: each agent's own from the state history (a blind transfer's two agents each have
    theirs), else the call record's."""
    path = Path(path)
    rows: list[dict] = []
    wraps: dict[tuple[str, str], float] = {}
    if path.exists():
        marks = ", ".join("?" * len(_EVENTS))
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(row) for row in db.execute(
                f"SELECT at, call_id, queue, agent, event, data1, data2, data3 FROM queue_log "
                f"WHERE at >= ? AND at < ? AND event IN ({marks}) ORDER BY at, id", (since, until, *_EVENTS))]
            wraps = {(row["call_id"], row["agent"]): row["wrap_up_seconds"] for row in db.execute(
                "SELECT call_id, agent, wrap_up_seconds FROM calls WHERE wrap_up_seconds IS NOT NULL AND call_id IN "
                "(SELECT call_id FROM queue_log WHERE at >= ? AND at < ?)", (since, until))}
            states = [dict(row) for row in db.execute(
                "SELECT id, agent_id, state, reason, at FROM agent_states WHERE at >= ? AND at < ? "
                "ORDER BY agent_id, at, id", (since, until))]
        wraps.update(wrap_ups(states, until))
    return figures_today(rows, since=since, until=until, wrap_ups=wraps, service_level_seconds=service_level_seconds,
                         queues=queues, agents=agents)
