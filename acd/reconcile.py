"""`acd report --check`: do the call records agree with the running server's own counters?

The server counts in three places: the records database (CDRs and the queue log, kept forever),
the Prometheus counters of `/metrics` and the routing engine's queue figures of `/api/queues` (both
live, both starting from zero when the server starts). So the records are compared over the
server's current run only: the rows at or after the `started_at` of the last `server_runs` row.

What each live figure must equal in the records of the run:
- `acd_queue_answered_total{queue}`: CONNECT lines of that queue (the queue that served the call).
- `acd_queue_abandoned_total{queue}`: ABANDON lines; `acd_queue_callbacks_total{queue}`: CALLBACK lines.
- `acd_handle_time_seconds_count{queue}`: COMPLETECALLER + COMPLETEAGENT lines.
- `acd_calls_total{result}` summed over the customer trunks: ended CDRs by outcome (a callback
  call is counted once, when the call back is over, with its final outcome).
- `/api/queues` `offered`: ENTERQUEUE lines of the queue. `answered`: CONNECT lines, counted in
  the queue the call entered last (the engine counts there, the metric where it was served; a
  callback whose customer was not reached is not answered: the engine takes the agent's answer
  back, `CallEnded(reached=False)`). `abandoned`: ABANDON and EXITWITHTIMEOUT lines after more than the queue's
  `abandon_grace_seconds` in line (the engine forgives shorter waits).
Calls still in progress make honest differences: run the check when the server is quiet.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping

from prometheus_client.parser import text_string_to_metric_families

from .store.records import open_for_reading

__all__ = ["Difference", "compare", "current_run_start", "live_figures", "record_figures", "fetch_live",
           "run_check", "DEFAULT_ABANDON_GRACE_SECONDS"]

DEFAULT_ABANDON_GRACE_SECONDS = 5.0  # acd.routing.QueueConfig's default

_QUEUE_COUNTERS = {"acd_queue_answered_total": "CONNECT", "acd_queue_abandoned_total": "ABANDON",
                   "acd_queue_callbacks_total": "CALLBACK"}
_INTERNAL_TRUNK = "agents"  # agents' own feature-code calls: counted in /metrics, never recorded


@dataclass(frozen=True, slots=True)
class Difference:
    """One figure the records and the live server disagree on."""

    figure: str
    records: float
    live: float

    def __str__(self) -> str:
        return f"{self.figure}: records {self.records:g}, server {self.live:g}"


def current_run_start(db_path: str | Path) -> float:
    """`started_at` of the server's current (last) run; ValueError when no run was ever recorded."""
    db = open_for_reading(db_path)
    try:
        row = db.execute("SELECT started_at FROM server_runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        db.close()
    if row is None:
        raise ValueError(f"no server run recorded in {db_path}")
    return float(row[0])


def record_figures(db_path: str | Path, since: float,
                   abandon_grace: Mapping[str, float] | None = None) -> dict[str, float]:
    """The records' value of every figure `live_figures` reads, for rows at or after `since`."""
    grace = abandon_grace or {}
    db = open_for_reading(db_path)
    try:
        lines = list(db.query("SELECT call_id, queue, event, at FROM queue_log WHERE at >= ? AND call_id != '' "
                              "ORDER BY at, id", [since]))
        calls = list(db.query("SELECT outcome FROM calls WHERE arrived_at >= ? AND ended_at IS NOT NULL", [since]))
    finally:
        db.close()
    figures: Counter[str] = Counter()
    entered: dict[str, tuple[str, float]] = {}  # call -> (queue entered last, when)
    for line in lines:
        call, queue, event, at = line["call_id"], line["queue"], line["event"], line["at"]
        for metric, counted in _QUEUE_COUNTERS.items():
            if event == counted:
                figures[f'{metric}{{queue="{queue}"}}'] += 1
        if event in ("COMPLETECALLER", "COMPLETEAGENT"):
            figures[f'acd_handle_time_seconds_count{{queue="{queue}"}}'] += 1
        if event == "ENTERQUEUE":
            entered[call] = (queue, at)
            figures[f"/api/queues {queue} offered"] += 1
        elif event == "CONNECT" and call in entered:
            figures[f"/api/queues {entered[call][0]} answered"] += 1
        elif event in ("ABANDON", "EXITWITHTIMEOUT") and call in entered:
            queue_entered, at_entry = entered[call]
            if at - at_entry > grace.get(queue_entered, DEFAULT_ABANDON_GRACE_SECONDS):
                figures[f"/api/queues {queue_entered} abandoned"] += 1
    for call in calls:
        figures[f'acd_calls_total{{result="{call["outcome"]}"}}'] += 1
    return dict(figures)


def live_figures(metrics_text: str, queues: list[dict[str, Any]]) -> dict[str, float]:
    """The same figures from the `/metrics` page and the `/api/queues` answer."""
    figures: Counter[str] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name in _QUEUE_COUNTERS or name == "acd_handle_time_seconds_count":
                figures[f'{name}{{queue="{labels.get("queue", "")}"}}'] += sample.value
            elif name == "acd_calls_total" and labels.get("trunk") != _INTERNAL_TRUNK:
                figures[f'acd_calls_total{{result="{labels.get("result", "")}"}}'] += sample.value
    for queue in queues:
        for field in ("offered", "answered", "abandoned"):
            figures[f"/api/queues {queue['queue']} {field}"] += queue.get(field) or 0
    return dict(figures)


def compare(records: Mapping[str, float], live: Mapping[str, float]) -> list[Difference]:
    """Every figure whose values differ (a figure missing on one side counts as 0), sorted by name."""
    return [Difference(name, records.get(name, 0), live.get(name, 0))
            for name in sorted(records.keys() | live.keys())
            if abs(records.get(name, 0) - live.get(name, 0)) > 1e-9]


def fetch_live(base_url: str, token: str, timeout: float = 10.0) -> tuple[str, list[dict[str, Any]]]:
    """GET /metrics and /api/queues (with the API token) from the server at `base_url`."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=timeout) as response:
        metrics_text = response.read().decode()
    request = urllib.request.Request(f"{base_url}/api/queues", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        queues = json.loads(response.read())
    return metrics_text, queues


def run_check(db_path: str | Path, base_url: str, token: str, *, abandon_grace: Mapping[str, float] | None = None,
              out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """What `acd report --check` does: 0 when records and server agree, 1 when they differ (each
    difference printed), 2 when the records or the server cannot be read."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        since = current_run_start(db_path)
        recorded = record_figures(db_path, since, abandon_grace)
        live = live_figures(*fetch_live(base_url, token))
    except (OSError, ValueError) as error:
        print(f"acd report --check: {error}", file=err)
        return 2
    differences = compare(recorded, live)
    for difference in differences:
        print(difference, file=out)
    compared = len(recorded.keys() | live.keys())
    if differences:
        print(f"{len(differences)} of {compared} figure(s) differ between the records and the server "
              f"(this run, since {since:.0f})", file=out)
        return 1
    print(f"records and server agree on {compared} figure(s) (this run, since {since:.0f})", file=out)
    return 0
