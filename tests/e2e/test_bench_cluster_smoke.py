"""Smoke test of the cluster benchmark (scripts/bench/cluster.py) in a tiny bounded mode: the routing
authority part with a few hundred calls, then two cluster nodes behind Kamailio with 10 agents and
one 2 s step at 5 calls/s through the demo IVR and the support queue."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from acd.devtools.kamailio_front import unavailable_reason as kamailio_missing
from acd.devtools.pg_cluster import unavailable_reason as postgresql_missing

from .harness import REPO

BENCH = REPO / "scripts" / "bench" / "cluster.py"
MISSING = kamailio_missing() or postgresql_missing()

pytestmark = [pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
              pytest.mark.serial]  # benchmarks load the CPU and read it


def test_cluster_bench_measures_the_authority_and_a_clean_step_on_two_nodes(tmp_path):
    out = tmp_path / "bench.json"
    completed = subprocess.run([sys.executable, str(BENCH), "--nodes", "2", "--rates", "5", "--step-seconds", "2",
                                "--settle-seconds", "0.5", "--agents", "10", "--calls", "300", "--concurrent", "5",
                                "--batch", "50", "--out", str(out)],
                               capture_output=True, text=True, timeout=90, cwd=REPO)
    assert completed.returncode == 0, f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    report = json.loads(out.read_text())
    authority = report["authority"]
    for name in ("engine", "lead_per_event", "inbox_batches"):
        assert authority[name]["events"] == 900 and authority[name]["events_per_s"] > 0, authority
    (two,) = report["rate"]
    assert (two["nodes"], two["cluster_mode"], two["through"], two["best_rate"]) == (2, True, "kamailio", 5), two
    step = two["steps"][0]
    assert step["successful"] == step["records"] == step["connected_to_agent"] == 10, step
    assert step["routing_samples"] == 10 and step["cluster_routing_ms_p50"] is not None, step
