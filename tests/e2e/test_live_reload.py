"""Edits saved while the server runs go live on the next call, over real SIP (SIPp agents and
callers): strategy, wrap-up (measured in seconds from the log), a skill raised without logging in
again, and a new queue answered by its new member; /api/queues and /api/agents show the config in
force and its generation."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from acd.sip.digest import compute_ha1

from .harness import free_port, rtp_base, run_sipp, start_server, start_sipp
from .test_acd_calls import REALM, SippAgents, _time
from .test_api import call

AGENTS = ("2401", "2402")


def agents_yaml(*, strategy: str = "longest-idle", wrap_up: float = 1, skills: dict[str, int] | None = None,
                new_queue: bool = False) -> str:
    skills = skills or {}
    lines = [f"realm: {REALM}", "digest_algorithms: [MD5, SHA-256]", "queues:",
             f"  lt: {{strategy: {strategy}, wrap_up: {wrap_up}, ring_timeout: 5, when_no_agents: join, max_wait: 60}}",
             "  sales: {when_no_agents: refuse}", "  support: {when_no_agents: refuse}",
             "  billing: {when_no_agents: refuse}"]
    if new_queue:
        lines.append("  newq: {when_no_agents: refuse, wrap_up: 0}")
    lines.append("agents:")
    for agent in AGENTS:
        queues = "{lt: 0, newq: 0}" if new_queue and agent == "2402" else "{lt: 0}"
        lines += [f'  "{agent}":', "    password_ha1:",
                  f"      md5: {compute_ha1(agent, REALM, f'pw-{agent}', 'MD5')}",
                  f"      sha256: {compute_ha1(agent, REALM, f'pw-{agent}', 'SHA-256')}",
                  f"    skills: {{english: {skills.get(agent, 2)}}}", f"    queues: {queues}"]
    return "\n".join(lines) + "\n"


def flows(*, new_queue: bool = False) -> dict[str, str]:
    routes = ['  - {number: "3000", flow: to_lt}', '  - {number: "3001", flow: to_lt_expert}']
    files = {
        "ivr_flows/to_lt.yaml": "name: to_lt\nsteps:\n  wait: {queue: lt, on_failure: end}\n  end: {hangup: true}\n",
        "ivr_flows/to_lt_expert.yaml": "name: to_lt_expert\nsteps:\n"
                                       "  wait: {queue: lt, skills: {english: 8}, on_failure: end}\n"
                                       "  end: {hangup: true}\n",
    }
    if new_queue:
        routes.append('  - {number: "3002", flow: to_newq}')
        files["ivr_flows/to_newq.yaml"] = ("name: to_newq\nsteps:\n  wait: {queue: newq, on_failure: end}\n"
                                          "  end: {hangup: true}\n")
    files["dialplans/acd.yaml"] = "routes:\n" + "\n".join(routes) + "\n"
    return files


def save(server, generation: int, files: dict[str, str]) -> None:
    """Write the files as an operator's editor would, then wait for the file watcher's reload."""
    for path, text in files.items():
        (server.root / path).write_text(text)
    server.wait_for_log(rf"config reloaded \(files changed\): generation {generation}\b", timeout=15)


def wrap_up_seconds(log: str, agent: str) -> list[float]:
    """How long each of the agent's wrap-ups lasted, from the state-change log lines."""
    started = None
    spans = []
    for line in log.splitlines():
        if f"agent={agent} state on_call -> wrap_up" in line:
            started = _time(line)
        elif f"agent={agent} state wrap_up -> available" in line and started is not None:
            spans.append(_time(line) - started)
            started = None
    return spans


def queue(server, name: str) -> dict:
    status, queues = call(server, "GET", "/api/queues")
    assert status == 200
    return next(q for q in queues if q["queue"] == name)


def test_saved_edits_apply_to_the_next_call(tmp_path):
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port,
                          extra_files={"conf/agents.yaml": agents_yaml(), **flows()})
    server.http_port = http_port
    server.token = (server.root / "data" / "api.token").read_text().strip()
    sipp_agents = waiting = None
    try:
        sipp_agents = SippAgents(tmp_path / "agents", server.target, list(AGENTS), max_calls=20, timeout=120)
        sipp_agents.login.assert_ok(server)
        for agent in AGENTS:
            server.wait_for_log(rf"agent={agent} feature=login result=logged-in")
        first = run_sipp(tmp_path / "c1", server.target, scenario="queue_caller.xml", service="3000", timeout=30)
        first.assert_ok(server)
        server.wait_for_log(r"state wrap_up -> available \(wrap-up over\)")
        assert re.search(r"offer agent=\d+ queue=lt: \d+ in lt by longest-idle", server.log())

        # Strategy and wrap-up: the next call is routed by fewest-calls and its agent wraps up for 4 s.
        save(server, 2, {"conf/agents.yaml": agents_yaml(strategy="fewest-calls", wrap_up=4)})
        settings = queue(server, "lt")
        assert (settings["strategy"], settings["wrap_up_seconds"]) == ("fewest-calls", 4)
        assert call(server, "GET", "/api/config")[1]["generation"] == 2
        second = run_sipp(tmp_path / "c2", server.target, scenario="queue_caller.xml", service="3000", timeout=30)
        second.assert_ok(server)
        offered = server.wait_for_log(r"offer agent=(\d+) queue=lt: \d+ in lt by fewest-calls").group(1)
        server.wait_for_log(rf"agent={offered} state wrap_up -> available", timeout=15)
        spans = wrap_up_seconds(server.log(), offered)
        assert 3.5 <= spans[-1] <= 5.5, spans

        # A skill raised while a caller who needs it waits: offered at once, no new *45.
        waiting = start_sipp(tmp_path / "c3", server.target, "queue_caller.xml", service="3001", timeout=60)
        caller = server.wait_for_log(r"call=(\S+) waiting queue=lt position=1").group(1)
        logins_before = server.log().count("feature=login")
        assert f"call={caller} offer" not in server.log(), "nobody has english 8 yet"
        save(server, 3, {"conf/agents.yaml": agents_yaml(wrap_up=1, skills={"2401": 9})})
        server.wait_for_log(rf"call={re.escape(caller)} offer agent=2401 queue=lt", timeout=10)
        assert waiting.wait(timeout=30) == 0
        assert server.log().count("feature=login") == logins_before
        agents = {a["id"]: a for a in call(server, "GET", "/api/agents")[1]}
        assert agents["2401"]["skills"] == {"english": 9} and agents["2401"]["state"] != "logged_out"

        # A new queue with a route, and an agent given it: its first call is answered by that member.
        save(server, 4, {"conf/agents.yaml": agents_yaml(new_queue=True), **flows(new_queue=True)})
        assert queue(server, "newq")["members"] == {"2402": 0}
        fourth = run_sipp(tmp_path / "c4", server.target, scenario="queue_caller.xml", service="3002", timeout=30)
        fourth.assert_ok(server)
        assert re.search(r"connected to agent=2402 after [\d.]+s in queue newq", server.log())

        # `acd reload` goes through the API when it is on, and says what applied.
        reloaded = subprocess.run([sys.executable, "-m", "acd.cli", "reload", "--root", str(server.root)],
                                  capture_output=True, text=True, timeout=30)
        assert reloaded.returncode == 0 and "reloaded: generation 5 in force; no change" in reloaded.stdout, \
            reloaded.stderr
    finally:
        if waiting is not None and waiting.poll() is None:
            waiting.kill()
            waiting.wait(timeout=5)
        if sipp_agents:
            sipp_agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    assert "Traceback" not in log and "not configured" not in log
