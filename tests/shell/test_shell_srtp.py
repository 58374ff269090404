"""SRTP (SDES, RFC 4568) in process: the trunk's and the agent's policy decide what is answered and
offered; prompts, DTMF and the bridged conversation travel encrypted and arrive intact; forged and
replayed packets are dropped, counted and logged once.

The peers' side of SRTP is libsrtp (pylibsrtp) driven by the test; crypto lines are written and
read here with base64 and a regex, not with the server's SDP code.
"""

from __future__ import annotations

import base64
import re

import pylibsrtp

from .harness import queue_files
from .test_shell_queue import Q
from .wire import RtpSeen, build_request, offer_sdp, telephone_event

CALLER_KEY = bytes(range(100, 130))
AGENT_KEY = bytes(range(200, 230))
SRTP_TAG_BYTES = 10


def with_crypto(body: bytes, key: bytes, *, proto: str = "RTP/SAVP", tag: int = 1) -> bytes:
    """An SDP body turned into an SRTP one: `proto` on the m= line and one crypto line."""
    text = body.decode().replace("RTP/AVP", proto)
    return (text + f"a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}\r\n").encode()


def crypto_in(body: bytes) -> tuple[str, int, bytes]:
    """(m= profile, crypto tag, key) of the one audio stream of an SDP body from the server."""
    text = body.decode()
    proto = re.search(r"^m=audio \d+ (\S+)", text, re.M).group(1)
    [(tag, key)] = re.findall(r"^a=crypto:(\d+) AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)\s*$", text, re.M)
    return proto, int(tag), base64.b64decode(key)


class SrtpEnd:
    """One peer's SRTP: protects with its own key, unprotects with the server's."""

    def __init__(self, own_key: bytes, server_key: bytes) -> None:
        self.server_key = server_key
        self.tx = pylibsrtp.Session(pylibsrtp.Policy(key=own_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self.rx = pylibsrtp.Session(pylibsrtp.Policy(key=server_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))

    def send_audio(self, call, frames: int, payload: bytes) -> list[bytes]:
        """`frames` PCMU packets, protected, to the server; the protected packets are returned."""
        sent = [self.tx.protect(call.rtp.packet(payload, 0)) for _ in range(frames)]
        for packet in sent:
            call.peer.send_rtp(call.server_rtp, packet)
        return sent

    def send_digit(self, call, digit: str, payload_type: int = 101) -> None:
        """An RFC 4733 key press (3 updates, 3 ends), each packet protected."""
        start = call.rtp.timestamp
        for n in range(6):
            event = telephone_event(digit, end=n >= 3, duration=160 * min(n + 1, 3))
            packet = call.rtp.packet(event, payload_type, marker=n == 0, timestamp=start, advance=False)
            call.peer.send_rtp(call.server_rtp, self.tx.protect(packet))
        call.rtp.timestamp += 480

    def clear(self, packets: list[RtpSeen]) -> list[RtpSeen]:
        """The packets as the peer's libsrtp decrypts them (each must pass authentication)."""
        return [RtpSeen(p.source, self.rx.unprotect(p.data), p.at) for p in packets]


def srtp_call(harness, number: str = "1000", *, port: int = 5070):
    """A caller whose RTP/SAVP offer to `number` was answered 200 and ACKed; (call, its SrtpEnd)."""
    caller = harness.caller(port=port)
    call = caller.invite(number, sdp=with_crypto(offer_sdp(caller.rtp_address), CALLER_KEY))
    answer = call.expect(200)
    call.ack()
    proto, tag, server_key = crypto_in(answer.body)
    assert (proto, tag) == ("RTP/SAVP", 1)
    return call, SrtpEnd(CALLER_KEY, server_key)


def test_required_trunk_refuses_plain_rtp_and_encrypts_prompts_and_dtmf(make_harness):
    """Trunk `srtp: required`: a plain offer gets 488 (nothing stays bound); an RTP/SAVP offer is
    answered RTP/SAVP with our own key; every prompt packet is SRTP (80-bit tag, no clear frame)
    and decrypts to the welcome and menu prompts; a key pressed as encrypted RFC 4733 events
    reaches the menu."""
    harness = make_harness(trunk_extra="srtp: required")
    plain = harness.caller(port=5080).invite("1000")
    refused = plain.expect(488)
    assert "SRTP is required here" in refused.headers.get("Warning")
    harness.advance(0.02)
    assert harness.bound_rtp_ports() == []
    call, srtp = srtp_call(harness)
    harness.advance(3.5)
    received = call.rtp_received()
    assert len(received) > 150 and {len(p.data) for p in received} == {12 + 160 + SRTP_TAG_BYTES}
    assert harness.prompts_heard(received) == [], "a prompt frame crossed the wire in clear"
    assert harness.prompts_heard(srtp.clear(received)) == ["welcome", "menu_main"]
    srtp.send_digit(call, "2")
    harness.advance(0.5)
    assert harness.logged(rf"call={call.call_id} dtmf digit=2 via=rfc4733")
    assert harness.logged(rf"call={call.call_id} INVITE .* media=srtp")


def test_forged_and_replayed_packets_are_dropped_counted_and_logged_once(make_harness):
    """A packet under the wrong key and a replay of a good one are dropped before the IVR sees
    them; acd_srtp_auth_failures_total counts both; one log line names the call."""
    harness = make_harness()
    call, srtp = srtp_call(harness)
    harness.advance(3.5)
    forger = SrtpEnd(bytes(30), bytes(30))
    forger.send_digit(call, "1")
    [good] = srtp.send_audio(call, 1, b"\x55" * 160)
    call.peer.send_rtp(call.server_rtp, good)
    harness.advance(0.5)
    assert harness.metric("acd_srtp_auth_failures_total") == 7
    assert not harness.logged(rf"call={call.call_id} dtmf digit=1")
    lines = harness.logged(rf"call={re.escape(call.call_id)} SRTP: dropped 1 packet\(s\) from 127\.0\.0\.1:\d+ "
                           r"failing authentication \(authentication failure\)")
    assert len(lines) == 1 and len(harness.logged("SRTP: dropped")) == 1


def test_bridge_decrypts_with_one_legs_key_and_encrypts_with_the_others(make_harness):
    """SRTP caller, agent with `srtp: required`: the agent is offered RTP/SAVP with a key of its
    own leg; audio and DTMF cross the bridge both ways, readable only with the right leg's key."""
    files = queue_files({"q": Q}, {"1001": "{q: 0}"})
    files["conf/agents.yaml"] = files["conf/agents.yaml"].replace("    queues: {q: 0}",
                                                                  "    srtp: required\n    queues: {q: 0}")
    harness = make_harness(extra_files=files)
    phone = harness.agent("1001")
    assert phone.register().status == 200
    assert "SRTP is required here" in phone.dial("*45").expect(488).headers.get("Warning"), \
        "the agent's own plain calls (feature codes) follow its policy too"
    assert harness.api("POST", "/api/agents/1001/login")[0] == 200
    call, caller_srtp = srtp_call(harness, "3000")
    offer = phone.offer()
    proto, tag, agent_leg_key = crypto_in(offer.invite.body)
    assert proto == "RTP/SAVP" and tag == 1 and agent_leg_key not in (caller_srtp.server_key, CALLER_KEY)
    offer.ring()
    offer.answer(with_crypto(offer_sdp(phone.rtp_address), AGENT_KEY))
    offer.expect_ack(timeout=1)
    agent_srtp = SrtpEnd(AGENT_KEY, agent_leg_key)
    since = harness.reactor.seconds()
    caller_srtp.send_audio(call, 5, b"\x11" * 160)
    agent_srtp.send_audio(offer, 5, b"\x22" * 160)
    caller_srtp.send_digit(call, "5")
    to_agent, to_caller = offer.rtp_received(), call.rtp_received(since=since)
    assert all(b"\x11" * 16 not in p.data for p in to_agent) and all(b"\x22" * 16 not in p.data for p in to_caller)
    heard_by_agent = agent_srtp.clear(to_agent)
    assert [p.payload for p in heard_by_agent[:5]] == [b"\x11" * 160] * 5
    assert {p.ssrc for p in heard_by_agent} == {call.rtp.ssrc}
    assert [p.payload[0] for p in heard_by_agent[5:]] == [5] * 6
    assert [p.payload for p in caller_srtp.clear(to_caller)] == [b"\x22" * 160] * 5
    assert harness.logged(r"agent=1001 answered \(srtp ")
    assert harness.metric("acd_srtp_auth_failures_total") == 0


def test_agent_hold_by_reinvite_keeps_the_srtp_streams_going(make_harness):
    """An SRTP agent re-INVITEs (hold, then resume) with its key: the answers carry our same key,
    and the streams carry on (no restarted packet index: the agent's libsrtp session, which
    refuses replays, keeps decrypting what we relay)."""
    files = queue_files({"q": Q}, {"1001": "{q: 0}"})
    files["conf/agents.yaml"] = files["conf/agents.yaml"].replace("    queues: {q: 0}",
                                                                  "    srtp: required\n    queues: {q: 0}")
    harness = make_harness(extra_files=files)
    phone = harness.agent("1001")
    assert phone.register().status == 200 and harness.api("POST", "/api/agents/1001/login")[0] == 200
    call, caller_srtp = srtp_call(harness, "3000")
    offer = phone.offer()
    _, _, agent_leg_key = crypto_in(offer.invite.body)
    offer.answer(with_crypto(offer_sdp(phone.rtp_address), AGENT_KEY))
    offer.expect_ack(timeout=1)
    agent_srtp = SrtpEnd(AGENT_KEY, agent_leg_key)
    caller_srtp.send_audio(call, 3, b"\x11" * 160)
    for direction in ("sendonly", "sendrecv"):
        offer._in_dialog("INVITE", headers=[("Contact", phone.contact), ("Content-Type", "application/sdp")],
                         body=with_crypto(offer_sdp(phone.rtp_address, direction=direction, version=offer.cseq),
                                          AGENT_KEY))
        answer = phone.expect_response(200, method="INVITE", call_id=offer.call_id, timeout=1)
        phone.send(build_request("ACK", offer.remote_target, [
            ("Via", phone.via()), ("Max-Forwards", "70"), ("From", offer.from_value), ("To", offer.to_value),
            ("Call-ID", offer.call_id), ("CSeq", f"{offer.cseq} ACK")]), offer.source)
        assert crypto_in(answer.body) == ("RTP/SAVP", 1, agent_leg_key)
    caller_srtp.send_audio(call, 3, b"\x33" * 160)
    relayed = [p.payload for p in agent_srtp.clear(offer.rtp_received()) if p.payload_type == 0]
    assert relayed[:3] == [b"\x11" * 160] * 3 and relayed[-3:] == [b"\x33" * 160] * 3
    assert harness.metric("acd_srtp_auth_failures_total") == 0


def test_optional_agent_gets_a_best_effort_offer_and_a_plain_answer_keeps_it_plain(make_harness):
    """Agent policy optional (the default): the offer is RTP/AVP with our crypto line; the phone
    answers plain, so the encrypted caller's audio reaches it decrypted."""
    harness = make_harness(extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}))
    phone = harness.logged_in_agent("1001")
    call, caller_srtp = srtp_call(harness, "3000")
    offer = phone.take_offer()
    assert crypto_in(offer.invite.body)[:2] == ("RTP/AVP", 1)
    caller_srtp.send_audio(call, 3, b"\x11" * 160)
    assert [p.payload for p in offer.rtp_received()] == [b"\x11" * 160] * 3
    offer.send_audio(2, payload=b"\x22" * 160)
    assert [p.payload for p in caller_srtp.clear(call.rtp_received()[-2:])] == [b"\x22" * 160] * 2


def test_trunk_with_srtp_off_refuses_savp_and_answers_best_effort_plain(make_harness):
    """Trunk `srtp: off`: RTP/SAVP gets 488; RTP/AVP with a crypto line is answered plain (no
    crypto line), and the prompts go out in clear."""
    harness = make_harness(trunk_extra="srtp: off")
    caller = harness.caller()
    savp = caller.invite("1000", sdp=with_crypto(offer_sdp(caller.rtp_address), CALLER_KEY))
    assert "SRTP is off here" in savp.expect(488).headers.get("Warning")
    best_effort = caller.invite("1000", sdp=with_crypto(offer_sdp(caller.rtp_address), CALLER_KEY,
                                                         proto="RTP/AVP"))
    answer = best_effort.expect(200)
    best_effort.ack()
    assert b"a=crypto" not in answer.body and b"RTP/AVP" in answer.body
    harness.advance(1)
    assert harness.prompts_heard(best_effort.rtp_received()) == ["welcome"]
