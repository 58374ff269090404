"""Supervisors on a bridged call, in process: listen, whisper and barge by feature code and keys
4/5/6, or through the API (we call the supervisor's phone); an agent's account is refused. Each party
sends its own constant frame, so what a party receives tells exactly whom it hears (a mix of two is
the sum, acd.media.mixer.mix_frames). Agent 1001 takes calls of queue q; 2001 is a supervisor,
1002 a plain agent."""

from __future__ import annotations

import hashlib

import pytest

from acd.media.mixer import mix_frames

from .harness import REALM, queue_files
from .test_shell_queue import Q

CALLER, AGENT, SUPERVISOR = b"\x11" * 160, b"\x22" * 160, b"\x44" * 160


def supervisor_entry(extension: str) -> str:
    credentials = f"{extension}:{REALM}:demo-{extension}-pw".encode()
    return (f'  "{extension}":\n    name: Supervisor {extension}\n    role: supervisor\n    password_ha1:\n'
            f"      md5: {hashlib.md5(credentials).hexdigest()}\n"
            f"      sha256: {hashlib.sha256(credentials).hexdigest()}\n")


def monitoring_harness(make_harness, **options):
    files = queue_files({"q": Q}, {"1001": "{q: 0}", "1002": "{}"})
    files["conf/agents.yaml"] += supervisor_entry("2001")
    return make_harness(extra_files=files, **options)


def mixed(*frames: bytes) -> bytes:
    return mix_frames([(frame, "PCMU") for frame in frames], "PCMU")


def exchange(harness, parties, rounds: int = 4) -> dict[str, list[bytes]]:
    """Each party sends one frame per 20 ms for `rounds` ticks; what each received meanwhile."""
    since = harness.reactor.seconds() + 0.001
    for _ in range(rounds):
        for call, payload in parties.values():
            call.send_audio(1, payload=payload)
        harness.advance(0.02)
    return {name: [packet.payload for packet in call.rtp_received(since=since)]
            for name, (call, _) in parties.items()}


def hears(received: list[bytes], expected: bytes) -> bool:
    """The party got frames, all after the first (the mix's start) being `expected`."""
    return len(received) >= 3 and set(received[1:]) == {expected}


def bridged_call(harness):
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    harness.advance(0.2)
    return call, offer


@pytest.mark.parametrize("media_workers", [False, True], ids=["in-process", "media-worker"])
def test_supervisor_listens_then_whispers_then_barges_by_phone_then_leaves(make_harness, media_workers):
    """*601001: listen (the supervisor hears caller+agent, nobody hears them); key 5: whisper (the agent
    hears caller+supervisor, the caller still only the agent); key 6: barge (everyone hears the other
    two); the supervisor's BYE: caller and agent relay again. Every step is in the call's records."""
    harness = monitoring_harness(make_harness, media_workers=media_workers)
    call, offer = bridged_call(harness)
    supervisor = harness.agent("2001", port=50200)
    assert supervisor.register().status == 200
    spy = supervisor.dial("*601001")
    spy.expect(200)
    spy.ack()
    parties = {"caller": (call, CALLER), "agent": (offer, AGENT), "supervisor": (spy, SUPERVISOR)}
    heard = exchange(harness, parties)
    assert hears(heard["supervisor"], mixed(CALLER, AGENT))
    assert hears(heard["caller"], AGENT) and hears(heard["agent"], CALLER)
    spy.rfc4733_digit("5")
    harness.advance(0.04)
    heard = exchange(harness, parties)
    assert hears(heard["agent"], mixed(CALLER, SUPERVISOR)), "whisper: the agent hears the supervisor"
    assert hears(heard["caller"], AGENT), "whisper: the caller does not"
    assert hears(heard["supervisor"], mixed(CALLER, AGENT))
    spy.rfc4733_digit("6")
    harness.advance(0.04)
    heard = exchange(harness, parties)
    assert hears(heard["caller"], mixed(AGENT, SUPERVISOR)) and hears(heard["agent"], mixed(CALLER, SUPERVISOR))
    spy.bye()
    spy.expect(200, method="BYE")
    harness.advance(0.1)
    since = harness.reactor.seconds()
    call.send_audio(2, payload=CALLER)
    offer.send_audio(2, payload=AGENT)
    relayed = offer.rtp_received(since=since)
    assert [p.payload for p in relayed] == [CALLER] * 2 and {p.ssrc for p in relayed} == {call.rtp.ssrc}
    harness.flush_records()
    rows = harness.records("select supervisor, agent, event, mode, via from monitoring where call_id = ? "
                           "order by id", call.call_id)
    assert rows == [("2001", "1001", "start", "listen", "phone"), ("2001", "1001", "mode", "whisper", "phone"),
                    ("2001", "1001", "mode", "barge", "phone"), ("2001", "1001", "end", "barge", "phone")]
    assert harness.logged(rf"call={call.call_id} supervisor=2001 switched to barge \(supervisor 2001 key 6\)")


def test_an_agents_account_dialling_the_listen_code_is_refused_403(make_harness):
    """1002 is an agent, not a supervisor: *601001 with valid Digest gets 403 and nothing is mixed."""
    harness = monitoring_harness(make_harness)
    call, offer = bridged_call(harness)
    agent = harness.agent("1002")
    assert agent.register().status == 200
    attempt = agent.dial("*601001")
    refusal = attempt.expect(403)
    assert "only supervisors" in (refusal.headers.get("Warning") or "")
    assert harness.logged(r"user=1002 refused 403: not a supervisor, may not listen agent=1001")
    assert harness.records("select count(*) from monitoring") == [(0,)]


def test_listen_code_for_an_agent_on_no_call_is_404(make_harness):
    """*601001 while agent 1001 talks to nobody: 404 with a Warning saying so."""
    harness = monitoring_harness(make_harness)
    supervisor = harness.agent("2001", port=50200)
    assert supervisor.register().status == 200
    assert "on no call" in supervisor.dial("*601001").expect(404).headers.get("Warning")


def test_api_calls_the_supervisor_joins_switches_and_leaves(make_harness):
    """POST /api/calls/{id}/monitor: our INVITE rings 2001's phone; answered, it listens; PATCH barge:
    the caller hears the supervisor; DELETE: BYE to the supervisor. An agent account is refused 403,
    a second supervisor session on the same call 409."""
    harness = monitoring_harness(make_harness)
    call, offer = bridged_call(harness)
    supervisor = harness.agent("2001", port=50200)
    assert supervisor.register().status == 200
    status, body = harness.api("POST", f"/api/calls/{call.call_id}/monitor", {"supervisor": "1002", "mode": "listen"})
    assert (status, body["error_id"]) == (403, "not-a-supervisor")
    status, body = harness.api("POST", f"/api/calls/{call.call_id}/monitor", {"supervisor": "2001", "mode": "listen"})
    assert (status, body["result"]) == (200, "calling")
    ring = supervisor.incoming(timeout=1)
    assert ring.header("X-ACD-Monitor") == "listen"
    status, body = harness.api("PATCH", f"/api/calls/{call.call_id}/monitor", {"mode": "barge"})
    assert (status, body["error_id"]) == (409, "monitor-refused"), "not before the phone answers"
    ring.answer()
    ring.expect_ack(timeout=1)
    parties = {"caller": (call, CALLER), "agent": (offer, AGENT), "supervisor": (ring, SUPERVISOR)}
    heard = exchange(harness, parties)
    assert hears(heard["supervisor"], mixed(CALLER, AGENT)) and hears(heard["caller"], AGENT)
    status, body = harness.api("POST", f"/api/calls/{call.call_id}/monitor", {"supervisor": "2001"})
    assert (status, body["details"]["result"]) == (409, "already-monitored")
    assert harness.api("GET", "/api/monitoring")[1][0]["mode"] == "listen"
    assert harness.api("PATCH", f"/api/calls/{call.call_id}/monitor", {"mode": "barge"})[1]["result"] == "changed"
    heard = exchange(harness, parties)
    assert hears(heard["caller"], mixed(AGENT, SUPERVISOR))
    assert harness.api("DELETE", f"/api/calls/{call.call_id}/monitor")[1]["result"] == "left"
    bye = ring.expect_request("BYE", timeout=1)
    ring.respond(bye, 200)
    assert harness.api("DELETE", f"/api/calls/{call.call_id}/monitor")[0] == 404
    harness.flush_records()
    assert [row[0] for row in harness.records("select event from monitoring order by id")] == \
        ["calling", "start", "mode", "end"]


def test_the_call_ending_hangs_up_the_supervisor(make_harness):
    """The caller hangs up while the supervisor listens: the supervisor's phone gets BYE."""
    harness = monitoring_harness(make_harness)
    call, offer = bridged_call(harness)
    supervisor = harness.agent("2001", port=50200)
    assert supervisor.register().status == 200
    spy = supervisor.dial("*611001")
    spy.expect(200)
    spy.ack()
    call.bye()
    bye = supervisor.expect_request("BYE", call_id=spy.call_id, timeout=2)
    spy.respond(bye, 200)
    harness.advance(1)
    assert harness.logged(rf"call={call.call_id} supervisor=2001 monitoring ended: the call ended")


def test_api_gives_up_when_the_supervisors_phone_does_not_answer(make_harness):
    """The supervisor's phone rings and rings: after RING_SECONDS the INVITE is cancelled, the session
    is gone and the call goes on unmonitored."""
    from acd.calls.monitoring import RING_SECONDS

    harness = monitoring_harness(make_harness)
    call, offer = bridged_call(harness)
    supervisor = harness.agent("2001", port=50200)
    assert supervisor.register().status == 200
    assert harness.api("POST", f"/api/calls/{call.call_id}/monitor", {"supervisor": "2001"})[0] == 200
    ring = supervisor.incoming(timeout=1)
    ring.ring()
    harness.advance(RING_SECONDS + 0.5, step=0.5)
    cancel = ring.expect_request("CANCEL", timeout=1)
    ring.respond(cancel, 200)
    ring.decline(487)
    harness.advance(1)
    assert harness.api("GET", "/api/monitoring")[1] == []
    assert harness.logged(rf"call={call.call_id} supervisor=2001 monitoring ended: the supervisor's phone did not "
                          "answer in 30 s")


def test_srtp_caller_and_agent_are_mixed_decrypted_and_each_hears_under_its_own_key(make_harness):
    """SRTP caller, agent with `srtp: required`, supervisor on plain RTP barging (*62): each party's
    packets decrypt, under its own leg's key, to the mix of the other two; nothing crosses in clear."""
    from .test_shell_srtp import AGENT_KEY, SrtpEnd, crypto_in, srtp_call, with_crypto
    from .wire import offer_sdp

    files = queue_files({"q": Q}, {"1001": "{q: 0}"})
    files["conf/agents.yaml"] = files["conf/agents.yaml"].replace("    queues: {q: 0}",
                                                                  "    srtp: required\n    queues: {q: 0}")
    files["conf/agents.yaml"] += supervisor_entry("2001").replace("    role: supervisor\n",
                                                                  "    role: supervisor\n    srtp: \"off\"\n")
    harness = make_harness(extra_files=files)
    phone = harness.agent("1001")
    assert phone.register().status == 200
    assert harness.api("POST", "/api/agents/1001/login")[0] == 200
    call, caller_srtp = srtp_call(harness, "3000")
    offer = phone.offer()
    _, _, agent_leg_key = crypto_in(offer.invite.body)
    offer.ring()
    offer.answer(with_crypto(offer_sdp(phone.rtp_address), AGENT_KEY))
    offer.expect_ack(timeout=1)
    agent_srtp = SrtpEnd(AGENT_KEY, agent_leg_key)
    supervisor = harness.agent("2001", port=50200)
    spy = supervisor.dial("*621001")
    spy.expect(200)
    spy.ack()
    since = harness.reactor.seconds() + 0.001
    for _ in range(4):
        caller_srtp.send_audio(call, 1, CALLER)
        agent_srtp.send_audio(offer, 1, AGENT)
        spy.send_audio(1, payload=SUPERVISOR)
        harness.advance(0.02)
    to_caller, to_agent = call.rtp_received(since=since), offer.rtp_received(since=since)
    assert all(CALLER[:16] not in p.data and AGENT[:16] not in p.data for p in to_caller + to_agent)
    assert hears([p.payload for p in caller_srtp.clear(to_caller)], mixed(AGENT, SUPERVISOR))
    assert hears([p.payload for p in agent_srtp.clear(to_agent)], mixed(CALLER, SUPERVISOR))
    assert hears([p.payload for p in spy.rtp_received(since=since)], mixed(CALLER, AGENT))
    assert harness.metric("acd_srtp_auth_failures_total") == 0
    spy.bye()
    spy.expect(200, method="BYE")
