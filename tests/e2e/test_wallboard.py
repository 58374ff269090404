"""The supervisor wallboard in a real headless Chromium against a running server with live calls:
the page shows the waiting call, then the agent's state change, live over server-sent events.
Screenshots are kept in artifacts/ as evidence of what the page looked like."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from .browser import headless_chromium
from .harness import LOOPBACK, REPO, free_port, start_sipp
from .test_acd_calls import SippAgents, start_acd_server

ARTIFACTS = REPO / "artifacts"

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("chromedriver") is None,
                                reason="Debian's chromium and chromium-driver are needed: run scripts/setup")


@pytest.fixture()
def browser(tmp_path):
    yield from headless_chromium(tmp_path / "chromium-profile")


def wait_until(browser, script: str, expected, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value == expected or (callable(expected) and expected(value)):
            return value
        time.sleep(0.2)
    raise AssertionError(f"page never showed {expected!r}; last value {value!r}")


def test_wallboard_shows_the_waiting_call_and_the_agents_state_change(tmp_path, browser):
    """No agent logged in: a caller waits and the page shows 1 waiting. Agent 3301 logs in, takes the
    call, and the page shows the agent on the call and nobody waiting — without a reload."""
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_acd_server(tmp_path, ["3301"], http_port=http_port)
    token = (server.root / "data" / "api.token").read_text().strip()
    ARTIFACTS.mkdir(exist_ok=True)
    caller = agents = None
    try:
        browser.get(f"http://{LOOPBACK}:{http_port}/wallboard?token={token}")
        waiting = "const r = document.querySelector('#queues tr[data-queue=loadtest] .waiting'); return r && r.textContent"
        wait_until(browser, waiting, "0")
        wait_until(browser, "return document.getElementById('status').textContent", "live")
        caller = start_sipp(tmp_path, server.target, "queue_caller.xml")
        wait_until(browser, waiting, "1")
        browser.save_screenshot(str(ARTIFACTS / "wallboard-caller-waiting.png"))
        import json
        import urllib.request
        request = urllib.request.Request(f"http://{LOOPBACK}:{http_port}/api/calls",
                                         headers={"Authorization": f"Bearer {token}"})
        calls = json.loads(urllib.request.urlopen(request, timeout=5).read())
        assert calls and calls[0]["queue"] == "loadtest" and calls[0]["routing_explanation"], calls
        agents = SippAgents(tmp_path / "agents", server.target, ["3301"], max_calls=1, timeout=40)
        agents.login.assert_ok(server)
        state = "const r = document.querySelector('#agents tr[data-agent=\"3301\"] td[data-state]'); " \
                "return r && r.dataset.state"
        wait_until(browser, state, lambda value: value in ("on_call", "wrap_up"))
        phone = "const r = document.querySelector('#agents tr[data-agent=\"3301\"] td.phone'); return r && r.textContent"
        wait_until(browser, phone, "registered")
        assert browser.execute_script("return document.getElementById('clock').textContent"), "the page shows a clock"
        wait_until(browser, waiting, "0")
        browser.save_screenshot(str(ARTIFACTS / "wallboard-agent-on-call.png"))
        assert caller.wait(timeout=30) == 0
    finally:
        for process in (caller,):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        if agents:
            agents.stop()
        server.stop()
    assert Path(ARTIFACTS / "wallboard-agent-on-call.png").stat().st_size > 10_000


def test_wallboard_with_a_wrong_token_says_unauthorized(tmp_path, browser):
    """A wrong token in the address: the page says so (instead of empty tables and "reconnecting…")."""
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_acd_server(tmp_path, ["3301"], http_port=http_port)
    try:
        browser.get(f"http://{LOOPBACK}:{http_port}/wallboard?token=wrong-token")
        wait_until(browser, "return document.getElementById('status').textContent",
                   lambda value: value.startswith("unauthorized"))
    finally:
        server.stop()


# From the signed-in wallboard page: whatever GET /api/monitoring says, as the page's session sees it.
MONITORING = """
const done = arguments[0];
fetch("/api/monitoring").then(r => r.json()).then(done, e => done(String(e)));
"""


def test_a_supervisor_listens_then_whispers_and_leaves_from_the_wallboard_which_counts_the_call(tmp_path, browser):
    """Supervisor 2001 signs in at /login and lands on the wallboard, which lists the bridged call (raw
    UDP caller and agent). Listen before the supervisor's phone registered: the page says so. Listen
    again: the server calls the supervisor's registered raw phone, which
    answers, and the page shows "listening" (live, from the event stream); Whisper: the mode changes
    (GET /api/monitoring agrees); Leave: the phone gets BYE. The page fits a 390 px screen. After the
    call, the figures of the day show it: offered, answered, service level, the agent's AHT and hold."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from .harness import rtp_base, start_server
    from .raw_phone import RawPhone
    from .test_supervisor_monitoring import FILES

    shots = Path(os.environ.get("ACD_ARTIFACTS_DIR") or tmp_path / "artifacts")
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nwallboard screenshots in {shots}")
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), extra_files=FILES,
                          http_port=http_port)
    token = (tmp_path / "server" / "data" / "api.token").read_text().strip()
    sip = (LOOPBACK, server.sip_port)
    caller, agent = RawPhone("5550100", sip, tone_hz=500.0), RawPhone("1001", sip, password="demo-1001-pw")
    supervisor = RawPhone("2001", sip, password="demo-2001-pw", tone_hz=1500.0)
    base = f"http://{LOOPBACK}:{http_port}"

    def api(method: str, path: str) -> object:
        request = urllib.request.Request(base + path, method=method, data=b"{}" if method == "POST" else None,
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def monitor_cell(call_id: str) -> str:
        return (f"const c = document.querySelector('#calls tr[data-call=\"{call_id}\"] td.monitor'); "
                "return c && [c.dataset.mode || '', c.textContent]")

    def click(call_id: str, selector: str) -> None:
        browser.find_element(By.CSS_SELECTOR, f'#calls tr[data-call="{call_id}"] {selector}').click()

    try:
        assert agent.register() == 200
        assert api("POST", "/api/agents/1001/login")["result"] == "logged-in"
        browser.get(f"{base}/login")
        browser.find_element(By.ID, "user").send_keys("2001")
        browser.find_element(By.ID, "password").send_keys("demo-2001-pw" + Keys.ENTER)
        wait_until(browser, "return location.pathname", "/wallboard")
        wait_until(browser, "return document.getElementById('status').textContent", "live")
        assert "2001" in browser.execute_script("return document.getElementById('who').textContent")

        assert caller.call("3200") == 200
        agent.answer()
        call_id = caller.dialog["call_id"]
        server.wait_for_log(rf"call={call_id} connected to agent=1001")
        wait_until(browser, monitor_cell(call_id), ["", ""])

        click(call_id, "button[data-mode=listen]")  # the supervisor's phone is not registered yet: said so
        error = "return document.getElementById('monitor-error').textContent"
        wait_until(browser, error, lambda value: "phone 2001 is not registered: register it" in (value or ""))
        assert supervisor.register() == 200
        click(call_id, "button[data-mode=listen]")
        invite = supervisor.answer(timeout=10)
        assert invite.headers.get("X-ACD-Monitor") == "listen"
        wait_until(browser, monitor_cell(call_id), ["listen", "you (2001) listening"])
        assert browser.execute_script(error) == "", "the error goes once monitoring works"
        browser.save_screenshot(str(shots / "wallboard-supervisor-listening.png"))

        click(call_id, "button[data-mode=whisper]")
        wait_until(browser, monitor_cell(call_id), ["whisper", "you (2001) whispering"])
        sessions = browser.execute_async_script(MONITORING)
        assert [(s["call_id"], s["supervisor"], s["mode"], s["via"]) for s in sessions] == \
            [(call_id, "2001", "whisper", "api")], sessions

        browser.set_window_size(390, 844)  # a phone: no sideways scrolling, the buttons big enough to tap
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        sizes = browser.execute_script(
            f"return [...document.querySelectorAll('#calls tr[data-call=\"{call_id}\"] button')].map("
            "b => { const r = b.getBoundingClientRect(); return [b.textContent, r.width, r.height, r.right]; })")
        assert [name for name, *_ in sizes] == ["Listen", "Whisper", "Barge", "Leave"], sizes
        assert all(width >= 40 and height >= 40 and right <= 390 for _, width, height, right in sizes), sizes
        browser.execute_script(f"document.querySelector('#calls tr[data-call=\"{call_id}\"]').scrollIntoView()")
        browser.save_screenshot(str(shots / "wallboard-supervisor-whispering-phone.png"))
        browser.set_window_size(1200, 800)

        click(call_id, "button.leave")
        supervisor.take_bye()
        wait_until(browser, monitor_cell(call_id), ["", ""])
        assert api("GET", "/api/monitoring") == []

        assert caller.hang_up() == 200
        agent.take_bye()
        queue = ("const r = document.querySelector('#queues tr[data-queue=q]'); return r && "
                 "['offered-today', 'answered-today', 'abandoned-today', 'sl-today'].map(c => r.querySelector('.' + c).textContent)")
        wait_until(browser, queue, ["1", "1", "0", "100% within 20 s"], timeout=15)
        figures = ("const r = document.querySelector('#agents tr[data-agent=\"1001\"]'); return r && "
                   "['answered-today', 'aht-today', 'hold-today'].map(c => r.querySelector('.' + c).textContent)")
        shown = wait_until(browser, figures, lambda value: value and value[0] == "1" and value[1] not in ("", "–"),
                           timeout=15)
        assert shown[2] == "0:00", shown  # a free agent: the caller waited no time in line
        browser.save_screenshot(str(shots / "wallboard-figures-of-the-day.png"))
    finally:
        for phone in (caller, agent, supervisor):
            phone.close()
        server.stop()
    assert (shots / "wallboard-supervisor-listening.png").stat().st_size > 10_000
