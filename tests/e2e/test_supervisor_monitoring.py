"""Must-show of issue 19 on the real server: a supervisor listens, then whispers (key 5), then barges
(key 6) on a bridged call. Caller, agent and supervisor each send their own tone (500, 1000 and
1500 Hz) from raw UDP phones that keep every RTP packet they receive; Goertzel on what each party got
in each step shows who hears whom, and no packet is missing. An agent's account dialling the listen
code is refused 403. The monitoring is in the call's records and its story (`acd report --call`)."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import time
import urllib.request

import pytest

from acd.call_story import call_story

from .harness import LOOPBACK, free_port, rtp_base, start_server, wait_until
from .raw_phone import RawPhone, tone_share

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 500.0, 1000.0, 1500.0
STEP_SECONDS = 1.2      # each mode is held this long
SETTLE_SECONDS = 0.35   # what arrives this soon after a switch is not judged (the key's own travel)
HEARD, NOT_HEARD = 0.2, 0.02  # tone shares: two equal tones are ~0.5 each, an absent one ~0


def _account(extension: str, extra: str = "") -> str:
    credentials = f"{extension}:example-acd:demo-{extension}-pw".encode()
    return (f'  "{extension}":\n    name: User {extension}\n{extra}    password_ha1:\n'
            f"      md5: {hashlib.md5(credentials).hexdigest()}\n"
            f"      sha256: {hashlib.sha256(credentials).hexdigest()}\n")


AGENTS_YAML = (
    "realm: example-acd\n"
    "queues:\n  q: {strategy: ring-all, ring_timeout: 10, wrap_up: 1, when_no_agents: join}\n"
    "  sales: {when_no_agents: refuse}\n  support: {when_no_agents: refuse}\n  billing: {when_no_agents: refuse}\n"
    "agents:\n" + _account("1001", "    queues: {q: 0}\n") + _account("1002") + _account("2001", "    role: supervisor\n"))
FILES = {"conf/agents.yaml": AGENTS_YAML,
         "dialplans/monitor_e2e.yaml": 'routes:\n  - {number: "3200", flow: to_q}\n',
         "ivr_flows/to_q.yaml": "name: to_q\nsteps:\n  wait: {queue: q, on_failure: end}\n  end: {hangup: true}\n"}


@pytest.fixture
def monitor_server(tmp_path):
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), extra_files=FILES,
                          http_port=http_port)
    server.http_port = http_port
    server.token = (tmp_path / "data" / "api.token").read_text().strip()
    yield server
    server.stop()


def _api(server, method: str, path: str) -> dict:
    request = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}{path}", method=method, data=b"{}",
                                     headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_supervisor_listens_whispers_barges_and_an_agent_is_refused(monitor_server, tmp_path):
    server = (LOOPBACK, monitor_server.sip_port)
    caller = RawPhone("5550100", server, tone_hz=CALLER_HZ)
    agent = RawPhone("1001", server, password="demo-1001-pw", tone_hz=AGENT_HZ)
    supervisor = RawPhone("2001", server, password="demo-2001-pw", tone_hz=SUPERVISOR_HZ)
    other_agent = RawPhone("1002", server, password="demo-1002-pw")
    phones = (caller, agent, supervisor, other_agent)
    try:
        assert agent.register() == 200
        assert _api(monitor_server, "POST", "/api/agents/1001/login")["result"] == "logged-in"
        assert caller.call("3200") == 200
        agent.answer()
        call_id = caller.dialog["call_id"]
        monitor_server.wait_for_log(rf"call={call_id} connected to agent=1001")

        assert other_agent.call("*601001", authenticate=True) == 403, "an agent's account may not listen"
        assert supervisor.call("*601001", authenticate=True) == 200
        marks = [time.monotonic()]
        time.sleep(STEP_SECONDS)
        for key in ("5", "6"):  # whisper, then barge
            supervisor.press(key)
            marks.append(time.monotonic())
            time.sleep(STEP_SECONDS)
        marks.append(time.monotonic())
        assert supervisor.hang_up() == 200

        def shares(phone, step: int) -> dict[float, float]:
            audio = phone.audio_between(marks[step] + SETTLE_SECONDS, marks[step + 1])
            assert len(audio) >= (STEP_SECONDS - SETTLE_SECONDS) / 0.02 * 0.8, f"{phone.user} got {len(audio)} frames"
            return {hz: tone_share(audio, hz) for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)}

        expected = {  # step -> party -> the tones it hears
            0: {caller: {AGENT_HZ}, agent: {CALLER_HZ}, supervisor: {CALLER_HZ, AGENT_HZ}},
            1: {caller: {AGENT_HZ}, agent: {CALLER_HZ, SUPERVISOR_HZ}, supervisor: {CALLER_HZ, AGENT_HZ}},
            2: {caller: {AGENT_HZ, SUPERVISOR_HZ}, agent: {CALLER_HZ, SUPERVISOR_HZ}, supervisor: {CALLER_HZ, AGENT_HZ}},
        }
        table = {}
        for step, parties in expected.items():
            for phone, tones in parties.items():
                measured = table[(step, phone.user)] = shares(phone, step)
                heard = {hz for hz, share in measured.items() if share > HEARD}
                silent = {hz for hz, share in measured.items() if share < NOT_HEARD}
                assert heard == tones and silent == {CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ} - tones, \
                    f"step {('listen', 'whisper', 'barge')[step]}: {phone.user} heard {measured}"
        for phone in (caller, agent, supervisor):
            assert phone.lost_packets(marks[0], marks[-1]) == 0, f"{phone.user} lost packets while monitored"
        print("tone shares (step, party): " + "; ".join(
            f"{('listen', 'whisper', 'barge')[s]} {u}: " + "/".join(f"{v:.2f}" for v in shares_.values())
            for (s, u), shares_ in table.items()))

        assert caller.hang_up() == 200
        agent.take_bye()
        db = tmp_path / "data" / "records.db"
        query = "select event, mode, supervisor, agent, via from monitoring where call_id = ? order by id"

        def rows():
            with sqlite3.connect(db) as connection:
                found = connection.execute(query, (call_id,)).fetchall()
            return found if len(found) == 4 else None

        assert wait_until(rows, 5, "the monitoring records") == [
            ("start", "listen", "2001", "1001", "phone"), ("mode", "whisper", "2001", "1001", "phone"),
            ("mode", "barge", "2001", "1001", "phone"), ("end", "barge", "2001", "1001", "phone")]
        story = [what for _, what in call_story(db, call_id)]
        assert "supervisor 2001: listen started (agent 1001, via phone)" in story
        assert "supervisor 2001: switched to barge" in story
        assert "user=1002 refused 403: not a supervisor" in monitor_server.log()
    finally:
        for phone in phones:
            phone.close()
