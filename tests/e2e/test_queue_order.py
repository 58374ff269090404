"""Queue order over real SIP (SIPp agent and callers, HTTP API): a VIP served before four waiting
callers says why, for the VIP and for caller 1; a priority raised over the API moves a caller ahead
on the next decision, and the callers behind are told their new place."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from acd.sip.digest import compute_ha1

from .harness import SCENARIOS, free_port, rtp_base, start_server, start_sipp, wait_until
from .test_acd_calls import REALM, SippAgents
from .test_api import call

AGENT = "2501"


def files() -> dict[str, str]:
    agents = "\n".join([
        f"realm: {REALM}", "digest_algorithms: [MD5, SHA-256]", "queues:",
        "  q: {strategy: longest-idle, wrap_up: 0, ring_timeout: 5, when_no_agents: join, announce_every: 30}",
        "  sales: {when_no_agents: refuse}", "  support: {when_no_agents: refuse}", "  billing: {when_no_agents: refuse}",
        "agents:", f'  "{AGENT}":', "    password_ha1:",
        f"      md5: {compute_ha1(AGENT, REALM, f'pw-{AGENT}', 'MD5')}",
        f"      sha256: {compute_ha1(AGENT, REALM, f'pw-{AGENT}', 'SHA-256')}", "    queues: {q: 0}"]) + "\n"
    return {
        "conf/agents.yaml": agents,
        "dialplans/acd.yaml": 'routes:\n  - {number: "3000", flow: to_q}\n  - {number: "3009", flow: to_q_vip}\n',
        "ivr_flows/to_q.yaml": "name: to_q\nsteps:\n  wait: {queue: q, on_failure: end}\n  end: {hangup: true}\n",
        "ivr_flows/to_q_vip.yaml": "name: to_q_vip\nsteps:\n  wait: {queue: q, priority: 5, on_failure: end}\n"
                                   "  end: {hangup: true}\n",
    }


class Floor:
    """A server, one SIPp agent who talks 10 s per call, and SIPp callers lined up behind a first call."""

    def __init__(self, tmp_path) -> None:
        http_port = free_port(kind=socket.SOCK_STREAM, both=False)
        self.server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(),
                                   http_port=http_port, extra_files=files())
        self.server.http_port = http_port
        self.server.token = (self.server.root / "data" / "api.token").read_text().strip()
        self.tmp_path = tmp_path
        self.callers: list[subprocess.Popen] = []
        talking = (SCENARIOS / "agent_answers.xml").read_text().replace('timeout="3000"', 'timeout="10000"')
        (tmp_path / "agent_10s.xml").write_text(talking)
        self.agent = SippAgents(tmp_path / "agent", self.server.target, [AGENT], max_calls=10, timeout=90,
                                scenario=str(tmp_path / "agent_10s.xml"))
        self.agent.login.assert_ok(self.server)
        self.server.wait_for_log(rf"agent={AGENT} feature=login result=logged-in")

    def caller(self, number: str = "3000") -> str:
        """A caller of `number`; returns its Call-ID once it is in the queue."""
        before = len(re.findall(r"call=\S+ queue=q priority=", self.server.log()))
        self.callers.append(start_sipp(self.tmp_path / f"caller{len(self.callers)}", self.server.target,
                                       "queue_caller.xml", service=number, timeout=60, timeout_error=False))
        match = self.server.wait_for_log(r"call=(\S+) queue=q priority=", count=before + 1)
        return match.group(1)

    def explanation(self, call_id: str) -> dict:
        status, body = call(self.server, "GET", f"/api/calls/{call_id}/explanation")
        assert status == 200, body
        return body

    def close(self) -> str:
        for process in self.callers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        self.agent.stop()
        log = self.server.log()
        self.server.stop()
        return log


def test_a_vip_jumps_four_callers_and_the_api_says_why(tmp_path):
    floor = Floor(tmp_path)
    try:
        floor.caller()
        floor.server.wait_for_log(rf"connected to agent={AGENT}")
        line = [floor.caller() for _ in range(4)]
        vip = floor.caller("3009")
        first = floor.explanation(line[0])
        assert first["position"] == 2 and first["place"].startswith("2nd of 5 in line for q, priority 0")
        assert f"behind {vip} (priority 5 > 0: worth 300s of waiting (60s per level)" in first["place"], first
        mine = floor.explanation(vip)
        assert (mine["position"], mine["priority"], mine["priority_detail"]) == (1, 5, "flow priority 5")
        offer = floor.server.wait_for_log(rf"call={re.escape(vip)} offer agent={AGENT} queue=q: .*; order: (.*)",
                                          timeout=20).group(1)
        assert offer.startswith("1st of 5 in line for q, priority 5") and f"before {line[0]}: priority 5 > 0" in offer
        served = floor.explanation(vip)
        assert served["state"] in ("offered", "connected") and served["order"] == offer
    finally:
        log = floor.close()
    assert "Traceback" not in log
    story = subprocess.run([sys.executable, "-m", "acd.cli", "report", "--root", str(floor.server.root), "--call", vip],
                           capture_output=True, text=True, timeout=30)
    assert story.returncode == 0, story.stderr
    lines = story.stdout.splitlines()
    assert lines[0] == f"call {vip}" and "arrived on trunk" in lines[1]
    assert any("queue q: ENTERQUEUE" in line for line in lines)
    assert any("routing: queued in q, priority 5 (flow priority 5)" in line for line in lines)
    assert any(f"routing: offered to {AGENT}" in line and "order: 1st of 5 in line" in line for line in lines)


def test_a_priority_raised_over_the_api_is_served_next_and_the_others_hear_their_new_place(tmp_path):
    floor = Floor(tmp_path)
    try:
        floor.caller()
        floor.server.wait_for_log(rf"connected to agent={AGENT}")
        line = [floor.caller() for _ in range(3)]
        status, body = call(floor.server, "PATCH", f"/api/calls/{line[-1]}", {"priority": 9})
        assert (status, body) == (200, {"call_id": line[-1], "result": "changed", "position": 1}), body
        floor.server.wait_for_log(rf"call={re.escape(line[0])} waiting queue=q position=2")
        floor.server.wait_for_log(rf"call={re.escape(line[1])} waiting queue=q position=3")
        wait_until(lambda: floor.explanation(line[0])["position"] == 2, 5, "caller 1 second in line")
        offer = floor.server.wait_for_log(rf"call=(\S+) offer agent={AGENT} queue=q: .*; order: 1st of 3",
                                          timeout=20)
        assert offer.group(1) == line[-1]
    finally:
        log = floor.close()
    assert re.search(rf"call={re.escape(line[-1])} steered by API: priority 0 -> 9", log)
