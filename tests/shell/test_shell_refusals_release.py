"""Every refused INVITE leaves nothing allocated: no RTP port bound, no session, no record of a call
(issue 15: ~500 INVITEs without Contact used to exhaust the RTP range until a restart)."""

from __future__ import annotations

import pytest

from .wire import build_request, offer_sdp

TRUNK_CALLER = ("127.0.0.1", 5076)


def bad_invite(harness, kind: str, n: int) -> tuple[bytes, int]:
    """One INVITE with one defect, and the status it must get."""
    host, port = harness.sip_address
    call_id = f"bad-{kind}-{n}@test"
    sdp = offer_sdp(("127.0.0.1", 40000 + 2 * n))
    headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:{TRUNK_CALLER[1]};branch=z9hG4bK{kind}{n};rport"),
               ("Max-Forwards", "70"), ("From", f"<sip:5551@127.0.0.1>;tag=t{n}"),
               ("To", f"<sip:1000@{host}>"), ("Call-ID", call_id), ("CSeq", "1 INVITE"),
               ("Contact", f"<sip:5551@127.0.0.1:{TRUNK_CALLER[1]}>"), ("Content-Type", "application/sdp")]
    status = 400
    if kind == "no-contact":
        headers = [h for h in headers if h[0] != "Contact"]
    elif kind == "bad-from":
        headers = [("From", "<<not a uri") if h[0] == "From" else h for h in headers]
    elif kind == "no-common-codec":
        sdp, status = offer_sdp(("127.0.0.1", 40000 + 2 * n), codecs=(18,), telephone_event=None), 488
    elif kind == "garbage-sdp":
        sdp, status = b"this is not SDP\r\n", 488
    return build_request("INVITE", f"sip:1000@{host}:{port}", headers, sdp), status


@pytest.mark.parametrize("kind", ["no-contact", "bad-from", "no-common-codec", "garbage-sdp"])
def test_refused_invites_release_everything(make_harness, kind):
    harness = make_harness(rtp_ports=20)  # 10 calls' worth: 30 leaks would exhaust it
    trunk = harness.phone(TRUNK_CALLER, user="trunk")
    for n in range(30):
        data, status = bad_invite(harness, kind, n)
        trunk.send(data, harness.sip_address)
        response = trunk.expect_response(call_id=f"bad-{kind}-{n}@test", timeout=1)
        assert response.status == status, (kind, response.status, bytes(response)[:300])
        harness.advance(0.02)  # a reactor turn between datagrams, as on a real network
    harness.advance(1)
    assert harness.bound_rtp_ports() == [] and harness.leaks() == {}
    caller, call = harness.answered_call("1000")  # the range is whole: a good call still gets a port
    assert call.answer.port >= 20000


def test_a_20_kilobyte_invite_over_udp_is_read_whole(make_harness):
    """UDP datagrams up to 64 KB are read whole (Twisted's default read size cut them at 8 KB)."""
    harness = make_harness()
    trunk = harness.phone(TRUNK_CALLER, user="trunk")
    data, _status = bad_invite(harness, "none", 0)
    head, _, body = data.partition(b"\r\n\r\n")
    padding = "".join(f"X-Padding-{n}: {'p' * 90}\r\n" for n in range(200)).encode()  # ~20 KB of headers
    big = head.replace(b"Content-Type:", padding + b"Content-Type:") + b"\r\n\r\n" + body
    assert len(big) > 20_000
    trunk.send(big, harness.sip_address)
    assert trunk.expect_response(call_id="bad-none-0@test", timeout=1).status in (100, 180, 200)


def test_a_stranger_gets_one_403_never_retransmitted(make_harness):
    """An INVITE from a source that is no trunk: one 403, not resent (it would be, every 0.5..4 s
    until Timer H, towards a possibly spoofed address); its retransmission gets one more, no more."""
    harness = make_harness()
    stranger = harness.phone(("127.0.0.9", 5080), user="stranger")
    data, _status = bad_invite(harness, "none", 1)
    data = data.replace(b"127.0.0.1:5076", b"127.0.0.9:5080")
    stranger.send(data, harness.sip_address)
    harness.advance(10)
    assert [r.status for r in stranger.responses(call_id="bad-none-1@test")] == [403]
    stranger.send(data, harness.sip_address)
    harness.advance(10)
    assert [r.status for r in stranger.responses(call_id="bad-none-1@test")] == [403, 403]
    assert harness.bound_rtp_ports() == [] and harness.leaks() == {}
