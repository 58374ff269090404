"""The agent desktop in a real headless Chromium against a running server with a real SIP call:
agent 3851 signs in at /login with their SIP password, pauses and goes ready from the page (by
keyboard), a SIPp caller from Eleanor's number (a known VIP customer) is offered to the agent's
SIPp phone, which rings for a few seconds; before the answer the page pops her name, "not verified"
and the IVR path; the agent saves a disposition with a note; the call record has both.

Screenshots go to $ACD_ARTIFACTS_DIR (else the test's tmp_path/artifacts); the path is printed."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
from pathlib import Path

import pytest

from .browser import headless_chromium
from .harness import LOOPBACK, REPO, SCENARIOS, free_port, rtp_base, start_server, start_sipp
from .test_acd_calls import SippAgents, agents_yaml
from .test_customer_context import caller_scenario
from .test_wallboard import wait_until

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("chromedriver") is None,
                                reason="Debian's chromium and chromium-driver are needed: run scripts/setup")

AGENT = "3851"
OTHER_AGENT = "3852"  # configured, never signed in: the signed-in agent may not touch their desk
ELEANOR = "5550100"  # conf/customers.csv: C1001 Eleanor Whitfield, vip
DESK_FLOW = """
name: desk_flow
steps:
  intent: {set: {intent: broadband}, next: welcome}
  welcome: {play: beep_tone, next: q}
  q: {queue: loadtest, on_failure: end}
  end: {hangup: true}
"""
# The agent's phone rings this long before it answers: the page must pop the caller meanwhile.
RING_MILLISECONDS = 3000


@pytest.fixture()
def chromium(tmp_path):
    """Headless Chromium, as the wallboard's test starts it."""
    yield from headless_chromium(tmp_path / "chromium-profile")


def artifacts_dir(tmp_path):
    path = os.environ.get("ACD_ARTIFACTS_DIR")
    directory = Path(path) if path else tmp_path / "artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# From the signed-in page: another agent's calls, another agent's state, and a change without the
# CSRF token; each answer's (status, error_id).
REFUSALS = """
const [other, self, done] = arguments;
(async () => {
  const me = await (await fetch("/api/me")).json();
  const json = {"Content-Type": "application/json"};
  const answers = [await fetch(`/api/agents/${other}/calls`),
                   await fetch(`/api/agents/${other}/pause`, {method: "POST", body: '{"reason": "lunch"}',
                                                              headers: {...json, "X-CSRF-Token": me.csrf_token}}),
                   await fetch(`/api/agents/${self}/pause`, {method: "POST", body: '{"reason": "lunch"}', headers: json})];
  const out = [];
  for (const answer of answers) out.push(answer.status, (await answer.json()).error_id);
  done(out);
})();
"""


def known_customer(data_dir: Path) -> None:
    """Eleanor's row of conf/customers.csv in the server's customer directory, without her PIN (the
    whole demo file hashes 14 PINs with PBKDF2: seconds this test does not need)."""
    from acd.context.directory import CustomerDirectory
    from acd.context.importer import import_customers

    data_dir.mkdir(parents=True, exist_ok=True)
    header, *rows = (REPO / "conf" / "customers.csv").read_text().splitlines()
    columns = header.split(",")
    eleanor = dict(zip(columns, next(row for row in rows if row.startswith("C1001,")).split(",")))
    eleanor["pin"] = ""
    path = data_dir / "eleanor.csv"
    path.write_text(header + "\n" + ",".join(eleanor[column] for column in columns) + "\n")
    directory = CustomerDirectory(data_dir / "customers.db")
    try:
        report = import_customers(directory, path)
    finally:
        directory.close()
    assert report.imported == 1, report.lines()


def text_of(element_id: str) -> str:
    return f"const e = document.getElementById('{element_id}'); return e && e.textContent"


def test_agent_signs_in_goes_ready_sees_the_screen_pop_before_answer_and_wraps_up(tmp_path, chromium):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser = chromium
    shots = artifacts_dir(tmp_path)
    print(f"\nagent desktop screenshots in {shots}")
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    agents = agents_yaml([AGENT, OTHER_AGENT], ring_timeout=15, wrap_up=2) + ("dispositions: [resolved, sale, no-sale]\n"
                                                                 "pause_reasons: {\"1\": lunch, \"2\": training}\n")
    known_customer(tmp_path / "server" / "data")
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port,
                          extra_files={"conf/agents.yaml": agents, "ivr_flows/desk_flow.yaml": DESK_FLOW,
                                       "dialplans/acd.yaml": 'routes:\n  - {number: "3000", flow: desk_flow}\n'})
    phone = tmp_path / "agent_rings.xml"
    phone.write_text((SCENARIOS / "agent_answers.xml").read_text().replace(
        '<pause milliseconds="300"/>', f'<pause milliseconds="{RING_MILLISECONDS}"/>'))
    phones = caller = None
    base = f"http://{LOOPBACK}:{http_port}"
    try:
        phones = SippAgents(tmp_path / "phone", server.target, [AGENT], max_calls=1, timeout=40, scenario=str(phone))
        phones.login.assert_ok(server)
        browser.get(f"{base}/login")
        browser.find_element(By.ID, "user").send_keys(AGENT)
        browser.find_element(By.ID, "password").send_keys("wrong" + Keys.ENTER)
        wait_until(browser, text_of("error"), lambda value: bool(value) and "wrong" in value)
        password = browser.find_element(By.ID, "password")
        password.clear()
        password.send_keys(f"pw-{AGENT}" + Keys.ENTER)
        wait_until(browser, "return location.pathname", "/agent")
        state = "return document.getElementById('state').dataset.state"
        wait_until(browser, state, "available")
        wait_until(browser, text_of("status"), "live")
        cookie = browser.get_cookie("acd_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # Pause for lunch, then ready again, from the keyboard: p focuses the reason, Tab reaches the
        # Pause button, r (outside a field) is Ready.
        keys = ActionChains(browser)
        keys.send_keys("p").perform()
        assert browser.switch_to.active_element.get_attribute("id") == "pause-reason"
        keys.send_keys(Keys.TAB, Keys.ENTER).perform()
        wait_until(browser, state, "paused")
        wait_until(browser, text_of("state"), "paused (lunch)")
        ActionChains(browser).send_keys("r").perform()
        wait_until(browser, state, "available")
        refused = browser.execute_async_script(REFUSALS, OTHER_AGENT, AGENT)
        assert refused == [403, "not-your-agent", 403, "not-your-agent", 403, "csrf-token-refused"], refused

        caller = start_sipp(tmp_path / "caller", server.target, caller_scenario(tmp_path, ELEANOR))
        pop = ("const p = document.getElementById('pop'); return p.hidden ? null : "
               "[p.dataset.phase, document.getElementById('pop-customer').textContent, "
               "document.getElementById('pop-verified').textContent, document.getElementById('pop-ivr').textContent]")
        offered = wait_until(browser, pop, lambda value: value is not None and "Eleanor" in value[1], timeout=15)
        browser.save_screenshot(str(shots / "agent-desktop-offer.png"))
        assert offered == ["offered", "Eleanor Whitfield (C1001)", "not verified", "intent › welcome › q"], offered
        assert "3851" in browser.execute_script(text_of("pop-explanation"))

        wait_until(browser, pop, lambda value: value is not None and value[0] == "connected", timeout=15)
        browser.set_window_size(390, 844)  # a phone: everything fits the width, nothing to scroll sideways
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(shots / "agent-desktop-on-call-phone.png"))
        browser.set_window_size(1200, 800)

        Select(browser.find_element(By.ID, "disposition")).select_by_visible_text("sale")
        browser.find_element(By.ID, "notes").send_keys("Wants the fibre upgrade; send the contract.")
        browser.find_element(By.ID, "save-disposition").click()
        wait_until(browser, text_of("wrapup-result"), lambda value: bool(value) and value.startswith("saved on"))
        assert caller.wait(timeout=20) == 0
        wait_until(browser, "const c = document.querySelector('#calls tbody tr'); return c && c.textContent",
                   lambda value: bool(value) and "sale" in value and "fibre" in value)
        browser.execute_script("document.getElementById('calls').scrollIntoView()")
        browser.save_screenshot(str(shots / "agent-desktop-wrapped-up.png"))
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
            caller.wait(timeout=5)
        if phones:
            phones.stop()
        server.stop()
    with sqlite3.connect(server.root / "data" / "records.db") as db:
        rows = db.execute("SELECT caller, agent, disposition, notes FROM calls WHERE agent = ?", (AGENT,)).fetchall()
    assert rows == [(ELEANOR, AGENT, "sale", "Wants the fibre upgrade; send the contract.")], rows
    assert (shots / "agent-desktop-offer.png").stat().st_size > 10_000

