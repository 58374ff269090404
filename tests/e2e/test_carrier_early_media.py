"""Issue 18's must-show "an inbound call from the carrier with PRACK required is answered with early
media", through Kamailio as the carrier (tests/e2e/kamailio_carrier.cfg, tests/e2e/carrier.py).

Our trunk registers at the carrier (Digest, 401 answered). A SIPp "PSTN caller" dials 1010 at the
carrier, one of our numbers (ACCOUNT_DIDS); its INVITE says nothing of 100rel: the *carrier* requires
it for 1010 (PRACK_DIDS: it adds `Require: 100rel`, as a carrier whose PSTN gateway needs reliable
early media does) and sends the call to our registered Contact, Record-Routing itself. We answer
with a reliable 183 (RSeq) with SDP and play "calls may be recorded" as early media; the caller gets
the 183 through the carrier, PRACKs it along the route set (through the carrier), hears the
announcement on RTP before the 200, then 200, ACK and BYE, all through the carrier.
"""

from __future__ import annotations

import re

import pytest

from acd.media.prompts import PromptLibrary

from .carrier import ACCOUNT_PASSWORD, ACCOUNT_USER, REALM, Carrier, carrier_tools_installed
from .harness import LOOPBACK, REPO, SCENARIOS, free_port, rtp_base, run_sipp, start_server
from .test_early_media import EARLY_MEDIA_NUMBER, MarkedRtpSink

pytestmark = pytest.mark.skipif(not carrier_tools_installed(), reason="needs Kamailio and SIPp (scripts/setup "
                                                                      "installs them)")


def test_a_pstn_call_the_carrier_requires_100rel_for_is_pracked_through_it_and_hears_early_media(tmp_path):
    carrier = Carrier(tmp_path / "carrier", free_port(both=False), free_port(both=False))
    register = (f"register:\n  user: {ACCOUNT_USER}\n  password: {ACCOUNT_PASSWORD}\n  domain: {REALM}\n"
                f"  proxy: {carrier.target}\n  expires_seconds: 60\n")
    # The PSTN gateway's INVITE: the PRACKing caller of test_early_media, without its own Require or
    # Supported 100rel (what makes our 183 reliable is the carrier's Require).
    gateway = (SCENARIOS / "uac_prack_early_media.xml").read_text()
    gateway = gateway.replace("      Require: 100rel\n      Supported: 100rel\n", "")
    assert "100rel\n" not in gateway.split("</send>")[0]
    (tmp_path / "pstn_gateway.xml").write_text(gateway)
    caller = tmp_path / "caller"
    caller.mkdir()
    server = sink = None
    try:
        carrier.start()
        server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=rtp_base(), trunk_extra=register)
        server.wait_for_log(rf"trunk=test registered at {carrier.target} status=200", timeout=5)
        sink = MarkedRtpSink(caller / "answered-1")
        result = run_sipp(caller, carrier.target, scenario=str(tmp_path / "pstn_gateway.xml"),
                          service=EARLY_MEDIA_NUMBER, keys={"rtp_port": str(sink.port)}, timeout=15)
        sink.close()
        result.assert_ok(server)
        call_id = re.findall(rf"call=(\S+) INVITE from=\S+ dialled={EARLY_MEDIA_NUMBER} trunk=test "
                             rf"source={LOOPBACK}:{carrier.port} ", server.log())[-1]
        server.wait_for_log(rf"call={re.escape(call_id)} early media: 183 Session Progress \(reliable, RSeq \d+\), "
                            r"playing calls_recorded before answer")
        server.wait_for_log(rf"call={re.escape(call_id)} PRACK for our reliable 183")
        server.wait_for_log(rf"call={re.escape(call_id)} ended reason='caller hung up'")
    finally:
        if sink is not None:
            sink.close()
        if server is not None:
            server.stop()
        carrier.stop()
    carrier_log = carrier.log()
    assert re.search(rf"INVITE to {EARLY_MEDIA_NUMBER} call-id {re.escape(call_id)}: 100rel required", carrier_log)
    in_dialog = re.findall(rf"(\w+) call-id {re.escape(call_id)} cseq \d+ in dialog: along the route set", carrier_log)
    assert in_dialog == ["PRACK", "ACK", "BYE"], "the PRACK, ACK and BYE went through the carrier (Record-Route)"
    prompt = PromptLibrary({"calls_recorded": REPO / "sounds" / "calls_recorded.wav"}).encoded("calls_recorded",
                                                                                              "PCMU")
    frames = {prompt[i:i + 160] for i in range(0, len(prompt) - 159, 160)}
    early = [packet for packet, answered in zip(sink.packets, sink.marks) if not answered]
    assert len(early) >= 150, f"about 4 s of early media before the 200 OK, got {len(early)} packets"
    assert sum(packet[12:] in frames for packet in early) >= 150, "early media carries the announcement"
    assert len(sink.packets) > len(early), "media goes on after the 200 OK"
