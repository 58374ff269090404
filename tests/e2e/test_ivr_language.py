"""The flow language over real SIP: speech menu, masked PIN, barge-in, live reload during a call."""

from __future__ import annotations

import array
import re
import shutil
import subprocess
import sys
import threading
import wave

import pytest

from .harness import free_port, rtp_base, start_server
from .softphone_driver import audio_rms_of_wav, run_softphone

E2E_FLOWS = {
    "dialplans/e2e.yaml": """
routes:
  - {number: "2001", flow: e2e_speech}
  - {number: "2002", flow: e2e_pin, record: true}
  - {number: "2003", flow: e2e_barge}
  - {number: "2004", flow: e2e_reload}
  - {number: "2006", flow: e2e_record}
  - {number: "2007", flow: e2e_record_quiet}
""",
    "ivr_flows/e2e_record_quiet.yaml": """
name: e2e_record_quiet
steps:
  rec: {record: digits/9, into: message, max_seconds: 30, silence_seconds: 2, next: done}
  done: {play: digits/2, next: end, event: recorded}
  end: {hangup: true}
""",
    "ivr_flows/e2e_record.yaml": """
name: e2e_record
steps:
  rec: {record: digits/9, into: message, max_seconds: 10, next: done}
  done: {play: digits/2, next: end, event: recorded}
  end: {hangup: true}
""",
    "ivr_flows/e2e_speech.yaml": """
name: e2e_speech
steps:
  ask:
    speech_menu: digits/1
    phrases: {billing: got_billing, technical support: got_support, agent: got_agent}
    choices: {"9": got_agent}
    timeout: 6
    retries: 2
    no_input_prompt: speech_no_input
    no_match_prompt: speech_no_match
  got_billing: {play: digits/2, next: end, event: heard-billing}
  got_support: {play: digits/3, next: end, event: heard-support}
  got_agent: {play: digits/4, next: end, event: heard-agent}
  end: {hangup: true}
""",
    "ivr_flows/e2e_pin.yaml": """
name: e2e_pin
steps:
  hello: {play: digits/8, next: pin}
  pin: {collect: digits/1, into: pin, min_length: 4, max_length: 4, mask: true, next: done, on_failure: end}
  done: {play: digits/2, next: end, event: pin-done}
  end: {hangup: true}
""",
    "ivr_flows/e2e_barge.yaml": """
name: e2e_barge
steps:
  long: {play: menu_main, barge_in: true, next: after}
  after: {play: digits/5, next: end, event: barged}
  end: {hangup: true}
""",
}
RELOAD_FLOW = """
name: e2e_reload
steps:
  choose: {{menu: digits/6, choices: {{"1": {target}}}, timeout: 8}}
  {target}: {{play: digits/7, next: end, event: took-{target}}}
  end: {{hangup: true}}
"""


@pytest.fixture(scope="module")
def language_server(tmp_path_factory):
    """The demo config plus the small flows above, on free ports."""
    root = tmp_path_factory.mktemp("acd-language")
    files = dict(E2E_FLOWS)
    files["ivr_flows/e2e_reload.yaml"] = RELOAD_FLOW.format(target="old")
    server = start_server(root, sip_port=free_port(), rtp_base=rtp_base(), extra_files=files)
    yield server
    server.stop()


def _call_id(server, caller: str) -> str:
    return re.findall(rf"call=(\S+) INVITE from=sip:{caller}@", server.log())[-1]


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="espeak-ng and sox are needed to speak to the speech menu: run scripts/setup")
def test_spoken_word_chooses_in_the_speech_menu(language_server, tmp_path):
    """The caller says "billing" (espeak-ng, sent as RTP by the softphone): recognised, billing branch taken."""
    raw, spoken = tmp_path / "raw.wav", tmp_path / "billing.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), "billing"], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(spoken), "pad", "2.0", "2.0"], check=True)
    report = run_softphone("call", f"sip:2001@{language_server.target}", "--from-user", "5552001",
                           "--play", str(spoken), "--timeout", "25", timeout=40)
    assert report["answered"] and report["hung_up_by"] == "remote", report
    call_id = _call_id(language_server, "5552001")
    language_server.wait_for_log(rf"call={re.escape(call_id)} speech_menu=ask phrase='billing' confidence=")
    language_server.wait_for_log(rf"call={re.escape(call_id)} event=heard-billing")


def test_masked_pin_is_collected_never_logged_and_silenced_in_the_recording(language_server, tmp_path):
    """PIN 4096 typed as RFC 4733 digits while the caller also sends a tone: the flow gets it, the log
    shows only **** and the length, and the call's recording is silent exactly while it was collected."""
    tone = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone), "synth", "20", "sine", "440",
                    "vol", "0.5"], check=True)
    report = run_softphone("call", f"sip:2002@{language_server.target}", "--from-user", "5552002",
                           "--dtmf", "4096", "--dtmf-delay", "2.5", "--play", str(tone), "--play-loop",
                           "--timeout", "20", timeout=35)
    assert report["answered"] and report["hung_up_by"] == "remote", report
    call_id = _call_id(language_server, "5552002")
    language_server.wait_for_log(rf"call={re.escape(call_id)} collect=pin into=pin digits=\*\*\*\* length=4")
    language_server.wait_for_log(rf"call={re.escape(call_id)} event=pin-done")
    lines = [line for line in language_server.log().splitlines() if call_id in line]
    assert not any("4096" in line or re.search(r"digit=[0-9]", line) for line in lines), lines
    saved = language_server.wait_for_log(rf"call={re.escape(call_id)} recording saved: (\S+) \(([0-9.]+)s, "
                                         r"masked spans ([0-9.]+)-([0-9.]+)s\)")
    path, start, end = saved.group(1), float(saved.group(3)), float(saved.group(4))
    assert 0.5 < start < 1.5 and end - start > 1.5, (start, end)
    with wave.open(path, "rb") as recording:
        frames = array.array("h", recording.readframes(recording.getnframes()))
    caller = frames[0::2]

    def rms(a: float, b: float) -> float:
        part = caller[int(a * 8000):int(b * 8000)]
        return (sum(x * x for x in part) / max(1, len(part))) ** 0.5

    assert rms(start + 0.1, end - 0.1) == 0, "nothing of the caller while the PIN was collected"
    assert rms(0.2, start - 0.1) > 1000 and rms(end + 0.1, end + 0.6) > 1000, "the caller's tone around it"


def test_digit_barges_into_a_long_prompt(language_server):
    """A 10.8 s prompt with barge-in: the digit at 1 s cuts it, the next step plays, the call ends early."""
    report = run_softphone("call", f"sip:2003@{language_server.target}", "--from-user", "5552003",
                           "--dtmf", "5", "--dtmf-delay", "1.0", "--timeout", "20", timeout=35)
    assert report["answered"] and report["hung_up_by"] == "remote", report
    assert report["connected_seconds"] < 5.0, f"the prompt was not interrupted: {report['connected_seconds']}s"
    language_server.wait_for_log(rf"call={re.escape(_call_id(language_server, '5552003'))} event=barged")


def test_reload_during_a_call_keeps_its_flow_and_refuses_a_broken_config(language_server):
    """While a call waits in a menu the flow file changes: a broken edit is refused, a good one applies to
    new calls only; the call in progress finishes on the flow it started with."""
    results = {}

    def first_call():
        results["first"] = run_softphone("call", f"sip:2004@{language_server.target}", "--from-user", "5552041",
                                         "--dtmf", "1", "--dtmf-delay", "5", "--timeout", "25", timeout=40)

    caller = threading.Thread(target=first_call)
    caller.start()
    flow_file = language_server.root / "ivr_flows" / "e2e_reload.yaml"
    try:
        language_server.wait_for_log(r"call=\S+ INVITE from=sip:5552041@", timeout=10)
        flow_file.write_text("name: e2e_reload\nsteps: [this is: not valid")
        refused = subprocess.run([sys.executable, "-m", "acd.cli", "reload", "--root", str(language_server.root)],
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 1 and "e2e_reload.yaml:2:" in refused.stderr
        language_server.wait_for_log(r"reload refused \(files changed\)")  # the file watcher refuses it too
        flow_file.write_text(RELOAD_FLOW.format(target="new"))
        accepted = subprocess.run([sys.executable, "-m", "acd.cli", "reload", "--root", str(language_server.root)],
                                  capture_output=True, text=True, timeout=30)
        assert accepted.returncode == 0, accepted.stderr
        language_server.wait_for_log(r"config reloaded \(SIGHUP\)")
    finally:
        caller.join(timeout=45)
    assert results["first"]["answered"] and results["first"]["hung_up_by"] == "remote", results["first"]
    first_id = _call_id(language_server, "5552041")
    language_server.wait_for_log(rf"call={re.escape(first_id)} event=took-old")
    second = run_softphone("call", f"sip:2004@{language_server.target}", "--from-user", "5552042",
                           "--dtmf", "1", "--dtmf-delay", "1.5", "--timeout", "20", timeout=35)
    assert second["answered"] and second["hung_up_by"] == "remote", second
    language_server.wait_for_log(rf"call={re.escape(_call_id(language_server, '5552042'))} event=took-new")
    assert "internal error" not in language_server.log()


def test_voicemail_records_the_caller_until_hash(language_server, tmp_path):
    """A record step stores what the caller says (as WAV, 8 kHz) until they press #."""
    raw, spoken = tmp_path / "raw.wav", tmp_path / "message.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), "please call me back"], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(spoken), "pad", "1.5", "3"], check=True)
    report = run_softphone("call", f"sip:2006@{language_server.target}", "--from-user", "5552006",
                           "--play", str(spoken), "--dtmf", "#", "--dtmf-delay", "4.5", "--timeout", "20", timeout=35)
    assert report["answered"] and report["hung_up_by"] == "remote", report
    call_id = _call_id(language_server, "5552006")
    match = language_server.wait_for_log(rf"call={re.escape(call_id)} recording ended \(caller pressed #\): "
                                         r"([0-9.]+)s in (\S+)")
    assert 2.0 < float(match.group(1)) < 6.0
    assert audio_rms_of_wav(match.group(2)) > 300, "the recording holds the caller's words"
    language_server.wait_for_log(rf"call={re.escape(call_id)} event=recorded")


def test_voicemail_ends_after_the_caller_falls_silent(language_server, tmp_path):
    """No #: the caller speaks, then says nothing; 2 s of silence (the step's `silence_seconds`) end the
    recording long before its 30 s maximum, and the flow goes on."""
    raw, spoken = tmp_path / "raw.wav", tmp_path / "message.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), "please call me back"], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(spoken), "pad", "1", "0"], check=True)
    report = run_softphone("call", f"sip:2007@{language_server.target}", "--from-user", "5552007",
                           "--play", str(spoken), "--timeout", "20", timeout=35)
    assert report["answered"] and report["hung_up_by"] == "remote", report
    call_id = _call_id(language_server, "5552007")
    match = language_server.wait_for_log(rf"call={re.escape(call_id)} recording ended \(2s of silence\): "
                                         r"([0-9.]+)s in (\S+)")
    assert 2.5 < float(match.group(1)) < 8.0
    assert audio_rms_of_wav(match.group(2)) > 300, "the recording holds the caller's words"
    language_server.wait_for_log(rf"call={re.escape(call_id)} event=recorded")
