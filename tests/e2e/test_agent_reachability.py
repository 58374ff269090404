"""An agent whose phone went away (issue 17, item 3), over real SIP with PJSUA2 softphones: logged
in with *45 then unregistered, the agent is never offered a call and the `refuse` queue turns the
caller away at once; once the phone registers again, the agent gets the next call."""

from __future__ import annotations

import re
import signal

from .harness import free_port, rtp_base, start_server
from .softphone_driver import SoftphoneProcess, run_softphone

# The demo `sales` queue (when_no_agents: refuse) straight from a number, without the IVR menu;
# of its members only 1001 will log in.
STRAIGHT_TO_SALES = """
name: straight_to_sales
steps:
  wait: {queue: sales, on_failure: busy}
  busy: {play: all_busy, next: end, event: queue-failed}
  end: {hangup: true}
"""


def test_unregistered_agent_is_never_offered_refuse_queue_refuses_and_the_agent_comes_back(tmp_path):
    files = {"dialplans/reachability.yaml": 'routes:\n  - {number: "3100", flow: straight_to_sales}\n',
             "ivr_flows/straight_to_sales.yaml": STRAIGHT_TO_SALES}
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), extra_files=files)
    phone = ("--registrar", f"sip:{server.target}", "--user", "1001", "--password", "demo-1001-pw")
    try:
        with SoftphoneProcess("agent", *phone, "--login-code", "*45", "--calls", "1", "--timeout", "30") as first:
            first.wait_for_stderr(r"login call ended", timeout=15)
            server.wait_for_log(r"agent=1001 feature=login result=logged-in")
            first.proc.send_signal(signal.SIGTERM)  # the phone goes away: it unregisters (REGISTER expires=0)
            gone = first.result(timeout=20)
        assert gone["registered"] and gone["login_status"] == "answered", gone
        assert gone["unregister_status"] == 200, gone
        server.wait_for_log(r"agent=1001 phone unreachable: unregistered \(state available\)")

        refused = run_softphone("call", f"sip:3100@{server.target}", "--from-user", "5553001", "--timeout", "20",
                                timeout=35)
        assert refused["answered"] and refused["hung_up_by"] == "remote", refused
        call_id = re.findall(r"call=(\S+) INVITE from=sip:5553001@", server.log())[-1]
        server.wait_for_log(rf"call={re.escape(call_id)} refused by queue sales: no agent is logged in to sales "
                            r"with a reachable phone \(1 logged in, unreachable\) \(no-agents-logged-in\)")
        log = server.log()
        assert "offer agent=1001" not in log, "an unreachable agent is never offered a call"
        assert f"call={call_id} waiting queue=sales" not in log, "refused at once, not after waiting"

        with SoftphoneProcess("agent", *phone, "--answer-after", "0.5", "--hangup-after", "1", "--calls", "1",
                              "--timeout", "30") as back:
            back.wait_for_stderr(r"REGISTERED 200", timeout=15)
            server.wait_for_log(r"agent=1001 phone reachable: registered \(state available\)")
            served = run_softphone("call", f"sip:3100@{server.target}", "--from-user", "5553002", "--timeout", "20",
                                   timeout=35)
            report = back.result(timeout=35)
        assert served["answered"], served
        offer = report["calls"][0]
        assert offer["answered"] and offer["headers"].get("X-ACD-Queue") == "sales", report
        assert offer["headers"].get("X-ACD-Caller") == "5553002"
        served_id = re.findall(r"call=(\S+) INVITE from=sip:5553002@", server.log())[-1]
        server.wait_for_log(rf"call={re.escape(served_id)} connected to agent=1001")
        assert "(no-agents-logged-in)" not in server.log().split(f"call={served_id} INVITE", 1)[1]
    finally:
        server.stop()
