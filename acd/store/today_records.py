"""The wallboard's figures of the day, read from the records database (acd/today_figures.py adds them up).

A reader with its own read-only connection (WAL lets it read while the writer writes); it runs in a
thread of the pool, never on the reactor thread (records.py's rule), as agent_calls.py does. The
wallboard gives the start of its local day; the server never decides what today is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from ..report import wrap_ups
from ..today_figures import Today, figures_today
from .read_rows import read_rows

__all__ = ["today_from_records"]

_EVENTS = ("ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "ABANDON", "EXITWITHTIMEOUT",
           "CALLBACK")


def today_from_records(path: str | Path, *, since: float, until: float,
                       service_level_seconds: Mapping[str, float] | None = None,
                       queues: Iterable[str] = (), agents: Iterable[str] = ()) -> Today:
    """The figures of [since, until) from the records at `path`, a SQLite file or a postgresql:// URL
    (zeros when nothing was recorded yet).
    Wrap-ups: each agent's own from the state history (a blind transfer's two agents each have
    theirs), else the call record's."""
    marks = ", ".join("?" * len(_EVENTS))
    found = read_rows(path, [
        (f"SELECT at, call_id, queue, agent, event, data1, data2, data3 FROM queue_log "
         f"WHERE at >= ? AND at < ? AND event IN ({marks}) ORDER BY at, id", (since, until, *_EVENTS)),
        ("SELECT call_id, agent, wrap_up_seconds FROM calls WHERE wrap_up_seconds IS NOT NULL AND call_id IN "
         "(SELECT call_id FROM queue_log WHERE at >= ? AND at < ?)", (since, until)),
        ("SELECT id, agent_id, state, reason, at FROM agent_states WHERE at >= ? AND at < ? "
         "ORDER BY agent_id, at, id", (since, until))])
    rows: list[dict] = []
    wraps: dict[tuple[str, str], float] = {}
    if found is not None:
        rows, calls, states = found
        wraps = {(row["call_id"], row["agent"]): row["wrap_up_seconds"] for row in calls}
        wraps.update(wrap_ups(states, until))
    return figures_today(rows, since=since, until=until, wrap_ups=wraps, service_level_seconds=service_level_seconds,
                         queues=queues, agents=agents)
