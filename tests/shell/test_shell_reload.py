"""Reload while calls run: every edit of conf/agents.yaml applies to the next decision, what is
under way is kept, and what needs a restart is refused (in process, fake clock)."""

from __future__ import annotations

import re

from .harness import queue_files

FAST = "ring_timeout: 4, when_no_agents: join, max_missed_offers: 3"
Q = "{strategy: longest-idle, wrap_up: 2, " + FAST + "}"


def files(queues: dict[str, str], members: dict[str, str], *, skills: dict[str, str] | None = None,
          requirements: dict[str, str] | None = None) -> dict[str, str]:
    """queue_files, with per-agent skills and per-queue skill requirements on the flows' queue step."""
    result = queue_files(queues, members)
    text = result["conf/agents.yaml"]
    for agent, skill_text in (skills or {}).items():
        text = re.sub(rf'(  "{agent}":\n(?:    .*\n|      .*\n)*?)    skills: \{{english: 5\}}',
                      rf"\g<1>    skills: {skill_text}", text)
    result["conf/agents.yaml"] = text
    for queue, requirement in (requirements or {}).items():
        path = f"ivr_flows/to_{queue}.yaml"
        result[path] = result[path].replace(f"{{queue: {queue}, ", f"{{queue: {queue}, skills: {requirement}, ")
    return result


def save(harness, new_files: dict[str, str]) -> None:
    for path, text in new_files.items():
        (harness.root / path).write_text(text)
    for path in ("ivr_flows/to_q2.yaml",):
        if path not in new_files and (harness.root / path).exists():
            (harness.root / path).unlink()
    assert harness.reload(), harness.log_lines()[-5:]


def queue_info(harness, name: str) -> dict:
    status, queues = harness.api("GET", "/api/queues")
    assert status == 200
    return next(q for q in queues if q["queue"] == name)


def test_strategy_change_applies_to_the_next_call(make_harness):
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}", "1002": "{q: 0}"}))
    first, second = harness.logged_in_agent("1001"), harness.logged_in_agent("1002")
    save(harness, files({"q": "{strategy: ring-all, wrap_up: 2, " + FAST + "}"},
                        {"1001": "{q: 0}", "1002": "{q: 0}"}))
    assert queue_info(harness, "q")["strategy"] == "ring-all"
    harness.answered_call("3000")
    first.offer().ring()
    second.offer().ring()  # both phones ring: ring-all, without a restart
    assert harness.agent_state("1001") == harness.agent_state("1002") == "offered"


def test_wrap_up_change_applies_to_the_next_call(make_harness):
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}"}))
    phone = harness.logged_in_agent("1001")
    save(harness, files({"q": "{strategy: longest-idle, wrap_up: 6, " + FAST + "}"}, {"1001": "{q: 0}"}))
    assert queue_info(harness, "q")["wrap_up_seconds"] == 6
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    offer.bye()
    phone.expect_response(200, method="BYE", call_id=offer.call_id)
    call.respond(caller.expect_request("BYE", call_id=call.call_id), 200)
    harness.advance(5.5)
    assert harness.agent_state("1001") == "wrap_up"
    harness.advance(0.6)
    assert harness.agent_state("1001") == "available"


def test_skill_change_applies_without_logging_in_again(make_harness):
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}"}, requirements={"q": "{english: 8}"}))
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    harness.advance(1)
    assert harness.agent_state("1001") == "available"  # english 5 < 8: the caller waits
    save(harness, files({"q": Q}, {"1001": "{q: 0}"}, skills={"1001": "{english: 9}"},
                        requirements={"q": "{english: 8}"}))
    phone.take_offer()  # offered at once, no *46/*45
    assert harness.agent_info("1001")["skills"] == {"english": 9}


def test_new_queue_and_membership_take_calls_at_once(make_harness):
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}"}))
    phone = harness.logged_in_agent("1001")
    save(harness, files({"q": Q, "q2": Q}, {"1001": "{q: 0, q2: 1}"}))
    assert queue_info(harness, "q2")["members"] == {"1001": 1}
    harness.answered_call("3001")
    offer = phone.take_offer()
    assert offer.invite.headers.get("X-ACD-Queue") == "q2"


def test_removed_queue_keeps_its_waiting_caller_until_it_leaves(make_harness):
    harness = make_harness(extra_files=files({"q": Q, "q2": Q}, {"1001": "{q: 0}"}))
    caller, call = harness.answered_call("3001")
    harness.advance(1)
    assert harness.queue_waiting("q2") == 1
    save(harness, files({"q": Q}, {"1001": "{q: 0}"}))
    assert harness.logged(r"reload: queue 'q2' removed: it takes no new calls; its 1 waiting caller\(s\) stay")
    assert queue_info(harness, "q2")["retired"] is True
    harness.advance(2)
    assert call.call_id in harness.active_call_ids() and not caller.requests("BYE")
    call.bye()
    call.expect(200, method="BYE")
    harness.advance(0.1)
    status, queues = harness.api("GET", "/api/queues")
    assert "q2" not in [q["queue"] for q in queues]
    assert harness.leaks() == {}


def test_agent_removed_while_on_a_call_is_logged_out_after_it(make_harness):
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}", "1002": "{q: 0}"}))
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    save(harness, files({"q": Q}, {"1002": "{q: 0}"}))
    assert harness.agent_state("1001") == "on_call"
    harness.advance(1)
    offer.send_audio(3, payload=b"\x22" * 160)
    assert len(call.rtp_received()) >= 3, "the call goes on"
    call.bye()
    call.expect(200, method="BYE")
    offer.respond(offer.expect_request("BYE"), 200)
    harness.advance(2.1)
    assert harness.logged(r"agent=1001 state wrap_up -> logged_out \(removed from the configuration \(after the call\)\)")


def test_listener_change_is_refused_and_nothing_applies(make_harness):
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}"}))
    settings = harness.root / "conf" / "acd.yaml"
    (harness.root / "conf" / "agents.yaml").write_text(
        files({"q": "{strategy: ring-all, wrap_up: 2, " + FAST + "}"}, {"1001": "{q: 0}"})["conf/agents.yaml"])
    text = settings.read_text()
    settings.write_text(re.sub(r"(rtp:\n(?:  .*\n)*?  ports: )(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 2),
                               text, count=1))
    status, body = harness.api("POST", "/api/reload")
    assert status == 422 and body["reloaded"] is False and body["generation"] == 1
    assert any("needs a restart" in problem and problem.startswith("rtp.port_min") for problem in body["problems"])
    assert queue_info(harness, "q")["strategy"] == "longest-idle"
    status, config = harness.api("GET", "/api/config")
    assert status == 200 and config["generation"] == 1 and config["server_time"] == harness.reactor.seconds()


def test_realm_change_challenges_with_the_new_realm(make_harness):
    """A new realm (with its new HA1s) applies to the next REGISTER without a restart."""
    harness = make_harness(extra_files=files({"q": Q}, {"1001": "{q: 0}"}))
    import hashlib

    text = files({"q": Q}, {"1001": "{q: 0}"})["conf/agents.yaml"].replace("realm: example-acd", "realm: other-acd")
    credentials = b"1001:other-acd:demo-1001-pw"
    text = re.sub(r"md5: [0-9a-f]{32}", f"md5: {hashlib.md5(credentials).hexdigest()}", text)
    text = re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {hashlib.sha256(credentials).hexdigest()}", text)
    (harness.root / "conf" / "agents.yaml").write_text(text)
    assert harness.reload()
    phone = harness.agent("1001")
    first = phone.register(authenticate=False)
    assert all('realm="other-acd"' in c for c in first.headers.get_all("WWW-Authenticate"))
    assert phone.register().status == 200
