"""What a flood can hold (issue 15): a never-ACKed call gives its port back at 64*T1; calls waiting
for their ACK are capped per source and in total (503, stateless); requests are rate-limited per
source by what the source is (trunk, registered agent, anyone else)."""

from __future__ import annotations

from .peers import AgentPhone
from .wire import build_request

TRUNK_A, TRUNK_B = "127.0.0.1", "127.0.0.2"
STRANGER = ("127.0.0.9", 5090)


def test_a_never_acked_call_ends_at_64_t1_and_releases_its_port_without_waiting_for_the_bye(harness):
    """RFC 3261 §13.3.1.4: no ACK within 64*T1 = 32 s → BYE; the caller is gone, so its answer to the
    BYE is not awaited: the port is free and the record written at once, saying why."""
    caller = harness.caller()
    call = caller.invite("1000")
    call.expect(200)
    assert len(harness.bound_rtp_ports()) == 1
    assert harness.metric("acd_calls_unconfirmed") == 1
    harness.advance(31.9)
    assert not caller.requests("BYE") and len(harness.bound_rtp_ports()) == 1
    caller.expect_request("BYE", call_id=call.call_id, timeout=0.5)  # never answered
    assert harness.bound_rtp_ports() == [] and harness.leaks() == {}
    assert harness.metric("acd_calls_unconfirmed") == 0
    record = harness.call_record(call.call_id)
    assert (record["outcome"], record["end_reason"]) == ("failed", "no ACK for 200 OK")


def test_calls_waiting_for_their_ack_are_capped_per_silent_source_with_one_stateless_503(make_harness):
    """With ports for 20 legs (auto: 5 unconfirmed per source that ACKs none, 15 in all), a 6th unACKed
    call from one trunk address gets 503 with Retry-After, sent once (no retransmission until an ACK
    that a flood never sends); another trunk address is still served. Once the source ACKs a call it
    is confirming: its late calls are not refused, until it has ACKed nothing for 8 s."""
    harness = make_harness(rtp_ports=40, trunk_sources=[TRUNK_A, TRUNK_B])
    flooder = harness.caller(host=TRUNK_A, port=5070)
    calls = [flooder.invite("1000") for _ in range(6)]
    for call in calls[:5]:
        call.expect(200)
    refused = flooder.expect_response(503, call_id=calls[5].call_id)
    assert refused.headers.get("Retry-After") == "5"
    assert len(harness.bound_rtp_ports()) == 5
    harness.advance(10)
    assert [r.status for r in flooder.responses(call_id=calls[5].call_id)] == [503]
    assert harness.metric("acd_calls_refused_unconfirmed_total", limit="per_source") == 1

    harness.caller(host=TRUNK_B, port=5072).invite("1000").expect(200)
    calls[0].ack()
    harness.advance(0.1)
    for _ in range(3):  # 7 unconfirmed from a source that is ACKing: late, not refused
        flooder.invite("1000").expect(200)
    harness.advance(8)
    late = flooder.invite("1000")
    flooder.expect_response(503, call_id=late.call_id)
    assert harness.metric("acd_calls_refused_unconfirmed_total", limit="per_source") == 2


def test_the_total_cap_holds_across_sources_and_is_logged_once_per_source_and_interval(make_harness):
    harness = make_harness(rtp_ports=40, trunk_sources=[TRUNK_A, TRUNK_B],
                           sip_extra="  limits: {max_unconfirmed_calls_per_source: 8, max_unconfirmed_calls: 8}\n"
                                     "  admission: {max_new_calls_per_second: 0}\n")  # 38 at once: past its burst
    a = harness.caller(host=TRUNK_A, port=5070)
    b = harness.caller(host=TRUNK_B, port=5072)
    for _ in range(8):
        a.invite("1000").expect(200)
    refused = [b.invite("1000") for _ in range(30)]
    for call in refused:
        b.expect_response(503, call_id=call.call_id)
    assert harness.metric("acd_calls_refused_unconfirmed_total", limit="total") == 30
    assert len(harness.logged(r"refused 503: 0 calls from 127\.0\.0\.2 and 8 in all wait for their ACK")) == 1
    harness.advance(10)
    b.invite("1000")
    b.expect_response(503)
    assert len(harness.logged(r"refused 503: .* 30 INVITE\(s\) from 127\.0\.0\.2 refused for it since")) == 1
    harness.advance(30)  # timer L: the 8 unACKed calls end, the range is whole again
    assert harness.bound_rtp_ports() == [] and harness.leaks() == {}


def options(peer, n: int) -> bytes:
    host, port = peer.harness.sip_address
    return build_request("OPTIONS", f"sip:{host}:{port}", [
        ("Via", peer.via()), ("Max-Forwards", "70"), ("From", f"<sip:probe@{peer.address[0]}>;tag=o{n}"),
        ("To", f"<sip:{host}>"), ("Call-ID", f"options-{peer.address[0]}-{n}@test"), ("CSeq", "1 OPTIONS")])


def test_an_unknown_source_is_held_to_its_budget_and_dropped_unanswered_beyond(harness):
    """200 requests at once from an address that is neither a trunk nor an agent's: the burst (40) is
    answered, the rest dropped and counted, one log line; a second later, 10 more pass (10/s)."""
    stranger = harness.phone(STRANGER, user="scanner")
    for n in range(200):
        stranger.send(options(stranger, n))
    harness.advance(0.01)
    assert len(stranger.responses(method="OPTIONS")) == 40
    assert harness.metric("acd_sip_requests_throttled_total", source="unknown") == 160
    assert len(harness.logged(r"dropping requests from 127\.0\.0\.9:5090 \(unknown source\)")) == 1
    harness.advance(1.0)
    for n in range(200, 220):
        stranger.send(options(stranger, n))
    harness.advance(0.01)
    assert 49 <= len(stranger.responses(method="OPTIONS")) <= 51


def test_trunks_are_not_limited_and_a_registered_agent_gets_the_agent_budget(harness):
    """The trunk address carries the whole call load: 2,000 requests at once all answered. An agent's
    phone registered from 127.0.0.3 is held to the agent budget (burst 400), not the stranger's."""
    trunk = harness.phone((TRUNK_A, 5070), user="trunk")
    for n in range(2000):
        trunk.send(options(trunk, n))
    harness.advance(0.01)
    assert len(trunk.responses(method="OPTIONS")) == 2000

    phone = AgentPhone(harness, ("127.0.0.3", 5200), ("127.0.0.3", 5202), "1001", "demo-1001-pw")
    harness.peers.append(phone)
    assert phone.register().status == 200
    harness.advance(1.1)  # the gate looks agents up again at most once a second
    for n in range(500):
        phone.send(options(phone, n))
    harness.advance(0.01)
    assert len(phone.responses(method="OPTIONS")) == 400
    assert harness.metric("acd_sip_requests_throttled_total", source="agent") == 100
