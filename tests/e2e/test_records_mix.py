"""Numbers a supervisor can trust, over real SIP: scripted mixes of every kind of call, then
`acd report` (subprocess), `/metrics`, `/api/queues`, `/api/agents` and the records agree call by
call and counter by counter, and `acd report --check` exits 0.

The kinds: ring-no-answer then answered by a second agent, abandoned while the agent's phone
rings, overflow to another queue's agent, a callback the customer's line refuses (callback not
reached); blind transfer to another queue, post-call survey, abandoned in the queue after a long
wait. (Answered, abandoned in queue and callback answered: test_records_reconcile.py.)
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections import Counter

from acd.report import wrap_ups
from acd.sip.digest import compute_ha1

from .harness import LOOPBACK, SCENARIOS, free_port, rtp_base, run_sipp, start_server, start_sipp
from .mix_figures import Figures, read_figures
from .test_acd_calls import SippAgents

REALM = "example-acd"
QUEUE_FLOW = "name: {flow}\nsteps:\n  wait: {{queue: {queue}, on_failure: busy}}\n" \
             "  busy: {{play: all_busy, next: end}}\n  end: {{hangup: true}}\n"
NUMBERS = {"3000": "front", "3001": "home", "3002": "cbq", "3003": "surveyq", "3004": "lonely"}
QUEUES = """queues:
  front: {ring_timeout: 3, wrap_up: 1, max_missed_offers: 0, when_no_agents: join, max_wait: 60}
  home:
    when_no_agents: join
    wrap_up: 1
    overflow:
      - {after: 2, add_queues: [backup]}
  backup: {wrap_up: 1, when_no_agents: join}
  cbq: {wrap_up: 1, when_no_agents: join}
  sales: {wrap_up: 1, when_no_agents: join}
  surveyq: {wrap_up: 1, when_no_agents: join, survey_flow: survey}
  lonely: {when_no_agents: join}
  support: {when_no_agents: refuse}
  billing: {when_no_agents: refuse}
"""


def mix_config(memberships: dict[str, list[str]]) -> dict[str, str]:
    """conf/agents.yaml (agent id -> queues), a flow per queue and the dialplan of `NUMBERS`."""
    lines = [f"realm: {REALM}", "digest_algorithms: [MD5, SHA-256]", QUEUES.rstrip(), "agents:"]
    for agent, queues in memberships.items():
        lines += [f'  "{agent}":', "    password_ha1:",
                  f"      md5: {compute_ha1(agent, REALM, f'pw-{agent}', 'MD5')}",
                  f"      sha256: {compute_ha1(agent, REALM, f'pw-{agent}', 'SHA-256')}",
                  "    queues: {" + ", ".join(f"{q}: 0" for q in queues) + "}"]
    files = {"conf/agents.yaml": "\n".join(lines) + "\n",
             "dialplans/acd.yaml": "routes:\n" + "".join(f'  - {{number: "{n}", flow: queue_{q}}}\n'
                                                         for n, q in NUMBERS.items())}
    files.update({f"ivr_flows/queue_{q}.yaml": QUEUE_FLOW.format(flow=f"queue_{q}", queue=q) for q in NUMBERS.values()})
    return files


def start_mix_server(root, memberships: dict[str, list[str]], *, trunk_outbound: str | None = None):
    """The server on free ports with the mix's queues; returns (server, http port)."""
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(root / "server", sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port,
                          extra_files=mix_config(memberships), trunk_outbound=trunk_outbound)
    return server, http_port


def stop_all(*processes: subprocess.Popen | SippAgents | None) -> None:
    """Stop SIPp groups and processes still running (by their own handle)."""
    for process in processes:
        if isinstance(process, SippAgents):
            process.stop()
        elif process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def dump(figures: Figures) -> str:
    """The figures, for a failing assertion's message."""
    return (f"\n--check: {figures.check.stdout}{figures.check.stderr}\nreport:\n{figures.report_text}\n"
            f"queues: {figures.queues}\nagents: {figures.agents}\ncalls by result: {figures.calls_by_result()}\n"
            "calls:\n" + "\n".join(f"  {c['call_id'][:12]} queue={c['queue']} served={c['served_queue']} "
                                   f"agent={c['agent']} outcome={c['outcome']} talk={c['talk_seconds']} "
                                   f"wrap={c['wrap_up_seconds']}" for c in figures.calls)
            + "\nqueue_log:\n" + "\n".join(f"  {r['call_id'][:12]} {r['queue']} {r['agent']} {r['event']} "
                                           f"{r['data1']} {r['data2']} {r['data3']}" for r in figures.queue_log))


def assert_figures_agree(figures: Figures, calls: list[tuple[str, str, str | None]],
                         queues: dict[str, tuple[int, int, int, int]], live_queues: dict[str, tuple[int, int, int]],
                         handled: dict[str, int]) -> None:
    """`calls`: (queue entered, outcome, agent) of each call in arrival order. `queues`: the
    report's (offered, answered, abandoned, callbacks), which /metrics must show too (answered,
    abandoned, callbacks: where the call was served). `live_queues`: /api/queues (offered, answered,
    abandoned): answered where the call entered last, abandoned after the 5-s grace only (see
    acd/reconcile.py). `handled`: calls per agent, in the report and in /api/agents; the report's
    talk + wrap-up of each agent is the records' (the talk of the calls the agent ended, the talk
    before each blind transfer from the queue log (the CDR follows the caller), and each of the
    agent's own wrap-ups from the agent state history)."""
    why = dump(figures)
    assert figures.check.returncode == 0 and "records and server agree" in figures.check.stdout, why
    assert [(c["queue"], c["outcome"], c["agent"]) for c in figures.calls] == calls, why
    outcomes = dict(Counter(outcome for _, outcome, _ in calls))
    assert {o: figures.report_value("calls", "outcome", "calls", o) for o in outcomes} == outcomes, why
    assert figures.calls_by_result() == outcomes, why
    assert figures.report_value("calls", "", "calls") == len(calls), why
    for queue, (offered, answered, abandoned, callbacks) in queues.items():
        report = tuple(int(figures.report_value("queue", queue, metric))
                       for metric in ("offered", "answered", "abandoned", "callbacks"))
        assert report == (offered, answered, abandoned, callbacks), f"report, queue {queue}" + why
        metrics = tuple(int(figures.metric(f"acd_queue_{kind}_total", queue=queue))
                        for kind in ("answered", "abandoned", "callbacks"))
        assert metrics == (answered, abandoned, callbacks), f"/metrics, queue {queue}" + why
        live = figures.queues[queue]
        assert (live["offered"], live["answered"], live["abandoned"]) == live_queues[queue], f"/api/queues {queue}" + why
    for agent, count in handled.items():
        assert figures.report_value("agent", agent, "calls") == count == figures.agents[agent]["calls_handled"], \
            f"agent {agent}" + why
        talked = [c for c in figures.calls if c["agent"] == agent and c["connected_at"] is not None
                  and c["outcome"] != "callback_failed"]
        transfers = {r["call_id"]: float(r["data3"]) for r in figures.queue_log
                     if r["agent"] == agent and r["event"] == "TRANSFER"}
        finished = {c["call_id"] for c in talked} | set(transfers)
        wraps = [seconds for (call, who), seconds in wrap_ups(figures.agent_states, float("inf")).items()
                 if who == agent and call in finished]
        recorded = sum(c["talk_seconds"] or 0 for c in talked) + sum(transfers.values()) + sum(wraps)
        talked += list(transfers)
        reported = figures.report_value("agent", agent, "talk_seconds") + figures.report_value(
            "agent", agent, "wrap_up_seconds")
        assert abs(reported - recorded) < 1.0 * max(1, len(talked)), f"agent {agent} handle time" + why
        if count:
            assert abs(figures.report_value("agent", agent, "aht_seconds") - reported / count) < 1e-6, why


def test_ring_no_answer_abandon_while_ringing_overflow_and_callback_not_reached_agree(tmp_path):
    """Agent 3601 lets it ring; 3602 answers the re-offered call; a caller hangs up while 3601's
    phone rings; a caller of `home` overflows after 2 s to `backup`'s agent 3603; agent 3604 takes
    a callback whose customer line answers 486."""
    silent, answering, callback_agent, overflow_agent = "3601", "3602", "3604", "3603"
    customer_port = free_port(both=False)
    server, http_port = start_mix_server(tmp_path, {silent: ["front"], answering: ["front"],
                                                    overflow_agent: ["backup"], callback_agent: ["cbq"]},
                                         trunk_outbound=f"{LOOPBACK}:{customer_port}")
    customer = ringing = agents = patient = overflowing = None
    try:
        customer = subprocess.Popen(  # our trunk's far end: refuses the call back with 486
            ["sipp", server.target, "-sf", str(SCENARIOS / "customer_busy.xml"), "-i", LOOPBACK, "-p",
             str(customer_port), "-mp", str(free_port(both=False)), "-m", "1", "-nostdin", "-timeout", "40s"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        run_sipp(tmp_path / "callback", server.target, scenario="queue_callback.xml", service="3002",
                 timeout=30).assert_ok(server)
        server.wait_for_log(r"callback requested to 5551")
        ringing = SippAgents(tmp_path / "silent", server.target, [silent], max_calls=2, timeout=60,
                             scenario="agent_no_answer.xml")
        ringing.login.assert_ok(server)
        server.wait_for_log(rf"agent={silent} feature=login result=logged-in")  # longest idle in front
        agents = SippAgents(tmp_path / "agents", server.target, [answering, overflow_agent, callback_agent],
                            max_calls=3, timeout=60)
        agents.login.assert_ok(server)
        server.wait_for_log(r"callback over: outcome=callback_failed", timeout=20)
        assert customer.wait(timeout=20) == 0, "the customer's line was called and refused it"
        patient = start_sipp(tmp_path / "rona", server.target, "queue_caller.xml", service="3000", timeout=40)
        server.wait_for_log(rf"offer to agent={silent} withdrawn: .*no-answer", timeout=15)
        server.wait_for_log(rf"connected to agent={answering}", timeout=10)
        run_sipp(tmp_path / "abandon", server.target, scenario="queue_abandon.xml", service="3000",
                 timeout=30).assert_ok(server)
        server.wait_for_log(r"leg ended: caller-abandoned", timeout=10)
        overflowing = start_sipp(tmp_path / "overflow", server.target, "queue_caller.xml", service="3001", timeout=40)
        server.wait_for_log(rf"connected to agent={overflow_agent}", timeout=15)
        assert patient.wait(timeout=20) == 0 and overflowing.wait(timeout=20) == 0
        assert ringing.answer.wait(timeout=20) == 0, "both offers to the silent phone were CANCELled"
        for agent in (answering, overflow_agent, callback_agent):
            server.wait_for_log(rf"agent={agent} state wrap_up -> available", timeout=15)
        figures = read_figures(server, http_port, tmp_path)
    finally:
        stop_all(customer, ringing, agents, patient, overflowing)
        server.stop()
    assert_figures_agree(
        figures,
        calls=[("cbq", "callback_failed", callback_agent), ("front", "agent_hangup", answering),
               ("front", "caller_hangup", None), ("home", "agent_hangup", overflow_agent)],
        queues={"cbq": (1, 0, 0, 1), "front": (2, 1, 1, 0), "home": (1, 0, 0, 0), "backup": (0, 1, 0, 0)},
        live_queues={"cbq": (1, 0, 0), "front": (2, 1, 0), "home": (1, 1, 0), "backup": (0, 0, 0)},
        handled={silent: 0, answering: 1, overflow_agent: 1, callback_agent: 0})
    assert figures.report_value("agent", silent, "missed") == 1 == figures.agents[silent]["missed_offers"]
    served = {c["call_id"]: c["served_queue"] for c in figures.calls}
    assert list(served.values())[-1] == "backup", "the overflowed call was served by backup's agent"


def test_blind_transfer_survey_and_abandon_after_a_long_wait_agree(tmp_path):
    """Agent 3611 answers and blind-transfers (REFER) the caller to `sales`, where 3612 answers; a
    caller of `surveyq` talks to 3612, who hangs up first, and answers the survey; a caller of the
    unstaffed `lonely` hangs up after 6.5 s (past the 5-s abandon grace)."""
    transferring, second = "3611", "3612"
    (tmp_path / "abandon_late.xml").write_text(
        (SCENARIOS / "queue_abandon.xml").read_text().replace('<pause milliseconds="1500"/>',
                                                              '<pause milliseconds="6500"/>'))
    server, http_port = start_mix_server(tmp_path, {transferring: ["front"], second: ["sales", "surveyq"]})
    first = agents = abandoner = None
    try:
        first = SippAgents(tmp_path / "first", server.target, [transferring], max_calls=1, timeout=60,
                           scenario="agent_transfers.xml", keys={"transfer_to": "sales"})
        first.login.assert_ok(server)
        agents = SippAgents(tmp_path / "second", server.target, [second], max_calls=2, timeout=60)
        agents.login.assert_ok(server)
        abandoner = start_sipp(tmp_path / "abandon", server.target, str(tmp_path / "abandon_late.xml"),
                               service="3004", timeout=30)
        server.wait_for_log(r"waiting queue=lonely")  # in line before the next caller arrives
        run_sipp(tmp_path / "transfer", server.target, scenario="queue_caller.xml", service="3000",
                 timeout=30).assert_ok(server)
        assert first.answer.wait(timeout=20) == 0, "the transferring agent saw 202, NOTIFY and our BYE"
        server.wait_for_log(rf"agent={second} state wrap_up -> available", timeout=15)
        run_sipp(tmp_path / "survey", server.target, scenario="queue_survey.xml", service="3003",
                 timeout=45).assert_ok(server)
        server.wait_for_log(r"event=survey-done")
        server.wait_for_log(rf"agent={second} state wrap_up -> available", count=2, timeout=15)
        server.wait_for_log(rf"agent={transferring} state wrap_up -> available", timeout=15)
        assert abandoner.wait(timeout=20) == 0
        figures = read_figures(server, http_port, tmp_path)
    finally:
        stop_all(first, agents, abandoner)
        server.stop()
    assert_figures_agree(
        figures,
        calls=[("lonely", "caller_hangup", None), ("sales", "transferred", second), ("surveyq", "completed", second)],
        queues={"front": (1, 1, 0, 0), "sales": (1, 1, 0, 0), "surveyq": (1, 1, 0, 0), "lonely": (1, 0, 1, 0)},
        live_queues={"front": (1, 1, 0), "sales": (1, 1, 0), "surveyq": (1, 1, 0), "lonely": (1, 0, 1)},
        handled={transferring: 1, second: 2})
    survey = figures.calls[-1]
    assert json.loads(survey["survey"]) == {"q1": 4, "q2": 5}
    assert survey["talk_seconds"] < survey["ended_at"] - survey["connected_at"] - 2, "the survey is not talk time"
    assert figures.report_value("satisfaction_agent", second, "average") == 4.5
