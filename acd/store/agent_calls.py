"""One agent's calls since a time, read from the records database for the agent desktop.

A reader with its own connection (WAL lets it read while the writer writes); it runs in a thread
of the pool, never on the reactor thread (records.py's rule). The desktop asks for "today" by
giving the start of the agent's day; the server never decides what today is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .read_rows import read_rows

__all__ = ["AGENT_CALL_COLUMNS", "MAX_AGENT_CALLS", "agent_calls_since"]

# What the desktop shows of each call: no more (the CDR has trunk and priority details too).
AGENT_CALL_COLUMNS = ("call_id", "caller", "queue", "served_queue", "connected_at", "ended_at", "wait_seconds",
                      "talk_seconds", "wrap_up_seconds", "outcome", "disposition", "notes", "ivr_path",
                      "callback_requested_at")
# A busy agent takes a few hundred calls a day; the list is for their eyes, not a report.
MAX_AGENT_CALLS = 500


def agent_calls_since(path: str | Path, agent_id: str, since: float, *,
                      limit: int = MAX_AGENT_CALLS) -> list[dict[str, Any]]:
    """The calls `agent_id` was connected to at or after `since` (POSIX seconds), newest first;
    [] when the database does not exist yet. `path` may be a postgresql:// URL (`store:`)."""
    columns = ", ".join(AGENT_CALL_COLUMNS)
    sql = f"SELECT {columns} FROM calls WHERE agent = ? AND connected_at >= ? ORDER BY connected_at DESC LIMIT ?"
    found = read_rows(path, [(sql, (agent_id, since, limit))])
    return found[0] if found is not None else []
