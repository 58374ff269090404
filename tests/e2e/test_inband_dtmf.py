"""In-band DTMF against `acd serve`: a caller whose SDP offers no telephone-event sends key tones made
by sox in its PCMU stream (from a raw UDP socket) and navigates the demo menu with every key heard once
and nothing else; a minute of espeak-ng speech sent into the menu gives no digit at all.

Media on a worker process (the plane `rtp: workers: auto` picks on two cores or more; both planes
run the same RtpLeg, and tests/shell/test_shell_inband_dtmf.py drives both). The speech is sent 8x
faster than real time: the media path does not pace what it receives (each packet is handled as it
arrives, and the detector counts time in samples, not by the clock). The server's received-packet
count shows none was lost, and a key pressed after the speech shows the stream was listened to
until its end.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.inband_audio import FRAME, espeak_speech, sox_dtmf, tools_available

from .harness import LOOPBACK, free_port, rtp_base, start_server, wait_until
from .test_metrics import scrape
from .test_robustness import RawSipClient, _status, _to_tag

pytestmark = pytest.mark.skipif(not tools_available(), reason="sox and espeak-ng are needed: run scripts/setup")

SILENCE = b"\xff" * FRAME


@pytest.fixture(scope="module")
def worker_server(tmp_path_factory):
    """The demo config (trunk dtmf left at auto), media on one worker process, /metrics served."""
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(tmp_path_factory.mktemp("acd"), sip_port=free_port(), rtp_base=rtp_base(),
                          rtp_workers=1, http_port=http_port)
    server.http_port = http_port
    yield server
    server.stop()


class ToneCaller:
    """A raw SIP caller offering PCMU only, with an RTP socket it sends recorded audio from."""

    def __init__(self, server, call_id: str) -> None:
        self.server = server
        self.call_id = call_id
        self.sip = RawSipClient(server.sip_port)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((LOOPBACK, 0))
        self.sequence = 0
        self.to_tag = ""
        self.media: tuple[str, int] | None = None

    def call(self, number: str = "1000") -> None:
        """INVITE (no telephone-event in the offer), 200 with the server's media address, ACK."""
        sdp = (f"v=0\r\no=tones 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
               f"m=audio {self.rtp.getsockname()[1]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n").encode()
        self.sip.send(self.sip.request("INVITE", self.call_id, branch=f"z9hG4bK{self.call_id}", body=sdp,
                                       number=number))
        ok = self.sip.receive_until(lambda got: any(_status(m) == 200 for m in got if m.startswith(b"SIP/")),
                                    "200 OK to the INVITE")[-1]
        self.to_tag = _to_tag(ok)
        port = int(re.search(rb"\r\nm=audio (\d+) ", ok).group(1))
        address = re.search(rb"\r\nc=IN IP4 (\S+)\r\n", ok).group(1).decode()
        self.media = (address, port)
        self.sip.send(self.sip.request("ACK", self.call_id, branch=f"z9hG4bK{self.call_id}ack", to_tag=self.to_tag,
                                       number=number))

    def send_audio(self, audio: bytes, *, speed: float = 1.0) -> None:
        """Send PCMU `audio` as 20 ms RTP packets, paced at `speed` times real time."""
        start = time.monotonic()
        interval = 0.02 / speed
        for index in range(0, len(audio) - len(audio) % FRAME, FRAME):
            packet = bytes([0x80, 0x80 if self.sequence == 0 else 0]) + (self.sequence & 0xFFFF).to_bytes(2, "big") \
                + (self.sequence * FRAME & 0xFFFFFFFF).to_bytes(4, "big") + b"\x0b\xad\xfa\xce" + audio[index:index + FRAME]
            self.rtp.sendto(packet, self.media)
            self.sequence += 1
            delay = start + (index // FRAME + 1) * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def hang_up(self) -> None:
        self.sip.send(self.sip.request("BYE", self.call_id, branch=f"z9hG4bK{self.call_id}bye", cseq=2,
                                       to_tag=self.to_tag))
        self.server.wait_for_log(rf"call={re.escape(self.call_id)} ended reason=")

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def digits(self) -> list[tuple[str, str]]:
        """(digit, via) of every DTMF digit the server logged for this call."""
        return re.findall(rf"call={re.escape(self.call_id)} dtmf digit=(\S) via=(\S+) ", self.server.log())


def test_caller_sending_tones_navigates_the_menu_with_no_key_missed_or_invented(worker_server, tmp_path):
    """3 during the welcome (order status), then 12345# as tones: the order is looked up; the server
    heard exactly those seven keys, in-band."""
    server = worker_server
    menu_key = sox_dtmf(tmp_path / "three.ul", "3", tone_ms=100, gap_ms=600, lead_ms=1000)
    order = sox_dtmf(tmp_path / "order.ul", "12345#", tone_ms=100, gap_ms=100)
    caller = ToneCaller(server, f"inband-menu-{server.sip_port}")
    try:
        caller.call()
        caller.send_audio(menu_key + order + SILENCE * 10)
        server.wait_for_log(rf"call={caller.call_id} collect=order_status into=order_number digits=12345 length=5")
        caller.hang_up()
    finally:
        caller.close()
    assert re.search(rf"call={caller.call_id} menu=main_menu choice=3 next=order_status", server.log())
    assert caller.digits() == [(key, "inband") for key in "312345#"]


def test_a_minute_of_speech_in_the_menu_gives_no_digit(worker_server, tmp_path):
    """60 s of espeak-ng speech into the main menu: no digit, no choice, no packet lost; then a 2 as
    a tone is heard."""
    speech = espeak_speech(tmp_path / "speech.ul", seconds=60)
    key = sox_dtmf(tmp_path / "two.ul", "2", tone_ms=100, gap_ms=200)
    received_before = scrape(worker_server).get("acd_rtp_packets_received_total", 0.0)
    caller = ToneCaller(worker_server, "inband-speech")
    try:
        caller.call()
        caller.send_audio(speech, speed=8.0)
        assert caller.digits() == []
        caller.send_audio(key)
        worker_server.wait_for_log(rf"call={caller.call_id} menu=main_menu choice=2 next=support")
        caller.hang_up()
    finally:
        caller.close()
    assert caller.digits() == [("2", "inband")]
    # Every speech packet reached the leg (the last few of the key may cross our BYE).
    wait_until(lambda: scrape(worker_server).get("acd_rtp_packets_received_total", 0.0) - received_before
               >= len(speech) // FRAME, 5, "all speech packets counted received in /metrics", server=worker_server)
