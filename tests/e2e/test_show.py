"""`acd show queues|agents|calls` against a running server with a bridged call and a waiting caller."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from .harness import free_port, rtp_base, start_server
from .softphone_driver import SoftphoneProcess

QUEUE_FLOW = """
name: straight_to_sales
steps:
  wait: {queue: sales, on_failure: busy}
  busy: {play: all_busy, next: end}
  end: {hangup: true}
"""


def _show(root, what: str) -> str:
    done = subprocess.run([sys.executable, "-m", "acd.cli", "show", what, "--root", str(root)],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_show_tables_name_the_bridged_call_the_waiting_caller_and_the_busy_agent(tmp_path):
    files = {"dialplans/show_e2e.yaml": 'routes:\n  - {number: "3100", flow: straight_to_sales}\n',
             "ivr_flows/straight_to_sales.yaml": QUEUE_FLOW}
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), extra_files=files,
                          http_port=free_port(kind=socket.SOCK_STREAM, both=False))
    try:
        with SoftphoneProcess("agent", "--registrar", f"sip:{server.target}", "--user", "1001",
                              "--password", "demo-1001-pw", "--login-code", "*45", "--answer-after", "0.2",
                              "--hangup-after", "20", "--calls", "1", "--timeout", "45") as agent:
            server.wait_for_log(r"agent=1001 feature=login result=logged-in", timeout=20)
            with SoftphoneProcess("call", f"sip:3100@{server.target}", "--from-user", "5553001", "--hangup-after",
                                  "25", "--timeout", "40"):
                server.wait_for_log(r"connected to agent=1001", timeout=20)
                with SoftphoneProcess("call", f"sip:3100@{server.target}", "--from-user", "5553002",
                                      "--hangup-after", "6", "--timeout", "30") as waiting:
                    server.wait_for_log(r"waiting queue=sales position=1", timeout=15)
                    bridged = re.findall(r"call=(\S+) INVITE from=sip:5553001@", server.log())[-1]
                    queued = re.findall(r"call=(\S+) INVITE from=sip:5553002@", server.log())[-1]
                    queues, agents, calls = (_show(tmp_path, "queues"), _show(tmp_path, "agents"),
                                             _show(tmp_path, "calls"))
                    waiting.result(timeout=30)
            agent.kill()
    finally:
        server.stop()
    assert queues.splitlines()[0].split() == ["QUEUE", "STRATEGY", "WAITING", "LONGEST", "AGENTS", "OFFERED",
                                              "ANSWERED", "ABANDONED", "SL", "AHT"]
    sales = next(line.split() for line in queues.splitlines() if line.startswith("sales "))
    assert sales[2] == "1", queues  # one caller waiting
    assert "sales: 1001 (penalty 0), 1002 (penalty 1)" in queues
    row_1001 = next(line for line in agents.splitlines() if line.startswith("1001 "))
    assert " on_call " in row_1001 or " busy " in row_1001, agents
    assert " yes " in row_1001 and "sales" in row_1001
    call_rows = {line.split()[0]: line for line in calls.splitlines()[1:-1]}
    assert bridged in call_rows and "1001" in call_rows[bridged], calls
    assert queued in call_rows and "sales" in call_rows[queued], calls
    assert calls.splitlines()[-1].endswith("call(s) in progress")
