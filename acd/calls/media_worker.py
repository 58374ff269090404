"""A media worker process: the RTP legs of calls, on a core of their own.

`python -m acd.calls.media_worker --address IP` is started by the call process
(acd.calls.remote_media), which writes commands to its standard input and reads its reports from its
standard output, in the frames of acd.media.worker_wire. The legs are the same `RtpLeg`s the
in-process media plane uses (pacing on one 20 ms clock, prompts, RFC 4733 and in-band DTMF, SRTP,
relay between two legs), so media behaves the same whichever plane carries it.

The worker binds the ports it is told to (the call process owns the allocation, so it can write the
port into its SDP answer without waiting), and reports what the call process must know: digits,
playback ends, audio it asked to be copied (speech, voicemail, recordings), the packet counts of a
closed leg, SRTP failures, and its own log lines.

It ignores SIGINT and SIGTERM: a stop drains calls in progress, and their media must keep flowing
until the call process is done. It exits when its standard input closes, which is when the call
process exits, however that happens (kill -9 included); Linux's parent-death signal backs that up.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import random
import signal
import socket
import sys
from typing import Callable

from twisted.internet import protocol, stdio, task
from twisted.internet.error import CannotListenError

from ..heap import GcPauses
from ..media import worker_wire as wire
from ..media.prompts import FRAME_SAMPLES, SILENCE_BYTE
from .mix_room import MixRoom
from .rtcp_port import open_rtcp
from .rtp_leg import MediaClock, RtpLeg
from .rtp_port import listen_rtp

__all__ = ["WorkerMedia", "main"]

log = logging.getLogger("acd.media")

SRTP_FAILURE_REPORT_SECONDS = 0.25  # failures are summed this long before one report goes
# A collection this long delays frames by a tick or more (logged; see acd/heap.py for the thresholds).
LONG_COLLECTION_SECONDS = 0.02
PORT_PROBE_SECONDS = 60.0  # how often ports found held by another program are tried again
_SETTABLE = frozenset({"codec", "payload_type", "telephone_event_pt", "remote", "next_send", "sending",
                       "inband_dtmf", "symmetric"})


class WorkerMedia:
    """The worker's legs and blobs, driven by commands; reports go to `send`. `reactor` provides
    IReactorTime and IReactorUDP."""

    def __init__(self, reactor, *, address: str, send: Callable[[tuple], None], ports: "range | list[int]" = range(0),
                 bindable: Callable[[str, int], bool] | None = None, rtcp_interval_seconds: float = 5.0) -> None:
        """`ports`: this worker's slice of the RTP range, probed with `bindable(address, port)` (default:
        bind a socket and close it) for ports other programs hold. `rtcp_interval_seconds`: each leg's RTCP
        report interval on its port + 1 (0: none; acd.calls.rtcp_port)."""
        self.rtcp_interval_seconds = rtcp_interval_seconds
        self.reactor = reactor
        self.address = address
        self.send = send
        self.ports = ports
        self.held_elsewhere: set[int] = set()
        self.bindable = bindable or _bindable
        self._srtp_report = None
        self.clock = MediaClock(reactor)
        self.legs: dict[int, RtpLeg] = {}
        self.relayed_to: dict[RtpLeg, set[RtpLeg]] = {}  # a leg -> the legs relaying to it, for a close in O(1)
        self.rng = random.Random()  # SSRCs and initial sequence numbers (one seeding, not one per leg)
        self.blobs: dict[int, bytes] = {}
        self.rooms: dict[int, MixRoom] = {}
        self.srtp_failures = 0
        self._handlers = {
            wire.OPEN: self._open, wire.SET: self._set, wire.SRTP: self._srtp, wire.BLOB: self._blob,
            wire.FORGET: self._forget, wire.PLAY: self._play, wire.STOP: self._stop, wire.START: self._start,
            wire.PAUSE: self._pause, wire.RELAY: self._relay, wire.TAPS: self._taps, wire.MIX: self._mix,
            wire.CLOSE: self._close,
        }

    def handle(self, message: tuple) -> None:
        """Carry out one command; a command for a leg already closed is ignored (it crossed a CLOSED)."""
        handler = self._handlers.get(message[0])
        if handler is None:
            log.error("media worker: unknown command %r ignored", message[0])
            return
        handler(*message[1:])

    def _open(self, leg_id: int, port: int, call_id: str, codec: str, payload_type: int,
              telephone_event_pt: int | None) -> None:
        send = self.send
        leg = RtpLeg(call_id=call_id, codec=codec, payload_type=payload_type, remote=("0.0.0.0", 0),
                     telephone_event_pt=telephone_event_pt,
                     on_digit=lambda digit, method="rfc4733": send((wire.DIGIT, leg_id, digit, method)),
                     on_playback_finished=lambda sequence: send((wire.DONE, leg_id, sequence)),
                     clock=self.reactor.seconds, on_srtp_failure=self._srtp_failed, rng=self.rng)
        try:
            listen_rtp(self.reactor, port, leg, self.address)
        except CannotListenError as error:
            send((wire.OPEN_FAILED, leg_id, port, str(error.socketError)))
            return
        self.legs[leg_id] = leg
        open_rtcp(self.reactor, leg, port, self.address, interval_seconds=self.rtcp_interval_seconds, rng=self.rng)

    def _set(self, leg_id: int, field: str, value) -> None:
        leg = self.legs.get(leg_id)
        if leg is None or field not in _SETTABLE:
            return
        setattr(leg, field, value)
        if field == "codec":
            leg.silence = bytes([SILENCE_BYTE[value]]) * FRAME_SAMPLES

    def _srtp(self, leg_id: int, local_key: bytes | None, remote_key: bytes | None) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None:
            leg.use_srtp(local_key, remote_key)

    def _blob(self, blob_id: int, audio: bytes) -> None:
        self.blobs[blob_id] = audio

    def _forget(self, blob_id: int) -> None:
        self.blobs.pop(blob_id, None)  # a leg playing it keeps its own reference

    def _play(self, leg_id: int, blob_id: int, sequence: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is None:
            return
        audio = self.blobs.get(blob_id)
        if audio is None:
            log.error("call=%s media worker: no audio blob %d to play (the call hears silence)", leg.call_id,
                      blob_id)
            audio = b""
        leg.play(audio, sequence)

    def _stop(self, leg_id: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None:
            leg.stop()

    def _start(self, leg_id: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None:
            self.clock.add(leg)

    def _pause(self, leg_id: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None:
            self.clock.remove(leg)

    def _relay(self, leg_id: int, target_id: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is None:
            return
        self._stop_relaying(leg)
        leg.relay_to = self.legs.get(target_id) if target_id else None
        if leg.relay_to is not None:
            self.relayed_to.setdefault(leg.relay_to, set()).add(leg)

    def _stop_relaying(self, leg: RtpLeg) -> None:
        target = leg.relay_to
        if target is None:
            return
        leg.relay_to = None
        sources = self.relayed_to.get(target)
        if sources is not None:
            sources.discard(leg)
            if not sources:
                del self.relayed_to[target]

    def _taps(self, leg_id: int, mask: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is None:
            return
        send = self.send
        leg.on_audio = (lambda payload: send((wire.AUDIO, leg_id, wire.TAP_AUDIO, payload))) \
            if mask & wire.TAP_AUDIO else None
        leg.tap_in = (lambda payload: send((wire.AUDIO, leg_id, wire.TAP_IN, payload))) \
            if mask & wire.TAP_IN else None
        leg.tap_out = (lambda payload: send((wire.AUDIO, leg_id, wire.TAP_OUT, payload))) \
            if mask & wire.TAP_OUT else None

    def _mix(self, room_id: int, plan: tuple, bridged: tuple) -> None:
        room = self.rooms.get(room_id)
        legs = self.legs
        hearing = {legs[listener]: tuple(legs[source] for source in sources if source in legs)
                   for listener, sources in plan if listener in legs}
        if not hearing:
            if room is not None:
                del self.rooms[room_id]
                room.dissolve()
                self.clock.remove(room)
            return
        if room is None:
            room = self.rooms[room_id] = MixRoom(call_id=next(iter(hearing)).call_id,
                                                 is_paced=self.clock.legs.__contains__)
            self.clock.add(room)
        room.set_plan(hearing, tuple(legs[leg_id] for leg_id in bridged if leg_id in legs))

    def _close(self, leg_id: int) -> None:
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return
        self.clock.remove(leg)
        if leg.mix_room is not None:
            leg.mix_room.discard(leg)
        leg.sending = False
        self._stop_relaying(leg)
        leg.on_audio = leg.tap_in = leg.tap_out = None
        for other in self.relayed_to.pop(leg, ()):
            other.relay_to = None
        if leg.rtcp is not None:
            leg.rtcp.close()
        if leg.transport is not None:
            leg.transport.stopListening()
        self.send((wire.CLOSED, leg_id, leg.packets_sent, leg.packets_received, leg.packets_relayed,
                   leg.frames_dropped, leg.figures().as_tuple()))

    def _srtp_failed(self) -> None:
        self.srtp_failures += 1
        if self._srtp_report is None:
            self._srtp_report = self.reactor.callLater(SRTP_FAILURE_REPORT_SECONDS, self.report_srtp_failures)

    def report_srtp_failures(self) -> None:
        """Send the SRTP failures counted since the last report (the call process keeps the metric)."""
        self._srtp_report = None
        if self.srtp_failures:
            self.send((wire.SRTP_FAILURES, self.srtp_failures))
            self.srtp_failures = 0

    def probe_ports(self, only_held_elsewhere: bool = False) -> None:
        """Try to bind every port of the slice this worker does not use (or only those found held
        before), and report the ones another program holds, so the call process does not hand them out."""
        in_use = {leg.transport.getHost().port for leg in self.legs.values() if leg.transport is not None}
        candidates = self.held_elsewhere if only_held_elsewhere else self.ports
        held = set()
        for port in candidates:
            if port not in in_use and not self.bindable(self.address, port):
                held.add(port)
        if only_held_elsewhere:
            held |= self.held_elsewhere - set(candidates)
        if held or self.held_elsewhere:
            self.send((wire.HELD_ELSEWHERE, tuple(sorted(held))))
        self.held_elsewhere = held


def _report_long_collection(generation: int, seconds: float) -> None:
    """A garbage collection that held every leg's next frame back long enough for callers to hear it."""
    if seconds >= LONG_COLLECTION_SECONDS:
        log.warning("media worker: a garbage collection (generation %d) stopped media for %.0f ms",
                    generation, seconds * 1000)


def _bindable(address: str, port: int) -> bool:
    """True when a UDP socket can be bound on address:port now (it is closed again at once)."""
    probe = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class CommandReader(protocol.Protocol):
    """Standard input: commands from the call process. Its end is the worker's end."""

    def __init__(self, media_factory: Callable[["CommandReader"], WorkerMedia], on_lost: Callable[[], None]) -> None:
        self.decoder = wire.FrameDecoder()
        self.media_factory = media_factory
        self.on_lost = on_lost
        self.media: WorkerMedia | None = None

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.media = self.media_factory(self)

    def send(self, message: tuple) -> None:
        """One report to the call process (buffered by the reactor, written when stdout is writable)."""
        self.transport.write(wire.encode(message))

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        try:
            messages = self.decoder.feed(data)
        except wire.WireError as error:
            log.critical("media worker: broken command channel (%s); exiting", error)
            self.transport.loseConnection()
            return
        handle = self.media.handle
        for message in messages:
            try:
                handle(message)
            except Exception:  # one bad command must not silence every call on this worker
                log.exception("media worker: command %r failed", message[0])

    def connectionLost(self, reason=None) -> None:  # noqa: N802 - Twisted API
        self.on_lost()


class ChannelLogHandler(logging.Handler):
    """Sends the worker's log records to the call process, which writes them to its own log."""

    def __init__(self, send: Callable[[tuple], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one formatted record (errors in formatting fall back to the standard handling)."""
        try:
            self._send((wire.LOG, record.levelno, self.format(record)))
        except Exception:
            self.handleError(record)


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the call process dies (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one media worker until its standard input closes."""
    parser = argparse.ArgumentParser(prog="acd-media-worker")
    parser.add_argument("--address", required=True, help="the RTP address to bind ports on")
    parser.add_argument("--ports", default="0:-1:2", help="this worker's slice of the RTP range: FIRST:LAST:STEP")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--rtcp-interval-seconds", type=float, default=5.0, help="RTCP report interval (0: none)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    from twisted.internet import reactor

    def build(reader: CommandReader) -> WorkerMedia:
        handler = ChannelLogHandler(reader.send)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(getattr(logging, args.log_level, logging.INFO))
        first, last, step = (int(part) for part in args.ports.split(":"))
        media = WorkerMedia(reactor, address=args.address, send=reader.send, ports=range(first, last + 1, step),
                            rtcp_interval_seconds=args.rtcp_interval_seconds)
        reader.send((wire.HELLO, os.getpid()))
        reactor.callWhenRunning(media.probe_ports)
        task.LoopingCall(media.probe_ports, True).start(PORT_PROBE_SECONDS, now=False)
        return media

    def lost() -> None:
        if reactor.running:
            reactor.stop()

    stdio.StandardIO(CommandReader(build, lost), stdin=0, stdout=1)
    sys.stdout = sys.stderr  # a stray print must not corrupt the report channel
    gc.collect()
    gc.freeze()
    GcPauses(_report_long_collection).install()
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
