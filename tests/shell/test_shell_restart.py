"""Agents' ACD state survives a restart of the server, after a clean stop (SIGTERM) and after a crash.

Each test builds a server, puts agents in some state, stops it (cleanly: the shutdown triggers run;
or by a crash: none runs) and starts a new server on the same data directory a while later; then it
asserts on what the new server shows (API, records, log) and sends (SIP MESSAGE to the phones).
Queue `q` (number 3000) holds agents 1001-1003; pause reason code 1 is "lunch".
"""

from __future__ import annotations

from acd.sip.message import parse_message

from .harness import queue_files
from .wire import build_response

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 30, when_no_agents: join}"
MEMBERS = {"1001": "{q: 0}", "1002": "{q: 0}", "1003": "{q: 0}"}


def restart_setup(make_harness, members=MEMBERS):
    return make_harness(extra_files=queue_files({"q": Q}, members))


def messages_to(harness, phone_port: int) -> list:
    """MESSAGE requests the server put on the wire for an agent phone's address (answered or not)."""
    found = []
    for sent in harness.reactor.network.log:
        if sent.destination == ("127.0.0.1", phone_port) and sent.data.startswith(b"MESSAGE "):
            found.append(parse_message(sent.data))
    return found


def presence(harness, agent_id: str) -> tuple:
    return harness.records("select state, pause_reason from agent_presence where agent_id = ?", agent_id)[0]


def test_agents_are_back_in_the_same_state_after_a_clean_stop(make_harness, restart_harness):
    """SIGTERM, then a start a minute later: the available agent is available, the paused one paused
    for lunch, the one who never logged in is still logged out; nobody is messaged (nothing changed
    for them), and the next call is offered to the available agent."""
    first = restart_setup(make_harness)
    first.logged_in_agent("1001")
    paused = first.logged_in_agent("1002")
    paused.pause("1")
    assert first.agent_info("1002")["pause_reason"] == "lunch"
    assert presence(first, "1002") == ("paused", "lunch")

    second = restart_harness(first, after=60)
    assert second.logged(r"starting after a clean stop \(stopped at [\d.]+\); 0 call\(s\) left open, "
                         r"2 agent\(s\) were logged in")
    assert second.logged(r"^restored 2 agent\(s\) after a clean stop: 1001 available, 1002 paused \(lunch\)$")
    assert second.agent_state("1001") == "available"
    assert (second.agent_state("1002"), second.agent_info("1002")["pause_reason"]) == ("paused", "lunch")
    assert second.agent_state("1003") == "logged_out"
    assert messages_to(second, 50010) == [] and messages_to(second, 50020) == []
    phone = second.agent("1001")
    second.answered_call("3000")
    assert phone.offer(timeout=2).header("X-ACD-Queue") == "q"


def test_after_a_crash_the_call_is_interrupted_and_the_agent_on_it_is_available_and_told(make_harness,
                                                                                        restart_harness):
    """SIGKILL while 1001 talks to a caller and 1002 is paused: the call's record is closed as
    interrupted; 1001 comes back available and its phone gets a MESSAGE saying so (answered 200,
    not sent again); 1002 stays paused for lunch; the new call goes to 1001."""
    first = restart_setup(make_harness)
    talker = first.logged_in_agent("1001")
    first.logged_in_agent("1002").pause("1")
    caller, call = first.answered_call("3000")
    talker.take_offer()
    assert first.agent_state("1001") == "on_call"

    second = restart_harness(first, crash=True, after=30)
    assert second.logged(r"starting after a crash; 1 call\(s\) left open, 2 agent\(s\) were logged in")
    assert second.logged(r"^restored 2 agent\(s\) after a crash: 1001 available \(was on_call\), "
                         r"1002 paused \(lunch\)$")
    record = second.call_record(call.call_id)
    assert (record["outcome"], record["end_reason"]) == ("interrupted", "server stopped unexpectedly")
    assert second.agent_state("1001") == "available" and second.agent_state("1002") == "paused"
    assert presence(second, "1001") == ("available", None)
    (message,) = messages_to(second, 50010)
    assert message.uri == "sip:1001@127.0.0.1:50010"
    assert message.headers.get("Content-Type").startswith("text/plain")
    assert message.body == b"ACD restarted: you are available again"
    assert messages_to(second, 50020) == [], "1002's state did not change"
    phone = second.agent("1001")
    retransmitted = phone.expect_request("MESSAGE", timeout=1)
    phone.send(build_response(retransmitted, 200))
    second.advance(10)
    assert len(messages_to(second, 50010)) == 2, "answered: no more retransmissions"
    assert second.logged(r"agent=1001 told by SIP MESSAGE to sip:1001@127.0.0.1:50010")
    events = second.events("agent-1001")
    assert [(kind, data["previous"], data["state"], data["after"]) for kind, data in events] == [
        ("agent-restored", "on_call", "available", "a crash")]
    second.answered_call("3000", port=5072)
    assert phone.offer(timeout=2).header("X-ACD-Queue") == "q"
    assert second.events("agent-1001") == [], "the restore notice is kept only until the next event"


def test_agent_whose_registration_expired_while_down_is_logged_out_and_told_on_the_stream(make_harness,
                                                                                          restart_harness):
    """The phone registered for 600 s; the server is down for 700 s: the agent is logged out, with
    the reason in the history and the log, and told on their event stream (no contact to message)."""
    first = restart_setup(make_harness)
    first.logged_in_agent("1001")
    second = restart_harness(first, after=700)
    assert second.agent_state("1001") == "logged_out"
    assert second.logged(r"^restored 0 agent\(s\) after a clean stop; logged out: 1001 "
                         r"\(binding expired while the server was down\)$")
    assert second.logged(r"agent=1001 not told by SIP MESSAGE: no registered contact")
    assert second.records("select state, reason from agent_states where agent_id = '1001' order by id desc "
                          "limit 1") == [("logged_out", "binding expired while the server was down")]
    assert presence(second, "1001") == ("logged_out", None)
    assert second.queue_log()[-1] == ("AGENTLOGOFF", "", "1001")
    ((kind, data),) = second.events("agent-1001")
    assert (kind, data["state"], data["previous"], data["reason"]) == (
        "agent-restored", "logged_out", "available", "binding expired while the server was down")
    third = restart_harness(second, after=5)
    assert third.logged(r"2 agent\(s\) were logged in") == [] and third.agent_state("1001") == "logged_out"


def test_agent_removed_from_the_config_is_logged_out_and_messaged(make_harness, restart_harness):
    """1002 is no longer in conf/agents.yaml after the restart: logged out, and their phone (still
    registered) gets a MESSAGE saying why; 1001, still configured, is back."""
    first = restart_setup(make_harness)
    first.logged_in_agent("1001")
    first.logged_in_agent("1002")
    second = restart_harness(first, after=10, extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}))
    assert second.logged(r"^restored 1 agent\(s\) after a clean stop: 1001 available; "
                         r"logged out: 1002 \(no longer configured\)$")
    assert second.agent_state("1001") == "available"
    (message,) = messages_to(second, 50020)
    assert message.body == b"ACD restarted: you were logged out: no longer configured"
    assert messages_to(second, 50010) == []


def test_pause_asked_during_the_call_applies_after_the_crash(make_harness, restart_harness):
    """1001 asked (through the API) to pause for lunch after the call; the server crashed during the
    call: 1001 comes back paused for lunch, and is told."""
    first = restart_setup(make_harness)
    talker = first.logged_in_agent("1001")
    first.answered_call("3000")
    talker.take_offer()
    assert first.api("POST", "/api/agents/1001/pause", {"reason": "lunch"})[0] == 200
    assert first.agent_state("1001") == "on_call"
    second = restart_harness(first, crash=True, after=5)
    assert (second.agent_state("1001"), second.agent_info("1001")["pause_reason"]) == ("paused", "lunch")
    (message,) = messages_to(second, 50010)
    assert message.body == b"ACD restarted: you are paused (lunch)"


def test_no_agent_logged_in_means_nothing_to_restore(make_harness, restart_harness):
    """Agents that never logged in (or logged out) stay logged out; the start says so."""
    first = restart_setup(make_harness)
    phone = first.logged_in_agent("1001")
    phone.logout()
    second = restart_harness(first, after=5)
    assert second.logged(r"starting after a clean stop .*0 agent\(s\) were logged in")
    assert second.logged(r"^restored ") == []
    assert {second.agent_state(agent) for agent in ("1001", "1002", "1003")} == {"logged_out"}


def test_a_200_to_an_offer_from_before_a_crash_is_acked_and_hung_up(make_harness, restart_harness):
    """1001's phone rings with an offer when the server dies; after the restart the phone answers
    that old INVITE: the new server ACKs the 200 (RFC 3261 §13.2.2.4, or the phone retransmits it
    for 32 s) and BYEs the dialog nobody owns; a retransmitted 200 is ACKed again, not BYEd twice."""
    first = restart_setup(make_harness)
    ringing = first.logged_in_agent("1001")
    first.answered_call("3000")
    invite = ringing.offer().invite
    second = restart_harness(first, crash=True, after=5)
    phone = second.agent("1001")
    answer = build_response(invite, 200, to_tag="phone-tag", headers=[("Contact", phone.contact)])
    phone.send(answer, second.sip_address)
    phone.expect_request("ACK", call_id=invite.call_id, timeout=1)
    bye = phone.expect_request("BYE", call_id=invite.call_id, timeout=1)
    phone.send(build_response(bye, 200), second.sip_address)
    phone.send(answer, second.sip_address)
    phone.expect_request("ACK", call_id=invite.call_id, timeout=1)
    second.advance(1)
    assert phone.requests("BYE", call_id=invite.call_id) == [bye]
    assert second.logged(rf"call={invite.call_id} 200 OK to an INVITE we no longer know .*ACK and BYE")


def test_a_forged_200_from_a_stranger_is_acked_but_not_hung_up(make_harness):
    """A 2xx from an address that is no agent's phone gets its ACK only: we never BYE strangers."""
    harness = restart_setup(make_harness)
    stranger = harness.phone(("127.0.0.1", 5099))
    fake_invite = parse_message(
        b"INVITE sip:x@127.0.0.1:5099 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKgone\r\n"
        b"From: <sip:acd@127.0.0.1>;tag=ours\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: forged-1\r\n"
        b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    stranger.send(build_response(fake_invite, 200, to_tag="t", headers=[("Contact", stranger.contact)]),
                  harness.sip_address)
    stranger.expect_request("ACK", call_id="forged-1", timeout=1)
    harness.advance(1)
    assert stranger.requests("BYE", call_id="forged-1") == []
    assert harness.logged(r"call=forged-1 200 OK to an INVITE we no longer know, from 127\.0\.0\.1:5099 "
                          r"\(not an agent's phone\): ACKed only")
