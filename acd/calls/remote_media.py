"""RemoteMediaPorts: the `Media` port carried by media worker processes (acd.calls.media_worker).

The call process keeps every decision and all call state; the workers move the packets. Each leg
here is a `RemoteLeg`, a stand-in with the attributes and methods the shell uses on an in-process
`RtpLeg` (`play`, `stop`, `relay_to`, `on_audio`, taps, `remote`, `use_srtp` ...): each change becomes
one command on the worker's pipe, and the worker's reports come back as the same callbacks
(`on_digit`, `on_playback_finished`, audio taps). So the shell does not know which plane it runs on.

- **Ports**: allocated here, per worker (worker i owns every N-th even port of the range), so the
  port goes into the SDP answer at once; the worker binds it. A port some other program holds is
  reported back (OPEN_FAILED), logged, and skipped for `FOREIGN_PORT_SKIP_SECONDS`.
- **Audio**: prompts are sent to a worker once as numbered blobs (content-addressed, least recently
  used dropped past `BLOB_CACHE_BYTES`); a play is then a few bytes.
- **Playback ends**: a play carries a sequence number; an end report for a play already replaced or
  stopped is dropped, as the in-process leg would never have reported it.
- **Both legs of a bridge on one worker**: a leg placed for a call (`near`) goes to that call's worker.
- **A worker that dies**: its calls are ended (`on_media_lost`), and a new worker is started.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from twisted.internet import protocol

from ..media import worker_wire as wire
from ..media.prompts import PromptLibrary
from ..media.rtp_stats import StreamFigures
from .media_figures import account_leg_figures
from .media_ports import MediaPorts

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["RemoteMediaPorts", "RemoteLeg", "worker_count"]

log = logging.getLogger("acd.media")

BLOB_CACHE_BYTES = 64 * 1024 * 1024
FOREIGN_PORT_SKIP_SECONDS = 60.0
RESTART_DELAY_SECONDS = 1.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def worker_count(setting: int | str, cpus: int | None = None) -> int:
    """How many media workers `rtp: workers:` asks for: a number, or "auto" (one per core beyond the
    first, at most 4; none on a single core, where the call process carries media itself)."""
    if setting != "auto":
        return int(setting)
    cpus = cpus if cpus is not None else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                          else os.cpu_count() or 1)
    return max(0, min(cpus - 1, 4))


class _LegPort:
    """What `leg.transport` is while a remote leg holds its port: `stopListening()` releases it."""

    __slots__ = ("leg",)

    def __init__(self, leg: "RemoteLeg") -> None:
        self.leg = leg

    def stopListening(self) -> None:  # noqa: N802 - the name RtpLeg's Twisted port has
        """Release the leg's port (the worker reports its packet counts when it has)."""
        self.leg.plane.release(self.leg)


class _Forwarded:
    """A leg attribute kept here and sent to the worker when set (`leg.codec = "PCMA"`)."""

    def __set_name__(self, owner, name: str) -> None:
        self.field = name
        self.slot = "_" + name

    def __get__(self, leg, owner=None):
        return self if leg is None else getattr(leg, self.slot)

    def __set__(self, leg, value) -> None:
        setattr(leg, self.slot, value)
        leg._set(self.field, value)


class _Tap:
    """A callback for audio the worker copies back (`leg.on_audio = f`); setting it tells the worker."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, leg, owner=None):
        return self if leg is None else getattr(leg, self.slot)

    def __set__(self, leg, value) -> None:
        setattr(leg, self.slot, value)
        leg._set_taps()


class RemoteLeg:
    """A leg on a media worker, driven like an in-process `RtpLeg`."""

    def __init__(self, plane: "RemoteMediaPorts", worker: "_Worker", leg_id: int, *, call_id: str, codec: str,
                 payload_type: int, telephone_event_pt: int | None, on_digit: Callable[[str], None],
                 on_playback_finished: Callable[[int], None]) -> None:
        self.plane = plane
        self.worker = worker
        self.leg_id = leg_id
        self.call_id = call_id
        self._codec = codec
        self._payload_type = payload_type
        self._telephone_event_pt = telephone_event_pt
        self._inband_dtmf = "off"
        self._remote: tuple[str, int] = ("0.0.0.0", 0)
        self.on_digit = on_digit
        self.on_playback_finished = on_playback_finished
        self.transport: _LegPort | None = None
        self.port: int | None = None
        self._relay_to: RemoteLeg | None = None
        self._on_audio: Callable[[bytes], None] | None = None
        self._tap_in: Callable[[bytes], None] | None = None
        self._tap_out: Callable[[bytes], None] | None = None
        self._play_sequence = 0
        self._playing: tuple[int, int] | None = None  # (sequence, playback id) of the play in progress
        self._srtp = False
        self.packets_sent = self.packets_received = self.packets_relayed = self.frames_dropped = 0

    def _send(self, message: tuple) -> None:
        if self.transport is not None:
            self.worker.send(message)

    def _set(self, field: str, value) -> None:
        self._send((wire.SET, self.leg_id, field, value))

    codec = _Forwarded()
    payload_type = _Forwarded()
    telephone_event_pt = _Forwarded()
    # "off", "on" or "auto" (RtpLeg.inband_dtmf); in auto the worker turns detection off by itself
    # when a telephone-event arrives, and this copy keeps saying "auto".
    inband_dtmf = _Forwarded()

    @property
    def remote(self) -> tuple[str, int]:
        """Where the leg sends (the peer's SDP address and port)."""
        return self._remote

    @remote.setter
    def remote(self, value: tuple[str, int]) -> None:
        self._remote = (str(value[0]), int(value[1]))
        self._set("remote", self._remote)

    @property
    def silence(self) -> bytes:
        """Not kept here: the worker derives the silence frame from the codec."""
        return b""

    @silence.setter
    def silence(self, value: bytes) -> None:
        pass

    @property
    def next_send(self) -> None:
        """Not known here (the worker paces); setting None restarts the pacing schedule."""
        return None

    @next_send.setter
    def next_send(self, value: float | None) -> None:
        self._set("next_send", value)

    @property
    def sending(self) -> bool:
        """False once the leg ended (set by the shell); the worker stops sending then."""
        return self.transport is not None

    @sending.setter
    def sending(self, value: bool) -> None:
        self._set("sending", bool(value))

    def use_srtp(self, local_key: bytes | None, remote_key: bytes | None) -> None:
        """SRTP keys for both directions (None, None: plain RTP); see RtpLeg.use_srtp."""
        self._srtp = local_key is not None
        self._send((wire.SRTP, self.leg_id, local_key, remote_key))

    @property
    def srtp(self) -> bool:
        """True when this leg's media is SRTP."""
        return self._srtp

    def play(self, audio: bytes, playback_id: int) -> None:
        """Start playing `audio` now, replacing anything playing; `on_playback_finished(playback_id)` at its end."""
        self._play_sequence += 1
        self._playing = (self._play_sequence, playback_id)
        blob_id = self.plane.blob_on(self.worker, audio)
        self._send((wire.PLAY, self.leg_id, blob_id, self._play_sequence))

    def stop(self) -> None:
        """Stop playing at once; no end is reported for the stopped audio."""
        self._playing = None
        self._send((wire.STOP, self.leg_id))

    @property
    def playing(self) -> bool:
        """True while a play has not ended (as far as the reports say)."""
        return self._playing is not None

    def playback_done(self, sequence: int) -> None:
        """The worker finished play `sequence`: report it if it is still the current play."""
        playing = self._playing
        if playing is not None and playing[0] == sequence:
            self._playing = None
            self.on_playback_finished(playing[1])

    @property
    def relay_to(self) -> "RemoteLeg | None":
        """The leg whose peer gets what this leg receives (a bridge), or None."""
        return self._relay_to

    @relay_to.setter
    def relay_to(self, target: "RemoteLeg | None") -> None:
        if target is not None and target.worker is not self.worker:
            log.error("call=%s cannot relay to call=%s: their legs are on different media workers; no bridge",
                      self.call_id, target.call_id)
            target = None
        self._relay_to = target
        self._send((wire.RELAY, self.leg_id, target.leg_id if target is not None else 0))

    def _set_taps(self) -> None:
        mask = ((wire.TAP_AUDIO if self._on_audio is not None else 0) | (wire.TAP_IN if self._tap_in is not None else 0)
                | (wire.TAP_OUT if self._tap_out is not None else 0))
        self._send((wire.TAPS, self.leg_id, mask))

    on_audio = _Tap()
    tap_in = _Tap()
    tap_out = _Tap()

    def audio(self, tap: int, payload: bytes) -> None:
        """A frame the worker copied for a tap this leg still has."""
        target = self._on_audio if tap == wire.TAP_AUDIO else self._tap_in if tap == wire.TAP_IN else self._tap_out
        if target is not None:
            target(payload)


class _Worker(protocol.ProcessProtocol):
    """One media worker process: its pipe, its slice of the port range, its legs."""

    def __init__(self, plane: "RemoteMediaPorts", index: int, ports: list[int]) -> None:
        self.plane = plane
        self.index = index
        self.ports = ports
        self.free = collections.deque(ports)
        self.in_use: set[int] = set()
        self.foreign: dict[int, float] = {}  # port -> when another program was found holding it
        self.held_elsewhere: frozenset[int] = frozenset()  # the worker's last probe of its slice
        self.legs: dict[int, RemoteLeg] = {}
        self.blobs: set[int] = set()
        self.decoder = wire.FrameDecoder()
        self.pid: int | None = None
        self.alive = False

    # ---- process ------------------------------------------------------------------------------
    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.alive = True
        self.pid = self.transport.pid

    def send(self, message: tuple) -> None:
        """One command (the reactor buffers it and writes when the pipe takes it)."""
        if self.alive:
            self.transport.write(wire.encode(message))

    def outReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        try:
            messages = self.decoder.feed(data)
        except wire.WireError as error:
            log.critical("media worker %d (pid %s): broken report channel (%s); stopping it", self.index, self.pid,
                         error)
            self.transport.signalProcess("KILL")
            return
        report = self.plane.report
        for message in messages:
            try:
                report(self, message)
            except Exception:
                log.exception("media worker %d: report %r failed", self.index, message[0])

    def errReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        for line in data.decode("utf-8", "replace").splitlines():
            if line.strip():
                log.error("media worker %d (pid %s): %s", self.index, self.pid, line)

    def processEnded(self, reason) -> None:  # noqa: N802 - Twisted API
        self.alive = False
        self.plane.worker_ended(self, reason.value)

    # ---- ports --------------------------------------------------------------------------------
    def take_port(self, now: float) -> int | None:
        """A free port of this worker's slice, rotating (a freed port goes to the back)."""
        for _ in range(len(self.free)):
            port = self.free.popleft()
            held_since = self.foreign.get(port)
            if port in self.held_elsewhere or (held_since is not None and now - held_since < FOREIGN_PORT_SKIP_SECONDS):
                self.free.append(port)
                continue
            self.foreign.pop(port, None)
            self.in_use.add(port)
            return port
        return None

    def give_back(self, port: int) -> None:
        """A port the worker released (or never bound)."""
        if port in self.in_use:
            self.in_use.discard(port)
            self.free.append(port)


class RemoteMediaPorts:
    """Implements the `Media` port (acd.calls.ports) with `workers` media worker processes.
    `reactor` provides IReactorTime and IReactorProcess."""

    def __init__(self, reactor, *, address: str, port_min: int, port_max: int, prompts: PromptLibrary,
                 workers: int, rng: random.Random | None = None, metrics: "Metrics | None" = None,
                 log_level: str = "INFO", start_worker: "Callable[[protocol.ProcessProtocol], None] | None" = None,
                 symmetric: str = "off", rtcp_interval_seconds: float = 5.0) -> None:
        """`log_level`: the workers' (their lines are written to this process's log). `symmetric`: the
        legs' symmetric RTP setting (acd.media.symmetric_rtp), set on each as it opens. `start_worker`
        connects a worker's process protocol to a worker (default: spawn `acd.calls.media_worker`;
        tests connect one running on their fake reactor)."""
        if workers < 1:
            raise ValueError("RemoteMediaPorts needs at least one worker")
        self.reactor = reactor
        self.metrics = metrics
        self.address = address
        self.port_min = port_min
        self.port_max = port_max
        self.prompts = prompts
        self.rng = rng or random.Random()
        self.log_level = log_level
        self.symmetric = symmetric
        self.rtcp_interval_seconds = rtcp_interval_seconds  # passed to the workers (acd.calls.rtcp_port)
        self.on_media_lost: Callable[[list[str], str], None] = lambda call_ids, why: None
        first = port_min + (port_min % 2)
        even = list(range(first, port_max + 1, 2))
        self.workers = [_Worker(self, index, even[index::workers]) for index in range(workers)]
        self._next_leg = 0
        self._blobs: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._blob_bytes = 0
        self._next_blob = 0
        self._rooms: dict[str, tuple[_Worker, int]] = {}  # a monitored call -> its worker and room id
        self._next_room = 0
        self.stopping = False
        self._start_worker = start_worker or self._spawn_process
        for worker in self.workers:
            self._spawn(worker)

    # ---- workers ------------------------------------------------------------------------------
    def _spawn(self, worker: _Worker) -> None:
        self._start_worker(worker)
        log.info("media worker %d started (pid %s): RTP ports %d-%d%s", worker.index, worker.pid,
                 worker.ports[0] if worker.ports else 0, worker.ports[-1] if worker.ports else 0,
                 f", every {len(self.workers)}th even port" if len(self.workers) > 1 else "")

    def _spawn_process(self, worker: _Worker) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        ports = f"{worker.ports[0]}:{worker.ports[-1]}:{2 * len(self.workers)}" if worker.ports else "0:-1:2"
        args = [sys.executable, "-m", "acd.calls.media_worker", "--address", self.address, "--ports", ports,
                "--log-level", self.log_level, "--rtcp-interval-seconds", str(self.rtcp_interval_seconds)]
        self.reactor.spawnProcess(worker, sys.executable, args, env=env, childFDs={0: "w", 1: "r", 2: "r"})

    def stop(self) -> None:
        """The server is exiting: close the workers' pipes (each exits when its input closes)."""
        self.stopping = True
        for worker in self.workers:
            if worker.alive:
                worker.transport.closeStdin()

    def worker_ended(self, worker: _Worker, reason: Exception) -> None:
        """A worker exited: end the calls it carried, and start a new one (unless we are stopping)."""
        lost = list(worker.legs.values())
        worker.legs.clear()
        worker.blobs.clear()
        worker.free = collections.deque(worker.ports)
        worker.in_use.clear()
        worker.held_elsewhere = frozenset()
        worker.decoder = wire.FrameDecoder()
        for leg in lost:
            leg.transport = None
        self._rooms = {call_id: room for call_id, room in self._rooms.items() if room[0] is not worker}
        if self.stopping:
            return
        log.error("media worker %d (pid %s) exited (%s): %d media leg(s) lost; their calls end; starting a new "
                  "worker in %.0f s", worker.index, worker.pid, reason, len(lost), RESTART_DELAY_SECONDS)
        if self.metrics is not None:
            self.metrics.media_workers_lost.inc()
        self.reactor.callLater(RESTART_DELAY_SECONDS, self._restart, worker)
        if lost:
            self.on_media_lost(sorted({leg.call_id for leg in lost}), "media worker exited")

    def _restart(self, worker: _Worker) -> None:
        if not self.stopping and not worker.alive:
            self._spawn(worker)

    def report(self, worker: _Worker, message: tuple) -> None:
        """One report from `worker`."""
        kind = message[0]
        if kind == wire.DONE:
            leg = worker.legs.get(message[1])
            if leg is not None:
                leg.playback_done(message[2])
        elif kind == wire.DIGIT:
            leg = worker.legs.get(message[1])
            if leg is not None:
                if message[3] == "rfc4733":
                    leg.on_digit(message[2])
                else:
                    leg.on_digit(message[2], message[3])
        elif kind == wire.AUDIO:
            leg = worker.legs.get(message[1])
            if leg is not None:
                leg.audio(message[2], message[3])
        elif kind == wire.CLOSED:
            self._closed(worker, *message[1:])
        elif kind == wire.OPEN_FAILED:
            self._open_failed(worker, *message[1:])
        elif kind == wire.LOG:
            log.log(message[1], "%s", message[2])
        elif kind == wire.SRTP_FAILURES:
            if self.metrics is not None:
                self.metrics.srtp_auth_failures.inc(message[1])
        elif kind == wire.HELD_ELSEWHERE:
            worker.held_elsewhere = frozenset(message[1])
            if message[1]:
                log.warning("media worker %d: %d RTP port(s) of rtp: ports are held by another program and are "
                            "not used (%s%s); keep the range free for this server", worker.index, len(message[1]),
                            ", ".join(map(str, message[1][:10])), " ..." if len(message[1]) > 10 else "")
        elif kind == wire.HELLO:
            log.info("media worker %d ready (pid %s)", worker.index, message[1])

    def _closed(self, worker: _Worker, leg_id: int, sent: int, received: int, relayed: int, dropped: int,
                figures: tuple | None = None) -> None:
        leg = worker.legs.pop(leg_id, None)
        if leg is None:
            return
        leg.packets_sent, leg.packets_received, leg.packets_relayed, leg.frames_dropped = sent, received, relayed, dropped
        if leg.port is not None:
            worker.give_back(leg.port)
        if self.metrics is not None:
            self.metrics.rtp_sent.inc(sent)
            self.metrics.rtp_received.inc(received)
            self.metrics.rtp_late.inc(dropped)
        log.debug("call=%s media leg closed: rtp_sent=%d rtp_received=%d relayed=%d late_frames=%d", leg.call_id,
                  sent, received, relayed, dropped)
        if figures is not None:
            account_leg_figures(self.metrics, leg.call_id, StreamFigures.from_tuple(figures))

    def _open_failed(self, worker: _Worker, leg_id: int, port: int, reason: str) -> None:
        leg = worker.legs.pop(leg_id, None)
        worker.in_use.discard(port)
        worker.foreign[port] = self.reactor.seconds()
        worker.free.append(port)
        call_id = leg.call_id if leg is not None else "-"
        log.error("call=%s RTP port %d is held by another program (%s): the call has no media; the port is "
                  "skipped for %.0f s. Keep rtp: ports in conf/acd.yaml free for this server.", call_id, port,
                  reason, FOREIGN_PORT_SKIP_SECONDS)
        if leg is not None:
            leg.transport = None
            self.on_media_lost([leg.call_id], f"RTP port {port} held by another program")

    # ---- the Media port -----------------------------------------------------------------------
    def new_leg(self, *, call_id: str, codec: str, payload_type: int, telephone_event_pt: int | None,
                on_digit: Callable[[str], None], on_playback_finished: Callable[[int], None],
                near: str | None = None) -> RemoteLeg:
        """An unbound leg; `open()` gives it a port. `near`: a call whose media this leg will be bridged
        with (an agent's or a callback's leg), so both are on one worker."""
        worker = self.workers[zlib.crc32((near or call_id).encode()) % len(self.workers)]
        self._next_leg += 1
        return RemoteLeg(self, worker, self._next_leg, call_id=call_id, codec=codec, payload_type=payload_type,
                         telephone_event_pt=telephone_event_pt, on_digit=on_digit,
                         on_playback_finished=on_playback_finished)

    def open(self, leg: RemoteLeg) -> int | None:
        """Give `leg` a port of its worker's slice; None when every one is taken (or the worker is down)."""
        worker = leg.worker
        if not worker.alive:
            return None
        port = worker.take_port(self.reactor.seconds())
        if port is None:
            return None
        leg.port = port
        leg.transport = _LegPort(leg)
        worker.legs[leg.leg_id] = leg
        worker.send((wire.OPEN, leg.leg_id, port, leg.call_id, leg.codec, leg.payload_type, leg.telephone_event_pt))
        if self.symmetric != "off":
            worker.send((wire.SET, leg.leg_id, "symmetric", self.symmetric))
        return port

    def release(self, leg: RemoteLeg) -> None:
        """The leg ended: the worker unbinds its port and reports its counts (metrics count them then)."""
        if leg.transport is None:
            return
        leg.worker.send((wire.CLOSE, leg.leg_id))
        leg.transport = None
        leg._relay_to = None

    def start_sending(self, leg: RemoteLeg) -> None:
        """Pace `leg`'s prompts (or silence) from the next tick on."""
        leg._send((wire.START, leg.leg_id))

    def stop_sending(self, leg: RemoteLeg) -> None:
        """Stop pacing `leg`."""
        leg._send((wire.PAUSE, leg.leg_id))

    def set_mix(self, call_id: str, hearing: "dict[RemoteLeg, tuple[RemoteLeg, ...]] | None",
                bridged: "tuple[RemoteLeg, ...]" = ()) -> None:
        """Mix a monitored call's legs on their worker (see MediaPorts.set_mix); legs on another worker
        than the first listener's are left out, and logged."""
        known = self._rooms.get(call_id)
        if not hearing:
            if known is not None:
                del self._rooms[call_id]
                known[0].send((wire.MIX, known[1], (), ()))
            return
        worker = next(iter(hearing)).worker
        strays = {leg.call_id for leg in (*hearing, *(s for sources in hearing.values() for s in sources))
                  if leg.worker is not worker}
        if strays:
            log.error("call=%s cannot mix legs of %s: they are on another media worker", call_id, ", ".join(strays))
        if known is None:
            self._next_room += 1
            known = self._rooms[call_id] = (worker, self._next_room)
        plan = tuple((listener.leg_id, tuple(s.leg_id for s in sources if s.worker is worker))
                     for listener, sources in hearing.items() if listener.worker is worker)
        worker.send((wire.MIX, known[1], plan, tuple(leg.leg_id for leg in bridged if leg.worker is worker)))

    # The same as in-process: prompts from the library, keys and session ids made here.
    encoded = MediaPorts.encoded
    new_srtp_key = MediaPorts.new_srtp_key
    session_id = MediaPorts.session_id

    def blob_on(self, worker: _Worker, audio: bytes) -> int:
        """The id `worker` knows `audio` by, sending it there first if it does not have it yet."""
        blobs = self._blobs
        blob_id = blobs.get(audio)
        if blob_id is None:
            self._next_blob += 1
            blob_id = blobs[audio] = self._next_blob
            self._blob_bytes += len(audio)
            while self._blob_bytes > BLOB_CACHE_BYTES and len(blobs) > 1:
                old_audio, old_id = blobs.popitem(last=False)
                self._blob_bytes -= len(old_audio)
                for other in self.workers:
                    if old_id in other.blobs:
                        other.blobs.discard(old_id)
                        other.send((wire.FORGET, old_id))
        else:
            blobs.move_to_end(audio)
        if blob_id not in worker.blobs:
            worker.blobs.add(blob_id)
            worker.send((wire.BLOB, blob_id, audio))
        return blob_id

    def legs_in_use(self) -> int:
        """Legs the shell holds (opened, not released), on every worker."""
        return sum(1 for worker in self.workers for leg in worker.legs.values() if leg.transport is not None)
