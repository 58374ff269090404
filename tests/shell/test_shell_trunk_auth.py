"""A callback through a carrier that challenges: the trunk's account answers the proxy's 407, the
INVITE goes again in the same call (Call-ID, From tag), CSeq+1, a new branch, with the trunk's
caller ID; a wrong answer ends the callback instead of looping."""

from acd.sip.digest import DigestAuthenticator, compute_ha1
from acd.sip.headers import Via

from .peers import IncomingCall, OutgoingCall
from .test_shell_queue import queue_harness
from .wire import build_response, offer_sdp

CARRIER = ("127.0.0.1", 5090)
TRUNK_EXTRA = """register:
  user: acd
  password: secret
  domain: carrier.example
  proxy: 127.0.0.1:5090
  expires_seconds: 600
caller_id: "+442070000000"
"""


def _callback_invite(make_harness):
    harness = queue_harness(make_harness, trunk_extra=TRUNK_EXTRA)
    carrier = harness.phone(CARRIER, "trunk")
    caller, call = harness.answered_call("3000")
    harness.advance(1)
    call.info_digit("*")
    call.respond(caller.expect_request("BYE", call_id=call.call_id, timeout=7), 200)
    offer = harness.logged_in_agent("1001").take_offer()
    return harness, carrier, offer, carrier.incoming(timeout=1)


def _challenge(carrier, invite: IncomingCall, auth: DigestAuthenticator, now: float) -> None:
    headers = [("Proxy-Authenticate", value) for value in auth.challenge(now)]
    carrier.send(build_response(invite.invite, 407, to_tag="t407", headers=headers), invite.source)


def test_the_407_of_the_carrier_is_answered_and_the_callback_connects(make_harness):
    """First INVITE challenged (SHA-256 offered first); the ACK of the 407 keeps the first branch; the
    second INVITE answers with Proxy-Authorization, which the carrier's verifier accepts."""
    harness, carrier, offer, first = _callback_invite(make_harness)
    assert first.invite.uri == "sip:5551@carrier.example"
    assert "<sip:+442070000000@" in first.invite.headers.get("From")
    auth = DigestAuthenticator("carrier.example", b"carrier-secret-1")
    _challenge(carrier, first, auth, harness.reactor.seconds())
    ack = first.expect_ack()
    assert Via.parse(ack.headers.get("Via")).branch == Via.parse(first.invite.headers.get("Via")).branch
    second = carrier.incoming(timeout=1)
    headers = second.invite.headers
    assert second.call_id == first.call_id and headers.get("CSeq") == "2 INVITE"
    assert headers.get("From") == first.invite.headers.get("From")
    assert Via.parse(headers.get("Via")).branch != Via.parse(first.invite.headers.get("Via")).branch
    result = auth.verify("INVITE", headers.get("Proxy-Authorization"),
                         lambda user, algorithm: compute_ha1(user, "carrier.example", "secret", algorithm),
                         harness.reactor.seconds())
    assert result.ok and result.username == "acd" and "algorithm=SHA-256" in headers.get("Proxy-Authorization")
    second.ring()
    second.answer()
    second.expect_ack()
    assert harness.logged(r"challenged our INVITE to sip:5551@carrier.example \(407, realm 'carrier.example', SHA-256\)")
    harness.advance(3.2)
    assert harness.prompts_heard(second.rtp_received()) == ["callback_intro"]


def test_a_second_407_after_our_answer_fails_the_callback(make_harness):
    """The carrier refuses our credentials (a fresh, non-stale challenge again): the callback fails."""
    harness, carrier, offer, first = _callback_invite(make_harness)
    auth = DigestAuthenticator("carrier.example", b"carrier-secret-1")
    _challenge(carrier, first, auth, harness.reactor.seconds())
    second = carrier.incoming(timeout=1)
    _challenge(carrier, second, auth, harness.reactor.seconds())
    second.expect_ack()
    harness.advance(1)
    assert not [r for r in carrier.requests("INVITE") if r.headers.get("CSeq") == "3 INVITE"]
    assert harness.logged(r"callback to 5551 failed \(407\)")


def test_a_call_from_the_registrar_to_our_account_is_routed_by_its_to_number(make_harness):
    """The carrier rewrote the Request-URI to our Contact (sip:acd@us): the dialled number is To's."""
    harness = queue_harness(make_harness, trunk_extra=TRUNK_EXTRA)
    carrier = harness.phone(CARRIER, "trunk")
    call = OutgoingCall(carrier, "acd", call_id="to-routed@carrier", sdp=offer_sdp(carrier.rtp_address),
                        display="Jane")
    call.to_value = "<sip:3000@carrier.example>"
    call.send_invite()
    call.expect(200)
    call.ack()
    assert harness.logged(rf"call={call.call_id} INVITE from=\S+ dialled=3000 trunk=test")
