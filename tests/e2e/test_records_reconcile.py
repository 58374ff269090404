"""The records agree with the live counters over real SIP: a scripted mix (a callback answered by
the agent, a caller who abandons in the queue, an inbound call answered), then `acd report --check`
(subprocess) finds /metrics, /api/queues and the records equal, and `acd report` counts each call
once, the callback included in the agent's handled calls and handle time."""

from __future__ import annotations

import csv
import json
import socket
import sqlite3
import subprocess
import sys
import urllib.request

from .harness import LOOPBACK, SCENARIOS, free_port, run_sipp
from .test_acd_calls import SippAgents, start_acd_server

AGENT = "3501"


def acd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acd.cli", *args], capture_output=True, text=True, timeout=60)


def test_callback_abandon_and_answered_calls_reconcile_with_metrics_and_the_api(tmp_path):
    customer_port = free_port(both=False)
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    talking = (SCENARIOS / "agent_answers.xml").read_text()
    (tmp_path / "agent_8s.xml").write_text(talking.replace('timeout="3000"', 'timeout="8000"'))
    (tmp_path / "customer_4s.xml").write_text(talking.replace('timeout="3000"', 'timeout="4000"'))
    server = start_acd_server(tmp_path, [AGENT], trunk_outbound=f"{LOOPBACK}:{customer_port}", http_port=http_port)
    customer = agents = None
    try:
        customer = subprocess.Popen(  # our trunk's far end: answers the call back, hangs up after 4 s
            ["sipp", server.target, "-sf", str(tmp_path / "customer_4s.xml"), "-i", LOOPBACK, "-p",
             str(customer_port), "-mp", str(free_port(both=False)), "-m", "1", "-nostdin", "-timeout", "60s"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        run_sipp(tmp_path / "callback", server.target, scenario="queue_callback.xml", service="3000", calls=1,
                 timeout=30).assert_ok(server)
        server.wait_for_log(r"callback requested to 5551")
        run_sipp(tmp_path / "abandon", server.target, scenario="queue_abandon.xml", service="3000", calls=1,
                 timeout=30).assert_ok(server)
        agents = SippAgents(tmp_path / "agents", server.target, [AGENT], max_calls=2, timeout=60,
                            scenario=str(tmp_path / "agent_8s.xml"))
        agents.login.assert_ok(server)
        server.wait_for_log(r"callback over: outcome=caller_hangup", timeout=30)
        assert customer.wait(timeout=20) == 0
        server.wait_for_log(rf"agent={AGENT} state wrap_up -> available", timeout=10)
        run_sipp(tmp_path / "caller", server.target, scenario="queue_caller.xml", service="3000", calls=1,
                 timeout=40).assert_ok(server)
        server.wait_for_log(rf"agent={AGENT} state wrap_up -> available", count=2, timeout=20)
        check = acd("report", "--root", str(server.root), "--check")
        token = (server.root / "data" / "api.token").read_text().strip()
        request = urllib.request.Request(f"http://{LOOPBACK}:{http_port}/api/agents",
                                         headers={"Authorization": f"Bearer {token}"})
        handled = next(a for a in json.loads(urllib.request.urlopen(request, timeout=5).read())
                       if a["id"] == AGENT)["calls_handled"]
    finally:
        if customer is not None and customer.poll() is None:
            customer.kill()
            customer.wait(timeout=5)
        if agents:
            agents.stop()
        server.stop()
    assert check.returncode == 0, check.stdout + check.stderr
    assert "records and server agree" in check.stdout
    report_csv = tmp_path / "report.csv"
    done = acd("report", "--root", str(server.root), "--since", "0", "--csv", str(report_csv))
    assert done.returncode == 0, done.stderr
    rows = {(r["section"], r["name"], r["detail"], r["metric"]): float(r["value"] or "nan")
            for r in csv.DictReader(report_csv.open())}
    assert rows[("calls", "", "", "calls")] == 3 and rows[("calls", "", "", "answered")] == 2
    assert rows[("calls", "", "", "callbacks_answered")] == 1
    assert rows[("queue", "loadtest", "", "offered")] == 3 and rows[("queue", "loadtest", "", "answered")] == 2
    assert rows[("queue", "loadtest", "", "abandoned")] == 1 and rows[("queue", "loadtest", "", "callbacks")] == 1
    assert rows[("agent", AGENT, "", "calls")] == 2 == handled
    with sqlite3.connect(server.root / "data" / "records.db") as db:
        talk, wrap = db.execute("select sum(talk_seconds), sum(wrap_up_seconds) from calls where agent = ?",
                                (AGENT,)).fetchone()
        callback = db.execute("select agent, outcome, connected_at is not null from calls "
                              "where callback_requested_at is not null").fetchall()
    assert callback == [(AGENT, "caller_hangup", 1)]
    assert abs(rows[("agent", AGENT, "", "talk_seconds")] - talk) < 1.0, "whole seconds in the queue log"
    assert abs(rows[("agent", AGENT, "", "aht_seconds")] - (talk + wrap) / 2) < 1.0
