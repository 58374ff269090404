"""A real SIP caller (SIPp) against the real server: answer, prompts over RTP, DTMF menu, hang-ups."""

from __future__ import annotations

import re
import struct

from acd.media.g711 import rms_pcm16, ulaw_decode

from .harness import SIPP_PCAPS, RtpSink, free_port, run_sipp, rtp_base, start_server

DTMF_2 = str(SIPP_PCAPS / "dtmf_2833_2.pcap")
DTMF_1 = str(SIPP_PCAPS / "dtmf_2833_1.pcap")
# The welcome prompt lasts 2.8 s; a digit 4 s after answer lands during the menu prompt.
DIGIT_DURING_MENU_MS = "4000"


def _call_ids(log: str) -> list[str]:
    return re.findall(r"call=(\S+) INVITE from=", log)


def test_caller_hears_welcome_presses_2_and_menu_choice_is_logged(acd_server, tmp_path):
    """SIPp dials 1000, gets 200 with SDP, receives the welcome as paced PCMU, presses 2, hangs up."""
    sink = RtpSink()
    try:
        result = run_sipp(tmp_path, acd_server.target, scenario="ivr_dtmf.xml",
                          keys={"rtp_port": str(sink.port), "dtmf_pcap": DTMF_2},
                          args_set={"dtmf_after_ms": DIGIT_DURING_MENU_MS})
    finally:
        sink.close()
    result.assert_ok(acd_server)
    call_id = _call_ids(acd_server.log())[-1]
    acd_server.wait_for_log(rf"call={re.escape(call_id)} menu=main_menu choice=2 next=support")
    acd_server.wait_for_log(rf"call={re.escape(call_id)} ended reason='caller hung up'")

    packets = sink.packets
    assert len(packets) > 200, f"expected ~5 s of 20 ms RTP packets, got {len(packets)}"
    headers = [struct.unpack("!BBHII", p[:12]) for p in packets]
    assert all(h[0] >> 6 == 2 for h in headers), "RTP version must be 2"
    assert all(h[1] & 0x7F == 0 for h in headers), "payload type must be PCMU (0) as offered"
    assert headers[0][1] & 0x80, "the first packet of the stream carries the marker bit"
    assert len({h[4] for h in headers}) == 1, "one SSRC for the whole call"
    # A tick the server runs more than 60 ms late drops its frames rather than bursting them (rtp_leg.py):
    # the far end sees loss, with sequence numbers and timestamps still in step. Rare on a quiet machine.
    gaps = 0
    for previous, current in zip(headers, headers[1:]):
        step = (current[2] - previous[2]) & 0xFFFF
        assert 1 <= step <= 10, "sequence numbers increase (by one but for frames dropped on a late tick)"
        assert (current[3] - previous[3]) & 0xFFFFFFFF == 160 * step, "timestamps advance 160 samples per frame"
        gaps += step - 1
    assert gaps <= len(packets) // 20, f"{gaps} frames dropped of {len(packets)}"
    welcome = ulaw_decode(b"".join(p[12:] for p in packets[:100]))
    assert rms_pcm16(welcome) > 500, "the first two seconds must carry the welcome prompt, not silence"


def test_server_plays_choice_then_goodbye_and_hangs_up(acd_server, tmp_path):
    """After choice 1 the flow plays 'sales' and 'goodbye', then the server sends BYE; SIPp answers 200."""
    sink = RtpSink()
    try:
        result = run_sipp(tmp_path, acd_server.target, scenario="ivr_server_hangs_up.xml",
                          keys={"rtp_port": str(sink.port), "dtmf_pcap": DTMF_1},
                          args_set={"dtmf_after_ms": DIGIT_DURING_MENU_MS})
    finally:
        sink.close()
    result.assert_ok(acd_server)
    call_id = _call_ids(acd_server.log())[-1]
    acd_server.wait_for_log(rf"call={re.escape(call_id)} menu=main_menu choice=1 next=sales")
    acd_server.wait_for_log(rf"call={re.escape(call_id)} ended reason='hangup step end' .* bye_status=200")


def test_unknown_number_gets_404(acd_server, tmp_path):
    """A dialled number no dialplan route matches is refused with 404 and logged."""
    run_sipp(tmp_path, acd_server.target, scenario="expect_404.xml", service="9999",
             keys={"rtp_port": "4000"}).assert_ok(acd_server)
    acd_server.wait_for_log(r"refused 404: no dialplan route for '9999'")


def test_cancel_before_answer_gets_487(acd_server, tmp_path):
    """1001 rings 3 s before answering; a CANCEL after 180 gets 200, and the INVITE 487."""
    run_sipp(tmp_path, acd_server.target, scenario="cancel_before_answer.xml", service="1001",
             keys={"rtp_port": "4000"}).assert_ok(acd_server)
    acd_server.wait_for_log(r"ended reason='caller cancelled before answer'")


def test_invite_from_a_source_that_is_not_a_trunk_gets_403(tmp_path):
    """A server whose only trunk is 192.0.2.0/24 refuses INVITEs from 127.0.0.1 with 403."""
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(),
                          trunk_sources=["192.0.2.0/24"])
    try:
        run_sipp(tmp_path / "sipp", server.target, scenario="expect_403.xml",
                 keys={"rtp_port": "4000"}).assert_ok(server)
        server.wait_for_log(r"refused 403: source 127\.0\.0\.1:\d+ is not a configured trunk")
    finally:
        server.stop()


def test_fifty_concurrent_calls_with_media_complete(acd_server, tmp_path):
    """50 SIPp calls at once (25 calls/s, 6 s each, PCMA both ways): 0 failed calls."""
    result = run_sipp(tmp_path, acd_server.target, scenario="load_call.xml", calls=50, rate=25, limit=50,
                      timeout=40, keys={"rtp_port": "0"})
    result.assert_ok(acd_server)
    assert "Successful call" in result.stdout or result.returncode == 0
    assert acd_server.alive()


def test_call_over_tcp_runs_the_menu_and_the_server_bye_uses_the_connection(acd_server, tmp_path):
    """The same call over SIP/TCP (SIPp -t t1): INVITE, DTMF choice, and our BYE back on the connection."""
    sink = RtpSink()
    try:
        result = run_sipp(tmp_path, acd_server.target, "-t", "t1", scenario="ivr_server_hangs_up.xml",
                          keys={"rtp_port": str(sink.port), "dtmf_pcap": DTMF_1},
                          args_set={"dtmf_after_ms": DIGIT_DURING_MENU_MS})
    finally:
        sink.close()
    result.assert_ok(acd_server)
    call_id = _call_ids(acd_server.log())[-1]
    acd_server.wait_for_log(rf"call={re.escape(call_id)} ended reason='hangup step end' .* bye_status=200")
