"""The supervisor wallboard in a real headless Chromium against a running server with live calls:
the page shows the waiting call, then the agent's state change, live over server-sent events.
Screenshots are kept in artifacts/ as evidence of what the page looked like."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from .harness import LOOPBACK, REPO, free_port, start_sipp
from .test_acd_calls import SippAgents, start_acd_server

ARTIFACTS = REPO / "artifacts"

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("chromedriver") is None,
                                reason="Debian's chromium and chromium-driver are needed: run scripts/setup")


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,800", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


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
