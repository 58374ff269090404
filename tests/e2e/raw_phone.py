"""A minimal SIP phone on raw UDP sockets, for e2e tests that must see every RTP packet: REGISTER and
INVITE with Digest, answer an INVITE, BYE; send a tone (PCMU, paced every 20 ms by a thread, RFC 4733
keys on demand) and capture every packet received with its arrival time.

SIP text and Digest answers are written here by hand (not by the server's builders, so a bug shared
by both sides cannot cancel out); received messages are parsed with `acd.sip.message`.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import math
import re
import socket
import statistics
import struct
import threading
import time

from acd.media.g711 import ulaw_decode, ulaw_encode
from acd.sip.message import Request, Response, parse_message

LOOPBACK = "127.0.0.1"
_ids = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}x{time.monotonic_ns() % 10**9}"


def tone_frames(hz: float, amplitude: int = 6000) -> list[bytes]:
    """One second of a sine as 50 PCMU frames (500/1000/1500 Hz repeat exactly every second)."""
    pcm = array.array("h", [int(amplitude * math.sin(2 * math.pi * hz * n / 8000)) for n in range(8000)])
    encoded = ulaw_encode(pcm.tobytes())
    return [encoded[i:i + 160] for i in range(0, 8000, 160)]


TONE_BLOCK_SECONDS = 0.1  # Goertzel window: 10 Hz wide, short enough to hold no frame dropped or repeated


def block_tone_share(samples, rate: int, hz: float) -> float:
    """Goertzel: the share of the power at `hz` in 16-bit `samples` (about 1.0 for a pure tone, 0.5
    each for two tones of equal level, about 0 when absent): the median over 100 ms blocks of each
    block's share. Blocks, not one window over the whole span: a frame the network, the server's late
    tick or a phone's jitter buffer drops or repeats shifts the tone's phase, and one long window then
    sums the two sides of the jump against each other. Two CI failures ("the agent hears nothing")
    were that: every 100 ms block but one heard the caller's tone at 1.0, one 2 s window said 0.005."""
    coefficient = 2 * math.cos(2 * math.pi * hz / rate)
    block = min(int(rate * TONE_BLOCK_SECONDS), len(samples))
    shares = []
    for start in range(0, len(samples) - block + 1, block) if block else ():
        s1 = s2 = 0.0
        chunk = samples[start:start + block]
        for x in chunk:
            s1, s2 = x + coefficient * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        energy = sum(x * x for x in chunk) * len(chunk) / 2
        shares.append(power / energy if energy else 0.0)
    return statistics.median(shares) if shares else 0.0


def tone_share(payloads: list[bytes], hz: float) -> float:
    """`block_tone_share` of the concatenated PCMU payloads (8 kHz)."""
    return block_tone_share(array.array("h", ulaw_decode(b"".join(payloads))), 8000, hz)


def _digest(challenge: str, *, method: str, uri: str, user: str, password: str) -> str:
    params = {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)\s*=\s*("[^"]*"|[^,\s]+)',
                                                            challenge.partition(" ")[2])}
    algorithm = params.get("algorithm", "MD5").upper()
    hasher = hashlib.sha256 if algorithm in ("SHA-256", "SHA256") else hashlib.md5

    def h(text: str) -> str:
        return hasher(text.encode()).hexdigest()

    cnonce, nc = _unique("cn"), "00000001"
    ha1, ha2 = h(f"{user}:{params['realm']}:{password}"), h(f"{method}:{uri}")
    response = h(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
            f'response="{response}", algorithm={"SHA-256" if hasher is hashlib.sha256 else "MD5"}, qop=auth, '
            f'nc={nc}, cnonce="{cnonce}"')


class RawPhone:
    """One party: a SIP socket, an RTP socket, a tone sender and a capture of what arrives."""

    def __init__(self, user: str, server: tuple[str, int], *, password: str = "", tone_hz: float = 0.0) -> None:
        self.user, self.server, self.password = user, server, password
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((LOOPBACK, 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((LOOPBACK, 0))
        self.rtp.settimeout(0.2)
        self.sip_port, self.rtp_port = self.sip.getsockname()[1], self.rtp.getsockname()[1]
        self.frames = tone_frames(tone_hz) if tone_hz else [b"\xff" * 160]
        self.received: list[tuple[float, bytes]] = []
        self.remote_rtp: tuple[str, int] | None = None
        self.dialog: dict | None = None
        self._keys: list[str] = []
        self._running = True
        self._inbox: list[Request | Response] = []
        self._threads = [threading.Thread(target=self._capture, daemon=True),
                         threading.Thread(target=self._send_tone, daemon=True)]
        for thread in self._threads:
            thread.start()

    # ---- SIP ---------------------------------------------------------------------------------
    def _send(self, text: str, body: bytes = b"") -> None:
        self.sip.sendto(text.replace("\n", "\r\n").encode() + body, self.server)

    def _headers(self, method: str, uri: str, call_id: str, cseq: int, from_tag: str, to: str,
                 extra: str = "", branch: str | None = None) -> str:
        branch = branch or f"z9hG4bK{_unique('b')}"
        return (f"{method} {uri} SIP/2.0\nVia: SIP/2.0/UDP {LOOPBACK}:{self.sip_port};branch={branch}\n"
                f"Max-Forwards: 70\nFrom: <sip:{self.user}@{LOOPBACK}>;tag={from_tag}\nTo: {to}\n"
                f"Call-ID: {call_id}\nCSeq: {cseq} {method}\nContact: <sip:{self.user}@{LOOPBACK}:{self.sip_port}>\n"
                + extra)

    def expect(self, predicate, timeout: float = 5.0, what: str = "a message"):
        """The first message (kept or arriving) that `predicate` accepts; 100 Trying is skipped."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self._inbox:
                if predicate(message):
                    self._inbox.remove(message)
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user}: no {what} within {timeout}s; inbox: "
                                     f"{[getattr(m, 'status', getattr(m, 'method', '?')) for m in self._inbox]}")
            self.sip.settimeout(left)
            try:
                data, _ = self.sip.recvfrom(65535)
            except socket.timeout:
                continue
            message = parse_message(data)
            if isinstance(message, Response) and message.status == 100:
                continue
            self._inbox.append(message)

    def _final(self, call_id: str, method: str, cseq: int = 1) -> Response:
        return self.expect(lambda m: isinstance(m, Response) and m.call_id == call_id and m.status >= 200
                           and m.headers.get("CSeq", "").split() == [str(cseq), method],
                           what=f"final response to {method}")

    def register(self) -> int:
        """REGISTER with Digest; the final status."""
        uri, call_id, tag = f"sip:{self.server[0]}:{self.server[1]}", _unique("reg"), _unique("t")
        to = f"<sip:{self.user}@{LOOPBACK}>"
        self._send(self._headers("REGISTER", uri, call_id, 1, tag, to, "Expires: 300\nContent-Length: 0\n\n"))
        first = self._final(call_id, "REGISTER")
        if first.status != 401:
            return first.status
        auth = _digest(first.headers.get("WWW-Authenticate"), method="REGISTER", uri=uri, user=self.user,
                       password=self.password)
        self._send(self._headers("REGISTER", uri, call_id, 2, tag, to,
                                 f"Expires: 300\nAuthorization: {auth}\nContent-Length: 0\n\n"))
        return self._final(call_id, "REGISTER", 2).status

    def _sdp(self) -> bytes:
        return (f"v=0\r\no=- 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n").encode()

    def _take_sdp(self, body: bytes) -> None:
        text = body.decode()
        address = re.search(r"c=IN IP4 (\S+)", text).group(1)
        port = int(re.search(r"m=audio (\d+)", text).group(1))
        self.remote_rtp = (address, port)

    def call(self, number: str, *, authenticate: bool = False) -> int:
        """INVITE `number` (answering a 401 with Digest when `authenticate`); ACK a 2xx and start the
        media. The final status."""
        uri, call_id, tag = f"sip:{number}@{self.server[0]}:{self.server[1]}", _unique("call"), _unique("t")
        to = f"<sip:{number}@{LOOPBACK}>"
        sdp = self._sdp()

        def invite(cseq: int, auth: str | None) -> str:
            branch = f"z9hG4bK{_unique('b')}"
            self._send(self._headers("INVITE", uri, call_id, cseq, tag, to, (f"Authorization: {auth}\n" if auth else "")
                                     + f"Content-Type: application/sdp\nContent-Length: {len(sdp)}\n\n", branch), sdp)
            return branch

        cseq = 1
        branch = invite(cseq, None)
        final = self._final(call_id, "INVITE", cseq)
        if final.status == 401 and authenticate:
            self._ack(final, uri, call_id, cseq, tag, branch)
            cseq = 2
            branch = invite(cseq, _digest(final.headers.get("WWW-Authenticate"), method="INVITE", uri=uri,
                                          user=self.user, password=self.password))
            final = self._final(call_id, "INVITE", cseq)
        self._ack(final, uri, call_id, cseq, tag, branch if final.status >= 300 else None)
        if final.status < 300:
            self._take_sdp(final.body)
            self.dialog = {"call_id": call_id, "uri": uri, "from_tag": tag, "to": final.headers.get("To"),
                           "cseq": cseq, "mine": True}
        return final.status

    def _ack(self, final: Response, uri: str, call_id: str, cseq: int, tag: str, branch: str | None) -> None:
        """ACK: of a non-2xx in the INVITE's transaction (its branch), of a 2xx as a new one."""
        self._send(self._headers("ACK", uri, call_id, cseq, tag, final.headers.get("To"), "Content-Length: 0\n\n",
                                 branch))

    def answer(self, timeout: float = 5.0) -> Request:
        """Take the next INVITE, answer 200 with our SDP, wait for the ACK; media starts."""
        invite = self.expect(lambda m: isinstance(m, Request) and m.method == "INVITE", timeout, "INVITE")
        self._take_sdp(invite.body)
        sdp, tag = self._sdp(), _unique("t")
        via = "".join(f"Via: {v}\n" for v in invite.headers.get_all("Via"))
        self._send(f"SIP/2.0 200 OK\n{via}From: {invite.headers.get('From')}\nTo: {invite.headers.get('To')};tag={tag}\n"
                   f"Call-ID: {invite.call_id}\nCSeq: {invite.headers.get('CSeq')}\n"
                   f"Contact: <sip:{self.user}@{LOOPBACK}:{self.sip_port}>\nContent-Type: application/sdp\n"
                   f"Content-Length: {len(sdp)}\n\n", sdp)
        self.expect(lambda m: isinstance(m, Request) and m.method == "ACK", timeout, "ACK")
        return invite

    def take_bye(self, timeout: float = 5.0) -> None:
        """The far end hangs up: answer its BYE 200 and stop the media."""
        bye = self.expect(lambda m: isinstance(m, Request) and m.method == "BYE", timeout, "BYE")
        via = "".join(f"Via: {v}\n" for v in bye.headers.get_all("Via"))
        self._send(f"SIP/2.0 200 OK\n{via}From: {bye.headers.get('From')}\nTo: {bye.headers.get('To')}\n"
                   f"Call-ID: {bye.call_id}\nCSeq: {bye.headers.get('CSeq')}\nContent-Length: 0\n\n")
        self.remote_rtp = None

    def hang_up(self) -> int:
        """BYE in the call we placed; the final status."""
        d = self.dialog
        d["cseq"] += 1
        self._send(self._headers("BYE", d["uri"], d["call_id"], d["cseq"], d["from_tag"], d["to"],
                                 "Content-Length: 0\n\n"))
        self.remote_rtp = None
        return self._final(d["call_id"], "BYE", d["cseq"]).status

    # ---- RTP ---------------------------------------------------------------------------------
    def press(self, key: str) -> None:
        """Send `key` as RFC 4733 telephone-events (payload type 101) instead of the next frames."""
        self._keys.append(key)

    def _send_tone(self) -> None:
        sequence, timestamp, ssrc = 1000, 16000, hash(self.user) & 0xFFFFFFFF
        next_at, index = time.monotonic(), 0
        while self._running:
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))
            target = self.remote_rtp
            if target is None:
                continue
            packets = []
            if self._keys:
                event = "0123456789*#".index(self._keys.pop(0))
                for n, end in ((1, False), (2, False), (3, True), (3, True), (3, True)):
                    payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, 160 * n)
                    packets.append((101, n == 1, payload))
            else:
                packets.append((0, index == 0, self.frames[index % len(self.frames)]))
            for payload_type, marker, payload in packets:
                header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                                     timestamp & 0xFFFFFFFF, ssrc)
                self.rtp.sendto(header + payload, target)
                sequence += 1
            timestamp += 160 * (3 if payload_type == 101 else 1)
            index += 1

    def _capture(self) -> None:
        while self._running:
            try:
                data, _ = self.rtp.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            self.received.append((time.monotonic(), data))

    def audio_between(self, start: float, end: float) -> list[bytes]:
        """PCMU payloads that arrived between `start` and `end` (time.monotonic())."""
        return [data[12 + 4 * (data[0] & 0x0F):] for at, data in list(self.received)
                if start <= at <= end and data[1] & 0x7F == 0]

    def lost_packets(self, start: float, end: float) -> int:
        """Packets missing from what arrived between `start` and `end`, by RTP sequence number, stream
        (SSRC) by stream."""
        streams: dict[int, list[int]] = {}
        for at, data in list(self.received):
            if not start <= at <= end:
                continue
            streams.setdefault(struct.unpack_from("!I", data, 8)[0], []).append(struct.unpack_from("!H", data, 2)[0])
        lost = 0
        for numbers in streams.values():
            unwrapped, base, last = [], 0, None
            for number in numbers:
                if last is not None and number < last - 30000:
                    base += 65536
                last = number
                unwrapped.append(base + number)
            lost += max(unwrapped) - min(unwrapped) + 1 - len(set(unwrapped))
        return lost

    def close(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.join(1)
        self.sip.close()
        self.rtp.close()
