"""Symmetric RTP against `acd serve`, on both media planes: a raw caller whose SDP advertises one
port but who sends its RTP from another (a NAT that changed the port). The server's IVR audio goes
to the advertised port until the caller's first packet arrives, then to the port it came from, and
only there. `rtp: symmetric: always` here, since on 127.0.0.1 no address is private (the default,
auto, learns only for private SDP addresses: tests/shell/test_shell_symmetric_rtp.py)."""

from __future__ import annotations

import re
import socket
import threading

import pytest

from .harness import LOOPBACK, free_port, rtp_base, start_server, wait_until
from .test_robustness import RawSipClient, _status, _to_tag


class Socket:
    """A UDP socket on 127.0.0.1 counting what arrives, in a thread."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((LOOPBACK, 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.socket.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            self.received += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.socket.close()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "media-worker"])
def test_audio_reaches_the_port_the_callers_rtp_comes_from_not_the_one_its_sdp_says(tmp_path, workers):
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), rtp_workers=workers,
                          rtp_extra="  symmetric: always\n")
    advertised, real = Socket(), Socket()
    sip = RawSipClient(server.sip_port)
    call_id = f"symmetric-{workers}-{server.sip_port}"
    try:
        sdp = (f"v=0\r\no=nat 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
               f"m=audio {advertised.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n").encode()
        sip.send(sip.request("INVITE", call_id, branch=f"z9hG4bK{call_id}", body=sdp, number="1000"))
        ok = sip.receive_until(lambda got: any(_status(m) == 200 for m in got if m.startswith(b"SIP/")),
                               "200 OK to the INVITE")[-1]
        media = (LOOPBACK, int(re.search(rb"\r\nm=audio (\d+) ", ok).group(1)))
        to_tag = _to_tag(ok)
        sip.send(sip.request("ACK", call_id, branch=f"z9hG4bK{call_id}ack", to_tag=to_tag, number="1000"))
        wait_until(lambda: advertised.received >= 10, 5, "the welcome prompt at the port the SDP advertised")
        assert real.received == 0
        real.socket.sendto(bytes([0x80, 0x80, 0, 1, 0, 0, 0, 160, 0xBA, 0xD5, 0xEE, 0xD5]) + b"\xff" * 160, media)
        wait_until(lambda: real.received >= 25, 5, "our audio at the port the caller's RTP came from")
        settled = advertised.received
        wait_until(lambda: real.received >= 50, 5, "more audio at the learnt port")
        assert advertised.received - settled <= 1, "after learning, nothing more goes to the advertised port"
        server.wait_for_log(rf"call={re.escape(call_id)} symmetric RTP: the peer's RTP comes from "
                            rf"{LOOPBACK}:{real.port}, its SDP said {LOOPBACK}:{advertised.port}: sending there")
        sip.send(sip.request("BYE", call_id, branch=f"z9hG4bK{call_id}bye", cseq=2, to_tag=to_tag))
        server.wait_for_log(rf"call={re.escape(call_id)} ended reason=")
    finally:
        sip.close()
        advertised.close()
        real.close()
        server.stop()
