"""Bad and repeated input over real UDP: retransmitted INVITEs, garbage, wrong Content-Length."""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time

from .harness import LOOPBACK, SIPP_PCAPS, RtpSink, run_sipp

SDP = (b"v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")


class RawSipClient:
    """A bare UDP socket that sends hand-written SIP and collects responses."""

    def __init__(self, server_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.server = (LOOPBACK, server_port)
        self._pings = itertools.count(1)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive_until(self, done, what: str, timeout: float = 5.0) -> list[bytes]:
        """Collect messages until `done(messages)` holds; AssertionError naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        messages = []
        while not done(messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} (not after {timeout}s); received {messages}")
            try:
                messages.append(self.sock.recvfrom(65535)[0])
            except socket.timeout:
                continue
        return messages

    def receive_before_ping(self) -> list[bytes]:
        """Everything the server answers to what was sent so far. It handles datagrams one at a time,
        in order, so these are the messages that arrive before its answer to an OPTIONS ping sent now."""
        ping_id = f"ping-{next(self._pings)}"
        self.send(self.request("OPTIONS", ping_id, branch=f"z9hG4bK{ping_id}"))
        pinged = f"Call-ID: {ping_id}\r\n".encode()
        return self.receive_until(lambda got: any(pinged in m for m in got), "the answer to our ping")[:-1]

    def request(self, method: str, call_id: str, *, branch: str, cseq: int = 1, to_tag: str = "",
                body: bytes = b"", content_length: int | None = None, number: str = "1000") -> bytes:
        to = f"<sip:{number}@{LOOPBACK}>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} sip:{number}@{LOOPBACK}:{self.server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch={branch}\r\n"
                f"From: <sip:5550000@{LOOPBACK}>;tag=raw{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
                f"CSeq: {cseq} {method}\r\nContact: <sip:5550000@{LOOPBACK}:{self.port}>\r\nMax-Forwards: 70\r\n"
                + ("Content-Type: application/sdp\r\n" if body else "")
                + f"Content-Length: {len(body) if content_length is None else content_length}\r\n\r\n")
        return head.encode() + body

    def close(self) -> None:
        self.sock.close()


def _status(message: bytes) -> int:
    return int(message.split(b" ", 2)[1])


def _ok_to(method: str):
    """For `receive_until`: a 200 OK answering our `method` (by its CSeq) has arrived."""
    cseq = re.compile(rf"\r\nCSeq: \d+ {method}\r\n".encode(), re.IGNORECASE)
    return lambda got: any(_status(r) == 200 and cseq.search(r) for r in got)


def _to_tag(message: bytes) -> str:
    return re.search(rb"\r\nTo: [^\r]*;tag=([^;\r]+)", message).group(1).decode()


def test_retransmitted_invite_creates_one_call_and_gets_the_same_answer(acd_server):
    """Three copies of one INVITE (same branch) → one call, the same 200 OK (same To tag) each time."""
    client = RawSipClient(acd_server.sip_port)
    call_id = "retransmit-test-1"
    invite = client.request("INVITE", call_id, branch="z9hG4bKretr1", body=SDP)
    try:
        responses = []
        for copy in range(1, 4):  # each copy once the last is answered: the phone lost our 200 and resends
            client.send(invite)
            got = client.receive_until(_ok_to("INVITE"), f"a 200 OK to copy {copy} of the INVITE")
            responses += [r for r in got if r.startswith(b"SIP/2.0 200")]
        assert len(responses) >= 3, f"each retransmission is answered again; got {len(responses)}"
        assert len({_to_tag(r) for r in responses}) == 1, "every copy of the answer carries the same To tag"
        to_tag = _to_tag(responses[0])
        client.send(client.request("ACK", call_id, branch="z9hG4bKretr1ack", to_tag=to_tag))
        client.send(client.request("BYE", call_id, branch="z9hG4bKretr1bye", cseq=2, to_tag=to_tag))
        client.receive_until(_ok_to("BYE"), "a 200 OK to the BYE")
    finally:
        client.close()
    acd_server.wait_for_log(rf"call={call_id} ended reason='caller hung up'")
    assert len(re.findall(rf"call={call_id} INVITE from=", acd_server.log())) == 1


def test_garbage_and_bad_content_length_do_not_disturb_a_call_in_progress(acd_server, tmp_path):
    """While a SIPp call runs its menu, junk datagrams are dropped and a short body gets 400; the call completes."""
    sink = RtpSink()
    outcome = {}

    def call():
        outcome["result"] = run_sipp(tmp_path, acd_server.target, scenario="ivr_dtmf.xml",
                                     keys={"rtp_port": str(sink.port),
                                           "dtmf_pcap": str(SIPP_PCAPS / "dtmf_2833_2.pcap")},
                                     args_set={"dtmf_after_ms": "4000"})

    caller = threading.Thread(target=call)
    caller.start()
    client = RawSipClient(acd_server.sip_port)
    try:
        acd_server.wait_for_log(r"call=\d+-\d+@\S+ answered dialled=1000")  # SIPp's call is in progress
        client.send(b"\x00\xff\xfe garbage \x80\x81" * 20)
        client.send(b"NOT SIP AT ALL\r\n\r\n")
        client.send(client.request("INVITE", "bad-length-1", branch="z9hG4bKbadlen", body=SDP, content_length=900))
        client.send(b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: nonsense\r\n\r\n")
        replies = client.receive_before_ping()
        assert [_status(r) for r in replies] == [400], f"only the bad Content-Length INVITE is answered: {replies}"
        assert b"Content-Length 900 exceeds" in replies[0]
    finally:
        client.close()
        caller.join(timeout=30)
        sink.close()
    outcome["result"].assert_ok(acd_server)
    log = acd_server.log()
    call_id = re.findall(r"call=(\d+-\d+@\S+) INVITE from=", log)[-1]
    assert re.search(rf"call={re.escape(call_id)} menu=main_menu choice=2", log)
    assert "bad-length-1 INVITE" not in log, "the malformed INVITE never became a call"
    assert "internal error" not in log
    assert len(sink.packets) > 200, "media of the call in progress kept flowing"


def test_options_ping_is_answered_with_allow(acd_server):
    """An out-of-dialog OPTIONS (trunk keep-alive) gets 200 with Allow."""
    client = RawSipClient(acd_server.sip_port)
    try:
        client.send(client.request("OPTIONS", "options-ping-1", branch="z9hG4bKopt1"))
        replies = client.receive_before_ping()
    finally:
        client.close()
    assert len(replies) == 1 and _status(replies[0]) == 200
    assert b"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY" in replies[0]


def test_sip_info_dtmf_chooses_in_the_menu(acd_server):
    """DTMF sent as SIP INFO (application/dtmf-relay) works where RFC 4733 is not available."""
    client = RawSipClient(acd_server.sip_port)
    call_id = "info-dtmf-1"
    try:
        client.send(client.request("INVITE", call_id, branch="z9hG4bKinfo1", body=SDP))
        ok = client.receive_until(_ok_to("INVITE"), "a 200 OK to the INVITE")
        to_tag = _to_tag(ok[-1])
        client.send(client.request("ACK", call_id, branch="z9hG4bKinfo1ack", to_tag=to_tag))
        acd_server.wait_for_log(rf"call={call_id} event=main-menu")  # the welcome prompt (2.8 s) is over
        info = client.request("INFO", call_id, branch="z9hG4bKinfo2", cseq=2, to_tag=to_tag,
                              body=b"Signal=2\r\nDuration=160\r\n")
        info = info.replace(b"Content-Type: application/sdp", b"Content-Type: application/dtmf-relay")
        client.send(info)
        client.receive_until(_ok_to("INFO"), "a 200 OK to the INFO")
        acd_server.wait_for_log(rf"call={call_id} dtmf digit=2 via=info")
        acd_server.wait_for_log(rf"call={call_id} menu=main_menu choice=2 next=support")
        client.send(client.request("BYE", call_id, branch="z9hG4bKinfo3", cseq=3, to_tag=to_tag))
        client.receive_until(_ok_to("BYE"), "a 200 OK to the BYE")
    finally:
        client.close()
    acd_server.wait_for_log(rf"call={call_id} ended reason='caller hung up'")
