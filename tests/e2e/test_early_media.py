"""RFC 3262 (PRACK / 100rel) and early media against `acd serve`, with SIPp as a caller that requires
100rel: number 1010 answers with a reliable 183 (RSeq), plays "calls may be recorded" on RTP before
the 200, and sends the 200 after the PRACK; a caller that never PRACKs gets 500 after 64*T1 (T1 is
0.1 s here, so 6.4 s) and the call's record says why."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from acd.media.prompts import PromptLibrary

from .harness import REPO, RtpSink, free_port, rtp_base, run_sipp, start_server, wait_until

EARLY_MEDIA_NUMBER = "1010"  # ivr_flows/recorded_line.yaml: announce_before_answer: calls_recorded
SHORT_T1 = "  timer_t1_seconds: 0.1\n"  # 64*T1 = 6.4 s without PRACK


class MarkedRtpSink(RtpSink):
    """An RtpSink that notes, for each packet, whether the file `marker` existed when it came
    (SIPp touches it when the 200 OK arrives): packets without the mark are early media."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.marks: list[bool] = []
        super().__init__()

    def received(self, data: bytes) -> None:
        self.marks.append(self.marker.exists())
        super().received(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("acd")
    acd = start_server(root, sip_port=free_port(), rtp_base=rtp_base(), sip_extra=SHORT_T1)
    yield acd
    acd.stop()


def _call_id(log: str, number: str) -> str:
    return re.findall(rf"call=(\S+) INVITE from=\S+ dialled={number} ", log)[-1]


def _record(root: Path, call_id: str) -> tuple | None:
    with sqlite3.connect(root / "data" / "records.db") as db:
        return db.execute("select outcome, end_reason from calls where call_id = ?", (call_id,)).fetchone()


def test_a_caller_requiring_100rel_pracks_the_183_hears_early_media_then_gets_the_200(server, tmp_path):
    sink = MarkedRtpSink(tmp_path / "answered-1")
    try:
        result = run_sipp(tmp_path, server.target, scenario="uac_prack_early_media.xml",
                          service=EARLY_MEDIA_NUMBER, keys={"rtp_port": str(sink.port)}, timeout=20)
    finally:
        sink.close()
    result.assert_ok(server)
    call_id = _call_id(server.log(), EARLY_MEDIA_NUMBER)
    server.wait_for_log(rf"call={re.escape(call_id)} early media: 183 Session Progress \(reliable, RSeq \d+\), "
                        r"playing calls_recorded before answer")
    server.wait_for_log(rf"call={re.escape(call_id)} PRACK for our reliable 183")
    server.wait_for_log(rf"call={re.escape(call_id)} ended reason='caller hung up'")
    prompt = PromptLibrary({"calls_recorded": REPO / "sounds" / "calls_recorded.wav"}).encoded("calls_recorded",
                                                                                              "PCMU")
    frames = {prompt[i:i + 160] for i in range(0, len(prompt) - 159, 160)}
    early = [packet for packet, answered in zip(sink.packets, sink.marks) if not answered]
    assert len(early) >= 150, f"about 4 s of early media before the 200 OK, got {len(early)} packets"
    assert sum(packet[12:] in frames for packet in early) >= 150, "early media carries the announcement"
    assert len(sink.packets) > len(early), "media goes on after the 200 OK (the main flow's welcome)"


def test_a_caller_that_never_pracks_gets_500_after_64_t1_and_the_call_is_recorded_failed(server, tmp_path):
    sink = RtpSink()
    try:
        result = run_sipp(tmp_path, server.target, scenario="uac_never_pracks.xml", service=EARLY_MEDIA_NUMBER,
                          keys={"rtp_port": str(sink.port)}, timeout=20)
    finally:
        sink.close()
    result.assert_ok(server)
    call_id = _call_id(server.log(), EARLY_MEDIA_NUMBER)
    server.wait_for_log(rf"call={re.escape(call_id)} no PRACK for our reliable 183 \(RSeq \d+\) within 64\*T1 "
                        r"\(6\.4 s\): rejecting the INVITE 500")
    record = wait_until(lambda: (row := _record(server.root, call_id)) and row[0] and row, 5,
                        "the call's record to be closed", server=server)
    assert record == ("failed", "no PRACK for our reliable 183 within 6.4 s")
