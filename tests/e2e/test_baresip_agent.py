"""baresip (Debian's 1.0.0, libre's SIP stack: neither PJSUA2 nor SIPp) as an agent: it registers
with Digest, logs in with *45, is offered a queued call, answers it, and the caller and the agent
hear each other's tone; the agent hangs up and the call record says so.

baresip ignores loopback-only hosts, so the test makes its own network (netns.py): the server and
the PJSUA2 caller run in one namespace, baresip in another, joined by a veth pair with test
addresses that exist only there. The test is skipped only when namespaces cannot be made.

libre 1.0.0 answers MD5 challenges only, and gives up ("Register: Function not implemented",
ENOSYS) on a 401 that also carries a SHA-256 one, even listed after MD5 (RFC 8760 §2.4 says to use
the first algorithm it supports): the server here challenges with MD5 alone (`digest_algorithms`).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from contextlib import closing

import pytest

from .baresip_agent import BaresipAgent, baresip_installed
from .harness import REPO, start_server, wait_until
from .netns import NetnsPair, NetnsUnavailable
from .softphone_driver import SoftphoneProcess
from .test_softphone_agents import tone_power

SIP_PORT = 5060  # the namespaces are the test's own: nothing else can hold these ports there
RTP_BASE = 20000
CALLER_TONE_HZ = 440
AGENT_TONE_HZ = 1000
TALK_SECONDS = 4.0
QUEUE_FLOW = """
name: straight_to_sales
steps:
  wait: {queue: sales, on_failure: busy}
  busy: {play: all_busy, next: end}
  end: {hangup: true}
"""


@pytest.fixture(scope="module")
def net():
    """The server's and the agent's namespaces, deleted after the module (also when it fails)."""
    try:
        pair = NetnsPair.create()
    except NetnsUnavailable as error:
        pytest.skip(f"baresip needs a non-loopback address and no network namespace could be made: {error}")
    yield pair
    pair.close()


@pytest.fixture(scope="module")
def server(net, tmp_path_factory):
    """The demo config in the server namespace, on its veth address; MD5-only Digest (see above)."""
    agents = (REPO / "conf" / "agents.yaml").read_text()
    md5_only = agents.replace("\nrealm: example-acd\n", "\nrealm: example-acd\ndigest_algorithms: [MD5]\n", 1)
    assert md5_only != agents, "conf/agents.yaml no longer has the line `realm: example-acd`"
    files = {"conf/agents.yaml": md5_only,
             "dialplans/baresip_e2e.yaml": 'routes:\n  - {number: "3100", flow: straight_to_sales}\n',
             "ivr_flows/straight_to_sales.yaml": QUEUE_FLOW}
    root = tmp_path_factory.mktemp("acd-baresip")
    acd = start_server(root, sip_port=SIP_PORT, rtp_base=RTP_BASE, extra_files=files, host=net.server_address,
                       command_prefix=net.exec_in(net.server_ns))
    yield acd
    acd.stop()


def sine(path, frequency: int, seconds: int = 20) -> None:
    """An 8 kHz mono 16-bit sine WAV made with sox (what aufile and the softphone play)."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds),
                    "sine", str(frequency), "vol", "0.25"], check=True, timeout=10)


def test_baresip_agent_logs_in_and_takes_a_queued_call_with_audio_both_ways(net, server, tmp_path):
    """baresip registers 1001 (Digest MD5, 200), dials *45, the server logs it in; a PJSUA2 caller
    playing 440 Hz reaches the sales queue, baresip is offered the call and accepts it, each side
    hears the other's tone (Goertzel) and not its own; baresip hangs up: record 'agent hung up'."""
    assert baresip_installed(), "baresip is not installed: run scripts/setup (Debian package baresip-core)"
    caller_tone, agent_tone = tmp_path / "caller_tone.wav", tmp_path / "agent_tone.wav"
    sine(caller_tone, CALLER_TONE_HZ)
    sine(agent_tone, AGENT_TONE_HZ)
    caller_heard = tmp_path / "caller_heard.wav"
    peer = re.escape(net.peer_address)
    phone = BaresipAgent(tmp_path / "baresip", account=f"<sip:1001@{server.target}>;auth_pass=demo-1001-pw;regint=300",
                         listen=f"{net.peer_address}:{SIP_PORT}", play=agent_tone,
                         command_prefix=net.exec_in(net.peer_ns), lifetime_seconds=40)
    try:
        phone.wait_for_output(r"1001@\S+: \{0/UDP/v4\} 200 OK")
        server.wait_for_log(rf"agent=1001 registered contact=\S+@{peer}:{SIP_PORT} from {peer}:{SIP_PORT}")
        phone.command("dial *45")
        server.wait_for_log(r"agent=1001 feature=login result=logged-in")
        phone.wait_for_output(r"Call with sip:\*45@\S+ terminated")
        with SoftphoneProcess("call", f"sip:3100@{server.target}", "--from-user", "5559101", "--play",
                              str(caller_tone), "--play-loop", "--record", str(caller_heard), "--timeout", "20",
                              command_prefix=net.exec_in(net.server_ns)) as caller:
            phone.wait_for_output(r"Incoming call from: .*sip:\S+@" + re.escape(server.target))
            phone.command("accept")
            phone.wait_for_output(r"Call established: ", count=2)  # the first one was *45
            time.sleep(TALK_SECONDS)
            phone.command("hangup")
            report = caller.result(timeout=30)
    finally:
        phone.stop()
    assert report["answered"] and report["hung_up_by"] == "remote", report
    trace = phone.output  # baresip's SIP trace: what its own stack received
    assert re.search(r"SIP/2.0 401 Unauthorized\s.*?CSeq: \d+ REGISTER.*?SIP/2.0 200 OK\s.*?CSeq: \d+ REGISTER",
                     trace, re.S), "baresip registered after a Digest challenge"
    offer = re.search(r"INVITE sip:1001-\S+ SIP/2.0\s(.*?)\r?\n\r?\n", trace, re.S)
    assert offer and "X-ACD-Queue: sales" in offer.group(1) and "X-ACD-Caller: 5559101" in offer.group(1), \
        "the offer carries the call's context"
    call_id = re.findall(r"call=(\S+) INVITE from=sip:5559101@", server.log())[-1]
    server.wait_for_log(rf"call={re.escape(call_id)} connected to agent=1001")
    server.wait_for_log(rf"call={re.escape(call_id)} ended reason='agent hung up'")
    server.wait_for_log(rf"agent=1001 unregistered contact=\S+@{peer}:{SIP_PORT}")
    received = phone.received_audio()
    assert len(received) == 2, f"baresip recorded one WAV per call (*45 and the queued call): {received}"
    agent_hears = tone_power(received[-1], CALLER_TONE_HZ, last_seconds=3)
    caller_hears = tone_power(caller_heard, AGENT_TONE_HZ, last_seconds=3)
    assert agent_hears > 0.3, f"baresip did not hear the caller's {CALLER_TONE_HZ} Hz ({agent_hears:.3f})"
    assert caller_hears > 0.3, f"the caller did not hear baresip's {AGENT_TONE_HZ} Hz ({caller_hears:.3f})"
    assert tone_power(received[-1], AGENT_TONE_HZ, last_seconds=3) < 0.05, "no echo of the agent's own tone"

    def record():
        with closing(sqlite3.connect(server.root / "data" / "records.db")) as db:
            return db.execute("select queue, agent, outcome, end_reason, talk_seconds from calls "
                              "where call_id = ? and ended_at is not null",
                              (call_id,)).fetchone()

    queue, agent, outcome, end_reason, talk_seconds = wait_until(record, 10, "the call's record", server=server)
    assert (queue, agent, end_reason) == ("sales", "1001", "agent hung up"), (queue, agent, outcome, end_reason)
    assert talk_seconds >= TALK_SECONDS - 1, talk_seconds
