"""Agents stay logged in across a restart of `acd serve`, over real SIP: SIGKILL mid-call (a crash)
and SIGTERM (a clean stop), each followed by a start on the same root, data and ports.

SIPp agents register with Digest and log in with *45; one SIPp process answers every agent's offers
at one contact. Pauses go through the REST API. Every process is bounded and killed in `finally`.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import urllib.request
from contextlib import closing
from pathlib import Path

from .harness import LOOPBACK, SCENARIOS, AcdServer, free_port, rtp_base, start_server, start_sipp, wait_until
from .test_acd_calls import GOODBYE_FLOW, QUEUE_FLOW, SippAgents, agents_yaml


class Site:
    """One server's root, ports and config, started again on the same ones after each stop."""

    def __init__(self, root: Path, agent_ids: list[str]) -> None:
        self.root = root
        self.sip_port = free_port()
        self.rtp_base = rtp_base()
        self.http_port = free_port(kind=socket.SOCK_STREAM, both=False)
        self.files = {"conf/agents.yaml": agents_yaml(agent_ids),
                      "dialplans/acd.yaml": 'routes:\n  - {number: "3000", flow: queue_direct}\n'
                                            '  - {number: "3999", flow: goodbye_only}\n',
                      "ivr_flows/queue_direct.yaml": QUEUE_FLOW, "ivr_flows/goodbye_only.yaml": GOODBYE_FLOW}

    def start(self) -> AcdServer:
        return start_server(self.root, sip_port=self.sip_port, rtp_base=self.rtp_base, extra_files=self.files,
                            http_port=self.http_port)

    def api(self, method: str, path: str, body: dict | None = None):
        token = (self.root / "data" / "api.token").read_text().strip()
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def agents(self) -> dict[str, dict]:
        return {agent["id"]: agent for agent in self.api("GET", "/api/agents")}

    def records(self, sql: str, *parameters) -> list[tuple]:
        with closing(sqlite3.connect(self.root / "data" / "records.db")) as db:
            return db.execute(sql, parameters).fetchall()


def _stop(*processes) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_sigkill_mid_call_then_restart_brings_the_agents_back(tmp_path):
    """A caller talks to 3961 while 3962 is paused for lunch; the server is killed -9 and started
    again: the call's record says interrupted, 3961 is available (it was on the call) and 3962 still
    paused for lunch, per /api/agents and the log, and a new caller is connected to 3961."""
    site = Site(tmp_path / "server", ["3961", "3962"])
    server = site.start()
    talking = (SCENARIOS / "agent_answers.xml").read_text().replace('timeout="3000"', 'timeout="30000"')
    (tmp_path / "agent_30s.xml").write_text(talking)
    agents = caller = restarted = new_caller = None
    try:
        agents = SippAgents(tmp_path / "agents", server.target, ["3961", "3962"], max_calls=6, timeout=90,
                            scenario=str(tmp_path / "agent_30s.xml"))
        agents.login.assert_ok(server)
        server.wait_for_log(r"agent=3962 feature=login result=logged-in")
        assert site.api("POST", "/api/agents/3962/pause", {"reason": "lunch"})["result"] == "paused"
        caller = start_sipp(tmp_path / "caller", server.target, "queue_caller.xml", calls=1, timeout=60,
                            timeout_error=False)
        server.wait_for_log(r"connected to agent=3961")
        wait_until(lambda: site.records("select count(connected_at) from calls")[0][0] == 1, 10,
                   "the connected call in the records", server=server)
        wait_until(lambda: site.records("select state from agent_presence where agent_id = '3961'") ==
                   [("on_call",)], 10, "3961 on_call in agent_presence", server=server)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        server.stop()
        _stop(caller)
        (call_id,) = [row[0] for row in site.records("select call_id from calls where connected_at is not null")]

        restarted = site.start()
        restarted.wait_for_log(r"starting after a crash; 1 call\(s\) left open, 2 agent\(s\) were logged in")
        restarted.wait_for_log(r"restored 2 agent\(s\) after a crash: 3961 available \(was on_call\), "
                               r"3962 paused \(lunch\)")
        restarted.wait_for_log(r"agent=3961 told by SIP MESSAGE")
        wait_until(lambda: site.records("select outcome, end_reason from calls where call_id = ?", call_id) == [
            ("interrupted", "server stopped unexpectedly")], 10, "the call closed as interrupted", server=restarted)
        now = site.agents()
        assert (now["3961"]["state"], now["3962"]["state"], now["3962"]["pause_reason"]) == \
            ("available", "paused", "lunch")
        new_caller = start_sipp(tmp_path / "caller2", restarted.target, "queue_caller.xml", calls=1, timeout=60,
                                timeout_error=False)
        restarted.wait_for_log(r"connected to agent=3961", timeout=20)
    finally:
        _stop(caller, new_caller)
        if agents:
            agents.stop()
        server.stop()
        if restarted is not None:
            restarted.stop()


def test_sigterm_then_restart_keeps_queues_and_pause_reason(tmp_path):
    """SIGTERM (the normal stop), wait for the process to exit, start again: the log says clean stop,
    and /api/agents shows the same agents logged in, with the same queues and pause reason."""
    site = Site(tmp_path / "server", ["3971", "3972"])
    server = site.start()
    agents = restarted = None
    try:
        agents = SippAgents(tmp_path / "agents", server.target, ["3971", "3972"], max_calls=4, timeout=60)
        agents.login.assert_ok(server)
        server.wait_for_log(r"agent=3972 feature=login result=logged-in")
        assert site.api("POST", "/api/agents/3972/pause", {"reason": "training"})["result"] == "paused"
        before = site.agents()
        assert (before["3971"]["state"], before["3972"]["state"]) == ("available", "paused")
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        server.stop()

        restarted = site.start()
        restarted.wait_for_log(r"starting after a clean stop \(stopped at [\d.]+\); 0 call\(s\) left open, "
                               r"2 agent\(s\) were logged in")
        restarted.wait_for_log(r"restored 2 agent\(s\) after a clean stop: 3971 available, 3972 paused \(training\)")
        after = site.agents()
        for agent in ("3971", "3972"):
            assert {key: after[agent][key] for key in ("state", "pause_reason", "queues")} == \
                {key: before[agent][key] for key in ("state", "pause_reason", "queues")}
        assert "told by SIP MESSAGE" not in restarted.log(), "nothing changed for them: no MESSAGE"
    finally:
        if agents:
            agents.stop()
        server.stop()
        if restarted is not None:
            restarted.stop()
