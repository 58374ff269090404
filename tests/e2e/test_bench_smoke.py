"""Smoke test of the SIP capacity benchmark driver (scripts/bench/sip_bench.py) in a tiny bounded mode:
it starts our server with its bench config, drives SIPp, captures with tshark and writes its JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .harness import REPO

BENCH = REPO / "scripts" / "bench" / "sip_bench.py"

pytestmark = [pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed: run scripts/setup"),
              pytest.mark.serial]  # benchmarks load the CPU and read it


def run_bench(tmp_path, *args: str, timeout: float = 40) -> dict:
    out = tmp_path / "bench.json"
    completed = subprocess.run([sys.executable, str(BENCH), *args, "--out", str(out)], capture_output=True,
                               text=True, timeout=timeout, cwd=REPO)
    assert completed.returncode == 0, f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_rate_mode_steps_and_measures_setup_latency(tmp_path):
    """2 s at 5 calls/s: every call completes, and the half-rate latency run reads the capture."""
    report = run_bench(tmp_path, "rate", "--rates", "5", "--step-seconds", "2", "--latency-seconds", "2")
    run = report["runs"][0]
    step = run["steps"][0]
    assert step["ok"] and step["successful"] == 10 and step["failed"] == 0, step
    assert step["cpu_percent"] is not None and step["rss_kib"] > 10_000
    assert run["best_rate"] == 5
    latency = run["latency"]
    assert latency["rate"] == 2.5 and latency["failed"] == 0
    assert latency["latency_samples"] == latency["calls"] == 5
    assert 0 < latency["setup_p50_ms"] <= latency["setup_p99_ms"] < 1000


def test_concurrency_mode_reads_rtp_streams(tmp_path):
    """5 held calls with media both ways: the 5 server->caller PCMU streams are captured and read (loss,
    rate, jitter); how well a busy machine paced them is the benchmark's business, not this test's."""
    report = run_bench(tmp_path, "concurrency", "--concurrency", "5", "--hold-seconds", "8", "--capture-seconds", "3",
                       "--ramp-rate", "10")
    step = report["runs"][0]["steps"][0]
    assert step["successful"] == 5 and step["streams"] == 5, step.get("problems")
    assert 0 <= step["lost"] < step["packets"] // 10, step.get("problems")
    assert 40 <= step["pps_per_stream_p50"] <= 55
    assert step["mean_jitter_p99_ms"] is not None and step["rss_per_call_kib"] is not None
