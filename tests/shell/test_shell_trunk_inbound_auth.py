"""A trunk that proves itself by Digest (auth:) instead of its source address: an INVITE from an
unlisted address gets 407; the same call sent again with the trunk's credentials is answered; a
wrong password gets another 407 and is counted, never answered."""

from .test_shell_queue import queue_harness
from .wire import digest_authorization

AUTH = "auth:\n  user: pbx-london\n  password: trunk-pw\n  realm: acd.test\n"


def _invite_with(call, challenge_response, password):
    challenge = challenge_response.headers.get_all("Proxy-Authenticate")[0]
    answer = digest_authorization(challenge, method="INVITE", uri=call.uri, username="pbx-london", password=password)
    call.cseq += 1
    call.send_invite(extra=[("Proxy-Authorization", answer)])


def test_an_unlisted_source_with_the_trunks_credentials_is_that_trunk(make_harness):
    """407 with realm acd.test (SHA-256 and MD5), then 200 for the answer; the call is on trunk test."""
    harness = queue_harness(make_harness, trunk_sources=["192.0.2.1"], trunk_extra=AUTH)
    caller = harness.caller()
    call = caller.invite("3000")
    challenge = call.expect(407)
    assert 'realm="acd.test"' in challenge.headers.get("Proxy-Authenticate")
    _invite_with(call, challenge, "trunk-pw")
    call.expect(200)
    call.ack()
    assert harness.call_record(call.call_id)["trunk"] == "test"


def test_a_wrong_trunk_password_is_challenged_again_and_logged(make_harness):
    """A wrong answer: another 407 and an auth failure line naming the source and the user."""
    harness = queue_harness(make_harness, trunk_sources=["192.0.2.1"], trunk_extra=AUTH)
    caller = harness.caller()
    call = caller.invite("3000")
    _invite_with(call, call.expect(407), "guess")
    call.expect(407)
    assert harness.logged(r"trunk auth failure from 127\.0\.0\.1:\d+: wrong-password user='pbx-london'")
    assert caller.responses(call_id=call.call_id, method="INVITE")[-1].status != 200
