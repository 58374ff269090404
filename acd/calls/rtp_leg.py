"""One media leg: a UDP port that sends paced G.711 prompts and receives DTMF: RFC 4733
telephone-events, and (`inband_dtmf`) key tones heard in the received audio.

Sending is driven by `MediaClock`, one shared 20 ms tick for every leg (PEERS.md: one tick for
1000 streams costs ~30% of a core, one timer per stream 70%). Between prompts the leg sends
silence, so the far end sees one continuous stream (steady timestamps, NAT bindings kept).

With SRTP (`use_srtp`), everything leaving the leg is protected with our key and everything arriving
is checked and decrypted with the peer's before anything else looks at it (DTMF, recording, relay);
a packet that fails is dropped, counted (`on_srtp_failure`) and logged at most every 10 seconds.
A bridge between two legs decrypts with one leg's key and encrypts with the other's.

A leg in a `MixRoom` (acd.calls.mix_room: a supervisor on the call) hands its decrypted audio to
the room instead of relaying it, and the room sends each member its mix (`send_audio`); without a
room the bridged path is the relay, as cheap as before (one attribute test per packet).

In-band DTMF (`inband_dtmf`: "off", "on", or "auto": on until the first telephone-event packet
arrives; the call sets it, acd/calls/dtmf_sources.py) runs acd.media.inband_dtmf on the received
audio while the leg is not bridged, that is while the caller is in the IVR or queued: ~100 µs of
CPU per 20 ms frame of sound, ~5 µs of silence (scripts/bench/inband_dtmf_frame.py). Its digits go to `on_digit(digit, "inband")`; RFC 4733 digits
to `on_digit(digit)`.

Symmetric RTP (`symmetric`, RFC 4961 / "comedia"; `rtp: symmetric:` in conf/acd.yaml): a phone
behind NAT writes its private address into its SDP, and its packets reach us from the NAT's public
one. The leg sends to the SDP address (`remote`) until the first valid RTP packet of the peer
arrives, then to that packet's source, for the rest of the call. "auto" learns only when the SDP
address is one no packet of ours could reach across the Internet (RFC 1918, RFC 6598 shared,
link-local, IPv6 unique-local: acd.media.symmetric_rtp), so carriers' public media addresses are
never second-guessed (some send from one port and receive on another); "always" learns on every
leg; "off" never. Hijack protection: only the first valid packet after the SDP address was set
decides (later packets from elsewhere change nothing, and if it came from the SDP address, nothing
is learnt); "valid" means RTP version 2 with one of the leg's payload types (RTCP, STUN and strays
do not count) and, on SRTP legs, authenticated under the peer's key; and only within the first
`LATCH_WINDOW_PACKETS` datagrams. A new SDP address (re-INVITE) starts learning again; the same one
again (a refresh) keeps what was learnt. The cost on the packet path is one attribute test.

SSRC changes and timestamp jumps from the peer (a phone restarting its stream, an SBC switching
media) pass the relay unchanged (the far end's jitter buffer resynchronises on the new SSRC, as
RFC 3550 §8.2 expects); RFC 4733 events are keyed by timestamp, so on a new telephone-event SSRC the
receiver reports a press left unfinished by the old stream and starts afresh (a new stream may reuse
the timestamps of presses already counted).

Every received packet of the peer's stream (audio or telephone-event) feeds the leg's receive
statistics (acd.media.rtp_stats: loss, reordering, jitter; ~1 µs a packet,
scripts/bench/rtp_receive_stats.py), which its RTCP reports (acd.calls.rtcp_port, on the RTP port
+ 1) and its figures at the end (`figures()`, acd.calls.media_figures) read.
"""

from __future__ import annotations

import logging
import random
import struct
from typing import Callable

from twisted.internet import protocol, task
from twisted.internet.error import CannotListenError

from ..media.inband_dtmf import InbandDtmfDetector
from ..media.prompts import FRAME_SAMPLES, FRAME_SECONDS, SILENCE_BYTE
from ..media.rfc4733 import DtmfReceiver
from ..media.rtp import RtpPacket, build_rtp_header, is_rtcp
from ..media.rtp_stats import ReceiveStatistics, StreamFigures
from ..media.srtp import SrtpRefused, SrtpStream
from ..media.symmetric_rtp import learns_source

__all__ = ["RtpLeg", "MediaClock", "RtpPortAllocator", "INBAND_DTMF_SETTINGS"]

log = logging.getLogger("acd.media")

# A tick later than this behind schedule drops frames instead of bursting them (a burst would
# overflow the far end's jitter buffer; 60 ms is three frames, PJSIP's default jitter prefetch).
MAX_CATCH_UP_SECONDS = 0.06
# SRTP failures are logged once, then as one summary line at most this often per leg: a flood of
# forged packets must not become a flood of log lines.
SRTP_FAILURE_LOG_INTERVAL_SECONDS = 10.0
# Symmetric RTP learns from the first valid packet among this many datagrams received after the
# peer's SDP address was set; past them (strays, a forged SRTP flood) the SDP address stays.
LATCH_WINDOW_PACKETS = 50
INBAND_DTMF_SETTINGS = ("off", "on", "auto")
_INBAND_CODECS = frozenset({"PCMU", "PCMA"})  # what acd.media.inband_dtmf decodes
_SEQ_TIMESTAMP_SSRC = struct.Struct("!HII")  # RTP header bytes 2-11 (RFC 3550 §5.1)


class RtpLeg(protocol.DatagramProtocol):
    """The RTP side of one call leg; `play()` queues encoded audio, DTMF digits go to `on_digit`."""

    noisy = False  # no "Starting/Stopping protocol" log line per call leg

    def __init__(self, *, call_id: str, codec: str, payload_type: int, remote: tuple[str, int],
                 telephone_event_pt: int | None, on_digit: Callable[[str], None],
                 on_playback_finished: Callable[[int], None], rng: random.Random | None = None,
                 clock: Callable[[], float] = lambda: 0.0, on_srtp_failure: Callable[[], None] = lambda: None,
                 symmetric: str = "off") -> None:
        """`clock` (seconds, e.g. reactor.seconds) paces the SRTP failure log and times arrivals (jitter);
        `on_srtp_failure` counts; `symmetric`: "auto", "always" or "off": when to send to where the
        peer's RTP comes from (see the module's doc; set it before `remote`)."""
        rng = rng or random.Random()
        self.call_id = call_id
        self.codec = codec
        self.payload_type = payload_type
        self.symmetric = symmetric
        self.latched = False  # True once symmetric RTP moved `remote` off the SDP address
        self._latching = False  # learning from the next valid packet (see _learn_source)
        self._latch_until = 0   # ... among the datagrams up to this count of packets_received
        self._signalled: tuple[str, int] = ("0.0.0.0", 0)
        self._remote: tuple[str, int] = ("0.0.0.0", 0)
        self._dtmf_ssrc: int | None = None
        self.telephone_event_pt = telephone_event_pt
        self.on_digit = on_digit
        self.on_playback_finished = on_playback_finished
        self.ssrc = rng.getrandbits(32)
        self.sequence = rng.getrandbits(16)
        self.timestamp = rng.getrandbits(32)
        self.silence = bytes([SILENCE_BYTE[codec]]) * FRAME_SAMPLES
        self.dtmf = DtmfReceiver()
        self.inband_dtmf = "off"  # one of INBAND_DTMF_SETTINGS
        self._inband: InbandDtmfDetector | None = None
        self.next_send: float | None = None
        self.marker = True
        self.sending = True
        self._audio: bytes = b""
        self._offset = 0
        self._playback_id: int | None = None
        self.on_audio: Callable[[bytes], None] | None = None
        self.relay_to: RtpLeg | None = None
        self.mix_room = None  # a MixRoom while a supervisor is on the call (acd.calls.mix_room)
        self.tap_in: Callable[[bytes], None] | None = None   # a recording: audio received on this leg
        self.tap_out: Callable[[bytes], None] | None = None  # a recording: audio we send on this leg
        self.packets_sent = 0
        self.packets_relayed = 0
        self.packets_received = 0
        self.frames_dropped = 0
        self.remote = remote
        self.clock = clock
        self.on_srtp_failure = on_srtp_failure
        self.send_errors = 0
        self.released = False  # the media plane let go of the port (it closes on the next reactor turn)
        self._sendto: Callable[[bytes, tuple[str, int]], int] | None = None
        self.protect: Callable[[bytes], bytes] | None = None    # SRTP: our key, for what we send
        self.unprotect: Callable[[bytes], bytes] | None = None  # SRTP: the peer's key, for what we receive
        self._srtp_keys: tuple[bytes | None, bytes | None] = (None, None)
        self.srtp_failures = 0
        self._srtp_failures_unlogged = 0
        self._srtp_failure_logged_at: float | None = None
        self.stats = ReceiveStatistics()  # the peer's stream: loss and jitter (acd.media.rtp_stats)
        self.rtcp = None  # an acd.calls.rtcp_port.RtcpPort while the leg reports on RTP port + 1

    def figures(self) -> StreamFigures:
        """Loss and jitter of the stream we received, and what the peer's RTCP reported of ours."""
        rtcp = self.rtcp
        if rtcp is None:
            return self.stats.figures()
        return self.stats.figures(rtcp.session.reported_lost, rtcp.session.reported_jitter_seconds)

    @property
    def remote(self) -> tuple[str, int]:
        """Where the leg sends: the peer's SDP address and port, or (symmetric) its RTP's source."""
        return self._remote

    @remote.setter
    def remote(self, address: tuple[str, int]) -> None:
        """The peer's SDP address and port (a new one starts symmetric learning again)."""
        if address == self._signalled:
            return
        self._signalled = self._remote = address
        self.latched = False
        self._latching = bool(address[1]) and learns_source(self.symmetric, address[0])
        self._latch_until = self.packets_received + LATCH_WINDOW_PACKETS

    def use_srtp(self, local_key: bytes | None, remote_key: bytes | None) -> None:
        """Send SRTP under `local_key` and receive SRTP under `remote_key`; None, None: plain RTP.
        A direction whose key is already in force keeps its SRTP state (rollover counter, replay
        window): a re-INVITE that changes only the peer's key must not restart our packet index."""
        old_local, old_remote = self._srtp_keys
        self._srtp_keys = (local_key, remote_key)
        if local_key != old_local:
            self.protect = SrtpStream.outbound(local_key).process if local_key is not None else None
        if remote_key != old_remote:
            self.unprotect = SrtpStream.inbound(remote_key).process if remote_key is not None else None

    @property
    def srtp(self) -> bool:
        """True when this leg's media is SRTP."""
        return self.protect is not None

    def makeConnection(self, transport) -> None:  # noqa: N802 - Twisted API
        """Bound to a UDP port: send on its socket directly. Twisted's Port.write checks the address
        is an IP literal on every packet (a third of the cost of sending a frame, measured with py-spy
        at 300 calls/s); ours was checked once, when the SDP was parsed (acd.media.sdp)."""
        super().makeConnection(transport)
        self._sendto = getattr(getattr(transport, "socket", None), "sendto", None)

    def send_packet(self, packet: bytes) -> bool:
        """Send one RTP packet to the peer (SRTP-protected when the leg is); False if it could not go
        (a full socket buffer, an ICMP error from the peer, a closed port: lost, as UDP may lose it)."""
        if self.protect is not None:
            try:
                packet = self.protect(packet)
            except SrtpRefused as error:
                log.warning("call=%s SRTP protect failed, packet dropped: %s", self.call_id, error)
                return False
        if self._sendto is None:
            self.transport.write(packet, self._remote)
            return True
        try:
            self._sendto(packet, self._remote)
        except OSError:
            self.send_errors += 1
            return False
        return True

    def play(self, audio: bytes, playback_id: int) -> None:
        """Start playing `audio` (whole frames) now, replacing anything playing."""
        self._audio = audio
        self._offset = 0
        self._playback_id = playback_id

    def stop(self) -> None:
        """Stop playing at once; no PlaybackFinished is reported for the stopped audio."""
        self._audio = b""
        self._offset = 0
        self._playback_id = None

    @property
    def playing(self) -> bool:
        """True while audio is queued."""
        return self._playback_id is not None

    def tick(self, now: float) -> None:
        """Send every frame due by `now` (called by the MediaClock every 20 ms)."""
        if not self.sending or self.transport is None:
            return
        if self.next_send is None:
            self.next_send = now
        if now - self.next_send > MAX_CATCH_UP_SECONDS:
            missed = int((now - self.next_send) / FRAME_SECONDS)
            self.frames_dropped += missed
            self._advance(missed)
            self.next_send += missed * FRAME_SECONDS
        # A frame due within half a frame of this tick goes now: with a 1 ms edge, a leg whose
        # schedule sat at the tick's timing noise alternated 0 and 40 ms gaps (measured: mean
        # jitter 6-10 ms at 500 calls, scripts/bench/README.md); half a frame keeps one per tick.
        while self.next_send <= now + FRAME_SECONDS / 2:
            self._send_frame()
            self.next_send += FRAME_SECONDS

    def _advance(self, frames: int) -> None:
        self.sequence = (self.sequence + frames) & 0xFFFF
        self.timestamp = (self.timestamp + frames * FRAME_SAMPLES) & 0xFFFFFFFF
        if self._playback_id is not None:
            self._offset += frames * FRAME_SAMPLES

    def _send_frame(self) -> None:
        finished: int | None = None
        if self._playback_id is not None and self._offset < len(self._audio):
            payload = self._audio[self._offset:self._offset + FRAME_SAMPLES]
            self._offset += FRAME_SAMPLES
        else:
            payload = self.silence
        if self._playback_id is not None and self._offset >= len(self._audio):
            finished = self._playback_id
            self._playback_id = None
            self._audio = b""
        if self.tap_out is not None:
            self.tap_out(payload)
        header = build_rtp_header(self.payload_type, self.marker, self.sequence, self.timestamp, self.ssrc)
        self.marker = False
        self.send_packet(header + payload)
        self.packets_sent += 1
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        if finished is not None:
            self.on_playback_finished(finished)

    def send_audio(self, payload: bytes) -> None:
        """Send one frame of audio made elsewhere (a mix room's), in this leg's own RTP stream."""
        header = build_rtp_header(self.payload_type, self.marker, self.sequence, self.timestamp, self.ssrc)
        self.marker = False
        self.send_packet(header + payload)
        self.packets_sent += 1
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: N802 - Twisted API
        """Count media; hand audio to `on_audio` (when set); telephone-event packets become digits."""
        self.packets_received += 1
        if len(data) < 12:
            return
        if self.unprotect is not None:
            if is_rtcp(data):
                return  # SRTCP (RFC 5761 mux): we neither read nor relay RTCP
            try:
                data = self.unprotect(data)
            except SrtpRefused as error:
                self._srtp_failed(addr, error)
                return
        if self._latching:
            self._learn_source(data, addr)
        payload_type = data[1] & 0x7F
        if payload_type == self.payload_type or payload_type == self.telephone_event_pt:
            seq, timestamp, ssrc = _SEQ_TIMESTAMP_SSRC.unpack_from(data, 2)
            self.stats.received(seq, timestamp, ssrc, self.clock(), payload_type == self.payload_type)
        if self.tap_in is not None and payload_type == self.payload_type:
            self.tap_in(data[12 + 4 * (data[0] & 0x0F):])
        if self.mix_room is not None and payload_type == self.payload_type:
            try:
                self.mix_room.heard(self, RtpPacket.parse(data).payload)
            except ValueError:
                pass
            return
        target = self.relay_to
        if target is not None:
            # Bridged: pass the packet to the other leg's peer. Same codec on both legs (the agent
            # is offered the caller's); only telephone-event payload numbers may differ.
            if payload_type == self.telephone_event_pt and target.telephone_event_pt not in (None, payload_type):
                data = data[:1] + bytes([(data[1] & 0x80) | target.telephone_event_pt]) + data[2:]
            if target.transport is not None and target._remote[1] and target.send_packet(data):
                target.packets_relayed += 1
            return
        if payload_type == self.payload_type:
            if self.on_audio is not None or self.inband_dtmf != "off":
                try:
                    packet = RtpPacket.parse(data)
                except ValueError:
                    return
                if self.on_audio is not None:
                    self.on_audio(packet.payload)
                if self.inband_dtmf != "off" and self.codec in _INBAND_CODECS:
                    self._listen_for_tones(packet.payload)
            return
        if payload_type != self.telephone_event_pt:
            return
        if self.inband_dtmf == "auto":
            log.info("call=%s RFC 4733 telephone-event from %s:%s: in-band DTMF detection off", self.call_id,
                     addr[0], addr[1])
            self.inband_dtmf = "off"
        try:
            packet = RtpPacket.parse(data)
            if packet.ssrc != self._dtmf_ssrc:
                self._new_event_stream(packet.ssrc)
            digit = self.dtmf.receive(packet.timestamp, packet.payload)
        except ValueError as error:
            log.info("call=%s dropped bad telephone-event from %s:%s: %s", self.call_id, addr[0], addr[1], error)
            return
        if digit is not None:
            self.on_digit(digit)

    def _new_event_stream(self, ssrc: int) -> None:
        """Telephone-events under a new SSRC: report a press the old stream left unfinished, then
        forget its events (the new stream's timestamps say nothing about the old one's)."""
        if self._dtmf_ssrc is not None:
            owed = self.dtmf.flush()
            self.dtmf.reset()
            if owed is not None:
                self.on_digit(owed)
        self._dtmf_ssrc = ssrc

    def _learn_source(self, data: bytes, addr: tuple[str, int]) -> None:
        """Symmetric RTP: the first valid packet since the SDP address was set says where to send."""
        if self.packets_received > self._latch_until:
            self._latching = False
            return
        if data[0] >> 6 != 2 or is_rtcp(data) or (data[1] & 0x7F) not in (self.payload_type,
                                                                          self.telephone_event_pt):
            return  # not the peer's media: a stray, RTCP, STUN ...
        self._latching = False
        source = (addr[0], addr[1])  # an IPv6 source has flow info and scope id too
        if source == self._remote:
            return  # it sends from where it said: nothing to learn
        log.info("call=%s symmetric RTP: the peer's RTP comes from %s:%s, its SDP said %s:%s: sending there",
                 self.call_id, source[0], source[1], self._remote[0], self._remote[1])
        self._remote = source
        self.latched = True

    def _listen_for_tones(self, payload: bytes) -> None:
        """Run the in-band DTMF detector over one received audio payload; its key presses to on_digit."""
        detector = self._inband
        if detector is None:
            detector = self._inband = InbandDtmfDetector()
        for press in detector.feed_payload(payload, self.codec):
            self.on_digit(press.digit, "inband")

    def _srtp_failed(self, addr: tuple[str, int], error: Exception) -> None:
        """Count a packet that failed SRTP checks; log the first, then a summary every interval."""
        self.srtp_failures += 1
        self._srtp_failures_unlogged += 1
        self.on_srtp_failure()
        now = self.clock()
        last = self._srtp_failure_logged_at
        if last is None or now - last >= SRTP_FAILURE_LOG_INTERVAL_SECONDS:
            log.warning("call=%s SRTP: dropped %d packet(s) from %s:%s failing authentication (%s); %d on this "
                        "leg so far", self.call_id, self._srtp_failures_unlogged, addr[0], addr[1], error,
                        self.srtp_failures)
            self._srtp_failure_logged_at = now
            self._srtp_failures_unlogged = 0


class MediaClock:
    """One 20 ms tick for every active leg. `reactor` must provide IReactorTime."""

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.legs: set[RtpLeg] = set()
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = reactor

    def add(self, leg: RtpLeg) -> None:
        """Start sending for a leg on the next tick."""
        self.legs.add(leg)
        if not self._loop.running:
            self._loop.start(FRAME_SECONDS, now=False)

    def remove(self, leg: RtpLeg) -> None:
        """Stop sending for a leg."""
        self.legs.discard(leg)
        if not self.legs and self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self.reactor.seconds()
        for leg in list(self.legs):
            try:
                leg.tick(now)
            except Exception:  # one broken leg must not silence every other call
                log.exception("call=%s media tick failed; stopping this leg", leg.call_id)
                self.legs.discard(leg)


class RtpPortAllocator:
    """Binds legs to even ports of a range, rotating so a freed port is not reused at once."""

    def __init__(self, reactor, address: str, port_min: int, port_max: int) -> None:
        self.reactor = reactor
        self.address = address
        self.port_min = port_min + (port_min % 2)
        self.port_max = port_max
        self._next = self.port_min

    def listen(self, leg: RtpLeg) -> int | None:
        """Bind `leg` to a free even port; returns the port, or None when the range is exhausted."""
        span = (self.port_max - self.port_min) // 2 + 1
        for _ in range(span):
            port = self._next
            self._next += 2
            if self._next > self.port_max:
                self._next = self.port_min
            try:
                self.reactor.listenUDP(port, leg, interface=self.address)
                return port
            except CannotListenError:
                continue
        return None
