"""The operator's first hour, over real SIP: the README's "Try it" works on a Sunday night (the
server's clock injected), and a second `acd serve` on the same data directory changes nothing."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
import urllib.request

from .harness import LOOPBACK, REPO, free_port, rtp_base, start_server
from .softphone_driver import SoftphoneProcess, run_softphone

SUNDAY_NIGHT = "2026-11-29T23:30:00+00:00"  # Europe/London: 23:30 on a Sunday


def test_the_readme_try_it_call_reaches_support_on_a_sunday_night(tmp_path):
    """The README's softphone example (press 2) with the shipped hours: the call is not sent to the
    closed path, it reaches the support queue."""
    readme = (REPO / "README.md").read_text()
    assert "scripts/softphone.py call sip:1000@127.0.0.1:5060 --dtmf 2 --dtmf-delay 4 --record heard.wav" in readme
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(),
                          extra_files={"conf/hours.yaml": (REPO / "conf" / "hours.yaml").read_text()},
                          serve_args=("--clock-start", SUNDAY_NIGHT))
    try:
        report = run_softphone("call", f"sip:1000@{server.target}", "--from-user", "5551000", "--dtmf", "2",
                               "--dtmf-delay", "4", "--record", str(tmp_path / "heard.wav"), "--timeout", "25",
                               timeout=40)
        assert report["answered"], report
        call_id = re.findall(r"call=(\S+) INVITE from=sip:5551000@", server.log())[-1]
        server.wait_for_log(rf"call={re.escape(call_id)} menu=main_menu choice=2 next=support")
        server.wait_for_log(rf"call={re.escape(call_id)} .*queue[= ]support", timeout=15)
        assert f"call={call_id} event=after-hours" not in server.log()
    finally:
        server.stop()


def _api(server, method: str, path: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}{path}", method=method)
    request.add_header("Authorization", f"Bearer {server.token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _rows(path, sql: str) -> list[tuple]:
    reader = sqlite3.connect(path)
    try:
        return reader.execute(sql).fetchall()
    finally:
        reader.close()


def test_a_second_server_on_the_same_data_directory_exits_and_changes_nothing(tmp_path):
    """During a live call, with an agent logged in: a second `acd serve` (other ports, same data
    directory) exits non-zero naming the running server's pid; the live call's record, the agent's
    state and the run history are as they were, and the first server goes on serving the call."""
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port)
    server.http_port = http_port
    server.token = (tmp_path / "data" / "api.token").read_text().strip()
    records = tmp_path / "data" / "records.db"
    try:
        assert _api(server, "POST", "/api/agents/1002/login")[0] == 200
        with SoftphoneProcess("call", f"sip:1000@{server.target}", "--from-user", "5552000", "--hangup-after", "12",
                              "--timeout", "30") as caller:
            server.wait_for_log(r"INVITE from=sip:5552000@")
            call_id = re.findall(r"call=(\S+) INVITE from=sip:5552000@", server.log())[-1]
            server.wait_for_log(rf"call={re.escape(call_id)} step=main_menu|call={re.escape(call_id)} .*main_menu")
            before = (_rows(records, "SELECT call_id, ended_at, outcome FROM calls"),
                      _rows(records, "SELECT agent_id, state FROM agent_presence"),
                      _rows(records, "SELECT id, started_at, stopped_at FROM server_runs"),
                      _rows(records, "SELECT COUNT(*) FROM agent_states"))
            second = tmp_path / "second"
            second.mkdir()
            (tmp_path / "conf" / "acd.yaml").rename(tmp_path / "conf" / "acd.first.yaml")
            text = (tmp_path / "conf" / "acd.first.yaml").read_text()
            other = text.replace(f"port: {server.sip_port}", f"port: {free_port()}").replace(
                f"port: {http_port}", f"port: {free_port(kind=socket.SOCK_STREAM, both=False)}")
            (tmp_path / "conf" / "acd.yaml").write_text(other)
            try:
                done = subprocess.run([sys.executable, "-m", "acd.cli", "serve", "--root", str(tmp_path)],
                                      capture_output=True, text=True, timeout=30, cwd=second)
            finally:
                (tmp_path / "conf" / "acd.first.yaml").replace(tmp_path / "conf" / "acd.yaml")
            assert done.returncode == 4, done.stderr
            assert f"another acd serve (pid {server.process.pid}) is running on data directory" in done.stderr
            assert "nothing was changed" in done.stderr
            after = (_rows(records, "SELECT call_id, ended_at, outcome FROM calls"),
                     _rows(records, "SELECT agent_id, state FROM agent_presence"),
                     _rows(records, "SELECT id, started_at, stopped_at FROM server_runs"),
                     _rows(records, "SELECT COUNT(*) FROM agent_states"))
            assert after == before
            assert (call_id, None, None) in after[0], "the live call is still open, not 'interrupted'"
            assert (tmp_path / "data" / "acd.pid").read_text().strip() == str(server.process.pid)
            report = caller.result()
        assert report["answered"] and report["hung_up_by"] == "local", report
        server.wait_for_log(rf"call={re.escape(call_id)} ended reason='caller hung up'")
        status, agents = _api(server, "GET", "/api/agents")
        assert status == 200 and any(a["id"] == "1002" and a["state"] != "logged_out" for a in agents), agents
    finally:
        server.stop()
    assert not (tmp_path / "data" / "acd.pid").exists(), "a clean stop removes the pid file"
