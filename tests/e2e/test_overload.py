"""Admission control on the real server (issue 21, must show): at the call ceiling a new INVITE gets
503 with Retry-After, its retransmissions get the very same bytes, and nothing is created for it (RTP
ports and file descriptors read from /proc, call records, the call table through /metrics); the
calls already taken are ACKed and hung up normally meanwhile, and once one has ended a new call is
taken. Raw UDP from 127.0.0.1 (the test trunk): no timing is asserted.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from .harness import LOOPBACK, REPO, free_port, rtp_base, start_server, wait_until
from .test_flood import held

CEILING = 3
RTP_PORTS = 40


class RawCaller:
    """A caller on a plain UDP socket: builds its own INVITE, ACK and BYE, and reads the answers."""

    def __init__(self, server_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the server's RTP lands here, unread
        self.media.bind((LOOPBACK, 0))
        self.server = (LOOPBACK, server_port)

    def invite(self, n: int) -> tuple[str, bytes]:
        """(Call-ID, the INVITE's bytes), sent once."""
        call_id = f"overload-{n}-{self.port}@test"
        sdp = (f"v=0\r\no=t 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
               f"m=audio {self.media.getsockname()[1]} RTP/AVP 0\r\n").encode()
        head = "\r\n".join([
            f"INVITE sip:1000@{LOOPBACK}:{self.server[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch=z9hG4bK-{n}-{self.port}", "Max-Forwards: 70",
            f"From: <sip:5550100@{LOOPBACK}>;tag=f{n}", f"To: <sip:1000@{LOOPBACK}>", f"Call-ID: {call_id}",
            "CSeq: 1 INVITE", f"Contact: <sip:5550100@{LOOPBACK}:{self.port}>", "Content-Type: application/sdp",
            f"Content-Length: {len(sdp)}"])
        data = head.encode() + b"\r\n\r\n" + sdp
        self.sock.sendto(data, self.server)
        return call_id, data

    def final(self, call_id: str, method: str = "INVITE") -> bytes:
        """The next final response to `method` of `call_id` (provisional ones and others skipped)."""
        while True:
            data = self.sock.recv(65535)
            status = int(data[8:11]) if data.startswith(b"SIP/2.0 ") else 0
            if status >= 200 and f"Call-ID: {call_id}".encode() in data and f" {method}\r\n".encode() in data:
                return data

    def in_dialog(self, method: str, call_id: str, n: int, answer: bytes, cseq: int) -> None:
        """ACK or BYE inside the dialog the 200 `answer` made (To with the server's tag)."""
        to = re.search(rb"\r\nTo: ([^\r]+)", answer).group(1).decode()
        head = "\r\n".join([
            f"{method} sip:acd@{LOOPBACK}:{self.server[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch=z9hG4bK-{method}-{n}-{cseq}-{self.port}",
            "Max-Forwards: 70", f"From: <sip:5550100@{LOOPBACK}>;tag=f{n}", f"To: {to}", f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}", "Content-Length: 0"])
        self.sock.sendto(head.encode() + b"\r\n\r\n", self.server)

    def close(self) -> None:
        self.sock.close()
        self.media.close()


def metric(http_port: int, name: str, labels: str = "") -> float:
    page = urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", page, re.M)
    return float(match.group(1)) if match else 0.0


def call_records(root) -> int:
    with sqlite3.connect(root / "data" / "records.db", timeout=5) as db:
        return db.execute("select count(*) from calls").fetchone()[0]


def test_at_the_ceiling_new_calls_get_the_same_503_without_state_while_calls_in_progress_complete(tmp_path):
    low, http_port = rtp_base(), free_port()
    server = start_server(tmp_path / "server", sip_port=free_port(), rtp_base=low, rtp_ports=RTP_PORTS,
                          http_port=http_port, sip_extra=f"  admission: {{max_calls: {CEILING}}}\n")
    caller = RawCaller(server.sip_port)
    pid, high = server.process.pid, low + RTP_PORTS - 1
    try:
        calls = []
        for n in range(CEILING):
            call_id, _ = caller.invite(n)
            answer = caller.final(call_id)
            assert answer.startswith(b"SIP/2.0 200 "), answer[:200]
            calls.append((n, call_id, answer))
        for n, call_id, answer in calls[:-1]:
            caller.in_dialog("ACK", call_id, n, answer, 1)
        wait_until(lambda: call_records(server.root) == CEILING, 10, "a record for each call taken", server=server)
        wait_until(lambda: held(pid, low, high)[1] == CEILING, 10, "the media worker bound each call's port",
                   server=server)
        before = held(pid, low, high), call_records(server.root)
        assert before[0][1] == CEILING  # one RTP port per call

        refused_id, invite = caller.invite(CEILING)
        refusal = caller.final(refused_id)
        assert refusal.startswith(b"SIP/2.0 503 Service Unavailable\r\n") and b"\r\nRetry-After: 2\r\n" in refusal
        for _ in range(3):  # retransmissions: answered again, byte for byte (same To tag)
            caller.sock.sendto(invite, caller.server)
            assert caller.final(refused_id) == refusal
        last, last_id, last_answer = calls[-1]
        caller.in_dialog("ACK", last_id, last, last_answer, 1)  # at the ceiling, the ACK is served...
        time.sleep(0.3)
        assert (held(pid, low, high), call_records(server.root)) == before
        assert metric(http_port, "acd_admission_refused_total", '{reason="max_calls"}') == 1
        assert metric(http_port, "acd_admission_refusals_resent_total") == 3
        assert metric(http_port, "acd_calls_unconfirmed") == 0  # ...and every call taken is confirmed

        for n, call_id, answer in calls:  # ...and so are the BYEs
            caller.in_dialog("BYE", call_id, n, answer, 2)
            assert caller.final(call_id, "BYE").startswith(b"SIP/2.0 200 ")
        after_id, _ = caller.invite(CEILING + 1)
        assert caller.final(after_id).startswith(b"SIP/2.0 200 ")
        assert metric(http_port, "acd_admission_admitted_total") == CEILING + 1
        log = server.log()
        assert "Traceback" not in log and len(re.findall(r"admission: refused", log)) == 1
    finally:
        caller.close()
        server.stop()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed: run scripts/setup")
@pytest.mark.serial  # an overload run loads the CPU
def test_the_overload_benchmark_counts_accepted_and_refused_calls(tmp_path):
    """scripts/bench/overload_bench.py in a tiny bounded run (2x a 20 calls/s ceiling for 3 s): every
    call of the capture is answered, 200 or 503, and the JSON has the figures the issue asks for."""
    out = tmp_path / "overload.json"
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench" / "overload_bench.py"), "rate", "--clean-rate", "20",
         "--seconds", "3", "--baseline-seconds", "2", "--recovery-seconds", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=90, cwd=REPO)
    assert out.exists(), f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    result = json.loads(out.read_text())["result"]
    overload = result["overload"]
    assert overload["offered"] >= 100 and overload["accepted"] > 0 and overload["refused_503"] > 0
    assert overload["no_final_answer"] == 0 and overload["other_final"] == 0 and overload["accepted_then_lost"] == 0
    assert result["server_metrics"]["acd_admission_refused_total{reason=\"rate\"}"] >= overload["refused_503"]
    assert set(result["verdict"]) and result["sipp_excess"]["failed"] == 0
