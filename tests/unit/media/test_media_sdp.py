"""SDP (RFC 4566) parsing and RFC 3264 offer/answer against real-world offers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.media.sdp import (
    MediaDescription, NegotiatedAudio, SdpError, SessionDescription, answer_offer, build_offer,
)


def crlf(text):
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines())


# Asterisk chan_pjsip style: already in our canonical line order, so it round-trips byte for byte.
ASTERISK_OFFER = crlf("""
    v=0
    o=- 1695304412 1695304412 IN IP4 192.0.2.10
    s=Asterisk
    c=IN IP4 192.0.2.10
    t=0 0
    m=audio 10004 RTP/AVP 0 8 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=ptime:20
    a=maxptime:150
    a=sendrecv
""")

# SIPp uac_pcap.xml style: no direction attribute, fmtp 0-11,16.
SIPP_OFFER = crlf("""
    v=0
    o=user1 53655765 2353687637 IN IP4 127.0.0.1
    s=-
    c=IN IP4 127.0.0.1
    t=0 0
    m=audio 6000 RTP/AVP 0 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-11,16
""")

# PJSUA2 2.x default: opus/speex/GSM before PCMU, media-level c=, three telephone-event rates.
PJSUA_OFFER = crlf("""
    v=0
    o=- 3913487221 3913487221 IN IP4 192.168.1.20
    s=pjmedia
    b=AS:117
    t=0 0
    a=X-nat:0
    m=audio 4000 RTP/AVP 96 97 98 99 3 0 8 9 120 121 122
    c=IN IP4 192.168.1.20
    b=TIAS:96000
    a=rtcp:4001 IN IP4 192.168.1.20
    a=sendrecv
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 useinbandfec=1
    a=rtpmap:97 speex/16000
    a=rtpmap:98 speex/8000
    a=rtpmap:99 speex/32000
    a=rtpmap:3 GSM/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:9 G722/8000
    a=rtpmap:120 telephone-event/16000
    a=fmtp:120 0-16
    a=rtpmap:121 telephone-event/8000
    a=fmtp:121 0-16
    a=rtpmap:122 telephone-event/48000
    a=fmtp:122 0-16
    a=ssrc:1735281632 cname:5a7d3c1e0f6b4e2f
""")

G729_ONLY_OFFER = crlf("""
    v=0
    o=cisco 1 1 IN IP4 198.51.100.7
    s=SIP Call
    c=IN IP4 198.51.100.7
    t=0 0
    m=audio 17000 RTP/AVP 18 101
    a=rtpmap:18 G729/8000
    a=fmtp:18 annexb=no
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
""")

# Linphone-style video call: video first, then audio; session-level c=.
VIDEO_AUDIO_OFFER = crlf("""
    v=0
    o=alice 2890844526 2890844526 IN IP4 203.0.113.5
    s=Talk
    c=IN IP4 203.0.113.5
    t=0 0
    m=video 9078 RTP/AVP 96 97
    a=rtpmap:96 VP8/90000
    a=rtpmap:97 H264/90000
    a=fmtp:97 profile-level-id=42801F
    m=audio 7078 RTP/AVP 8 0 101
    a=rtpmap:101 telephone-event/8000
""")

GOLDEN = [ASTERISK_OFFER, SIPP_OFFER, PJSUA_OFFER, G729_ONLY_OFFER, VIDEO_AUDIO_OFFER]


def answer(offer_text, **kwargs):
    options = {"local_address": "10.1.2.3", "local_port": 30000, "session_id": 42, **kwargs}
    return answer_offer(SessionDescription.parse(offer_text), **options)


def test_asterisk_offer_fields_and_byte_exact_round_trip():
    sdp = SessionDescription.parse(ASTERISK_OFFER.encode())
    assert (sdp.origin.username, sdp.origin.sess_id, sdp.origin.sess_version, sdp.origin.address) == (
        "-", 1695304412, 1695304412, "192.0.2.10")
    assert sdp.session_name == "Asterisk"
    assert sdp.connection_address == "192.0.2.10"
    [audio] = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == ("audio", 10004, "RTP/AVP", [0, 8, 101])
    assert audio.rtpmap == {0: ("PCMU", 8000), 8: ("PCMA", 8000), 101: ("telephone-event", 8000)}
    assert audio.fmtp == {101: "0-16"}
    assert audio.ptime == 20 and audio.direction == "sendrecv"
    assert audio.attributes == [("maxptime", "150")]
    assert audio.connection_address is None and sdp.address_for(audio) == "192.0.2.10"
    assert bytes(sdp) == ASTERISK_OFFER.encode()
    assert str(sdp) == ASTERISK_OFFER


@pytest.mark.parametrize("text", GOLDEN, ids=["asterisk", "sipp", "pjsua", "g729", "video"])
def test_every_offer_round_trips_to_an_equal_description(text):
    sdp = SessionDescription.parse(text)
    assert SessionDescription.parse(bytes(sdp)) == sdp


def test_bare_lf_line_endings_are_accepted():
    assert SessionDescription.parse(SIPP_OFFER.replace("\r\n", "\n")) == SessionDescription.parse(SIPP_OFFER)


def test_sipp_offer_negotiates_pcmu_and_telephone_event_101():
    sdp, audio = answer(SIPP_OFFER)
    assert audio == NegotiatedAudio(
        remote_address="127.0.0.1", remote_port=6000, payload_type=0, codec="PCMU",
        telephone_event_pt=101, direction="sendrecv",
    )
    assert str(sdp) == crlf("""
        v=0
        o=- 42 42 IN IP4 10.1.2.3
        s=-
        c=IN IP4 10.1.2.3
        t=0 0
        m=audio 30000 RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-11,16
        a=ptime:20
        a=sendrecv
    """)


def test_pjsua_offer_picks_first_supported_codec_and_8khz_telephone_event():
    sdp = SessionDescription.parse(PJSUA_OFFER)
    [audio] = sdp.media
    assert audio.rtpmap[96] == ("opus", 48000) and audio.encoding_parameters == {96: "2"}
    assert audio.connection_address == "192.168.1.20" and sdp.connection_address is None
    assert sdp.bandwidths == ["AS:117"] and audio.bandwidths == ["TIAS:96000"]
    assert sdp.attributes == [("X-nat", "0")]
    answer_sdp, negotiated = answer(PJSUA_OFFER)
    assert (negotiated.codec, negotiated.payload_type, negotiated.telephone_event_pt) == ("PCMU", 0, 121)
    assert negotiated.remote_address == "192.168.1.20" and negotiated.remote_port == 4000
    [answered] = answer_sdp.media
    assert answered.formats == [0, 121]
    assert answered.fmtp == {121: "0-16"}
    assert answered.ptime == 20


def test_offerer_order_decides_between_pcma_and_pcmu():
    _, negotiated = answer(VIDEO_AUDIO_OFFER)
    assert (negotiated.codec, negotiated.payload_type) == ("PCMA", 8)


def test_supported_list_restricts_the_codec():
    _, negotiated = answer(ASTERISK_OFFER, supported=("PCMA",))
    assert negotiated.codec == "PCMA"


def test_g729_only_offer_is_rejected_with_sdp_error():
    with pytest.raises(SdpError, match="no common audio codec: offered G729/8000, telephone-event/8000"):
        answer(G729_ONLY_OFFER)


def test_video_stream_is_rejected_with_port_zero_in_the_same_position():
    sdp, negotiated = answer(VIDEO_AUDIO_OFFER)
    video, audio = sdp.media
    assert (video.media, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", [96])
    assert (audio.media, audio.port, audio.formats) == ("audio", 30000, [8, 101])
    assert audio.fmtp == {}  # the offer gave no fmtp for 101, so neither do we
    assert negotiated.remote_address == "203.0.113.5" and negotiated.remote_port == 7078
    assert "m=video 0 RTP/AVP 96\r\nm=audio 30000" in str(sdp)


def test_t38_image_stream_is_rejected_with_its_format():
    offer = SIPP_OFFER + "m=image 5004 udptl t38\r\na=T38FaxVersion:0\r\n"
    sdp, _ = answer(offer)
    assert SessionDescription.parse(offer).media[1].formats == ["t38"]
    assert "m=image 0 udptl t38\r\n" in str(sdp)


def test_second_audio_stream_is_rejected():
    offer = SIPP_OFFER + "m=audio 6002 RTP/AVP 0\r\n"
    sdp, negotiated = answer(offer)
    assert [m.port for m in sdp.media] == [30000, 0]
    assert negotiated.remote_port == 6000


@pytest.mark.parametrize(
    "offered, answered", [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive"), ("sendrecv", "sendrecv")]
)
def test_answer_direction_mirrors_the_offer(offered, answered):
    sdp, negotiated = answer(SIPP_OFFER + f"a={offered}\r\n")
    assert sdp.media[0].direction == answered
    assert negotiated.direction == answered
    assert f"a={answered}\r\n" in str(sdp)


def test_session_level_direction_applies_to_media_without_one():
    offer = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert SessionDescription.parse(offer).media[0].direction == "sendonly"
    _, negotiated = answer(offer)
    assert negotiated.direction == "recvonly"


def test_srtp_only_offer_is_rejected_when_srtp_is_off():
    """The default policy of `answer_offer` is off: RTP/SAVP is refused, saying why."""
    with pytest.raises(SdpError, match="RTP/SAVP .SRTP. is offered but SRTP is off here"):
        answer(SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP"))


def test_offer_without_audio_is_rejected():
    offer = SIPP_OFFER.split("m=audio")[0] + "m=video 9078 RTP/AVP 96\r\n"
    with pytest.raises(SdpError, match="no audio stream"):
        answer(offer)


def test_offer_with_disabled_audio_only_is_rejected():
    with pytest.raises(SdpError, match="no audio stream"):
        answer(SIPP_OFFER.replace("m=audio 6000", "m=audio 0"))


def test_offer_without_connection_address_is_rejected():
    with pytest.raises(SdpError, match=r"no connection address \(c=\)"):
        answer(SIPP_OFFER.replace("c=IN IP4 127.0.0.1\r\n", ""))


@pytest.mark.parametrize("connection, problem", [
    ("c=IN IP4 media.example.com", "is not an IP address"),
    ("c=IN IP4 224.2.1.1/127", "is not an IP address"),
    ("c=IN IP4 224.2.1.1", "is not a unicast IP4 address"),
    ("c=IN IP6 127.0.0.1", "is not a unicast IP6 address"),
])
def test_connection_addresses_must_be_unicast_ip_literals(connection, problem):
    """Media goes to the address as given, on the call path: no name to resolve, no multicast."""
    with pytest.raises(SdpError, match=problem):
        answer(SIPP_OFFER.replace("c=IN IP4 127.0.0.1", connection))


def test_static_payload_types_need_no_rtpmap_and_names_are_case_insensitive():
    offer = SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000\r\n", "")
    assert answer(offer)[1].codec == "PCMU"
    assert answer(SIPP_OFFER.replace("PCMU/8000", "pcmu/8000"))[1].codec == "PCMU"


def test_ipv6_addresses_use_ip6_address_type():
    offer = SIPP_OFFER.replace("IN IP4 127.0.0.1", "IN IP6 2001:db8::1")
    sdp, negotiated = answer(offer, local_address="2001:db8::2")
    assert negotiated.remote_address == "2001:db8::1"
    assert "c=IN IP6 2001:db8::2\r\n" in str(sdp)
    assert "o=- 42 42 IN IP6 2001:db8::2\r\n" in str(sdp)


def test_session_version_can_be_bumped_for_a_reanswer():
    sdp, _ = answer(SIPP_OFFER, session_version=43)
    assert (sdp.origin.sess_id, sdp.origin.sess_version) == (42, 43)


def test_build_offer_is_answerable_by_ourselves():
    offer = build_offer("10.0.0.1", 4000, 7)
    assert str(offer) == crlf("""
        v=0
        o=- 7 7 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 0 8 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=sendrecv
    """)
    _, negotiated = answer(bytes(offer))
    assert (negotiated.codec, negotiated.telephone_event_pt) == ("PCMU", 101)


def test_build_offer_rejects_unsupported_codec():
    with pytest.raises(SdpError, match="cannot offer codec 'G729'"):
        build_offer("10.0.0.1", 4000, 7, codecs=("G729",))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "SDP is empty"),
        (b"v=0\r\no=\xff\r\n", "SDP is not UTF-8"),
        (SIPP_OFFER.replace("v=0", "v=1"), "must start with version line v=0"),
        (SIPP_OFFER.replace("v=0\r\n", ""), "must start with version line v=0"),
        (SIPP_OFFER + "v=0\r\n", r"SDP v= line appears inside media section 'audio'"),
        (SIPP_OFFER.replace("o=user1 53655765 ", "o="), r"origin line \(o=\) has 4 fields, expected 6"),
        (SIPP_OFFER.replace("53655765", "abc"), "origin session id is not a number: 'abc'"),
        (SIPP_OFFER.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n", ""), r"no origin line \(o=\)"),
        (SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4"), r"connection line \(c=\) has 2 fields"),
        (SIPP_OFFER.replace("c=IN IP4", "c=ATM NSAP"), r"connection line \(c=\) has unsupported type ATM NSAP"),
        (SIPP_OFFER.replace("m=audio 6000", "m=audio abc"), "media port is not a number: 'abc'"),
        (SIPP_OFFER.replace("m=audio 6000", "m=audio 70000"), "media port 70000 is larger than 65535"),
        (SIPP_OFFER.replace("m=audio 6000 RTP/AVP 0 101", "m=audio 6000"), r"media line \(m=\) has 2 fields"),
        (SIPP_OFFER.replace("RTP/AVP 0 101", "RTP/AVP 0 PCMU"), "media format is not a number: 'PCMU'"),
        (SIPP_OFFER.replace("telephone-event/8000", "telephone-event"), "rtpmap for payload type 101 is not <encoding>/<clock rate>"),
        (SIPP_OFFER.replace("PCMU/8000", "PCMU/fast"), "rtpmap clock rate for payload type 0 is not a number"),
        (SIPP_OFFER.replace("a=rtpmap:0", "a=rtpmap:x"), "rtpmap payload type is not a number: 'x'"),
        (SIPP_OFFER.replace("a=fmtp:101", "a=fmtp:dtmf"), "fmtp payload type is not a number: 'dtmf'"),
        (SIPP_OFFER + "a=ptime:twenty\r\n", "ptime is not a number: 'twenty'"),
        (SIPP_OFFER.replace("s=-", "s-"), "SDP line 3 is not <type>=<value>: 's-'"),
    ],
    ids=[
        "empty", "not-utf8", "version-1", "no-version", "second-version", "origin-fields", "origin-id",
        "no-origin", "connection-fields", "connection-type", "port-text", "port-range", "media-fields",
        "format-text", "rtpmap-no-rate", "rtpmap-rate-text", "rtpmap-pt-text", "fmtp-pt-text", "ptime-text",
        "line-without-equals",
    ],
)
def test_broken_sdp_raises_sdp_error_naming_the_field(text, message):
    with pytest.raises(SdpError, match=message):
        SessionDescription.parse(text)


def test_sdp_error_is_a_value_error():
    assert issubclass(SdpError, ValueError)


def test_fractional_ptime_is_rounded():
    assert SessionDescription.parse(SIPP_OFFER + "a=ptime:20.0\r\n").media[0].ptime == 20


def test_missing_session_name_and_timing_are_tolerated():
    text = SIPP_OFFER.replace("s=-\r\n", "").replace("t=0 0\r\n", "")
    sdp = SessionDescription.parse(text)
    assert sdp.session_name == "-" and sdp.timing == [("t", "0 0")]


def test_media_description_validates_direction_and_port():
    with pytest.raises(SdpError, match="direction 'both'"):
        MediaDescription(media="audio", port=1, proto="RTP/AVP", direction="both")
    with pytest.raises(SdpError, match="port 65536"):
        MediaDescription(media="audio", port=65536, proto="RTP/AVP")


def test_negotiated_audio_validates_itself():
    good = {"remote_address": "1.2.3.4", "remote_port": 4000, "payload_type": 0, "codec": "PCMU",
            "telephone_event_pt": None, "direction": "sendrecv"}
    NegotiatedAudio(**good)
    for change, message in [({"codec": "G729"}, "codec 'G729'"), ({"remote_port": 0}, "remote port 0"),
                            ({"telephone_event_pt": 128}, "payload type 128"), ({"direction": "up"}, "direction 'up'")]:
        with pytest.raises(ValueError, match=message):
            NegotiatedAudio(**{**good, **change})


@pytest.mark.parametrize("text", GOLDEN, ids=["asterisk", "sipp", "pjsua", "g729", "video"])
def test_every_truncation_parses_or_raises_sdp_error(text):
    """Fragments: an SDP cut anywhere never raises anything but SdpError."""
    data = text.encode()
    for cut in range(len(data)):
        try:
            SessionDescription.parse(data[:cut])
        except SdpError:
            pass


@settings(max_examples=200)
@given(st.lists(st.sampled_from(SIPP_OFFER.splitlines() + ["a=rtpmap:", "m=", "c=IN", "a=fmtp:1", "x=y", "=", "a="]),
                max_size=20))
def test_shuffled_lines_parse_or_raise_sdp_error(lines):
    text = "v=0\r\n" + "\r\n".join(lines)
    try:
        sdp = SessionDescription.parse(text)
    except SdpError:
        return
    assert SessionDescription.parse(str(sdp)) == sdp
