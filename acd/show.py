"""`acd show queues|agents|calls`: the running server's live state as tables, like Asterisk's
`queue show` and `core show channels`. The data comes from the REST API (`GET /api/queues`,
`/api/agents`, `/api/calls`); this module only formats it, so it is tested without a server.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ["SHOWABLE", "format_table", "show_agents", "show_calls", "show_queues", "duration"]


def duration(seconds: float | None) -> str:
    """12 → "0:12", 754 → "12:34", 4000 → "1:06:40"; None → "-"."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart; None shows as "-"."""
    cells = [[str(h) for h in header]] + [["-" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells)


def _members(agents: Any) -> str:
    """The API's logged-in members by state ({"available": 1, "unreachable": 1, ...}) as
    "1 available, 1 unreachable" (non-zero counts only; "0" when nobody is logged in)."""
    if not isinstance(agents, dict):
        return str(agents)
    return ", ".join(f"{count} {state}" for state, count in agents.items() if count) or "0"


def show_queues(queues: list[dict[str, Any]], now: float | None = None) -> str:
    """One row per queue, then a line per queue with its members and their penalties."""
    rows = []
    for q in queues:
        level = q.get("service_level")
        rows.append([q["queue"] + (" (retired)" if q.get("retired") else ""), q.get("strategy") or "-", q["waiting"],
                     duration(q.get("longest_wait_seconds")) if q["waiting"] else "-", _members(q["agents"]),
                     q["offered"],
                     q["answered"], q["abandoned"], "-" if level is None else f"{100 * level:.0f}%",
                     duration(q.get("average_handle_seconds"))])
    table = format_table(["QUEUE", "STRATEGY", "WAITING", "LONGEST", "AGENTS", "OFFERED", "ANSWERED", "ABANDONED",
                          "SL", "AHT"], rows)
    members = []
    for q in queues:
        listed = ", ".join(f"{agent} (penalty {penalty})" for agent, penalty in sorted((q.get("members") or {}).items()))
        members.append(f"  {q['queue']}: {listed or 'no members'}")
    return table + ("\nmembers:\n" + "\n".join(members) if members else "") + f"\n{len(queues)} queue(s)"


def show_agents(agents: list[dict[str, Any]], now: float) -> str:
    """One row per agent: state (pause reason, "unreachable" when the phone cannot be rung), for how
    long, phone registered, queues, call."""
    rows = []
    for a in agents:
        notes = [note for note in (a.get("pause_reason"), "unreachable" if a.get("reachable") is False else None)
                 if note]
        state = a["state"] + (f" ({', '.join(notes)})" if notes else "")
        since = a.get("state_since")
        queues = a.get("queues") or {}
        listed = ",".join(sorted(queues)) if isinstance(queues, dict) else ",".join(queues)
        rows.append([a["id"], a.get("name") or "", state, duration(now - since) if since else "-",
                     "yes" if a.get("registered") else "no", listed or "-", a.get("call_id"),
                     a.get("calls_handled"), a.get("missed_offers")])
    table = format_table(["AGENT", "NAME", "STATE", "FOR", "PHONE", "QUEUES", "CALL", "HANDLED", "MISSED"], rows)
    return table + f"\n{len(agents)} agent(s)"


def show_calls(calls: list[dict[str, Any]], now: float | None = None) -> str:
    """One row per call in progress: where it is (IVR step, queue, agent) and for how long."""
    rows = []
    for c in calls:
        where = c.get("ivr_step") and f"ivr {c['ivr_step']}"
        rows.append([c["call_id"], c["state"], c.get("dialled"), c.get("queue"), c.get("agent"), where,
                     duration(c.get("seconds"))])
    table = format_table(["CALL", "STATE", "DIALLED", "QUEUE", "AGENT", "WHERE", "DURATION"], rows)
    return table + f"\n{len(calls)} call(s) in progress"


SHOWABLE: dict[str, tuple[str, Callable[..., str]]] = {
    "queues": ("/api/queues", show_queues),
    "agents": ("/api/agents", show_agents),
    "calls": ("/api/calls", show_calls),
}
