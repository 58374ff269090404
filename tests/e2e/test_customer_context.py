"""Customer context end to end: the directory knows the caller, routing uses it, the agent sees it."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

from .harness import LOOPBACK, REPO, SCENARIOS, free_port, log_shows_secret, run_sipp, start_sipp, wait_until
from .softphone_driver import run_softphone
from .test_acd_calls import EventStream, SippAgents, start_acd_server

CALLER_SCENARIO = (SCENARIOS / "queue_caller.xml").read_text()


def import_demo_customers(server) -> None:
    done = subprocess.run([sys.executable, "-m", "acd.cli", "customers", "import", str(REPO / "conf" / "customers.csv"),
                           "--root", str(server.root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def caller_scenario(tmp_path, number: str) -> str:
    """queue_caller.xml calling from a fixed caller ID (the directory knows some numbers)."""
    path = tmp_path / f"caller_{number}.xml"
    path.write_text(CALLER_SCENARIO.replace("sip:555[call_number]@", f"sip:{number}@"))
    return str(path)


def start_caller(tmp_path, server, number: str) -> subprocess.Popen:
    return start_sipp(tmp_path, server.target, caller_scenario(tmp_path, number))


def wait_until_queued(server, number: str) -> None:
    """Until the call from `number` is placed by the routing engine: offered to an agent or waiting."""
    call = server.wait_for_log(rf"call=(\S+) INVITE from=sip:{number}@").group(1)
    server.wait_for_log(rf"call={re.escape(call)} (offer agent=|waiting queue=)")


def connected_order(log: str, callers: list[str]) -> list[str]:
    call_of = {m.group(2): m.group(1) for m in re.finditer(r"call=(\S+) INVITE from=sip:(\d+)@", log)}
    order = [m.group(1) for m in re.finditer(r"call=(\S+) connected to agent=", log)]
    return [next(c for c in callers if call_of.get(c) == call) for call in order if call in call_of.values()]


def test_known_vip_caller_jumps_ahead_of_earlier_normal_callers(tmp_path):
    """One agent talking; two unknown callers wait; then VIP Eleanor (5550100) calls: she is next."""
    server = start_acd_server(tmp_path, ["3601"])
    import_demo_customers(server)
    agents = None
    callers = []
    try:
        agents = SippAgents(tmp_path / "agents", server.target, ["3601"], max_calls=4, timeout=60)
        agents.login.assert_ok(server)
        for number in ("5559100", "5559101", "5559102"):
            callers.append(start_caller(tmp_path, server, number))
            wait_until_queued(server, number)
        callers.append(start_caller(tmp_path, server, "5550100"))
        for caller in callers:
            assert caller.wait(timeout=60) == 0
    finally:
        for caller in callers:
            if caller.poll() is None:
                caller.kill()
        if agents:
            agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    assert "customer C1001 tier=vip priority=5" in log
    assert connected_order(log, ["5559100", "5559101", "5559102", "5550100"]) == \
        ["5559100", "5550100", "5559101", "5559102"]


def test_returning_customer_reaches_their_last_agent(tmp_path):
    """Tom (5550102) last spoke with agent 1001; agent 3701 has been idle longer, yet Tom gets 1001."""
    server = start_acd_server(tmp_path, ["3701", "1001"])
    import_demo_customers(server)
    first = second = None
    try:
        first = SippAgents(tmp_path / "idle", server.target, ["3701"], max_calls=1, timeout=40)
        first.login.assert_ok(server)
        server.wait_for_log(r"agent=3701 feature=login result=logged-in")  # idle before 1001 logs in
        second = SippAgents(tmp_path / "sticky", server.target, ["1001"], max_calls=1, timeout=40)
        second.login.assert_ok(server)
        run_sipp(tmp_path / "tom", server.target, scenario=caller_scenario(tmp_path, "5550102"), service="3000",
                 calls=1, timeout=30).assert_ok(server)
    finally:
        for group in (first, second):
            if group:
                group.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    assert "customer C1003 tier=gold priority=3 preferred_agent=1001" in log
    assert re.search(r"connected to agent=1001", log) and not re.search(r"connected to agent=3701", log)


def test_verified_caller_pops_on_the_agents_screen_after_the_whisper(tmp_path):
    """Eleanor identifies with account 100234 and PIN 4821 (typed on a real PJSUA2 phone): the agent's
    event stream gets her record with verified true, the agent hears the whisper, then the caller."""
    flow = """
name: verify_then_queue
steps:
  account: {collect: digits/1, into: account_number, min_length: 6, max_length: 6, next: find, on_failure: q}
  find: {lookup: customer_account, key: "{account_number}", into: customer, found: pin, not_found: q}
  pin: {collect: digits/2, into: pin, min_length: 4, max_length: 4, mask: true, next: check, on_failure: q}
  check: {lookup: customer_pin, key: "{customer.id}:{pin}", into: pin_check, found: q, not_found: q}
  q: {queue: loadtest, on_failure: end}
  end: {hangup: true}
"""
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_acd_server(tmp_path, ["3801"], http_port=http_port)
    agents_yaml = (server.root / "conf" / "agents.yaml").read_text().replace("max_missed_offers: 2", "max_missed_offers: 2, whisper: true")
    (server.root / "conf" / "agents.yaml").write_text(agents_yaml)
    (server.root / "ivr_flows" / "verify_then_queue.yaml").write_text(flow)
    (server.root / "dialplans" / "verify.yaml").write_text('routes:\n  - {number: "3900", flow: verify_then_queue}\n')
    server.wait_for_log(r"config reloaded \(files changed\)", timeout=10)
    import_demo_customers(server)
    token = (server.root / "data" / "api.token").read_text().strip()
    stream = EventStream(f"http://{LOOPBACK}:{http_port}/api/events/agent-3801?token={token}")
    agents = None
    try:
        agents = SippAgents(tmp_path / "agents", server.target, ["3801"], max_calls=1, timeout=40)
        agents.login.assert_ok(server)
        report = run_softphone("call", f"sip:3900@{server.target}", "--from-user", "5559999", "--dtmf", "100234,4821",
                               "--dtmf-delay", "2", "--timeout", "30", timeout=45)
        assert report["answered"], report
        offer = stream.wait_for("offer")
    finally:
        stream.close()
        if agents:
            agents.stop()
        server.stop()  # the log is complete once the server exited (lines are written in batches)
        log = server.log()
    customer = offer["context"]["customer"]
    assert customer["id"] == "C1001" and customer["name"] == "Eleanor Whitfield" and customer["verified"] is True
    assert offer["context"]["verified"] is True and offer["context"]["pin"] == "****"
    assert re.search(r"whisper to agent=3801: whisper/vip whisper/verified", log), log[-2000:]
    assert not log_shows_secret(log, "4821"), "the PIN is in the log"


def test_self_service_caller_hears_the_order_status_and_never_reaches_a_queue(tmp_path):
    """Key 3, order 12345#: the status is read out (digits and days) and the call ends; no queue."""
    from .harness import rtp_base, start_server

    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base())
    try:
        report = run_softphone("call", f"sip:1000@{server.target}", "--from-user", "5559300",
                               "--dtmf", "3,12345#", "--dtmf-delay", "2", "--timeout", "40", timeout=55)
        assert report["answered"] and report["hung_up_by"] == "remote", report
        call = re.findall(r"call=(\S+) INVITE from=sip:5559300@", server.log())[-1]
        server.wait_for_log(rf"call={re.escape(call)} lookup source=orders key=12345 found=True")
        server.wait_for_log(rf"call={re.escape(call)} event=self-service-done")
        server.wait_for_log(rf"call={re.escape(call)} ended reason='hangup step end'")
        assert not re.search(rf"call={re.escape(call)} queue=", server.log())
    finally:
        server.stop()


def test_customer_import_names_the_bad_row_and_imports_the_rest(tmp_path):
    """A CSV whose second data row has an unparseable phone: that row is named with its reason, the
    others are imported, and the command fails (exit 1) unless --allow-rejects; a file with only bad
    rows fails either way."""
    from .harness import rtp_base, write_config

    write_config(tmp_path, sip_port=free_port(), rtp_base=rtp_base())
    good_and_bad = tmp_path / "customers.csv"
    good_and_bad.write_text("id,name,phones,tier\nC1,Ann Example,020 7946 0001,standard\n"
                            "C2,Bob Example,call me maybe,standard\nC3,Cy Example,020 7946 0003,vip\n")
    done = subprocess.run([sys.executable, "-m", "acd.cli", "customers", "import", str(good_and_bad), "--root",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{good_and_bad}:3: " in done.stdout and "letters in number" in done.stdout
    assert "2 rows imported" in done.stdout
    allowed = subprocess.run([sys.executable, "-m", "acd.cli", "customers", "import", str(good_and_bad), "--root",
                              str(tmp_path), "--allow-rejects"], capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    all_bad = tmp_path / "bad.csv"
    all_bad.write_text("id,name,phones\nC9,Zed,not a number\n")
    failed = subprocess.run([sys.executable, "-m", "acd.cli", "customers", "import", str(all_bad), "--root",
                             str(tmp_path), "--allow-rejects"], capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and f"{all_bad}:2: " in failed.stdout


class FakeCrm:
    """A local HTTP CRM: look-ups answer after `delay` seconds; webhook POSTs are kept."""

    def __init__(self, delay: float) -> None:
        import http.server
        import json
        import threading

        events = self.events = []
        lookups = self.lookups = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                lookups.append(self.path)
                time.sleep(delay)  # scenario: a slow CRM, answering only after `delay` seconds
                body = json.dumps({"crm_id": "CRM-42", "segment": "enterprise"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the server gave up waiting: that is the point

            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("content-length", "0"))
                events.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _stamp(server, pattern: str) -> float:
    from datetime import datetime
    line = server.wait_for_log(pattern).group(0)
    start = server.log().index(line)
    return datetime.strptime(server.log()[server.log().rfind("\n", 0, start) + 1:][:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_a_crm_that_times_out_does_not_delay_the_call_beyond_its_timeout_and_gets_webhooks(tmp_path):
    """The CRM answers look-ups only after 5 s; with a 1 s timeout the flow starts ~1 s after answer,
    and the CRM still receives the call's events (started, ended with its outcome) as webhooks."""
    from .harness import rtp_base, start_server

    crm = FakeCrm(delay=5.0)
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), main_extra=(
        f"crm:\n  lookup_url: \"http://{LOOPBACK}:{crm.port}/customers?phone={{caller_id}}\"\n"
        f"  webhook_url: \"http://{LOOPBACK}:{crm.port}/events\"\n  timeout_seconds: 1.0\n"))
    try:
        report = run_softphone("call", f"sip:1000@{server.target}", "--from-user", "5559400", "--hangup-after", "4",
                               "--timeout", "20", timeout=35)
        assert report["answered"], report
        call = re.findall(r"call=(\S+) INVITE from=sip:5559400@", server.log())[-1]
        answered = _stamp(server, rf"call={re.escape(call)} answered dialled=1000")
        flow_started = _stamp(server, rf"call={re.escape(call)} event=call-started")
        server.wait_for_log(r"crm look-up timed out after 1\.0s")
        server.wait_for_log(rf"call={re.escape(call)} ended reason='caller hung up'")
        wait_until(lambda: len(crm.events) >= 2, 5, "the CRM received the call's two webhooks")
    finally:
        server.stop()
        crm.close()
    assert 0.9 <= flow_started - answered <= 1.6, f"the flow started {flow_started - answered:.2f}s after answer"
    assert crm.lookups and crm.lookups[0] == "/customers?phone=5559400"
    types = [event["type"] for event in crm.events]
    assert types == ["call-started", "call-ended"], crm.events
    assert crm.events[1]["outcome"] == "caller_hangup" and crm.events[1]["call_id"] == call


def test_incident_banner_is_played_only_to_matching_customers(tmp_path):
    """Tom (north-west, broadband) hears the outage banner before the menu; an unknown caller does not."""
    from .harness import rtp_base, start_server

    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base())
    import_demo_customers(server)
    try:
        for caller in ("5550102", "5559500"):
            report = run_softphone("call", f"sip:1000@{server.target}", "--from-user", caller, "--hangup-after", "8",
                                   "--timeout", "20", timeout=35)
            assert report["answered"], report
        log = server.log()
    finally:
        server.stop()
    tom = re.findall(r"call=(\S+) INVITE from=sip:5550102@", log)[-1]
    other = re.findall(r"call=(\S+) INVITE from=sip:5559500@", log)[-1]
    assert re.search(rf"call={re.escape(tom)} incident banner\(s\): north_west_outage", log)
    assert re.search(rf"call={re.escape(tom)} event=call-started", log), "the flow starts after the banner"
    assert not re.search(rf"call={re.escape(other)} incident banner", log)


def test_a_key_pressed_during_the_banner_skips_it_and_reaches_the_menu(tmp_path):
    """Tom presses 2 while the outage banner plays: the banner stops, the flow starts, and the key
    passes through the welcome (barge-in) to the main menu: support."""
    from .harness import rtp_base, start_server

    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base())
    import_demo_customers(server)
    try:
        report = run_softphone("call", f"sip:1000@{server.target}", "--from-user", "5550102", "--dtmf", "2",
                               "--dtmf-delay", "1.5", "--hangup-after", "8", "--timeout", "20", timeout=35)
        assert report["answered"], report
        call = re.findall(r"call=(\S+) INVITE from=sip:5550102@", server.log())[-1]
        server.wait_for_log(rf"call={re.escape(call)} dtmf digit=2 via=rfc4733 during the incident banner")
        server.wait_for_log(rf"call={re.escape(call)} menu=main_menu choice=2 next=support")
    finally:
        server.stop()
