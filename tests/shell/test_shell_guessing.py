"""Password guessing spread over many addresses (issue 15): the account locks within 30 failures,
no guess is ever confirmed, and the agent's own registered phone keeps working."""

from __future__ import annotations

from .harness import queue_files
from .peers import AgentPhone


def test_guessing_from_rotating_addresses_locks_the_account_but_not_its_phone(make_harness):
    harness = make_harness(extra_files=queue_files({"q": "{when_no_agents: join}"}, {"1001": "{q: 0}"}))
    own = harness.agent("1001")
    assert own.register().status == 200
    statuses = []
    for address in range(20):
        host = f"127.0.1.{address + 1}"  # a new address every 3 guesses: under every per-address limit
        attacker = AgentPhone(harness, (host, 5060), (host, 5062), "1001", "unused")
        harness.peers.append(attacker)
        for guess in range(3):
            statuses.append(attacker.register(password=f"guess-{address}-{guess}").status)
            harness.advance(0.5)
    assert 200 not in statuses
    assert harness.logged(r"account '1001' locked for 300 s after 30 failed authentications")
    checked = harness.logged(r'auth failure: .* reason=wrong-password user="1001"$')
    assert len(checked) <= 30, "guesses after the lock are not checked"
    assert harness.logged(r'^auth failure: source=127\.0\.1\.\d+:5060 transport=UDP method=REGISTER reason=locked '
                          r'user="1001"$')
    # The right password from a new address is answered like a wrong one while the lock lasts...
    thief = AgentPhone(harness, ("127.0.2.1", 5060), ("127.0.2.1", 5062), "1001", "demo-1001-pw")
    harness.peers.append(thief)
    assert thief.register().status in (401, 403)
    # ...and the agent's own phone, registered from its address before, keeps working.
    assert own.register().status == 200


def test_an_operator_unlocks_the_account(make_harness):
    harness = make_harness(extra_files=queue_files({"q": "{when_no_agents: join}"}, {"1001": "{q: 0}"}))
    for address in range(11):
        host = f"127.0.1.{address + 1}"
        attacker = AgentPhone(harness, (host, 5060), (host, 5062), "1001", "unused")
        harness.peers.append(attacker)
        for guess in range(3):
            attacker.register(password=f"guess-{address}-{guess}")
    assert harness.logged(r"account '1001' locked")
    phone = AgentPhone(harness, ("127.0.2.1", 5060), ("127.0.2.1", 5062), "1001", "demo-1001-pw")
    harness.peers.append(phone)
    assert phone.register().status in (401, 403)
    assert harness.api("POST", "/api/agents/1001/unlock") == (200, {"id": "1001", "result": "unlocked"})
    assert phone.register().status == 200
    assert harness.api("POST", "/api/agents/1001/unlock") == (200, {"id": "1001", "result": "not-locked"})
