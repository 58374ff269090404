"""Graceful shutdown over real SIP: `acd serve` gets SIGTERM with calls in every situation (in the
IVR menu, waiting in a queue, ringing an agent who does not answer, bridged to an agent). New
INVITEs are refused 503 with Retry-After while it drains; then every leg gets its BYE or CANCEL,
every call is recorded "server shutdown", and the process exits 0 without its pid file.

No time-of-day dependence: the test config's office hours are open around the clock (write_config)
and the flows used here have no hours at all.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

from .harness import free_port, rtp_base, run_sipp, start_server, start_sipp, wait_until
from .test_acd_calls import REALM, SippAgents, compute_ha1

DRAIN_SECONDS = 2
# Goodbye prompt (at most 4 s) + waiting for the final responses (at most 4 s) + slack for a busy machine.
MARGIN_SECONDS = 15


def agents_yaml() -> str:
    lines = [f"realm: {REALM}", "digest_algorithms: [MD5, SHA-256]", "queues:",
             "  ring: {strategy: longest-idle, ring_timeout: 120, when_no_agents: join, max_wait: 300, "
             "announce_every: 60}",
             "  talk: {strategy: longest-idle, ring_timeout: 30, when_no_agents: join, max_wait: 300}",
             "  sales: {when_no_agents: refuse}", "  support: {when_no_agents: refuse}",
             "  billing: {when_no_agents: refuse}", "agents:"]
    for agent, queue in (("2301", "ring"), ("2302", "talk")):
        lines += [f'  "{agent}":', "    password_ha1:",
                  f"      md5: {compute_ha1(agent, REALM, f'pw-{agent}', 'MD5')}",
                  f"      sha256: {compute_ha1(agent, REALM, f'pw-{agent}', 'SHA-256')}",
                  f"    queues: {{{queue}: 0}}"]
    return "\n".join(lines) + "\n"


def queue_flow(queue: str) -> str:
    return (f"name: to_{queue}\nsteps:\n  wait: {{queue: {queue}, on_failure: busy}}\n"
            "  busy: {play: all_busy, next: end}\n  end: {hangup: true}\n")


MENU_FLOW = """
name: long_menu
steps:
  menu:
    menu: menu_main
    choices: {"1": end}
    timeout: 60
    retries: 1
    on_failure: end
  end: {hangup: true}
"""

FILES = {"conf/agents.yaml": agents_yaml(),
         "dialplans/shutdown.yaml": 'routes:\n  - {number: "3000", flow: to_ring}\n'
                                    '  - {number: "3001", flow: to_talk}\n  - {number: "3998", flow: long_menu}\n',
         "ivr_flows/to_ring.yaml": queue_flow("ring"), "ivr_flows/to_talk.yaml": queue_flow("talk"),
         "ivr_flows/long_menu.yaml": MENU_FLOW}


def start(root, drain_seconds: float):
    return start_server(root / "server", sip_port=free_port(), rtp_base=rtp_base(), extra_files=FILES,
                        serve_args=("--drain-seconds", str(drain_seconds)))


def records(server) -> list[tuple[str, str, str]]:
    with sqlite3.connect(server.root / "data" / "records.db") as db:
        return db.execute("select dialled, outcome, end_reason from calls order by arrived_at").fetchall()


def finish(processes: list[subprocess.Popen], timeout: float) -> list[int | None]:
    """Wait for every SIPp process (up to `timeout` seconds in all); their exit codes."""
    wait_until(lambda: all(p.poll() is not None for p in processes), timeout, "every SIPp peer to finish")
    return [p.returncode for p in processes]


def kill(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_sigterm_drains_then_ends_every_leg_properly_and_records_it(tmp_path):
    """IVR caller, waiting caller, caller whose agent rings, bridged caller and agent: after the
    2 s drain each gets BYE (callers after a goodbye) or CANCEL (the ringing phone); a new INVITE
    during the drain gets 503 + Retry-After; four "server shutdown" records; exit status 0."""
    server = start(tmp_path, DRAIN_SECONDS)
    agents: list[SippAgents] = []
    callers: list[subprocess.Popen] = []
    try:
        agents.append(SippAgents(tmp_path / "ringing", server.target, ["2301"], max_calls=1, timeout=120,
                                 scenario="agent_no_answer.xml"))
        agents.append(SippAgents(tmp_path / "talking", server.target, ["2302"], max_calls=1, timeout=120,
                                 scenario="agent_answers_until_bye.xml"))
        for sipp_agents in agents:
            sipp_agents.login.assert_ok(server)
        server.wait_for_log(r"agent=2301 feature=login result=logged-in")
        server.wait_for_log(r"agent=2302 feature=login result=logged-in")

        callers.append(start_sipp(tmp_path / "bridged", server.target, "queue_caller.xml", service="3001",
                                  timeout=120))
        server.wait_for_log(r"connected to agent=2302")
        callers.append(start_sipp(tmp_path / "ringing-caller", server.target, "queue_caller.xml", service="3000",
                                  timeout=120))
        server.wait_for_log(r"agent=2301 state available -> offered")
        callers.append(start_sipp(tmp_path / "waiting", server.target, "queue_caller.xml", service="3000",
                                  timeout=120))
        server.wait_for_log(r"queue=ring priority=", count=2)
        callers.append(start_sipp(tmp_path / "menu", server.target, "queue_caller.xml", service="3998",
                                  timeout=120))
        server.wait_for_log(r"answered dialled=3998")

        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log(r"shutdown requested \(SIGTERM\): draining 4 calls for up to 2 s; "
                            r"new calls refused with 503")
        refused = run_sipp(tmp_path / "refused", server.target, scenario="expect_503.xml", service="3998",
                           timeout=10)
        refused.assert_ok(server)

        codes = finish(callers + [a.answer for a in agents], DRAIN_SECONDS + MARGIN_SECONDS)
        assert codes == [0] * 6, f"every caller got its BYE, the ringing phone its CANCEL, the agent its BYE: {codes}"
        assert server.process.wait(timeout=MARGIN_SECONDS) == 0
    finally:
        kill(callers)
        for sipp_agents in agents:
            sipp_agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    assert sorted(records(server)) == sorted([("3001", "shutdown", "server shutdown"),
                                              ("3000", "shutdown", "server shutdown"),
                                              ("3000", "shutdown", "server shutdown"),
                                              ("3998", "shutdown", "server shutdown")]), log[-3000:]
    assert "shutdown: 0 calls finished during drain, 4 ended by the server (3 callers, 1 agent offers cancelled, " \
           "1 bridged); exiting" in log
    assert "refused 503: the server is shutting down" in log
    assert "-> logged_out" not in log and "Traceback" not in log
    assert not (server.root / "data" / "acd.pid").exists(), "a clean exit removes the pid file"
    # Started again on the same data: both agents are back, available, with their queues.
    restarted = start(tmp_path, DRAIN_SECONDS)
    try:
        restarted.wait_for_log(r"starting after a clean stop")
        summary = restarted.wait_for_log(r"restored 2 agent\(s\) after a clean stop: (.*)").group(1)
    finally:
        restarted.stop()
    assert summary == "2301 available, 2302 available (was wrap_up)", summary


def test_acd_stop_then_a_second_sigterm_ends_a_long_drain_at_once(tmp_path):
    """SIGHUP still reloads; `acd stop` starts a 600 s drain and waits; a second SIGTERM ends the call in the menu at
    once (BYE, recorded), the server exits 0 and `acd stop` reports it stopped."""
    server = start(tmp_path, 600)
    caller = stopper = None
    try:
        caller = start_sipp(tmp_path / "menu", server.target, "queue_caller.xml", service="3998", timeout=120)
        server.wait_for_log(r"answered dialled=3998")
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log(r"config reloaded \(SIGHUP\)")
        stopper = subprocess.Popen([sys.executable, "-m", "acd.cli", "stop", "--root", str(server.root),
                                    "--timeout", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=server.root)
        server.wait_for_log(r"draining 1 calls for up to 600 s")
        assert caller.poll() is None, "the call goes on while the server drains"
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log(r"shutdown requested again \(SIGTERM\): ending every call at once")
        assert finish([caller], MARGIN_SECONDS) == [0]
        assert server.process.wait(timeout=MARGIN_SECONDS) == 0
        out, err = stopper.communicate(timeout=MARGIN_SECONDS)
    finally:
        kill([p for p in (caller, stopper) if p is not None])
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    assert stopper.returncode == 0, (out, err)
    assert f"the server (pid {server.process.pid}) stopped after" in out
    assert records(server) == [("3998", "shutdown", "server shutdown")], log[-3000:]
