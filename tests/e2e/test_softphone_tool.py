"""The PJSUA2 softphone tool (scripts/softphone.py) against a real SIP UAS: SIPp's built-in `uas`.

This checks the test tool itself, before it is aimed at the server: it places a call, sees
180 and 200, hangs up locally after 1 s, exits 0 and reports it all as JSON.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from .softphone_driver import run_softphone

SIPP = shutil.which("sipp")

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp is not installed (Debian package sip-tester; see scripts/setup)")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


@pytest.fixture
def sipp_uas(tmp_path):
    """SIPp's built-in UAS on a free 127.0.0.1 port, for one call; killed by pid in teardown."""
    port, media_port = free_udp_port(), free_udp_port()
    stderr = open(tmp_path / "sipp.stderr", "wb")
    proc = subprocess.Popen(
        [SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", str(media_port),
         "-m", "1", "-timeout", "20s", "-nostdin", "-trace_err"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 5  # wait until SIPp holds its port
        while not udp_port_taken(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sipp did not start on 127.0.0.1:{port} (exit {proc.poll()}): "
                            f"{(tmp_path / 'sipp.stderr').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield port, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        stderr.close()


def test_softphone_calls_sipp_uas_and_hangs_up_locally(sipp_uas, tmp_path):
    port, sipp = sipp_uas
    record = tmp_path / "heard.wav"
    result = run_softphone(
        "call", f"sip:service@127.0.0.1:{port}", "--from-user", "5551234",
        "--hangup-after", "1", "--timeout", "8", "--record", str(record), timeout=12)
    report = {k: v for k, v in result.items() if k != "stderr"}

    assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
    assert result["answered"] is True, report
    assert result["final_status"] == 200, report
    assert 200 in result["status_codes"] and 180 in result["status_codes"], report
    assert result["hung_up_by"] == "local", report
    assert 0.9 <= result["connected_seconds"] < 3, report
    assert result["timed_out"] is False and result["error"] is None, report
    # SIPp's uas sends no RTP: the recording exists, is a valid WAV, and lasts about the call.
    fmt = result["record_format"]
    assert fmt["sample_width"] == 2 and fmt["channels"] == 1 and fmt["sample_rate"] == 8000, fmt
    assert record.exists() and 0.5 < fmt["seconds"] < 3, fmt

    # SIPp saw one complete call (INVITE/180/200/ACK/BYE/200) and exits 0 on its own.
    try:
        assert sipp.wait(8) == 0, (tmp_path / "sipp.stderr").read_text(errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail("sipp did not finish its one call")


# --------------------------------------------------------------------------------------------
# blind transfer received (REFER) and the `agent` mode
# --------------------------------------------------------------------------------------------
from contextlib import contextmanager  # noqa: E402

from .harness import SCENARIOS, SIPP_PCAPS, free_port, rtp_base, start_server  # noqa: E402
from .softphone_driver import SoftphoneProcess, audio_rms_of_wav  # noqa: E402


@contextmanager
def sipp_background(tmp_path, name: str, *args: str):
    """SIPp with `args` on 127.0.0.1 in the background; killed by pid (its process group) at exit.
    Yields the Popen; `wait_sipp` collects its exit status."""
    stderr = open(tmp_path / f"{name}.stderr", "wb")
    proc = subprocess.Popen([SIPP, *args, "-i", "127.0.0.1", "-nostdin", "-trace_err",
                             "-error_file", str(tmp_path / f"{name}.errors")],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        stderr.close()


def wait_sipp(proc, tmp_path, name: str, timeout: float = 8) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        errors = tmp_path / f"{name}.errors"
        pytest.fail(f"sipp {name} did not finish: "
                    f"{errors.read_text(errors='replace')[-2000:] if errors.exists() else ''}")


def wait_udp_port(port: int, proc, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not udp_port_taken(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"nothing listens on 127.0.0.1:{port} (process exit {proc.poll()})")
        time.sleep(0.05)


def report_of(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "stderr"}


def test_call_follows_a_blind_transfer_refer_from_sipp(tmp_path):
    """SIPp answers, sends REFER to a second SIPp (built-in uas); the softphone places the new
    call on a new Call object (no crash), records it, hangs it up after 1.5 s and exits 0."""
    refer_port, target_port = free_port(both=False), free_port(both=False)
    record = tmp_path / "heard.wav"
    with sipp_background(tmp_path, "target", "-sn", "uas", "-p", str(target_port), "-mp",
                         str(free_port(both=False)), "-m", "1", "-timeout", "15s") as target, \
            sipp_background(tmp_path, "referrer", "-sf", str(SCENARIOS / "uas_refer.xml"),
                            "-p", str(refer_port), "-mp", str(free_port(both=False)), "-m", "1",
                            "-timeout", "15s",
                            "-set", "target", f"sip:agent@127.0.0.1:{target_port}") as referrer:
        wait_udp_port(target_port, target)
        wait_udp_port(refer_port, referrer)
        result = run_softphone("call", f"sip:service@127.0.0.1:{refer_port}", "--hangup-after",
                               "1.5", "--record", str(record), "--timeout", "8", timeout=14)
        report = report_of(result)
        assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
        assert "reuses Call instance" not in result["stderr"], result["stderr"][-3000:]
        # the first call: answered by the referrer, which hung it up after the NOTIFY 200
        assert result["answered"] is True and result["final_status"] == 200, report
        assert result["hung_up_by"] == "remote", report
        assert result["transferred_to"] == f"<sip:agent@127.0.0.1:{target_port}>", report
        tc = result["transfer_call"]
        assert tc["answered"] is True and tc["final_status"] == 200, report
        assert 180 in tc["status_codes"], report
        assert tc["hung_up_by"] == "local" and 1.4 <= tc["connected_seconds"] < 3, report
        assert result["timed_out"] is False and result["error"] is None, report
        assert record.exists() and result["record_format"]["seconds"] >= 1.5, report
        assert wait_sipp(referrer, tmp_path, "referrer") == 0
        assert wait_sipp(target, tmp_path, "target") == 0


def test_call_follows_a_transfer_made_by_the_server(tmp_path):
    """The real server transfers (REFER) to 1000; the softphone follows the new call, sends the
    DTMF still pending on it (the server logs the digit on the new call) and hangs it up."""
    files = {
        "dialplans/e2e_xfer.yaml": 'routes:\n  - {number: "2005", flow: e2e_transfer}\n',
        "ivr_flows/e2e_transfer.yaml": "name: e2e_transfer\nsteps:\n"
                                       "  hello: {play: digits/8, next: move}\n"
                                       '  move: {transfer: "1000"}\n'}
    server = start_server(tmp_path / "srv", sip_port=free_port(),
                          rtp_base=rtp_base(), extra_files=files)
    try:
        result = run_softphone("call", f"sip:2005@{server.target}", "--from-user", "5552005",
                               "--dtmf", "1", "--dtmf-delay", "1.5", "--hangup-after", "2.5",
                               "--timeout", "10", timeout=15)
        report = report_of(result)
        assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
        assert result["transferred_to"] and "sip:1000@" in result["transferred_to"], report
        assert result["answered"] is True and result["hung_up_by"] == "remote", report
        tc = result["transfer_call"]
        assert tc["answered"] is True and tc["hung_up_by"] == "local", report
        assert result["dtmf_sent"] == "1" and result["error"] is None, report
        server.wait_for_log(r"dialled=1000")
        server.wait_for_log(r"dtmf digit=1")
    finally:
        server.stop()


def test_agent_registers_with_digest_auth_and_unregisters(tmp_path):
    port = free_port(both=False)
    with sipp_background(tmp_path, "registrar", "-sf", str(SCENARIOS / "uas_register.xml"),
                         "-p", str(port), "-m", "1", "-timeout", "15s",
                         "-key", "user", "1001", "-key", "password", "secret") as registrar:
        wait_udp_port(port, registrar)
        result = run_softphone("agent", "--registrar", f"sip:127.0.0.1:{port}", "--user", "1001",
                               "--password", "secret", "--expires", "120", "--calls", "0",
                               "--timeout", "8", timeout=14)
        report = report_of(result)
        assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
        assert result["registered"] is True and result["register_status"] == 200, report
        assert result["register_expires"] == 120, report
        assert result["unregister_status"] == 200, report
        assert result["calls"] == [] and result["error"] is None, report
        assert "REGISTERED 200" in result["stderr"]
        assert wait_sipp(registrar, tmp_path, "registrar") == 0


def test_agent_with_a_wrong_password_reports_the_refusal(tmp_path):
    port = free_port(both=False)
    with sipp_background(tmp_path, "registrar", "-sf", str(SCENARIOS / "uas_register.xml"),
                         "-p", str(port), "-m", "1", "-timeout", "15s",
                         "-key", "user", "1001", "-key", "password", "secret") as registrar:
        wait_udp_port(port, registrar)
        result = run_softphone("agent", "--registrar", f"sip:127.0.0.1:{port}", "--user", "1001",
                               "--password", "wrong", "--timeout", "8", timeout=14)
    report = report_of(result)
    assert result["exit_code"] == 3, (report, result["stderr"][-3000:])
    assert result["registered"] is False and result["register_status"] == 403, report
    assert "403" in result["error"] and result["calls"] == [], report
    assert "REGISTRATION FAILED 403" in result["stderr"]


def call_agent(tmp_path, agent_args: list[str], sipp_args: list[str],
               scenario: str = "uac_agent_call.xml") -> tuple[dict, int]:
    """Start `softphone.py agent` on a free port, let SIPp call it; (agent report, sipp exit)."""
    port = free_port(both=False)
    with SoftphoneProcess("agent", "--local-port", str(port), *agent_args) as agent:
        agent.wait_for_stderr(r"waiting for calls on", timeout=8)
        with sipp_background(tmp_path, "caller", f"127.0.0.1:{port}", "-sf",
                             str(SCENARIOS / scenario), "-s", "1001",
                             "-p", str(free_port(both=False)), "-mp", str(free_port(both=False)),
                             "-timeout", "12s", "-key", "audio_pcap",
                             str(SIPP_PCAPS / "g711a.pcap"), *sipp_args) as caller:
            sipp_exit = wait_sipp(caller, tmp_path, "caller", timeout=14)
        return agent.result(timeout=12), sipp_exit


def test_agent_answers_a_call_with_x_headers_and_records_it(tmp_path):
    record = tmp_path / "agent.wav"
    result, sipp_exit = call_agent(
        tmp_path, ["--answer-after", "0.5", "--record", str(record), "--timeout", "10"],
        ["-m", "1"])
    report = report_of(result)
    assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
    assert sipp_exit == 0
    assert result["registered"] is False and result["register_status"] is None, report
    [call] = result["calls"]
    assert call["headers"] == {"X-ACD-Caller": "5551234", "X-ACD-Queue": "sales",
                               "X-ACD-Call-Number": "1"}, report
    assert call["from_user"] == "5551234" and '"ACD Caller"' in call["from"], report
    assert "tag=" not in call["from"], report
    assert call["answered"] is True and call["status_sent"] == 200, report
    assert 0.45 <= call["ring_seconds"] < 1.5, report
    assert call["hung_up_by"] == "remote" and 1.5 <= call["connected_seconds"] < 3.5, report
    assert call["record_path"] == str(record) and call["record_format"]["sample_rate"] == 8000
    assert audio_rms_of_wav(record) > 100  # SIPp played g711a.pcap to it


def test_agent_takes_consecutive_calls_sends_dtmf_and_hangs_up(tmp_path):
    record = tmp_path / "call{n}.wav"
    result, sipp_exit = call_agent(
        tmp_path, ["--calls", "2", "--hangup-after", "1", "--dtmf", "5", "--dtmf-delay", "0.4",
                   "--record", str(record), "--timeout", "12"],
        ["-m", "2", "-l", "1"])
    report = report_of(result)
    assert result["exit_code"] == 0, (report, result["stderr"][-3000:])
    assert sipp_exit == 0
    assert [c["headers"]["X-ACD-Call-Number"] for c in result["calls"]] == ["1", "2"], report
    for n, call in enumerate(result["calls"], start=1):
        assert call["answered"] and call["hung_up_by"] == "local", report
        assert 0.9 <= call["connected_seconds"] < 2 and call["dtmf_sent"] == "5", report
        assert call["record_path"] == str(tmp_path / f"call{n}.wav"), report
        assert (tmp_path / f"call{n}.wav").exists()


@pytest.mark.parametrize("code", [486, 603])
def test_agent_rejects_calls(tmp_path, code):
    result, sipp_exit = call_agent(tmp_path, ["--reject", str(code), "--timeout", "8"],
                                   ["-m", "1"])
    report = report_of(result)
    assert result["exit_code"] == 0 and sipp_exit == 0, (report, result["stderr"][-3000:])
    [call] = result["calls"]
    assert call["answered"] is False and call["status_sent"] == code, report
    assert call["disconnect_status"] == code and call["headers"]["X-ACD-Queue"] == "sales"


def test_agent_lets_it_ring_until_the_caller_cancels(tmp_path):
    result, sipp_exit = call_agent(tmp_path, ["--no-answer", "--timeout", "8"],
                                   ["-m", "1", "-key", "rtp_port", str(free_port(both=False))],
                                   scenario="cancel_before_answer.xml")
    report = report_of(result)
    assert result["exit_code"] == 0 and sipp_exit == 0, (report, result["stderr"][-3000:])
    [call] = result["calls"]
    assert call["answered"] is False and call["status_sent"] is None, report
    assert call["disconnect_status"] == 487 and call["from_user"] == "5551234", report


def test_agent_busy_on_a_second_simultaneous_call(tmp_path):
    result, sipp_exit = call_agent(tmp_path, ["--calls", "2", "--timeout", "8"],
                                   ["-m", "2", "-l", "2", "-r", "5"])
    report = report_of(result)
    assert result["exit_code"] == 0 and sipp_exit == 0, (report, result["stderr"][-3000:])
    first, second = result["calls"]
    assert first["answered"] and not first["busy"], report
    assert second["busy"] and second["status_sent"] == 486 and not second["answered"], report
