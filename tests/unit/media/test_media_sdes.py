"""SDES-SRTP (RFC 4568) in SDP: crypto lines parsed and built, offers answered by policy, answers
checked; golden captures of PJSUA2 2.15 offers (tests/data/sdp) next to their broken twins."""

from pathlib import Path

import pytest

from acd.media.sdes import (
    KEY_SALT_BYTES, CryptoAttribute, SrtpKeyInfo, answered_key, choose_offered_key, crypto_value, usable_key,
)
from acd.media.sdp import SdpError, SessionDescription, answer_offer, build_offer, srtp_key_of_answer

DATA = Path(__file__).resolve().parents[2] / "data" / "sdp"
OUR_KEY = bytes(range(1, 31))
# The one line of the PJSUA2 capture we can use (tag 3), and its key.
PJSUA_TAG_3 = "3 AES_CM_128_HMAC_SHA1_80 inline:ke7fI4ZbgeIdbPwnebg4yD66IfzUAZxmjYO7D34u"
PJSUA_KEY_3 = bytes.fromhex("91eedf23865b81e21d6cfc2779b838c83eba21fcd4019c668d83bb0f7e2e")
PLAIN_OFFER = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
               b"m=audio 10004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def golden(name: str) -> bytes:
    """The bytes of tests/data/sdp/<name>.sdp (CRLF line ends, as captured)."""
    return (DATA / f"{name}.sdp").read_bytes()


def answer(body: bytes, srtp: str, key: bytes | None = OUR_KEY):
    return answer_offer(SessionDescription.parse(body), local_address="10.1.2.3", local_port=30000, session_id=42,
                        srtp=srtp, srtp_key=None if srtp == "off" else key)


def crypto_lines(sdp: SessionDescription, index: int = 0) -> list[str]:
    return [value for name, value in sdp.media[index].attributes if name == "crypto"]


# ---- the attribute ------------------------------------------------------------------------------
def test_pjsua_savp_offer_has_four_suites_and_tag_3_is_ours():
    """PJSUA2 offers AES-256 suites first; parse keeps every line and its text round-trips."""
    [audio] = SessionDescription.parse(golden("pjsua_savp_offer")).media
    assert audio.proto == "RTP/SAVP"
    values = [value for name, value in audio.attributes if name == "crypto"]
    attributes = [CryptoAttribute.parse(value) for value in values]
    assert [(a.tag, a.suite) for a in attributes] == [
        (1, "AES_256_CM_HMAC_SHA1_80"), (2, "AES_256_CM_HMAC_SHA1_32"),
        (3, "AES_CM_128_HMAC_SHA1_80"), (4, "AES_CM_128_HMAC_SHA1_32")]
    assert [str(a) for a in attributes] == values
    assert usable_key(attributes[2]) == PJSUA_KEY_3
    assert choose_offered_key(audio.attributes) == (3, PJSUA_KEY_3)


def test_rfc4568_example_line_parses_but_is_not_usable():
    """Lifetime 2^20, MKI 1:4 and FEC_ORDER are read, and each keeps us from using the line."""
    [audio] = SessionDescription.parse(golden("rfc4568_mki_offer")).media
    [value] = [value for name, value in audio.attributes if name == "crypto"]
    attribute = CryptoAttribute.parse(value)
    assert attribute.session_params == ("FEC_ORDER=FEC_SRTP",) and str(attribute) == value
    key = SrtpKeyInfo.parse(attribute.key_params[0][1])
    assert (len(key.key_salt), key.lifetime, key.mki) == (30, 2 ** 20, (1, 4))
    with pytest.raises(ValueError, match="MKI is not supported"):
        usable_key(attribute)
    without_mki = CryptoAttribute.parse(value.replace("|1:4", ""))
    with pytest.raises(ValueError, match="lifetime of 1048576 packets is shorter"):
        usable_key(without_mki)
    with pytest.raises(ValueError, match="session parameter 'FEC_ORDER=FEC_SRTP' is not supported"):
        usable_key(CryptoAttribute.parse(value.replace("|2^20|1:4", "|2^31")))


def test_our_line_round_trips_and_is_usable():
    value = crypto_value(7, OUR_KEY)
    assert value.startswith("7 AES_CM_128_HMAC_SHA1_80 inline:")
    attribute = CryptoAttribute.parse(value)
    assert str(attribute) == value and usable_key(attribute) == OUR_KEY
    with pytest.raises(ValueError, match="is 30 bytes"):
        crypto_value(1, OUR_KEY[:16])


@pytest.mark.parametrize("value, message", [
    ("1 AES_CM_128_HMAC_SHA1_80", "has 2 fields"),
    ("x1 AES_CM_128_HMAC_SHA1_80 inline:a", "tag 'x1' is not 1 to 9 digits"),
    ("1234567890 AES_CM_128_HMAC_SHA1_80 inline:a", "is not 1 to 9 digits"),
    ("1 AES-CM inline:a", "suite 'AES-CM' is not letters"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline", "not <key-method>:<key-info>"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:", "not <key-method>:<key-info>"),
    ("1 AES_CM_128_HMAC_SHA1_80 :abc", "not <key-method>:<key-info>"),
])
def test_malformed_crypto_attribute_names_the_field(value, message):
    with pytest.raises(ValueError, match=message):
        CryptoAttribute.parse(value)


KEY_TEXT = "ke7fI4ZbgeIdbPwnebg4yD66IfzUAZxmjYO7D34u"


@pytest.mark.parametrize("info, message", [
    (KEY_TEXT[:10] + "!" + KEY_TEXT[11:], "key is not base64"),
    (KEY_TEXT[:-3], "key is not base64"),   # 37 characters: not a whole number of bytes
    (f"{KEY_TEXT}|2^99", "lifetime 2\\^99 is not a packet count"),
    (f"{KEY_TEXT}|1:0", "MKI length 0 is outside 1..128"),
    (f"{KEY_TEXT}|1:4|2^31", "lifetime must come once, before the MKI"),
    (f"{KEY_TEXT}|2^31|2^31", "lifetime must come once"),
    (f"{KEY_TEXT}|1:4|2:4", "two MKI parameters"),
    (f"{KEY_TEXT}|soon", "'soon' is neither a lifetime nor an MKI"),
    (f"{KEY_TEXT}|1|2|3", "3 '|' parameters"),
])
def test_malformed_srtp_key_info_names_the_field(info, message):
    with pytest.raises(ValueError, match=message):
        SrtpKeyInfo.parse(info)


@pytest.mark.parametrize("value, message", [
    (f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_TEXT}", "suite AES_256_CM_HMAC_SHA1_80 is not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT}|1:4;inline:{KEY_TEXT}|2:4", "2 keys"),
    (f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY_TEXT}", "key method 'uri' is not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT} KDR=10", "'KDR=10' is not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT} UNENCRYPTED_SRTP", "'UNENCRYPTED_SRTP' is not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT} NEW_THING=1", "'NEW_THING=1' is unknown"),
])
def test_lines_we_cannot_honour_are_not_usable(value, message):
    with pytest.raises(ValueError, match=message):
        usable_key(CryptoAttribute.parse(value))


def test_hints_and_a_long_lifetime_are_accepted():
    """WSH is a hint, KDR=0 is what libsrtp does anyway, 2^31 packets outlives any call."""
    attribute = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT}|2^31 KDR=0 WSH=128")
    assert usable_key(attribute) == PJSUA_KEY_3


# ---- the answerer ------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["optional", "required"])
def test_pjsua_savp_offer_is_answered_with_tag_3_and_our_key(policy):
    sdp, negotiated = answer(golden("pjsua_savp_offer"), policy)
    [audio] = sdp.media
    assert audio.proto == "RTP/SAVP"
    [line] = crypto_lines(sdp)
    assert line == crypto_value(3, OUR_KEY)
    assert (negotiated.srtp_local_key, negotiated.srtp_remote_key) == (OUR_KEY, PJSUA_KEY_3) and negotiated.srtp
    assert (negotiated.codec, negotiated.telephone_event_pt) == ("PCMU", 120)
    assert SessionDescription.parse(bytes(sdp)) == sdp


def test_savp_offer_is_refused_when_srtp_is_off():
    with pytest.raises(SdpError, match="RTP/SAVP .SRTP. is offered but SRTP is off here"):
        answer(golden("pjsua_savp_offer"), "off")


@pytest.mark.parametrize("policy, secured", [("optional", True), ("required", True), ("off", False)])
def test_best_effort_offer_gets_srtp_unless_it_is_off(policy, secured):
    """PJSUA2 'optional' offers RTP/AVP with crypto lines: answered in kind (RTP/AVP + one crypto
    line) unless SRTP is off, where the crypto lines are ignored and the answer is plain."""
    sdp, negotiated = answer(golden("pjsua_best_effort_offer"), policy)
    assert sdp.media[0].proto == "RTP/AVP"
    assert crypto_lines(sdp) == ([crypto_value(3, OUR_KEY)] if secured else [])
    assert negotiated.srtp is secured


def test_plain_offer_is_refused_when_srtp_is_required_and_kept_plain_when_optional():
    with pytest.raises(SdpError, match="RTP/AVP offered but SRTP is required here .no a=crypto line."):
        answer(PLAIN_OFFER, "required")
    sdp, negotiated = answer(PLAIN_OFFER, "optional")
    assert sdp.media[0].proto == "RTP/AVP" and crypto_lines(sdp) == [] and not negotiated.srtp


@pytest.mark.parametrize("twin, reason", [
    ("pjsua_savp_offer_invalid_short_key", "a=crypto 3: key is 16 bytes"),
    ("pjsua_savp_offer_invalid_base64_key", "a=crypto 3: crypto key is not base64"),
    ("pjsua_savp_offer_invalid_no_key", "a=crypto 3: crypto attribute has 2 fields"),
    ("pjsua_savp_offer_invalid_duplicate_tag", "crypto tag 2 appears twice"),
    ("rfc4568_mki_offer", "a=crypto 1: an MKI is not supported"),
])
def test_broken_twins_are_refused_naming_each_line(twin, reason):
    """With its one usable line damaged, the offer is refused (488), and the reason lists the line."""
    with pytest.raises(SdpError, match="RTP/SAVP offered with no usable crypto line") as refused:
        answer(golden(twin), "optional")
    assert reason in str(refused.value)


def test_a_savp_stream_with_a_plain_alternative_follows_the_policy():
    """Two audio streams, SRTP first: 'off' takes the plain one (the SRTP one gets port 0),
    'optional' takes the SRTP one (the plain one gets port 0)."""
    savp = golden("pjsua_savp_offer").decode()
    media = savp[savp.index("m=audio"):]
    body = (savp + media.replace("RTP/SAVP", "RTP/AVP").replace("m=audio 51827", "m=audio 51830")).encode()
    sdp, negotiated = answer(body, "off")
    assert [m.port for m in sdp.media] == [0, 30000] and negotiated.remote_port == 51830 and not negotiated.srtp
    sdp, negotiated = answer(body, "optional")
    assert [m.port for m in sdp.media] == [30000, 0] and negotiated.remote_port == 51827 and negotiated.srtp


def test_keys_never_show_in_reprs_or_errors():
    _, negotiated = answer(golden("pjsua_savp_offer"), "optional")
    text = repr(negotiated)
    assert KEY_TEXT not in text and repr(PJSUA_KEY_3) not in text and repr(OUR_KEY) not in text
    with pytest.raises(SdpError) as refused:
        answer(golden("pjsua_savp_offer_invalid_short_key"), "required")
    assert "ke7fI4" not in str(refused.value)
    assert "key_salt" not in repr(SrtpKeyInfo.parse(KEY_TEXT))


def test_srtp_policy_and_key_are_checked():
    with pytest.raises(ValueError, match="'maybe' is not one of required, optional, off"):
        answer(PLAIN_OFFER, "maybe")
    with pytest.raises(ValueError, match="needs our 30-byte key"):
        answer(PLAIN_OFFER, "optional", key=b"short")


# ---- the offerer (our INVITE to an agent) --------------------------------------------------------
@pytest.mark.parametrize("policy, proto, crypto", [("off", "RTP/AVP", False), ("optional", "RTP/AVP", True),
                                                   ("required", "RTP/SAVP", True)])
def test_build_offer_by_policy(policy, proto, crypto):
    offer = build_offer("10.1.2.3", 30000, 42, codecs=("PCMU",), srtp=policy,
                        srtp_key=None if policy == "off" else OUR_KEY)
    [audio] = offer.media
    assert audio.proto == proto
    assert crypto_lines(offer) == ([crypto_value(1, OUR_KEY)] if crypto else [])


@pytest.mark.parametrize("offer_policy", ["optional", "required"])
def test_our_offer_answered_by_ourselves_gives_each_side_the_others_key(offer_policy):
    their_key = bytes(reversed(range(1, 31)))
    offer = build_offer("10.1.2.3", 30000, 42, codecs=("PCMU",), srtp=offer_policy, srtp_key=OUR_KEY)
    sdp, negotiated = answer_offer(SessionDescription.parse(bytes(offer)), local_address="10.9.9.9",
                                   local_port=4000, session_id=7, srtp="optional", srtp_key=their_key)
    assert negotiated.srtp_remote_key == OUR_KEY
    assert srtp_key_of_answer(SessionDescription.parse(bytes(sdp)).media[0], srtp=offer_policy) == their_key


def test_answers_that_do_not_fit_our_offer_are_refused():
    plain = SessionDescription.parse(PLAIN_OFFER).media[0]
    assert srtp_key_of_answer(plain, srtp="optional") is None
    assert srtp_key_of_answer(plain, srtp="off") is None
    with pytest.raises(SdpError, match="the answer is plain RTP/AVP but SRTP is required"):
        srtp_key_of_answer(plain, srtp="required")
    savp = SessionDescription.parse(golden("pjsua_savp_offer")).media[0]
    with pytest.raises(SdpError, match="the answer has 4 a=crypto lines, expected 1"):
        srtp_key_of_answer(savp, srtp="required")
    with pytest.raises(SdpError, match="RTP/SAVP .SRTP. but we offered plain RTP"):
        srtp_key_of_answer(savp, srtp="off")
    with pytest.raises(ValueError, match="the answer's crypto tag 3 is not the offered 1"):
        answered_key([("crypto", PJSUA_TAG_3)], 1)
    savp.attributes = [("crypto", PJSUA_TAG_3.replace("3 ", "1 ", 1))]
    assert srtp_key_of_answer(savp, srtp="required") == PJSUA_KEY_3


# ---- fragments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pjsua_savp_offer", "pjsua_best_effort_offer", "rfc4568_mki_offer"])
def test_every_truncation_is_answered_or_refused_with_sdp_error(name):
    """Cut anywhere, a golden offer gives an answer or an SdpError (488), never another exception."""
    data = golden(name)
    for end in range(len(data)):
        try:
            answer(data[:end], "optional")
        except SdpError:
            pass


def test_key_salt_size_is_rfc_3711_master_key_and_salt():
    assert KEY_SALT_BYTES == 16 + 14
