"""A real PJSUA2 softphone calls the server: hears the prompts, presses 2, the server hangs up."""

from __future__ import annotations

import re

from .softphone_driver import audio_rms_of_wav, run_softphone


def test_softphone_hears_the_menu_presses_2_and_is_hung_up_on(acd_server, tmp_path):
    """PJSUA2 dials 1000, records the welcome+menu, sends RFC 4733 '2'; support+goodbye play, we BYE."""
    recording = tmp_path / "heard.wav"
    report = run_softphone("call", f"sip:1000@{acd_server.target}", "--from-user", "5557777",
                           "--dtmf", "2", "--dtmf-delay", "4", "--record", str(recording), "--timeout", "25",
                           timeout=40)
    assert report["answered"] and report["final_status"] == 200, report
    assert report["hung_up_by"] == "remote", report
    assert report["exit_code"] == 0, report
    assert audio_rms_of_wav(recording) > 300, "the recording carries the prompts, not silence"
    call_id = re.findall(r"call=(\S+) INVITE from=sip:5557777@", acd_server.log())[-1]
    acd_server.wait_for_log(rf"call={re.escape(call_id)} dtmf digit=2 via=rfc4733 step=main_menu")
    acd_server.wait_for_log(rf"call={re.escape(call_id)} ended reason='hangup step end'")


def test_softphone_info_dtmf_and_local_hangup(acd_server, tmp_path):
    """The softphone sends the digit as SIP INFO and hangs up itself before the flow ends."""
    report = run_softphone("call", f"sip:1000@{acd_server.target}", "--from-user", "5558888", "--dtmf", "1",
                           "--dtmf-delay", "4", "--dtmf-method", "info", "--hangup-after", "5", "--timeout", "20",
                           timeout=35)
    assert report["answered"] and report["hung_up_by"] == "local", report
    call_id = re.findall(r"call=(\S+) INVITE from=sip:5558888@", acd_server.log())[-1]
    acd_server.wait_for_log(rf"call={re.escape(call_id)} menu=main_menu choice=1 next=sales")
    acd_server.wait_for_log(rf"call={re.escape(call_id)} ended reason='caller hung up'")
