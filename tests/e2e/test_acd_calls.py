"""Callers queue for agents end to end: SIPp agents register with Digest, log in with *45, are
offered callers by INVITE, answer, talk (RTP relayed both ways) and hang up; records checked."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime

import pytest

from acd.sip.digest import compute_ha1

from .harness import LOOPBACK, SCENARIOS, free_port, rtp_base, run_sipp, start_server, start_sipp, wait_until

REALM = "example-acd"


def agents_yaml(agent_ids: list[str], *, wrap_up: float = 1, ring_timeout: float = 5, announce_every: float = 10,
                max_missed_offers: int = 2, second_queue: list[str] = (), survey: bool = False) -> str:
    # SIPp 3.6 answers only the first challenge and knows only MD5: offer MD5 first.
    lines = [f"realm: {REALM}", "digest_algorithms: [MD5, SHA-256]", "queues:",
             f"  loadtest: {{strategy: longest-idle, wrap_up: {wrap_up}, ring_timeout: {ring_timeout}, "
             f"when_no_agents: join, announce_every: {announce_every}, max_wait: 150, "
             f"max_missed_offers: {max_missed_offers}{', survey_flow: survey' if survey else ''}}}",
             "  loadtest2: {when_no_agents: join}",
             "  sales: {when_no_agents: refuse}", "  support: {when_no_agents: refuse}",
             "  billing: {when_no_agents: refuse}", "agents:"]
    for agent in agent_ids:
        lines += [f'  "{agent}":', "    password_ha1:",
                  f"      md5: {compute_ha1(agent, REALM, f'pw-{agent}', 'MD5')}",
                  f"      sha256: {compute_ha1(agent, REALM, f'pw-{agent}', 'SHA-256')}",
                  "    queues: {loadtest2: 0}" if agent in second_queue else "    queues: {loadtest: 0}"]
    return "\n".join(lines) + "\n"


QUEUE_FLOW = """
name: queue_direct
steps:
  wait: {queue: loadtest, on_failure: busy}
  busy: {play: all_busy, next: end}
  end: {hangup: true}
"""
GOODBYE_FLOW = """
name: goodbye_only
steps:
  bye: {play: goodbye, next: end, event: transferred-to-goodbye}
  end: {hangup: true}
"""


class SippAgents:
    """One SIPp process answering offers for every agent, plus the login run that registers them."""

    def __init__(self, workdir, server_target: str, agent_ids: list[str], *, max_calls: int, timeout: int,
                 scenario: str = "agent_answers.xml", keys: dict[str, str] | None = None) -> None:
        self.port = free_port(both=False)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.answer = subprocess.Popen(
            ["sipp", server_target, "-sf", str(SCENARIOS / scenario) if "/" not in scenario else scenario, "-i", LOOPBACK, "-p", str(self.port),
             "-mp", str(free_port(both=False)), "-m", str(max_calls), "-nostdin", "-timeout", f"{timeout}s",
             "-trace_err", "-error_file", str(workdir / "agents_errors.log"),
             *[arg for key, value in (keys or {}).items() for arg in ("-key", key, value)]],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        csv = workdir / "agents.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(f"{a};[authentication username={a} password=pw-{a}];{self.port}\n"
                                                for a in agent_ids))
        self.login = run_sipp(workdir / "login", server_target, "-inf", str(csv), scenario="agents_login.xml",
                              calls=len(agent_ids), rate=20, limit=len(agent_ids), timeout=30)

    def stop(self) -> None:
        if self.answer.poll() is None:
            self.answer.terminate()
            try:
                self.answer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.answer.kill()
                self.answer.wait(timeout=5)


def _time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def agent_intervals(log: str) -> dict[str, list[tuple[float, float, str]]]:
    """Per agent, (connected, ended, call) from the server log: the record of who talked to whom."""
    connected: dict[str, tuple[float, str]] = {}
    ended: dict[str, float] = {}
    for line in log.splitlines():
        if m := re.search(r"call=(\S+) connected to agent=(\S+)", line):
            connected[m.group(1)] = (_time(line), m.group(2))
        elif m := re.search(r"call=(\S+) ended reason=", line):
            ended[m.group(1)] = _time(line)
    intervals: dict[str, list[tuple[float, float, str]]] = {}
    for call, (start, agent) in connected.items():
        intervals.setdefault(agent, []).append((start, ended.get(call, float("inf")), call))
    return intervals


def every_call_ended(log: str) -> bool:
    """Every call from a SIPp caller (555...) has its end record in the log."""
    return set(re.findall(r"call=(\S+) INVITE from=sip:555", log)) <= set(re.findall(r"call=(\S+) ended reason=", log))


def assert_no_double_booking(intervals) -> None:
    for agent, calls in intervals.items():
        calls.sort()
        for (start_a, end_a, call_a), (start_b, _, call_b) in zip(calls, calls[1:]):
            assert start_b >= end_a - 0.05, f"agent {agent} held {call_a} and {call_b} at once"


@pytest.fixture()
def acd_root(tmp_path):
    return tmp_path


def start_acd_server(root, agent_ids: list[str], trunk_outbound: str | None = None, http_port: int = 0, **queue):
    files = {"conf/agents.yaml": agents_yaml(agent_ids, **queue),
             "dialplans/acd.yaml": 'routes:\n  - {number: "3000", flow: queue_direct}\n'
                                   '  - {number: "3999", flow: goodbye_only}\n',
             "ivr_flows/queue_direct.yaml": QUEUE_FLOW, "ivr_flows/goodbye_only.yaml": GOODBYE_FLOW}
    return start_server(root / "server", sip_port=free_port(), rtp_base=rtp_base(),
                        extra_files=files, trunk_outbound=trunk_outbound, http_port=http_port)


def test_callers_reach_sipp_agents_and_every_call_is_recorded(acd_root):
    """3 agents log in by *45; 6 callers queue; each is connected to an agent who hangs up after 3 s."""
    agents = ["2001", "2002", "2003"]
    server = start_acd_server(acd_root, agents)
    sipp_agents = None
    try:
        sipp_agents = SippAgents(acd_root / "agents", server.target, agents, max_calls=6, timeout=60)
        sipp_agents.login.assert_ok(server)
        for agent in agents:
            server.wait_for_log(rf"agent={agent} feature=login result=logged-in")
        callers = run_sipp(acd_root / "callers", server.target, scenario="queue_caller.xml", service="3000",
                           calls=6, rate=3, limit=6, timeout=60)
        callers.assert_ok(server)
        server.wait_for_log(r"ended reason='agent hung up'", count=6)  # logged once the caller's 200 to our BYE is in
    finally:
        if sipp_agents:
            sipp_agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    connected = re.findall(r"call=(\S+) connected to agent=(\S+)", log)
    assert len(connected) == 6, log[-3000:]
    assert {agent for _, agent in connected} <= set(agents)
    assert_no_double_booking(agent_intervals(log))
    assert len(re.findall(r"ended reason='agent hung up'", log)) == 6


@pytest.mark.serial  # a minute of 200 callers: CPU a neighbouring test would feel
def test_load_200_callers_over_60_seconds_against_20_agents(acd_root):
    """200 callers in 60 s (plus 20 who abandon after 1.5 s) against 20 SIPp agents talking 3 s:
    every call is answered by an agent or deliberately abandoned, none is lost, no agent is double-booked."""
    agents = [str(2100 + n) for n in range(20)]
    server = start_acd_server(acd_root, agents)
    sipp_agents = None
    results = {}
    try:
        sipp_agents = SippAgents(acd_root / "agents", server.target, agents, max_calls=10_000, timeout=150)
        sipp_agents.login.assert_ok(server)
        abandoners = start_sipp(acd_root, server.target, "queue_abandon.xml", calls=20, rate=1, timeout=120,
                                args=("-rp", "3000"))
        results["callers"] = run_sipp(acd_root / "callers", server.target, scenario="queue_caller.xml",
                                      service="3000", calls=200, rate=200 / 60, limit=200, timeout=150)
        results["abandoners"] = abandoners.wait(timeout=130)
        wait_until(lambda: every_call_ended(server.log()), 15, "an end record for every call that came in",
                   server=server)
    finally:
        if sipp_agents:
            sipp_agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    results["callers"].assert_ok(server)
    assert results["abandoners"] == 0, "every abandoning caller's scenario completed"
    invited = set(re.findall(r"call=(\S+) INVITE from=sip:555", log))
    ended = set(re.findall(r"call=(\S+) ended reason=", log))
    connected = dict(re.findall(r"call=(\S+) connected to agent=(\S+)", log))
    assert len(invited) == 220
    assert invited <= ended, f"lost calls (no end record): {sorted(invited - ended)[:5]}"
    unanswered = invited - set(connected)
    abandoned = set(re.findall(r"call=(\S+) ended reason='caller hung up'", log))
    assert unanswered <= abandoned, f"calls neither answered nor abandoned: {sorted(unanswered - abandoned)[:5]}"
    assert len(connected) >= 200, "every patient caller reached an agent"
    assert set(connected.values()) <= set(agents)
    assert_no_double_booking(agent_intervals(log))
    assert "internal error" not in log and "Traceback" not in log


def test_queue_positions_are_announced_as_the_queue_moves_and_abandoners_leave_it(acd_root):
    """One agent, three patient callers and one who gives up: the last patient caller hears position 2,
    then 1; the abandoner leaves the queue without ever being offered; all three others are served."""
    server = start_acd_server(acd_root, ["2201"], announce_every=5)
    sipp_agents = None
    try:
        sipp_agents = SippAgents(acd_root / "agents", server.target, ["2201"], max_calls=3, timeout=60)
        sipp_agents.login.assert_ok(server)
        patient = start_sipp(acd_root, server.target, "queue_caller.xml", calls=3, rate=10)
        server.wait_for_log(r"waiting queue=loadtest position=2")  # all three patient callers are in before
        abandoner = run_sipp(acd_root / "abandon", server.target, scenario="queue_abandon.xml", service="3000",
                             calls=1, timeout=30)
        assert patient.wait(timeout=60) == 0
        abandoner.assert_ok(server)
        server.wait_for_log(r"ended reason='agent hung up'", count=3)
    finally:
        if sipp_agents:
            sipp_agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    callers = re.findall(r"call=(\S+) INVITE from=sip:555", log)
    patient_calls, abandoner_call = callers[:3], callers[3]
    last = patient_calls[-1]
    positions = [int(p) for p in re.findall(rf"call={re.escape(last)} announce position=(\d+)", log)]
    assert positions[:2] == [2, 1], positions
    assert re.search(rf"call={re.escape(abandoner_call)} ended reason='caller hung up'", log)
    assert not re.search(rf"call={re.escape(abandoner_call)} (offer|connected)", log), "abandoner never offered"
    assert all(re.search(rf"call={re.escape(c)} connected to agent=2201", log) for c in patient_calls)
    assert_no_double_booking(agent_intervals(log))


def test_ring_no_answer_goes_to_the_next_agent_and_pauses_the_first(acd_root):
    """Agent 2301 (longest idle) lets it ring: after the 3 s ring timeout the offer is CANCELled,
    2301 is auto-paused, and 2302 gets and answers the call."""
    server = start_acd_server(acd_root, ["2301", "2302"], ring_timeout=3, max_missed_offers=1)
    silent = answering = None
    try:
        silent = SippAgents(acd_root / "silent", server.target, ["2301"], max_calls=1, timeout=60,
                            scenario="agent_no_answer.xml")
        silent.login.assert_ok(server)
        server.wait_for_log(r"agent=2301 feature=login result=logged-in")  # idle before 2302 logs in
        answering = SippAgents(acd_root / "answering", server.target, ["2302"], max_calls=1, timeout=60)
        answering.login.assert_ok(server)
        run_sipp(acd_root / "caller", server.target, scenario="queue_caller.xml", service="3000", calls=1,
                 timeout=40).assert_ok(server)
        assert silent.answer.wait(timeout=20) == 0, "the ringing phone saw CANCEL and answered 487 properly"
    finally:
        for group in (silent, answering):
            if group:
                group.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    call = re.findall(r"call=(\S+) INVITE from=sip:555", log)[0]
    assert re.search(rf"call={re.escape(call)} offer to agent=2301", log)
    assert re.search(rf"call={re.escape(call)} offer to agent=2301 withdrawn: ring-no-answer|"
                     rf"call={re.escape(call)} offer to agent=2301 withdrawn", log)
    assert re.search(r"agent=2301 state \S+ -> paused \(auto-pause", log), log[-2000:]
    assert re.search(rf"call={re.escape(call)} connected to agent=2302", log)


def test_caller_who_hangs_up_while_the_agent_rings_cancels_the_offer(acd_root):
    """The only agent's phone is ringing when the caller gives up: the offer is CANCELled (487)."""
    server = start_acd_server(acd_root, ["2401"], ring_timeout=10)
    silent = None
    try:
        silent = SippAgents(acd_root / "silent", server.target, ["2401"], max_calls=1, timeout=40,
                            scenario="agent_no_answer.xml")
        silent.login.assert_ok(server)
        run_sipp(acd_root / "abandon", server.target, scenario="queue_abandon.xml", service="3000", calls=1,
                 timeout=30).assert_ok(server)
        assert silent.answer.wait(timeout=20) == 0, "the ringing phone got CANCEL"
    finally:
        if silent:
            silent.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    call = re.findall(r"call=(\S+) INVITE from=sip:555", log)[0]
    assert re.search(rf"call={re.escape(call)} ended reason='caller hung up'", log)
    assert re.search(rf"call={re.escape(call)} agent=2401 leg ended: caller-abandoned", log), log[-2000:]


def test_agent_hold_plays_music_to_the_caller_then_resumes(acd_root):
    """The agent's phone re-INVITEs sendonly: the caller is on hold with music; sendrecv resumes."""
    server = start_acd_server(acd_root, ["2601"])
    agents = None
    try:
        agents = SippAgents(acd_root / "agents", server.target, ["2601"], max_calls=1, timeout=40,
                            scenario="agent_holds.xml")
        agents.login.assert_ok(server)
        run_sipp(acd_root / "caller", server.target, scenario="queue_caller.xml", service="3000", calls=1,
                 timeout=40).assert_ok(server)
        assert agents.answer.wait(timeout=20) == 0
        server.wait_for_log(r"ended reason='agent hung up'")  # logged once the caller's 200 to our BYE is in
    finally:
        if agents:
            agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    call = re.findall(r"call=(\S+) INVITE from=sip:555", log)[0]
    hold = re.search(rf"(\S+ \S+) INFO acd.call call={re.escape(call)} on hold \(music\)", log)
    resume = re.search(rf"(\S+ \S+) INFO acd.call call={re.escape(call)} off hold \(talking again\)", log)
    assert hold and resume, log[-2500:]
    assert 1.5 < _time(resume.group(1)) - _time(hold.group(1)) < 3.5
    assert re.search(rf"call={re.escape(call)} ended reason='agent hung up'", log)


@pytest.mark.parametrize("target,expect", [
    ("loadtest2", r"call={call} connected to agent=2702"),
    ("3999", r"call={call} event=transferred-to-goodbye"),
])
def test_agent_blind_transfer_to_a_queue_or_a_number(acd_root, target, expect):
    """The agent REFERs the caller to another queue (answered there by another agent) or to a number
    (its flow runs for the caller); NOTIFY 200 reports it and our BYE ends the first agent's leg."""
    server = start_acd_server(acd_root, ["2701", "2702"], second_queue=["2702"])
    first = second = None
    try:
        first = SippAgents(acd_root / "first", server.target, ["2701"], max_calls=1, timeout=40,
                           scenario="agent_transfers.xml", keys={"transfer_to": target})
        first.login.assert_ok(server)
        second = SippAgents(acd_root / "second", server.target, ["2702"], max_calls=1, timeout=40)
        second.login.assert_ok(server)
        scenario = "queue_caller.xml"
        run_sipp(acd_root / "caller", server.target, scenario=scenario, service="3000", calls=1,
                 timeout=40).assert_ok(server)
        assert first.answer.wait(timeout=20) == 0, "the transferring agent saw 202, NOTIFY and our BYE"
    finally:
        for group in (first, second):
            if group:
                group.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    call = re.findall(r"call=(\S+) INVITE from=sip:555", log)[0]
    assert re.search(rf"call={re.escape(call)} connected to agent=2701", log)
    assert re.search(expect.format(call=re.escape(call)), log), log[-2500:]
    assert re.search(rf"call={re.escape(call)} agent=2701 leg ended: transferred the caller to {target}", log)


def test_callback_keeps_the_place_and_calls_the_customer_back_when_an_agent_frees_up(acd_root):
    """No agent is free; the caller presses * and is hung up on with a promise. When agent 2901 logs
    in, the agent is offered the callback, answers, and the server dials the customer through the
    trunk, greets them and bridges them to the agent."""
    customer_port = free_port(both=False)
    talking = (SCENARIOS / "agent_answers.xml").read_text()
    (acd_root / "agent_10s.xml").write_text(talking.replace('timeout="3000"', 'timeout="10000"'))
    (acd_root / "customer_6s.xml").write_text(talking.replace('timeout="3000"', 'timeout="6000"'))
    server = start_acd_server(acd_root, ["2901"], trunk_outbound=f"{LOOPBACK}:{customer_port}")
    customer = agents = None
    try:
        customer = subprocess.Popen(  # listens on the trunk's outbound port, so not start_sipp
            ["sipp", server.target, "-sf", str(acd_root / "customer_6s.xml"), "-i", LOOPBACK, "-p",
             str(customer_port), "-mp", str(free_port(both=False)), "-m", "1", "-nostdin", "-timeout", "60s"],
            cwd=acd_root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        run_sipp(acd_root / "caller", server.target, scenario="queue_callback.xml", service="3000", calls=1,
                 timeout=30).assert_ok(server)
        call = re.findall(r"call=(\S+) INVITE from=sip:555", server.log())[0]
        server.wait_for_log(rf"call={re.escape(call)} callback requested to 5551")
        server.wait_for_log(rf"call={re.escape(call)} ended reason='callback requested'")
        agents = SippAgents(acd_root / "agents", server.target, ["2901"], max_calls=1, timeout=40,
                            scenario=str(acd_root / "agent_10s.xml"))
        agents.login.assert_ok(server)
        server.wait_for_log(rf"call={re.escape(call)} callback answered by 5551", timeout=15)
        server.wait_for_log(rf"call={re.escape(call)} connected to agent=2901 \(callback to 5551\)", timeout=15)
        assert customer.wait(timeout=20) == 0, "the customer's phone was called, answered and hung up cleanly"
        server.wait_for_log(rf"call={re.escape(call)} agent=2901 leg ended: customer hung up", timeout=10)
    finally:
        for process in (customer,):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        if agents:
            agents.stop()
        server.stop()


def test_caller_answers_the_survey_when_the_agent_hangs_up_first(acd_root):
    """The agent ends the call first: the caller goes to the queue's survey flow, answers 4 and 5;
    the answers, and the wrap-up code the agent sets through the API, land in the call record."""
    import json
    import socket as socket_module
    import sqlite3
    import urllib.request

    http_port = free_port(kind=socket_module.SOCK_STREAM, both=False)
    server = start_acd_server(acd_root, ["3001"], survey=True, http_port=http_port)
    agents = None
    try:
        agents = SippAgents(acd_root / "agents", server.target, ["3001"], max_calls=1, timeout=40)
        agents.login.assert_ok(server)
        run_sipp(acd_root / "caller", server.target, scenario="queue_survey.xml", service="3000", calls=1,
                 timeout=45).assert_ok(server)
        call = re.findall(r"call=(\S+) INVITE from=sip:555", server.log())[0]
        server.wait_for_log(rf"call={re.escape(call)} ended reason='hangup step end'")
        token = (server.root / "data" / "api.token").read_text().strip()
        request = urllib.request.Request(f"http://{LOOPBACK}:{http_port}/api/agents/3001/disposition", method="POST",
                                         data=json.dumps({"code": "resolved"}).encode(),
                                         headers={"Authorization": f"Bearer {token}"})
        assert json.loads(urllib.request.urlopen(request, timeout=5).read())["result"] == "disposition-set"
    finally:
        if agents:
            agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    assert re.search(rf"call={re.escape(call)} agent=3001 hung up first: survey survey", log)
    assert re.search(rf"call={re.escape(call)} collect=q1 into=q1 digits=4 length=1", log), log[-3000:]
    assert re.search(rf"call={re.escape(call)} collect=q2 into=q2 digits=5 length=1", log)
    assert re.search(rf"call={re.escape(call)} event=survey-done", log)
    assert re.search(rf"call={re.escape(call)} ended reason='hangup step end'", log)
    with sqlite3.connect(server.root / "data" / "records.db") as db:
        survey, disposition, agent = db.execute("select survey, disposition, agent from calls where call_id = ?",
                                                (call,)).fetchone()
    assert json.loads(survey) == {"q1": 4, "q2": 5} and disposition == "resolved" and agent == "3001"


class EventStream:
    """Reads a server-sent event stream in a thread; events are (type, data dict)."""

    def __init__(self, url: str) -> None:
        import json
        import threading
        import urllib.request

        self.events: list[tuple[str, dict]] = []
        self.response = urllib.request.urlopen(url, timeout=30)

        def read() -> None:
            kind = "message"
            try:
                for raw in self.response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((kind, json.loads(line[6:])))
            except (OSError, ValueError, AttributeError):  # closed under us at the end of the test
                return

        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()

    def wait_for(self, kind: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event_kind, data in self.events:
                if event_kind == kind:
                    return data
            time.sleep(0.05)
        raise AssertionError(f"no {kind!r} event in {self.events}")

    def close(self) -> None:
        self.response.close()


def test_agent_event_stream_pops_the_callers_context_on_offer(acd_root):
    """The agent's SSE stream (the screen pop) gets their state change on login, then the offer with
    the caller's context and the routing explanation, then 'connected'."""
    import socket as socket_module
    http_port = free_port(kind=socket_module.SOCK_STREAM, both=False)
    server = start_acd_server(acd_root, ["3101"], http_port=http_port)
    token = (server.root / "data" / "api.token").read_text().strip()
    stream = EventStream(f"http://{LOOPBACK}:{http_port}/api/events/agent-3101?token={token}")
    agents = None
    try:
        agents = SippAgents(acd_root / "agents", server.target, ["3101"], max_calls=1, timeout=40)
        agents.login.assert_ok(server)
        assert stream.wait_for("agent-state")["state"] == "available"
        run_sipp(acd_root / "caller", server.target, scenario="queue_caller.xml", service="3000", calls=1,
                 timeout=30).assert_ok(server)
        offer = stream.wait_for("offer")
        stream.wait_for("connected")
    finally:
        stream.close()
        if agents:
            agents.stop()
        server.stop()
    assert offer["queue"] == "loadtest"
    assert offer["context"]["caller_id"] == "5551" and offer["context"]["caller_name"] == "Queue Caller"
    assert "3101" in offer["explanation"]


def test_acd_report_matches_a_scripted_set_of_calls(acd_root):
    """Three callers served one after another by one agent (3 s talk, 1 s wrap-up), one who abandons
    while queued, one who hangs up inside the IVR: `acd report` shows exactly those figures."""
    import csv
    import sys

    from .harness import SIPP_PCAPS

    server = start_acd_server(acd_root, ["3401"])
    started = time.time() - 1
    agents = None
    try:
        agents = SippAgents(acd_root / "agents", server.target, ["3401"], max_calls=3, timeout=60)
        agents.login.assert_ok(server)
        patient = start_sipp(acd_root, server.target, "queue_caller.xml", calls=3, rate=10)
        server.wait_for_log(r"waiting queue=loadtest position=2")  # all three patient callers are in before
        run_sipp(acd_root / "abandon", server.target, scenario="queue_abandon.xml", service="3000", calls=1,
                 timeout=30).assert_ok(server)
        run_sipp(acd_root / "ivr", server.target, scenario="ivr_dtmf.xml", service="1000",
                 keys={"rtp_port": "4000", "dtmf_pcap": str(SIPP_PCAPS / "dtmf_2833_2.pcap")},
                 args_set={"dtmf_after_ms": "4000"}).assert_ok(server)
        assert patient.wait(timeout=60) == 0
        server.wait_for_log(r"agent=3401 state wrap_up -> ", count=3)  # the last wrap-up ends
    finally:
        if agents:
            agents.stop()
        server.stop()
    report_csv = acd_root / "report.csv"
    done = subprocess.run([sys.executable, "-m", "acd.cli", "report", "--root", str(server.root), "--since",
                           str(started), "--csv", str(report_csv)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(report_csv.open()))

    def value(section: str, name: str, metric: str, detail: str = "") -> float:
        found = [r for r in rows if r["section"] == section and r["name"] == name and r["metric"] == metric
                 and (not detail or r["detail"] == detail)]
        assert found, f"no {section}/{name}/{metric} in the report:\n{done.stdout}"
        return float(found[0]["value"])

    assert value("queue", "loadtest", "offered") == 4
    assert value("queue", "loadtest", "answered") == 3
    assert value("queue", "loadtest", "abandoned") == 1
    assert value("queue", "loadtest", "abandon_rate") == 0.25
    assert 3.0 <= value("queue", "loadtest", "aht_seconds") <= 4.6, "3 s talk + up to 1 s wrap-up"
    assert 2.5 <= value("queue", "loadtest", "asa_seconds") <= 7.0, "waits of ~0.3, ~4.5 and ~9 s"
    assert value("agent", "3401", "calls") == 3
    assert value("ivr_drop_off", "main", "hangups", "support") == 1
    assert "IVR containment: 0 of 5 answered calls" in done.stdout, "agents' *45 calls are not customer calls"
    assert "loadtest" in done.stdout and "3401" in done.stdout


def test_sigkill_mid_call_leaves_every_call_recorded_as_interrupted_and_no_agent_stuck(acd_root):
    """SIGKILL while one caller talks to the agent and another waits: after a restart on the same data,
    both calls have a record ended as 'interrupted' and the agent is back available, not left busy."""
    import json
    import signal
    import socket as socket_module
    import sqlite3
    import urllib.request
    from contextlib import closing

    http_port = free_port(kind=socket_module.SOCK_STREAM, both=False)
    server = start_acd_server(acd_root, ["3951"], http_port=http_port)

    def both_calls_recorded() -> bool:
        with closing(sqlite3.connect(server.root / "data" / "records.db")) as db:
            return db.execute("select count(*), count(connected_at) from calls where queued_at is not null"
                              ).fetchone() == (2, 1)

    talking = (SCENARIOS / "agent_answers.xml").read_text().replace('timeout="3000"', 'timeout="30000"')
    (acd_root / "agent_30s.xml").write_text(talking)
    agents = callers = None
    try:
        agents = SippAgents(acd_root / "agents", server.target, ["3951"], max_calls=1, timeout=60,
                            scenario=str(acd_root / "agent_30s.xml"))
        agents.login.assert_ok(server)
        callers = start_sipp(acd_root, server.target, "queue_caller.xml", calls=2, rate=10, timeout=20,
                             timeout_error=False)
        server.wait_for_log(r"connected to agent=3951")
        server.wait_for_log(r"waiting queue=loadtest position=1")
        wait_until(both_calls_recorded, 10, "both calls in the records, one connected", server=server)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        for process in (callers,):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        if agents:
            agents.stop()
    log_before = server.log()
    restarted = start_server(server.root, sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port,
                             extra_files={"conf/agents.yaml": (server.root / "conf" / "agents.yaml").read_text()})
    try:
        restarted.wait_for_log(r"records: 2 interrupted call\(s\) closed")
        restarted.wait_for_log(r"restored 1 agent\(s\) after a crash: 3951 available \(was on_call\)")
        token = (restarted.root / "data" / "api.token").read_text().strip()
        request = urllib.request.Request(f"http://{LOOPBACK}:{http_port}/api/agents",
                                         headers={"Authorization": f"Bearer {token}"})
        agents_now = json.loads(urllib.request.urlopen(request, timeout=5).read())
    finally:
        restarted.stop()
    calls = set(re.findall(r"call=(\S+) INVITE from=sip:555", log_before))
    with sqlite3.connect(server.root / "data" / "records.db") as db:
        rows = dict(db.execute("select call_id, outcome from calls where call_id like '%'").fetchall())
        last_state = db.execute("select state from agent_states where agent_id = '3951' order by id desc limit 1").fetchone()
    assert len(calls) == 2 and all(rows.get(call) == "interrupted" for call in calls), rows
    assert last_state == ("available",)
    assert [a["state"] for a in agents_now if a["id"] == "3951"] == ["available"]
