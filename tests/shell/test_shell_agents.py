"""Agents' phones in process: REGISTER with Digest, feature codes (*45 login, *46 logout, *47 pause,
*48 ready) authenticated the same way and confirmed by a voice prompt, state seen through the API.

Demo agents 1001-1003, realm example-acd, passwords demo-<ext>-pw; Digest answers are computed by
the test's own code (wire.py), never by the server's.
"""

from __future__ import annotations

from .wire import header_param


def test_register_is_challenged_401_then_accepted_200_with_the_binding(harness):
    """First REGISTER: 401 with SHA-256 and MD5 challenges (qop=auth). With Digest: 200 OK listing
    our Contact and its expiry; the API shows the agent registered (still logged out)."""
    phone = harness.agent("1001")
    first = phone.register(authenticate=False)
    assert first.status == 401
    challenges = first.headers.get_all("WWW-Authenticate")
    assert [header_param(c, "algorithm") for c in challenges] == ["SHA-256", "MD5"]
    assert all('realm="example-acd"' in c and 'qop="auth"' in c for c in challenges)
    ok = phone.register(expires=300)
    assert ok.status == 200
    assert ok.headers.get("Contact").startswith("<sip:1001@127.0.0.1:50010>")
    assert header_param(ok.headers.get("Contact"), "expires") == "300"
    info = harness.agent_info("1001")
    assert info["registered"] is True and info["state"] == "logged_out"


def test_register_with_md5_for_phones_that_only_know_md5(harness):
    """A phone answering the MD5 challenge (RFC 2617) is accepted too."""
    phone = harness.agent("1002")
    assert phone.register(prefer="MD5").status == 200
    assert harness.metric("acd_agents_registered") == 1


def test_wrong_password_is_challenged_again_then_the_phone_is_blocked_403(harness):
    """Wrong password: 401 again (four times), then 403 once five failures pile up, and even the
    right password is refused while the block lasts; failures are counted."""
    phone = harness.agent("1001")
    statuses = [phone.register(password="guess").status for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 403]
    assert phone.register().status == 403
    assert harness.metric("acd_registrar_auth_failures_total") == 5
    assert harness.agent_info("1001")["registered"] is False


def test_agent_may_not_register_another_agents_address(harness):
    """Valid credentials of 1001 for the address of 1002: 403 Forbidden."""
    phone = harness.agent("1001")
    assert phone.register(aor="1002").status == 403
    assert harness.agent_info("1002")["registered"] is False


def test_register_with_expires_zero_removes_the_binding(harness):
    """Expires: 0 unregisters: 200 without our Contact, and the agent is no longer reachable."""
    phone = harness.agent("1003")
    assert phone.register().status == 200
    ok = phone.register(expires=0)
    assert ok.status == 200 and not ok.headers.get_all("Contact")
    assert harness.agent_info("1003")["registered"] is False


def test_binding_expires_when_not_refreshed(harness):
    """A 60 s registration is dropped after 60 s without a refresh."""
    phone = harness.agent("1001")
    assert phone.register(expires=60).status == 200
    harness.advance(59, step=1)
    assert harness.agent_info("1001")["registered"] is True
    harness.advance(2, step=1)
    assert harness.agent_info("1001")["registered"] is False
    assert harness.logged(r"agent=1001 binding expired")


def test_login_feature_code_confirms_by_voice_and_makes_the_agent_available(harness):
    """*45 with Digest: 200, the agent_logged_in prompt, our BYE; the agent is available, and the
    login is in the agent state history and the queue log."""
    phone = harness.agent("1001")
    assert phone.register().status == 200
    call = phone.login()
    assert harness.prompts_heard(call.rtp_received()) == ["agent_logged_in"]
    assert harness.agent_state("1001") == "available"
    assert harness.records("select state from agent_states where agent_id = '1001'") == [("available",)]
    assert harness.queue_log() == [("AGENTLOGIN", "", "1001")]
    assert harness.active_calls() == [], "feature-code calls are not customer calls"
    assert harness.records("select count(*) from calls") == [(0,)]


def test_feature_code_without_credentials_is_challenged_and_changes_nothing(harness):
    """*45 without Authorization: 401 (ACKed), no call, the agent stays logged out; with a wrong
    password: 401 again."""
    phone = harness.agent("1002")
    call = phone.invite("*45")
    call.expect(401)
    assert harness.agent_state("1002") == "logged_out"
    wrong = phone.dial("*45", password="nope")
    wrong.expect(401)
    harness.advance(1)
    assert harness.agent_state("1002") == "logged_out" and harness.bound_rtp_ports() == []


def test_pause_with_a_reason_code_then_ready_again(harness):
    """*471 pauses with reason lunch (prompt agent_paused), *48 makes the agent available again;
    both are in the queue log."""
    phone = harness.logged_in_agent("1001")
    call = phone.pause("1")
    assert harness.prompts_heard(call.rtp_received()) == ["agent_paused"]
    info = harness.agent_info("1001")
    assert info["state"] == "paused" and info["pause_reason"] == "lunch"
    call = phone.unpause()
    assert harness.prompts_heard(call.rtp_received()) == ["agent_available"]
    assert harness.agent_state("1001") == "available"
    assert [row[0] for row in harness.queue_log()] == ["AGENTLOGIN", "PAUSE", "UNPAUSE"]
    [(reason,)] = harness.records("select data1 from queue_log where event = 'PAUSE'")
    assert reason == "lunch", "the reason code, as Asterisk's PAUSE data1"


def test_unpause_says_which_pause_ended_and_how_long_it_lasted(harness):
    """*471 (lunch), 12 min 5 s later *48: the agent-state event carries ended_pause and
    paused_seconds and reads "ready after lunch (12m 5s)"; the queue log's UNPAUSE line has the
    reason and the seconds; the agent state history keeps the same reason."""
    phone = harness.logged_in_agent("1001")
    phone.pause("1")
    received = harness.event_stream("agent-1001")
    harness.advance(725 - 1)
    phone.unpause()
    [(_, event)] = [item for item in received() if item[0] == "agent-state"]
    assert event["state"] == "available" and event["previous"] == "paused"
    assert event["ended_pause"] == "lunch" and abs(event["paused_seconds"] - 725) < 2
    assert event["reason"].startswith("ready after lunch (12m ")
    [(data1, data2)] = harness.records("select data1, data2 from queue_log where event = 'UNPAUSE'")
    assert data1 == "lunch" and abs(int(data2) - 725) < 2
    [(history,)] = harness.records("select reason from agent_states where state = 'available' "
                                   "order by id desc limit 1")
    assert history == event["reason"]


def test_logout_feature_code_logs_the_agent_out(harness):
    """*46: agent_logged_out prompt, state logged_out, AGENTLOGOFF in the queue log."""
    phone = harness.logged_in_agent("1003")
    call = phone.logout()
    assert harness.prompts_heard(call.rtp_received()) == ["agent_logged_out"]
    assert harness.agent_state("1003") == "logged_out"
    assert [row[0] for row in harness.queue_log()] == ["AGENTLOGIN", "AGENTLOGOFF"]


def test_second_login_says_already_logged_in(harness):
    """*45 twice: the second changes nothing and is logged as `already`."""
    phone = harness.logged_in_agent("1002")
    phone.login()
    assert harness.logged(r"agent=1002 feature=login result=already")
    assert harness.agent_state("1002") == "available"
    assert [row[0] for row in harness.queue_log()] == ["AGENTLOGIN"]
