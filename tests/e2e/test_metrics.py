"""`/metrics` scraped during and after real SIP calls: the numbers match what happened."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest

from .harness import LOOPBACK, SIPP_PCAPS, RtpSink, free_port, run_sipp, rtp_base, start_server


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("acd-metrics")
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(root, sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port)
    server.http_port = http_port
    yield server
    server.stop()


def scrape(server) -> dict[str, float]:
    """Every sample of /metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{server.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_follow_real_calls(metrics_server, tmp_path):
    """One refused call (404) and one IVR call where the caller picks 2 and hangs up in 'support':
    active calls during the call, then calls, refusals, steps, drop-off, SIP and RTP counts."""
    run_sipp(tmp_path / "refused", metrics_server.target, scenario="expect_404.xml", service="9999",
             keys={"rtp_port": "4000"}).assert_ok(metrics_server)
    sink = RtpSink()
    outcome = {}
    caller = threading.Thread(target=lambda: outcome.setdefault("sipp", run_sipp(
        tmp_path / "ivr", metrics_server.target, scenario="ivr_dtmf.xml",
        keys={"rtp_port": str(sink.port), "dtmf_pcap": str(SIPP_PCAPS / "dtmf_2833_2.pcap")},
        args_set={"dtmf_after_ms": "4000"})))
    caller.start()
    try:
        metrics_server.wait_for_log(r"call=\S+ answered dialled=1000")
        during = scrape(metrics_server)
        assert during.get('acd_calls_active{trunk="test"}') == 1.0
    finally:
        caller.join(timeout=30)
        sink.close()
    outcome["sipp"].assert_ok(metrics_server)
    metrics_server.wait_for_log(r"ended reason='caller hung up'")
    after = scrape(metrics_server)
    assert 'acd_calls_active{trunk="test"}' not in after
    assert after['acd_calls_total{result="caller_hangup",trunk="test"}'] == 1.0
    assert after['acd_calls_refused_total{status="404"}'] == 1.0
    assert after['acd_ivr_steps_total{flow="main",step="main_menu"}'] == 1.0
    assert after['acd_ivr_steps_total{flow="main",step="support"}'] == 1.0
    assert after['acd_ivr_abandoned_total{flow="main",step="support"}'] == 1.0
    assert after['acd_ivr_events_total{event="chose-support",flow="main"}'] == 1.0
    assert after['acd_sip_requests_received_total{method="INVITE"}'] == 2.0
    assert after['acd_sip_requests_received_total{method="BYE"}'] == 1.0
    assert after['acd_sip_responses_sent_total{code="404"}'] == 1.0
    assert after["acd_rtp_packets_sent_total"] >= len(sink.packets) > 200
    assert after["acd_rtp_packets_received_total"] >= 10
    assert not any("5551234" in name for name in after), "no caller numbers in labels"


def test_agent_states_show_in_metrics(metrics_server):
    """An agent logged in and paused by the API shows as paused with its reason."""
    import json
    token = (metrics_server.root / "data" / "api.token").read_text().strip()
    for path, body in (("/api/agents/1001/login", None), ("/api/agents/1001/pause", {"reason": "training"})):
        request = urllib.request.Request(f"http://{LOOPBACK}:{metrics_server.http_port}{path}", method="POST",
                                         data=json.dumps(body).encode() if body else None,
                                         headers={"Authorization": f"Bearer {token}"})
        urllib.request.urlopen(request, timeout=5).read()
    samples = scrape(metrics_server)
    assert samples['acd_agents{state="paused"}'] == 1.0
    assert samples['acd_agents_paused{reason="training"}'] == 1.0
    assert "acd_sip_parse_errors_total" in samples
