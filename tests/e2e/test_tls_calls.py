"""SIP over TLS against the real server: a PJSUA2 agent registers over TLS (verifying the server's
certificate, the demo one `scripts/make_demo_cert` makes) and takes a call that a PJSUA2 trunk caller
places over TLS; the offer reaches the agent on its own TLS connection and audio flows both ways.
A client offering only TLS 1.1 gets no session."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time

import pytest

from .harness import LOOPBACK, REPO, free_port, rtp_base, start_server
from .softphone_driver import SoftphoneProcess, run_softphone
from .test_softphone_agents import AGENT_TONE_HZ, CALLER_TONE_HZ, QUEUE_FLOW, tone_power, write_tone

# Short, so that the agent's connection sits idle longer than this before its call (and the call's
# connections during it): they must be kept, as they carry a registration or a dialog.
IDLE_TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("acd-tls")
    subprocess.run([str(REPO / "scripts" / "make_demo_cert"), str(root / "tls")], check=True, timeout=30,
                   capture_output=True)
    tls_port = free_port(kind=socket.SOCK_STREAM, both=False)
    sip_extra = (f"  transports: [udp, tcp, tls]\n  tls:\n    port: {tls_port}\n    certificate: tls/acd.crt\n"
                 f"    private_key: tls/acd.key\n"
                 f"  tcp:\n    idle_timeout_seconds: {IDLE_TIMEOUT_SECONDS}\n")
    agents = (REPO / "conf" / "agents.yaml").read_text()
    assert agents.count("    name: Bob\n") == 1
    files = {"dialplans/agents_e2e.yaml": 'routes:\n  - {number: "3100", flow: straight_to_sales}\n',
             "ivr_flows/straight_to_sales.yaml": QUEUE_FLOW,
             # Bob's phone has SRTP mandatory: offer him RTP/SAVP (an optional agent gets RTP/AVP + crypto)
             "conf/agents.yaml": agents.replace("    name: Bob\n", "    name: Bob\n    srtp: required\n")}
    server = start_server(root, sip_port=free_port(), rtp_base=rtp_base(), extra_files=files, sip_extra=sip_extra)
    server.tls_port = tls_port
    server.wait_for_log(rf"listening for SIP over TLS on 127\.0\.0\.1:{tls_port}")
    yield server
    server.stop()


@pytest.mark.serial  # PJSUA audio both ways, timing-sensitive; its "heard nothing" failures were tone_power's (see there)
def test_agent_over_tls_takes_a_call_from_a_tls_trunk_with_audio_both_ways(tls_server, tmp_path):
    """Agent 1001 registers over TLS and logs in (*45, over TLS), then stays quiet longer than the idle
    timeout; a caller on the trunk dials 3100 over TLS; the offer goes to the agent on the connection
    it registered on (kept: it carries the registration); each hears the other's tone."""
    target = f"{LOOPBACK}:{tls_server.tls_port};transport=tls"
    ca = str(tls_server.root / "tls" / "acd.crt")
    caller_tone, agent_tone = tmp_path / "caller.wav", tmp_path / "agent.wav"
    write_tone(caller_tone, CALLER_TONE_HZ)
    write_tone(agent_tone, AGENT_TONE_HZ)
    agent_heard, caller_heard = tmp_path / "agent_heard.wav", tmp_path / "caller_heard.wav"
    with SoftphoneProcess("agent", "--transport", "tls", "--tls-ca", ca, "--registrar", f"sip:{target}",
                          "--user", "1001", "--password", "demo-1001-pw", "--login-code", "*45",
                          "--play", str(agent_tone), "--play-loop", "--record", str(agent_heard),
                          "--hangup-after", "4", "--calls", "1", "--timeout", "40") as agent:
        agent.wait_for_stderr(r"login call ended", timeout=20)
        tls_server.wait_for_log(r"agent=1001 feature=login result=logged-in")
        time.sleep(IDLE_TIMEOUT_SECONDS + 1)  # the registered phone's connection idles past the timeout
        caller = run_softphone("call", f"sip:3100@{target}", "--transport", "tls", "--tls-ca", ca,
                               "--from-user", "5559002", "--play", str(caller_tone), "--play-loop",
                               "--record", str(caller_heard), "--timeout", "30", timeout=45)
        report = agent.result(timeout=40)
    assert caller["answered"] and caller["hung_up_by"] == "remote", caller
    assert report["registered"] and report["login_status"] == "answered", report
    offer = report["calls"][0]
    assert offer["answered"] and offer["headers"].get("X-ACD-Queue") == "sales", offer
    log = tls_server.log()
    registered = re.search(r"agent=1001 registered contact=(\S+) from 127\.0\.0\.1:(\d+)", log)
    assert registered and "transport=tls" in registered.group(1).lower(), registered
    offered = re.search(r"offer to agent=1001 contact=(\S+)", log)
    assert offered and "transport=tls" in offered.group(1).lower(), offered
    assert "no TLS connection" not in log and "closing TLS connection" not in log
    # What each leg received, as the server counted it: tells a silent leg's side if the tones fail.
    media = "\n".join(line for line in tls_server.log().splitlines()
                      if "rtp received=" in line or "bridge" in line or "srtp" in line.lower())
    assert tone_power(agent_heard, CALLER_TONE_HZ, last_seconds=2) > 0.3, f"the agent does not hear the caller:\n{media}"
    assert tone_power(caller_heard, AGENT_TONE_HZ, last_seconds=2) > 0.3, f"the caller does not hear the agent:\n{media}"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_client_offering_only_tls_1_1_is_refused_and_logged(tls_server):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection((LOOPBACK, tls_server.tls_port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            context.wrap_socket(raw).close()
    tls_server.wait_for_log(r"closing TLS connection from 127\.0\.0\.1:\d+: tls_error \(.*unsupported protocol")


def test_tls_signalling_with_srtp_media_carries_no_audio_in_clear(tls_server, tmp_path):
    """The must-show call: agent 1002 (`srtp: required`) registers over TLS with SRTP mandatory (and secure signalling
    demanded: PJSUA2 refuses SDES keys over a clear hop); a trunk caller dials 3100 over TLS with SRTP
    mandatory; each hears the other's tone. A capture of the media ports shows only SRTP: every RTP
    packet carries the 80-bit tag and none holds a frame of our prompt or hold music in clear; the SIP
    (and so the keys) never crossed in clear either: nothing was sent to the UDP/TCP SIP port."""
    from .test_srtp_calls import SRTP_TAG_BYTES, LoopbackCapture, best_tone_ratio

    low = int(re.search(r"RTP on 127\.0\.0\.1 ports (\d+)-(\d+)", tls_server.log()).group(1))
    high = int(re.search(r"RTP on 127\.0\.0\.1 ports (\d+)-(\d+)", tls_server.log()).group(2))
    capture = LoopbackCapture(tmp_path / "tls-srtp.pcap", f"udp and (port {tls_server.sip_port} or portrange {low}-{high})")
    target = f"{LOOPBACK}:{tls_server.tls_port};transport=tls"
    ca = str(tls_server.root / "tls" / "acd.crt")
    caller_tone, agent_tone = tmp_path / "caller.wav", tmp_path / "agent.wav"
    write_tone(caller_tone, CALLER_TONE_HZ)
    write_tone(agent_tone, AGENT_TONE_HZ)
    agent_heard, caller_heard = tmp_path / "agent_heard.wav", tmp_path / "caller_heard.wav"
    try:
        with SoftphoneProcess("agent", "--transport", "tls", "--tls-ca", ca, "--srtp", "mandatory",
                              "--registrar", f"sip:{target}", "--user", "1002", "--password", "demo-1002-pw",
                              "--login-code", "*45", "--play", str(agent_tone), "--play-loop",
                              "--record", str(agent_heard), "--hangup-after", "4", "--calls", "1",
                              "--timeout", "40") as agent:
            agent.wait_for_stderr(r"login call ended", timeout=20)
            tls_server.wait_for_log(r"agent=1002 feature=login result=logged-in")
            caller = run_softphone("call", f"sip:3100@{target}", "--transport", "tls", "--tls-ca", ca,
                                   "--srtp", "mandatory", "--from-user", "5559003", "--play", str(caller_tone),
                                   "--play-loop", "--record", str(caller_heard), "--timeout", "30", timeout=45)
            report = agent.result(timeout=40)
    finally:
        capture.stop()
    assert caller["answered"] and caller["hung_up_by"] == "remote", caller
    assert report["registered"] and report["calls"][0]["answered"], report
    log = tls_server.log()
    call_id = re.search(r"call=(\S+) INVITE from=sip:5559003@.* media=srtp", log).group(1)
    tls_server.wait_for_log(rf"call={re.escape(call_id)} agent=1002 answered \(srtp ")
    assert best_tone_ratio(agent_heard, CALLER_TONE_HZ) > 0.5, "the agent did not hear the caller's tone"
    assert best_tone_ratio(caller_heard, AGENT_TONE_HZ) > 0.5, "the caller did not hear the agent's tone"
    if capture.problem:
        pytest.skip(f"the call passed; the no-clear-text capture part is skipped: {capture.problem}")
    datagrams = capture.datagrams()
    assert not [p for src, dst, p in datagrams if tls_server.sip_port in (src, dst)], "SIP went over UDP in clear"
    # This call's two legs, from the server's log (other test servers may share the port range).
    caller_leg = re.search(rf"call={re.escape(call_id)} answered .* rtp=(\d+)->127\.0\.0\.1:(\d+)", log)
    agent_leg = re.search(rf"call={re.escape(call_id)} agent=1002 answered \(srtp (\d+) -> 127\.0\.0\.1:(\d+)\)", log)
    legs = {tuple(map(int, leg.groups())) for leg in (caller_leg, agent_leg)}
    legs |= {(peer, ours) for ours, peer in legs}
    rtp = [p for src, dst, p in datagrams if (src, dst) in legs and len(p) > 12 and 128 <= p[0] < 192]
    assert len(rtp) > 200, len(rtp)
    assert {len(p) for p in rtp if p[1] & 0x7F == 0} == {12 + 160 + SRTP_TAG_BYTES}
    from acd.media.prompts import PromptLibrary

    music = PromptLibrary({"moh": REPO / "sounds" / "moh.wav"}).encoded("moh", "PCMU")
    frames = {music[i:i + 160] for i in range(0, len(music), 160)} - {b"\xff" * 160}
    assert not [p for p in rtp if p[12:172] in frames], "hold music crossed the wire in clear"
