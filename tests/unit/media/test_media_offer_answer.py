"""RFC 3264 §8 offers in an established session (re-INVITE, UPDATE): SessionNegotiation, pure."""

import base64

import pytest

from acd.media.offer_answer import SessionNegotiation, next_version, read_answer
from acd.media.sdp import SdpError, SessionDescription, answer_offer, build_offer

OUR_KEY = bytes(range(30))
THEIR_KEY = bytes(range(100, 130))
NEW_KEY = bytes(range(50, 80))


def offer(*, port=6000, address="192.0.2.10", codecs="0 8", direction="sendrecv", version=1, extra_media="",
          proto="RTP/AVP", crypto: bytes | None = None, connection: str | None = None) -> bytes:
    names = {"0": "PCMU/8000", "8": "PCMA/8000", "18": "G729/8000"}
    lines = ["v=0", f"o=trunk 77 {version} IN IP4 {address}", "s=-", f"c=IN IP4 {connection or address}", "t=0 0",
             f"m=audio {port} {proto} {codecs} 101",
             *(f"a=rtpmap:{pt} {names[pt]}" for pt in codecs.split()),
             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    if crypto is not None:
        lines.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(crypto).decode()}")
    lines.append(f"a={direction}")
    text = "\r\n".join(lines) + "\r\n" + extra_media
    return text.encode()


def negotiation(first: bytes = None, *, srtp="off") -> SessionNegotiation:
    """The state after the call's first exchange, answered as InboundCalls does."""
    answer, audio = answer_offer(SessionDescription.parse(first or offer()), local_address="198.51.100.1",
                                 local_port=20000, session_id=4242, srtp=srtp,
                                 srtp_key=OUR_KEY if srtp != "off" else None)
    return SessionNegotiation(local=answer, audio=audio, local_address="198.51.100.1", local_port=20000, srtp=srtp,
                              srtp_key=OUR_KEY if srtp != "off" else None)


def sdp(body: bytes) -> SessionDescription:
    return SessionDescription.parse(body)


def test_a_refresh_with_the_same_offer_gets_the_same_sdp_and_version():
    """RFC 3264 §8: an unchanged answer keeps its o= version; nothing changes."""
    state = negotiation()
    first = bytes(state.local)
    reply = state.receive("INVITE", offer(version=2))
    assert reply.status == 200 and reply.body == first and not reply.changed


def test_a_sendonly_offer_is_answered_recvonly_with_the_version_one_higher():
    """RFC 3264 §6.1 / §8.4 hold: the answer mirrors sendonly as recvonly; o= differs only by version + 1."""
    state = negotiation()
    before = sdp(bytes(state.local)).origin
    reply = state.receive("INVITE", offer(direction="sendonly", version=2))
    answer = sdp(reply.body)
    assert reply.status == 200 and reply.changed
    assert answer.media[0].direction == "recvonly" and reply.audio.direction == "recvonly"
    assert (answer.origin.sess_id, answer.origin.sess_version) == (before.sess_id, before.sess_version + 1)
    again = state.receive("INVITE", offer(direction="sendonly", version=2))
    assert again.body == reply.body, "the same offer again: the same answer, the same version"
    resumed = state.receive("INVITE", offer(version=3))
    assert resumed.audio.direction == "sendrecv" and sdp(resumed.body).origin.sess_version == before.sess_version + 2


def test_an_inactive_offer_is_answered_inactive():
    state = negotiation()
    reply = state.receive("INVITE", offer(direction="inactive", version=2))
    assert sdp(reply.body).media[0].direction == "inactive" and reply.audio.direction == "inactive"


def test_legacy_hold_with_address_zero_is_kept_for_the_shell_to_stop_sending():
    """RFC 3264 §8.4: c=0.0.0.0 (RFC 2543 hold) still answers sendrecv; the address says: send nothing."""
    reply = negotiation().receive("INVITE", offer(connection="0.0.0.0", version=2))
    assert reply.status == 200 and reply.audio.remote_address == "0.0.0.0"


def test_a_new_address_and_port_move_the_remote():
    reply = negotiation().receive("INVITE", offer(address="192.0.2.99", port=41000, version=2))
    assert reply.changed and (reply.audio.remote_address, reply.audio.remote_port) == ("192.0.2.99", 41000)


def test_the_codec_in_use_is_kept_while_the_offer_still_lists_it():
    """PCMU in use, a re-offer preferring PCMA but listing PCMU: PCMU stays (no needless switch)."""
    reply = negotiation().receive("INVITE", offer(codecs="8 0", version=2))
    assert reply.audio.codec == "PCMU" and sdp(reply.body).media[0].formats == [0, 101]


def test_an_offer_dropping_the_codec_in_use_switches_to_another_we_support():
    reply = negotiation().receive("INVITE", offer(codecs="8", version=2))
    assert reply.status == 200 and (reply.audio.codec, reply.audio.payload_type) == ("PCMA", 8)


def test_a_leg_pinned_to_its_codec_refuses_an_offer_without_it_and_stays_as_it_was():
    """Bridged legs relay packets unchanged: the codec cannot change under the bridge (488)."""
    state = negotiation()
    local, audio = bytes(state.local), state.audio
    reply = state.receive("INVITE", offer(codecs="8", version=2), keep_codec=True)
    assert reply.status == 488 and "drops PCMU" in reply.reason and reply.audio == audio
    assert bytes(state.local) == local and state.audio is audio
    assert state.receive("INVITE", offer(codecs="8 0", version=3), keep_codec=True).audio.codec == "PCMU"


def test_an_offer_with_no_common_codec_or_bad_sdp_gets_488_and_changes_nothing():
    state = negotiation()
    local = bytes(state.local)
    assert state.receive("INVITE", offer(codecs="18", version=2)).status == 488
    refused = state.receive("UPDATE", b"v=0\r\nthis is not sdp\r\n")
    assert refused.status == 488 and "not <type>=<value>" in refused.reason
    assert bytes(state.local) == local and state.audio.codec == "PCMU"


def test_port_zero_disables_the_audio_and_a_later_offer_enables_it_again():
    """RFC 3264 §8.2: a stream offered with port 0 is answered with port 0; audio is off meanwhile."""
    state = negotiation()
    off = state.receive("INVITE", offer(port=0, version=2))
    assert off.status == 200 and off.audio is None and off.changed
    assert [m.port for m in sdp(off.body).media] == [0]
    on = state.receive("INVITE", offer(port=6002, version=3))
    assert on.audio is not None and on.audio.remote_port == 6002 and sdp(on.body).media[0].port == 20000


def test_several_streams_take_the_first_audio_and_reject_the_others_with_port_0():
    video = "m=video 6010 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 6020 RTP/AVP 0\r\n"
    reply = negotiation().receive("INVITE", offer(version=2, extra_media=video))
    answer = sdp(reply.body)
    assert [(m.media, m.port) for m in answer.media] == [("audio", 20000), ("video", 0), ("audio", 0)]
    assert reply.audio.remote_port == 6000


def test_an_offer_with_no_audio_line_at_all_is_refused():
    """§8: a stream is removed with port 0, never by leaving its m= line out."""
    body = (b"v=0\r\no=trunk 77 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
            b"m=video 6010 RTP/AVP 96\r\n")
    assert negotiation().receive("INVITE", body).status == 488


def test_update_without_sdp_changes_nothing_and_with_sdp_is_an_offer():
    """RFC 3311 §5.2: UPDATE without a body is answered 200 without one; with SDP it is an offer."""
    state = negotiation()
    plain = state.receive("UPDATE", b"")
    assert plain.status == 200 and plain.body == b"" and not plain.changed
    held = state.receive("UPDATE", offer(direction="sendonly", version=2))
    assert held.status == 200 and sdp(held.body).media[0].direction == "recvonly"


def test_invite_without_sdp_gets_our_offer_and_its_answer_comes_in_the_ack():
    """RFC 3261 §14.2: our offer in the 200 (current codec first); the ACK's answer sets the media."""
    state = negotiation()
    reply = state.receive("INVITE", b"")
    ours = sdp(reply.body)
    assert reply.status == 200 and ours.media[0].formats == [0, 8, 101] and ours.media[0].direction == "sendrecv"
    assert ours.origin.sess_version == sdp(bytes(negotiation().local)).origin.sess_version + 1
    answered = state.receive_ack(offer(codecs="8", address="192.0.2.55", direction="sendonly", version=2))
    assert answered.changed and answered.audio.codec == "PCMA" and answered.audio.direction == "recvonly"
    assert answered.audio.remote_address == "192.0.2.55"
    assert state.receive_ack(b"") is None, "no offer of ours waits any more"


def test_an_offer_while_ours_waits_for_its_answer_gets_491():
    """RFC 3264 §4: one offer at a time; RFC 3311 §5.2 and RFC 3261 §14.2: 491 Request Pending."""
    state = negotiation()
    state.receive("INVITE", b"")
    assert state.receive("UPDATE", offer(direction="sendonly", version=2)).status == 491
    assert state.receive("INVITE", b"").status == 491
    state.receive_ack(offer(version=2))
    assert state.receive("INVITE", offer(direction="sendonly", version=3)).status == 200


def test_an_ack_without_a_usable_answer_keeps_the_audio_and_clears_our_offer():
    state = negotiation()
    audio = state.audio
    state.receive("INVITE", b"")
    missing = state.receive_ack(b"")
    assert missing.status == 488 and "no answer" in missing.reason and state.audio is audio
    state.receive("INVITE", b"")
    wrong = state.receive_ack(offer(codecs="18", version=2))
    assert wrong.status == 488 and state.audio is audio and state.pending is None


def test_srtp_a_new_key_from_the_peer_keeps_ours():
    """RFC 4568 §7.1.4: the peer may re-key in a re-offer; our key for the call stays the same."""
    state = negotiation(offer(proto="RTP/SAVP", crypto=THEIR_KEY), srtp="optional")
    assert state.audio.srtp_remote_key == THEIR_KEY
    reply = state.receive("INVITE", offer(proto="RTP/SAVP", crypto=NEW_KEY, version=2))
    assert reply.changed and reply.audio.srtp_remote_key == NEW_KEY and reply.audio.srtp_local_key == OUR_KEY
    ours = state.receive("INVITE", b"")
    assert sdp(ours.body).media[0].proto == "RTP/SAVP", "our offer keeps the SRTP profile in use"


def test_read_answer_refuses_an_answer_with_another_number_of_streams():
    ours = build_offer("198.51.100.1", 20000, 1)
    theirs = sdp(offer(extra_media="m=video 6010 RTP/AVP 96\r\n"))
    with pytest.raises(SdpError, match="media streams"):
        read_answer(ours, theirs, srtp="off", srtp_key=None)


def test_next_version_keeps_the_origin_and_bumps_only_on_change():
    previous = build_offer("198.51.100.1", 20000, 9, session_version=5)
    same = next_version(previous, build_offer("198.51.100.1", 20000, 123))
    changed = next_version(previous, build_offer("198.51.100.1", 20002, 123))
    assert (same.origin.sess_id, same.origin.sess_version) == (9, 5)
    assert (changed.origin.sess_id, changed.origin.sess_version) == (9, 6)
