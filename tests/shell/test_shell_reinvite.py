"""re-INVITE and UPDATE from the far end, on the wire: hold, resume, a new media address, a codec
change, port 0 streams, several m-lines, offers without SDP, 491/488/500 (RFC 3261 §14, RFC 3264 §8,
RFC 3311). The caller's leg first, then the agent's.

What a call center does when the caller puts it on hold (sendonly or inactive): the call keeps its
place (IVR step, queue position, agent), we answer recvonly/inactive and send nothing (prompts and
music pause where they are, the agent's voice is not relayed), and all goes on when they resume.
"""

from __future__ import annotations

from .harness import queue_files
from .wire import Sdp, offer_sdp, tag_of

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join}"


def origin_version(body: bytes) -> tuple[str, int]:
    """(session id, version) of an SDP's o= line."""
    fields = next(line for line in body.decode().splitlines() if line.startswith("o=")).split()
    return fields[1], int(fields[2])


def media_lines(body: bytes) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith("m=")]


def reoffer(call, sdp: bytes, status: int = 200):
    """A re-INVITE with `sdp`; its final response (a 2xx is ACKed)."""
    call.reinvite(sdp)
    if status >= 300:
        return call.expect(status)  # ACKed in its transaction
    response = call.peer.expect_response(status, method="INVITE", call_id=call.call_id)
    call.ack()
    return response


def queued_harness(make_harness, agents=("1001",)):
    """Number 3000 goes straight into queue `q`."""
    return make_harness(extra_files=queue_files({"q": Q}, {agent: "{q: 0}" for agent in agents}))


# ---- the caller's leg ------------------------------------------------------------------------------
def test_caller_hold_in_the_ivr_pauses_the_prompt_and_resume_continues_it(harness):
    """sendonly: answered recvonly, o= version one higher, no RTP while held (the call stays up, in
    its step); sendrecv: the welcome prompt goes on from where it stopped, not skipped."""
    caller, call = harness.answered_call()
    harness.advance(1.0)
    first = caller.responses(call_id=call.call_id, method="INVITE")[0].body
    held = reoffer(call, offer_sdp(caller.rtp_address, direction="sendonly", version=2))
    assert Sdp.parse(held.body).direction == "recvonly"
    assert origin_version(held.body) == (origin_version(first)[0], origin_version(first)[1] + 1)
    since = harness.reactor.seconds()
    harness.advance(5.0)
    assert call.rtp_received(since=since + 0.001) == []
    assert harness.active_call_ids() == [call.call_id]
    assert harness.logged(rf"call={call.call_id} the caller holds the call: we stop sending")
    resumed = reoffer(call, offer_sdp(caller.rtp_address, version=3))
    assert Sdp.parse(resumed.body).direction == "sendrecv" and origin_version(resumed.body)[1] == \
        origin_version(first)[1] + 2
    since = harness.reactor.seconds()
    harness.advance(0.5)
    packets = call.rtp_received(since=since)
    assert 23 <= len(packets) <= 26 and harness.prompts_heard(packets) == ["welcome"]


def test_caller_inactive_is_answered_inactive_and_nothing_is_sent(harness):
    caller, call = harness.answered_call()
    answer = reoffer(call, offer_sdp(caller.rtp_address, direction="inactive", version=2))
    assert Sdp.parse(answer.body).direction == "inactive"
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert call.rtp_received(since=since + 0.001) == []


def test_a_refresh_keeps_our_sdp_version_and_a_change_bumps_it_once(harness):
    """RFC 3264 §8: the version goes up exactly when our SDP changes."""
    caller, call = harness.answered_call()
    first = caller.responses(call_id=call.call_id, method="INVITE")[0].body
    refresh = reoffer(call, offer_sdp(caller.rtp_address, version=1))
    assert refresh.body == first
    moved = reoffer(call, offer_sdp(("127.0.0.1", 41000), version=2, codecs=(0,), telephone_event=None))
    assert origin_version(moved.body)[1] == origin_version(first)[1] + 1, "no telephone-event: our answer changed"


def test_new_media_port_moves_our_rtp_and_nothing_goes_to_the_old_one(harness):
    caller, call = harness.answered_call()
    reoffer(call, offer_sdp(("127.0.0.1", 41000), version=2))
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert call.rtp_received(since=since + 0.021) == []
    moved = [sent for sent in harness.reactor.network.log if sent.destination == ("127.0.0.1", 41000)]
    assert len(moved) >= 24


def test_codec_change_in_the_ivr_switches_our_rtp_to_the_new_codec(harness):
    """PCMU in use, a re-offer with only PCMA: answered PCMA, our RTP follows (payload type 8)."""
    caller, call = harness.answered_call()
    harness.advance(0.5)
    answer = reoffer(call, offer_sdp(caller.rtp_address, codecs=(8,), version=2))
    assert Sdp.parse(answer.body).formats[0] == 8
    since = harness.reactor.seconds()
    harness.advance(0.5)
    packets = call.rtp_received(since=since + 0.001)
    assert len(packets) >= 24 and {p.payload_type for p in packets} == {8}
    assert harness.logged(rf"call={call.call_id} INVITE: media sendrecv PCMA")


def test_codec_change_while_queued_is_refused_488_and_the_call_goes_on(make_harness):
    """Agents are offered the caller's codec: it is pinned while the call is queued (or bridged)."""
    harness = queued_harness(make_harness)
    caller, call = harness.answered_call("3000")
    harness.advance(0.5)
    refused = reoffer(call, offer_sdp(caller.rtp_address, codecs=(8,), version=2), status=488)
    assert "drops PCMU" in refused.headers.get("Warning")
    kept = reoffer(call, offer_sdp(caller.rtp_address, codecs=(8, 0), version=2))
    assert Sdp.parse(kept.body).formats[0] == 0
    since = harness.reactor.seconds()
    harness.advance(0.3)
    assert {p.payload_type for p in call.rtp_received(since=since)} == {0}
    assert harness.queue_waiting("q") == 1


def test_bad_sdp_in_a_reinvite_is_refused_488_and_media_goes_on(harness):
    caller, call = harness.answered_call()
    refused = reoffer(call, b"v=0\r\nnot sdp at all\r\n", status=488)
    assert refused.headers.get("Warning")
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert len(call.rtp_received(since=since)) >= 24 and harness.active_call_ids() == [call.call_id]


def test_port_zero_stops_our_media_and_a_later_offer_starts_it_again(harness):
    """RFC 3264 §8.2: the audio stream offered at port 0 is answered at port 0 and we stop sending."""
    caller, call = harness.answered_call()
    off = reoffer(call, offer_sdp(("127.0.0.1", 0), version=2))
    assert media_lines(off.body) == ["m=audio 0 RTP/AVP 0"]
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert [s for s in harness.reactor.network.log if s.at > since + 0.001 and s.source[1] == call.answer.port] == []
    on = reoffer(call, offer_sdp(("127.0.0.1", 41002), version=3))
    assert Sdp.parse(on.body).port == call.answer.port
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert len([s for s in harness.reactor.network.log if s.at > since and s.destination == ("127.0.0.1", 41002)]) >= 24


def test_several_streams_take_the_first_audio_and_refuse_the_others_with_port_zero(harness):
    caller, call = harness.answered_call()
    video = b"m=video 40100 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    answer = reoffer(call, offer_sdp(caller.rtp_address, version=2) + video)
    assert [line.split()[:2] for line in media_lines(answer.body)] == [["m=audio", str(call.answer.port)],
                                                                        ["m=video", "0"]]


def test_reinvite_while_ringing_gets_500_with_retry_after(harness):
    """RFC 3261 §14.2: a second INVITE before the final response to the first: 500 and Retry-After
    (RFC 3311 §5.2: the same for an UPDATE with an offer; one without SDP gets 200)."""
    caller = harness.caller()
    call = caller.invite("1001")
    ringing = call.expect(180)
    call.remote_tag = tag_of(ringing.headers.get("To"))  # the early dialog
    refused = reoffer(call, offer_sdp(caller.rtp_address, direction="sendonly", version=2), status=500)
    assert 0 <= int(refused.headers.get("Retry-After")) <= 10
    call.update(offer_sdp(caller.rtp_address, version=2))
    assert call.expect(500, method="UPDATE").headers.get("Retry-After")
    call.update()
    call.expect(200, method="UPDATE")
    harness.advance(3.0)
    call.expect(200)


def test_update_with_sdp_is_an_offer_and_without_sdp_just_200(harness):
    """RFC 3311: UPDATE with SDP answered in its 200 (hold: recvonly, we stop sending); without SDP,
    200 without a body. The 200 to the INVITE lists UPDATE in Allow."""
    caller, call = harness.answered_call()
    assert "UPDATE" in caller.responses(call_id=call.call_id, method="INVITE")[0].headers.get("Allow")
    call.update(offer_sdp(caller.rtp_address, direction="sendonly", version=2))
    held = call.expect(200, method="UPDATE")
    assert Sdp.parse(held.body).direction == "recvonly" and held.headers.get("Contact")
    since = harness.reactor.seconds()
    harness.advance(0.5)
    assert call.rtp_received(since=since + 0.001) == []
    call.update()
    plain = call.expect(200, method="UPDATE")
    assert plain.body == b""


def test_reinvite_without_sdp_gets_our_offer_an_offer_meanwhile_gets_491_and_the_ack_answers(harness):
    """RFC 3261 §14.2: our offer in the 200; until the ACK brings its answer, another offer is
    refused 491 Request Pending (RFC 3311 §5.2); the answer then moves our media."""
    caller, call = harness.answered_call()
    call.reinvite(b"")
    ours = call.expect(200)
    body = caller.responses(call_id=call.call_id, method="INVITE")[-1].body
    assert Sdp.parse(body).formats == [0, 8, 101] and Sdp.parse(body).direction == "sendrecv"
    call.update(offer_sdp(caller.rtp_address, direction="sendonly", version=2))
    call.expect(491, method="UPDATE")
    assert ours.status == 200
    call.ack(offer_sdp(("127.0.0.1", 41004), codecs=(8,), version=3))
    since = harness.reactor.seconds()
    harness.advance(0.5)
    moved = [s for s in harness.reactor.network.log if s.at > since and s.destination == ("127.0.0.1", 41004)]
    assert len(moved) >= 24 and {s.data[1] & 0x7F for s in moved} == {8}
    call.update(offer_sdp(("127.0.0.1", 41004), direction="sendonly", codecs=(8,), version=4))
    call.expect(200, method="UPDATE")


def test_caller_hold_while_talking_to_an_agent_stops_the_agents_voice_only(make_harness):
    """Bridged: the caller's hold cuts the agent's audio to the caller (the agent still hears the
    caller's side, e.g. its music); resume relays both ways again."""
    harness = queued_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    reoffer(call, offer_sdp(caller.rtp_address, direction="sendonly", version=2))
    offer.send_audio(3)
    call.send_audio(2)
    assert call.rtp_received() == [] and len(offer.rtp_received()) == 2
    reoffer(call, offer_sdp(caller.rtp_address, version=3))
    offer.send_audio(3)
    assert len(call.rtp_received()) == 3
    assert harness.agent_state("1001") == "on_call"


# ---- the agent's leg -------------------------------------------------------------------------------
def test_agent_update_holds_and_resumes_the_caller(make_harness):
    """The agent's phone holds by UPDATE (sendonly): recvonly back, the caller hears music; an UPDATE
    without SDP changes nothing; sendrecv resumes the relay."""
    harness = queued_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    held = offer.update(offer_sdp(phone.rtp_address, direction="sendonly", version=2))
    assert held.status == 200 and Sdp.parse(held.body).direction == "recvonly"
    since = harness.reactor.seconds()
    harness.advance(1.0)
    assert harness.prompts_heard(call.rtp_received(since=since)) == ["moh"]
    assert offer.update().status == 200
    resumed = offer.update(offer_sdp(phone.rtp_address, version=3))
    assert Sdp.parse(resumed.body).direction == "sendrecv"
    call.send_audio(2)
    assert len(offer.rtp_received()) == 2


def test_agent_reinvite_without_sdp_gets_our_offer_in_the_callers_codec_and_the_ack_answers(make_harness):
    """Our offer in the 200 is the INVITE's again (the caller's codec only), unchanged, so with the
    same o= version (RFC 3264 §8); the answer in the ACK (sendonly, a new port) holds the caller."""
    harness = queued_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    response = offer.reinvite(sdp=b"", ack_sdp=offer_sdp(("127.0.0.1", 41006), direction="sendonly", version=3))
    assert Sdp.parse(response.body).formats == [0, 101] and response.body == offer.invite.body
    since = harness.reactor.seconds()
    harness.advance(1.0)
    assert harness.logged(rf"call={call.call_id} agent=1001 put on hold the caller")
    assert harness.prompts_heard(call.rtp_received(since=since)) == ["moh"]
    call.send_audio(2)
    assert [s for s in harness.reactor.network.log if s.destination == ("127.0.0.1", 41006)] == [], \
        "the agent holds: the caller's audio is not relayed"


def test_agent_reinvite_dropping_the_bridged_codec_is_refused_488(make_harness):
    harness = queued_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    caller, call = harness.answered_call("3000")
    offer = phone.take_offer()
    refused = offer.reinvite(sdp=offer_sdp(phone.rtp_address, codecs=(8,), version=2), status=488)
    assert "drops PCMU" in refused.headers.get("Warning")
    call.send_audio(2)
    offer.send_audio(2)
    assert len(offer.rtp_received()) == 2 and len(call.rtp_received()) == 2
