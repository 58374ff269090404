"""What the records database says about the previous run: how it ended, and where each agent was.

Two small tables beside the history (`acd/store/records.py` writes them):
- `agent_presence`: one row per agent, the ACD state they are in now, replaced on every change. The
  `agent_states` history says the same thing in free text ("logged in paused: lunch") and without
  the queues; a current-state row is what a restart needs, read in one query whatever the history's
  length.
- `server_runs`: one row per start; `stopped_at` is written on the normal shutdown path, so a run
  without it ended in a crash (SIGKILL, power loss, a bug that killed the process).

This module only reads; `read_previous_run` runs on the records writer thread at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

__all__ = ["AgentPresence", "PreviousRun", "PRESENCE_COLUMNS", "RUNS_COLUMNS", "read_previous_run",
           "presence_from_history", "seed_presence_from_history"]

PRESENCE_COLUMNS = {"agent_id": str, "state": str, "queues": str, "pause_reason": str, "pending": str,
                    "pending_reason": str, "reason": str, "updated_at": float}
RUNS_COLUMNS = {"id": int, "started_at": float, "stopped_at": float, "node": str}  # node: schema 7, NULL alone


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPresence:
    """One agent's last ACD state: an `AgentState` value, queues → penalty, the pause reason while
    paused, and a change asked for during a call (`pending` "pause" or "logout", with its reason)."""

    agent_id: str
    state: str
    queues: dict[str, int]
    pause_reason: str | None = None
    pending: str | None = None
    pending_reason: str | None = None
    updated_at: float = 0.0

    @property
    def logged_in(self) -> bool:
        """True unless the agent's last state is logged out."""
        return self.state != "logged_out"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviousRun:
    """How the last run ended and who was logged in when it did."""

    first_start: bool
    stopped_cleanly: bool
    stopped_at: float | None
    open_calls: int
    agents: tuple[AgentPresence, ...]

    @property
    def ending(self) -> str:
        """"a clean stop", "a crash" (no stop written, or calls left open) or "the first start"."""
        if self.first_start and not self.open_calls:
            return "the first start"
        return "a clean stop" if self.stopped_cleanly and not self.open_calls else "a crash"


def read_previous_run(db: Any, node: str | None = None) -> PreviousRun:
    """The previous run as the database shows it before this run writes anything (`db`: SQLite's
    connection or the PostgreSQL writer's, both with `execute(sql).fetchone()`). A cluster node
    (`node` given) looks at its own runs and calls only (and at the calls of no node)."""
    if node is None:
        last = db.execute("SELECT stopped_at FROM server_runs ORDER BY id DESC LIMIT 1").fetchone()
        open_calls = db.execute("SELECT COUNT(*) FROM calls WHERE ended_at IS NULL").fetchone()[0]
    else:
        last = db.execute("SELECT stopped_at FROM server_runs WHERE node = ? ORDER BY id DESC LIMIT 1",
                          [node]).fetchone()
        open_calls = db.execute("SELECT COUNT(*) FROM calls WHERE ended_at IS NULL AND (node IS NULL OR node = ?)",
                                [node]).fetchone()[0]
    agents = tuple(
        AgentPresence(agent_id=row[0], state=row[1], queues=json.loads(row[2] or "{}"), pause_reason=row[3],
                      pending=row[4], pending_reason=row[5], updated_at=row[6])
        for row in db.execute("SELECT agent_id, state, queues, pause_reason, pending, pending_reason, updated_at "
                              "FROM agent_presence WHERE state != 'logged_out' ORDER BY agent_id"))
    return PreviousRun(first_start=last is None, stopped_cleanly=last is not None and last[0] is not None,
                       stopped_at=last[0] if last is not None else None, open_calls=open_calls, agents=agents)


def presence_from_history(db: Any) -> list[dict[str, Any]]:
    """The `agent_presence` rows the history implies: one per agent whose last history state is not
    logged out (queues unknown: a restore uses the configured ones). `db` is any connection with
    `execute(sql).fetchall()` (SQLite, or the PostgreSQL writer's)."""
    rows = db.execute(
        "SELECT agent_id, state, reason, at FROM agent_states AS s WHERE id = (SELECT MAX(id) FROM agent_states "
        "WHERE agent_id = s.agent_id) AND state != 'logged_out'").fetchall()
    return [{"agent_id": agent_id, "state": state, "queues": "{}",
             "pause_reason": (reason.rpartition(": ")[2] or reason) if state == "paused" else None,
             "pending": None, "pending_reason": None, "reason": reason, "updated_at": at}
            for agent_id, state, reason, at in rows]


def seed_presence_from_history(db: sqlite_utils.Database) -> int:
    """Upgrading a database written before `agent_presence` existed: `presence_from_history` written.
    Returns the rows written."""
    rows = presence_from_history(db)
    for row in rows:
        db["agent_presence"].upsert(row, pk="agent_id")
    return len(rows)
