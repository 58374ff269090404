"""Kamailio as the carrier (tests/e2e/kamailio_carrier.cfg): our trunk registers with Digest auth,
refreshes before the 10 s the registrar grants run out, registers again after the carrier restarts
(its bindings live in memory only), and a callback goes out through the carrier's proxy, which
challenges it with 407, to a SIPp "PSTN" phone behind it. The carrier challenges with MD5 before
the restart and SHA-256 after it (RFC 8760), so both algorithms meet an independent implementation.

One test, one server, one carrier: the restart happens while the callback is being set up, so the
whole story fits in about one refresh interval.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
import subprocess

import pytest

from .carrier import ACCOUNT_PASSWORD, ACCOUNT_USER, REALM, Carrier, carrier_tools_installed
from .harness import LOOPBACK, free_port, rtp_base, run_sipp, start_server
from .test_acd_calls import GOODBYE_FLOW, QUEUE_FLOW, SCENARIOS, SippAgents, _time, agents_yaml

GRANTED_SECONDS = 10  # the carrier's registrar max_expires: we ask for 60 and get 10

pytestmark = pytest.mark.skipif(not carrier_tools_installed(), reason="needs Kamailio and SIPp (scripts/setup installs them)")


def test_the_trunk_registers_refreshes_survives_a_carrier_restart_and_calls_back_through_it(tmp_path):
    """Registration with its 401 (MD5) answered; the carrier restarts (now SHA-256) and forgets us; the
    refresh at 85 % of 10 s registers us again; meanwhile a callback's INVITE is challenged (407),
    answered, and reaches the PSTN phone behind the carrier, which talks and hangs up."""
    carrier = Carrier(tmp_path / "carrier", free_port(both=False), free_port(both=False),
                      max_expires_seconds=GRANTED_SECONDS)
    sip_port, http_port = free_port(), free_port(kind=socket.SOCK_STREAM, both=False)
    our_contact = f"sip:{ACCOUNT_USER}@{LOOPBACK}:{sip_port}"
    talking = (SCENARIOS / "agent_answers.xml").read_text()
    (tmp_path / "agent_8s.xml").write_text(talking.replace('timeout="3000"', 'timeout="8000"'))
    (tmp_path / "pstn_4s.xml").write_text(talking.replace('timeout="3000"', 'timeout="4000"'))
    files = {"conf/agents.yaml": agents_yaml(["2951"]),
             "dialplans/acd.yaml": 'routes:\n  - {number: "3000", flow: queue_direct}\n'
                                   '  - {number: "3999", flow: goodbye_only}\n',
             "ivr_flows/queue_direct.yaml": QUEUE_FLOW, "ivr_flows/goodbye_only.yaml": GOODBYE_FLOW}
    register = (f"register:\n  user: {ACCOUNT_USER}\n  password: {ACCOUNT_PASSWORD}\n  domain: {REALM}\n"
                f"  proxy: {LOOPBACK}:{carrier.port}\n  expires_seconds: 60\ncaller_id: \"+442070000001\"\n")
    server = pstn = agents = None
    try:
        carrier.start()
        server = start_server(tmp_path / "server", sip_port=sip_port, rtp_base=rtp_base(), extra_files=files,
                              trunk_extra=register, http_port=http_port)
        first = server.wait_for_log(rf"trunk=test registered at {LOOPBACK}:{carrier.port} status=200 "
                                    rf"expires={GRANTED_SECONDS}s", timeout=5)
        assert carrier.contacts() == [our_contact]
        assert re.search(rf"REGISTER sip:{ACCOUNT_USER}@{REALM} from \S+ challenged \(401\)", carrier.log())

        carrier.stop()
        carrier.start(digest_algorithm="SHA-256")  # our cached MD5 nonce is now worthless twice over
        assert carrier.contacts() == [], "a restarted carrier has forgotten every binding"

        pstn = subprocess.Popen(
            ["sipp", f"{LOOPBACK}:{carrier.port}", "-sf", str(tmp_path / "pstn_4s.xml"), "-i", LOOPBACK,
             "-p", str(carrier.pstn_port), "-mp", str(free_port(both=False)), "-m", "1", "-nostdin",
             "-timeout", "30s"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        run_sipp(tmp_path / "caller", server.target, scenario="queue_callback.xml", service="3000", calls=1,
                 timeout=20).assert_ok(server)
        call = re.findall(r"call=(\S+) INVITE from=sip:555", server.log())[0]
        server.wait_for_log(rf"call={re.escape(call)} callback requested to 5551")
        agents = SippAgents(tmp_path / "agents", server.target, ["2951"], max_calls=1, timeout=30,
                            scenario=str(tmp_path / "agent_8s.xml"))
        agents.login.assert_ok(server)
        server.wait_for_log(rf"call={re.escape(call)} customer-5551 challenged our INVITE to "
                            rf"sip:5551@{REALM} \(407, realm '{REALM}', SHA-256\)", timeout=10)
        server.wait_for_log(rf"call={re.escape(call)} callback answered by 5551", timeout=10)
        assert pstn.wait(timeout=15) == 0, "the PSTN phone behind the carrier answered, talked and hung up"

        refreshed = server.wait_for_log(rf"trunk=test registered at {LOOPBACK}:{carrier.port} status=200",
                                        count=2, timeout=GRANTED_SECONDS)
        assert carrier.contacts() == [our_contact], "the refresh registered us again at the restarted carrier"
        token = (server.root / "data" / "api.token").read_text().strip()
        [trunk] = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://{LOOPBACK}:{http_port}/api/trunks", headers={"Authorization": f"Bearer {token}"}),
            timeout=5).read())
        assert trunk["registration"]["registered"] and trunk["registration"]["granted_seconds"] == GRANTED_SECONDS
        assert trunk["registration"]["proxy"] == f"{LOOPBACK}:{carrier.port}" and trunk["caller_id"] == "+442070000001"
        metrics = urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/metrics", timeout=5).read().decode()
        assert 'acd_trunk_registered{trunk="test"} 1.0' in metrics
    finally:
        if pstn is not None and pstn.poll() is None:
            pstn.kill()
            pstn.wait(timeout=5)
        if agents is not None:
            agents.stop()
        if server is not None:
            server.stop()
        carrier.stop()
    log, carrier_log = server.log(), carrier.log()
    first_line = log[log.rfind("\n", 0, first.start()) + 1:first.start()]
    refresh_line = log[log.rfind("\n", 0, refreshed.start()) + 1:refreshed.start()]
    refresh_after = _time(refresh_line) - _time(first_line)
    round_trip = re.compile(r"round_trip=(\S+)").search(log, first.start()).group(1)
    print(f"registration round trip: {round_trip}; refresh {refresh_after:.2f} s after the first registration "
          f"(granted {GRANTED_SECONDS} s)")
    invites = re.findall(r"INVITE sip:5551@\S+ call-id (\S+) cseq (\d+) (?:from \S+ )?(challenged \(407\)|authenticated)",
                         carrier_log)
    assert [(cseq, outcome) for _, cseq, outcome in invites] == [("1", "challenged (407)"), ("2", "authenticated")]
    assert len({call_id for call_id, _, _ in invites}) == 1, "the answer to the 407 is the same call"
