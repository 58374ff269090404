"""What a supervisor reads after a scripted mix of calls, from its three sources: `acd report`
(subprocess, CSV), the live server (`/metrics`, `/api/queues`, `/api/agents`) and the records
database. `tests/e2e/test_records_mix.py` compares them call by call and counter by counter."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .harness import LOOPBACK, AcdServer

REPORT_SINCE = "2000-01-01"  # a fixed early date: every call of the test is after it


def acd(*args: str) -> subprocess.CompletedProcess:
    """`python -m acd.cli ARGS`, bounded."""
    return subprocess.run([sys.executable, "-m", "acd.cli", *args], capture_output=True, text=True, timeout=60)


@dataclass
class Figures:
    """The three sources, read once the server is quiet."""

    check: subprocess.CompletedProcess
    report: dict[tuple[str, str, str, str], float]  # (section, name, detail, metric) -> value
    report_text: str
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (sample name, labels) -> value
    queues: dict[str, dict]  # /api/queues by queue
    agents: dict[str, dict]  # /api/agents by agent id
    calls: list[dict]  # the calls table, by arrival
    queue_log: list[dict]
    agent_states: list[dict]  # the agent state history, by agent then time

    def report_value(self, section: str, name: str, metric: str, detail: str = "") -> float:
        """A figure of the report (0 when the report has no such row)."""
        return self.report.get((section, name, detail, metric), 0.0)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        return sum(value for (sample, found), value in self.metrics.items()
                   if sample == name and labels.items() <= dict(found).items())

    def calls_by_result(self) -> dict[str, float]:
        """`acd_calls_total` by result, customer trunks only (agents' *45 calls are never recorded)."""
        results: Counter[str] = Counter()
        for (sample, labels), value in self.metrics.items():
            found = dict(labels)
            if sample == "acd_calls_total" and found.get("trunk") != "agents" and value:
                results[found["result"]] += value
        return dict(results)


def _get(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return response.read().decode()


def read_figures(server: AcdServer, http_port: int, workdir: Path) -> Figures:
    """Run `acd report --check` and `acd report --since ... --csv`, read the live pages and the
    records. Call while the server still runs and no call is in progress."""
    check = acd("report", "--root", str(server.root), "--check")
    report_csv = workdir / "report.csv"
    done = acd("report", "--root", str(server.root), "--since", REPORT_SINCE, "--csv", str(report_csv))
    assert done.returncode == 0, done.stderr
    report = {(r["section"], r["name"], r["detail"], r["metric"]): float(r["value"] or "nan")
              for r in csv.DictReader(report_csv.open())}
    base = f"http://{LOOPBACK}:{http_port}"
    token = (server.root / "data" / "api.token").read_text().strip()
    metrics = {}
    for family in text_string_to_metric_families(_get(f"{base}/metrics")):
        for sample in family.samples:
            metrics[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    queues = {q["queue"]: q for q in json.loads(_get(f"{base}/api/queues", token))}
    agents = {a["id"]: a for a in json.loads(_get(f"{base}/api/agents", token))}
    with sqlite3.connect(server.root / "data" / "records.db") as db:
        db.row_factory = sqlite3.Row
        calls = [dict(row) for row in db.execute("SELECT * FROM calls ORDER BY arrived_at")]
        queue_log = [dict(row) for row in db.execute("SELECT * FROM queue_log ORDER BY at, id")]
        agent_states = [dict(row) for row in db.execute("SELECT * FROM agent_states ORDER BY agent_id, at, id")]
    return Figures(check=check, report=report, report_text=done.stdout, metrics=metrics, queues=queues,
                   agents=agents, calls=calls, queue_log=queue_log, agent_states=agent_states)
