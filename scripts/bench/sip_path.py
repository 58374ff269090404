#!/usr/bin/env python3
"""SIP path micro-benchmark: CPU per call of the control path, in process, no sockets (issue 16).

Builds the real server (`acd.app.build_server`, as `acd serve` does) on the shipped demo config,
on an in-memory reactor: SIP datagrams are handed to the server's UDP protocol and its answers
caught in memory; time is simulated (a heap of timers, as Twisted's reactor keeps them). Media is
a no-op `Media` port (`NoMedia`): no RTP socket, no pacing; a prompt "finishes" after its length
in simulated time and DTMF digits are handed to the leg's `on_digit`, as a media worker would.
So what is measured is what the SIP/ACD process does per call once RTP lives elsewhere.

Each call, SIPp-like, into the demo IVR (number 1000): INVITE (SDP) -> 200 -> ACK, then by
`--scenario`: `digit` (default) presses 1 at 0.5 s (barge-in through the welcome, the menu
takes it, the sales prompt plays) and hangs up at `--hold-seconds`; `hangup` only hangs up
(what `sip_bench.py rate` does); `timeout` never presses anything, so the menu times out and
the flow hangs up on the caller (our BYE, their 200). The run goes on until every transaction
ended (Timer L/J, 32 s), so each call pays its own timers.

CPU is thread CPU time (CLOCK_THREAD_CPUTIME_ID) of the reactor thread, summed over the server's
entry points (datagram in, timers, digits), by phase; the records writer thread's CPU is read
from its own clock. The machine may be shared: run several times and take medians (`--runs`).

    PYTHONPATH=. .venv/bin/python scripts/bench/sip_path.py --calls 20000 --rate 700 --runs 3 --out sp.json
    PYTHONPATH=. .venv/bin/python scripts/bench/sip_path.py --calls 5000 --profile /tmp/sp.prof   # cProfile
    PYTHONPATH=. .venv/bin/python scripts/bench/sip_path.py --calls 200000 --rate 500 --runs 1     # stalls

`--log-level` is the server's (INFO, the default of `acd serve`); the log goes to a file in the
work directory, formatted as `acd serve` formats it.
"""

from __future__ import annotations

import argparse
import collections
import gc
import heapq
import itertools
import json
import logging
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import acd.app  # noqa: E402
try:
    from acd import log_output  # noqa: E402
except ImportError:  # a tree from before acd/log_output.py (A/B runs)
    log_output = None
from acd.app import build_server  # noqa: E402
from acd.config.loader import load_config  # noqa: E402
try:
    from acd.heap import settle_heap  # noqa: E402
except ImportError:  # a tree from before acd/heap.py (A/B runs): what acd serve did then
    def settle_heap() -> None:
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
from acd.media.prompts import PromptLibrary  # noqa: E402
from tests.e2e.harness import write_config  # noqa: E402
from tests.shell.fake_reactor import FakeReactor, Network  # noqa: E402
from twisted.internet.base import DelayedCall  # noqa: E402
from twisted.python.threadpool import ThreadPool  # noqa: E402

SERVER = ("127.0.0.1", 5060)
CALLER = ("127.0.0.1", 5070)
CALLER_RTP = 40000
PHASES = ("invite", "ack", "dtmf", "bye", "timers", "thread_results")
# The machine is shared: the same code measures 960-1,260 µs a call from one run to the next, and
# the benchmark's own caller (building requests, reading answers: the same work in every run and
# every tree) slows down by the same factor. `reactor_us_per_call_normalised` scales the reactor's
# CPU by (this reference / the caller's CPU in that run): the figure at the speed this machine had
# when the caller took CALLER_REFERENCE_US (a quiet moment, 2026-12-06). Compare trees with it.
CALLER_REFERENCE_US = 95.0
START_TIME = 1_780_304_400.0  # 2026-06-01 09:00 UTC (any fixed date; the demo hours are open all day)


# ---- the reactor: Twisted's timed-call discipline on simulated time ------------------------------
class HeapReactor(FakeReactor):
    """The shell tests' FakeReactor (in-memory UDP, triggers, synchronous thread pool) with timers in a
    heap, cancelled ones dropped lazily, as Twisted's ReactorBase keeps them (task.Clock re-sorts
    its list on every callLater and removes on cancel: O(n) per call with thousands of calls up)."""

    def __init__(self, real_threads: bool = True) -> None:
        super().__init__()
        self.network = QuietNetwork(self)
        self._heap: list[tuple[float, int, DelayedCall]] = []
        self._order = itertools.count()
        self._cancellations = 0
        # With `real_threads`, thread-pool work runs on Twisted's own ThreadPool threads and comes
        # back through callFromThread (a thread-safe queue, run by `settle`): the hand-offs cost
        # what they cost a server (wake-ups, the GIL changing hands). Otherwise inline, as in tests.
        self._from_threads: collections.deque = collections.deque()
        self.real_pool = ThreadPool(minthreads=1, maxthreads=10, name="bench-pool") if real_threads else None
        if self.real_pool is not None:
            self.real_pool.start()

    def getThreadPool(self):  # noqa: N802 - Twisted API
        return self.real_pool if self.real_pool is not None else self.thread_pool

    def callInThread(self, function, *args, **kwargs) -> None:  # noqa: N802 - Twisted API
        self.getThreadPool().callInThread(function, *args, **kwargs)

    def callFromThread(self, function, *args, **kwargs) -> None:  # noqa: N802 - Twisted API
        if self.real_pool is None:
            super().callFromThread(function, *args, **kwargs)
        else:
            self._from_threads.append((function, args, kwargs))

    def settle(self) -> None:
        """Wait until the pool's threads are done (what they hand back waits for `run_from_threads`)."""
        pool = self.real_pool
        if pool is None:
            return
        while True:
            stats = pool._team.statistics()
            if not stats.busyWorkerCount and not stats.backloggedWorkCount:
                break
            time.sleep(0.0001)

    def run_from_threads(self) -> None:
        """Run the calls threads handed to the reactor, oldest first."""
        queue = self._from_threads
        while queue:
            function, args, kwargs = queue.popleft()
            function(*args, **kwargs)

    def stop_threads(self) -> None:
        if self.real_pool is not None:
            self.real_pool.stop()

    def callLater(self, delay, callable, *args, **kw):  # noqa: N802,A002 - Twisted API
        call = DelayedCall(self.rightNow + delay, callable, args, kw, self._cancelled, self._reset,
                           seconds=self.seconds)
        heapq.heappush(self._heap, (call.time, next(self._order), call))
        return call

    def _cancelled(self, call: DelayedCall) -> None:
        self._cancellations += 1  # dropped when it comes up, or when they are half the heap

    def _reset(self, call: DelayedCall) -> None:
        heapq.heappush(self._heap, (call.time, next(self._order), call))

    def getDelayedCalls(self):  # noqa: N802 - Twisted API
        return [call for _, _, call in self._heap if call.active()]

    def advance(self, amount: float) -> None:
        """Run what threads handed back, then every timer due within `amount` seconds, in order,
        moving the clock to each."""
        self.run_from_threads()
        target = self.rightNow + amount
        heap = self._heap
        while heap and heap[0][0] <= target:
            when, _, call = heapq.heappop(heap)
            if call.cancelled or call.called or call.time != when:
                continue
            self.rightNow = max(self.rightNow, when)
            call.called = 1
            call.func(*call.args, **call.kw)
        self.rightNow = target
        if self._cancellations > 50 and self._cancellations > len(heap) >> 1:
            self._cancellations = 0
            self._heap = [entry for entry in heap if not entry[2].cancelled]
            heapq.heapify(self._heap)

    @property
    def next_timer(self) -> float | None:
        """When the earliest live timer is due (None: no timer)."""
        heap = self._heap
        while heap and (heap[0][2].cancelled or heap[0][2].called or heap[0][2].time != heap[0][0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None


class QuietNetwork(Network):
    """Delivers without keeping a log of every datagram (a long run would hold them all)."""

    def send(self, source, destination, data) -> None:
        endpoint = self.endpoints.get((destination[0], int(destination[1])))
        if endpoint is not None:
            endpoint.deliver(data, source)


# ---- media: a no-op Media port -----------------------------------------------------------------
class NullLeg:
    """What the call shell touches on an RTP leg, without a socket: `play` reports the playback
    finished after the audio's length (G.711: 8,000 bytes a second), `stop` cancels that."""

    def __init__(self, media: "NoMedia", reactor, call_id: str, on_digit, on_playback_finished) -> None:
        self.media = media
        self.reactor = reactor
        self.call_id = call_id
        self.on_digit = on_digit
        self.on_playback_finished = on_playback_finished
        self.codec, self.payload_type, self.telephone_event_pt = "PCMU", 0, None
        self.remote = ("0.0.0.0", 0)
        self.silence = b""
        self.transport = None
        self.sending = True
        self.relay_to = self.tap_in = self.tap_out = self.on_audio = None
        self.next_send = None
        self.packets_sent = self.packets_received = self.packets_relayed = self.frames_dropped = 0
        self._finish = None

    def use_srtp(self, local_key, remote_key) -> None:
        pass

    @property
    def srtp(self) -> bool:
        return False

    def play(self, audio: bytes, playback_id: int) -> None:
        self.stop()
        self._finish = self.reactor.callLater(len(audio) / 8000, self._finished, playback_id)

    def _finished(self, playback_id: int) -> None:
        self._finish = None
        self.on_playback_finished(playback_id)

    def stop(self) -> None:
        if self._finish is not None and self._finish.active():
            self._finish.cancel()
        self._finish = None

    @property
    def playing(self) -> bool:
        return self._finish is not None

    def stopListening(self) -> None:  # noqa: N802 - the transport side of the leg
        self.stop()
        self.transport = None
        self.media.legs.pop(self.call_id, None)


class NoMedia:
    """Implements the `Media` port (acd.calls.ports) with NullLegs: ports are counted, not bound."""

    def __init__(self, reactor, *, address: str, port_min: int, port_max: int, prompts: PromptLibrary,
                 rng: random.Random | None = None, metrics=None, symmetric: str = "auto",
                 rtcp_interval_seconds: float = 5.0) -> None:
        self.reactor = reactor
        self.address = address
        self.port_min, self.port_max = port_min, port_max
        self.prompts = prompts
        self.rng = rng or random.Random(1)
        self._next_port = port_min
        self.legs: dict[str, NullLeg] = {}

    def new_leg(self, *, call_id, codec, payload_type, telephone_event_pt, on_digit, on_playback_finished, near=None):
        leg = NullLeg(self, self.reactor, call_id, on_digit, on_playback_finished)
        self.legs[call_id] = leg
        return leg

    def open(self, leg: NullLeg) -> int:
        port = self._next_port
        self._next_port = port + 2 if port + 2 <= self.port_max else self.port_min
        leg.transport = leg
        return port

    def start_sending(self, leg) -> None:
        pass

    def stop_sending(self, leg) -> None:
        pass

    def release(self, leg: NullLeg) -> None:
        """The leg ended: nothing is bound; drop the leg (and its transport's cycle back to it)."""
        if leg.transport is not None:
            leg.transport.stopListening()

    def set_mix(self, call_id: str, hearing, bridged=()) -> None:
        pass

    def encoded(self, prompt: str, codec: str) -> bytes:
        return self.prompts.encoded(prompt, codec)

    def new_srtp_key(self) -> bytes:
        return bytes(30)

    def session_id(self) -> int:
        return self.rng.getrandbits(31)


# ---- the caller: SIPp's rate_call.xml, by hand ---------------------------------------------------
INVITE = ("INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}-1\r\n"
          "From: \"Bench\" <sip:5550000@127.0.0.1:5070>;tag=bench{n}\r\n"
          "To: <sip:{number}@127.0.0.1:5060>\r\n"
          "Call-ID: {n}-bench@127.0.0.1\r\n"
          "CSeq: 1 INVITE\r\n"
          "Contact: <sip:5550000@127.0.0.1:5070>\r\n"
          "Max-Forwards: 70\r\n"
          "Content-Type: application/sdp\r\n"
          "Content-Length: {length}\r\n\r\n{sdp}")
SDP = ("v=0\r\no=bench 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
       "a=fmtp:101 0-15\r\na=sendrecv\r\n")
IN_DIALOG = ("{method} sip:{number}@127.0.0.1:5060 SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
             "From: \"Bench\" <sip:5550000@127.0.0.1:5070>;tag=bench{n}\r\n"
             "To: <sip:{number}@127.0.0.1:5060>;tag={to_tag}\r\n"
             "Call-ID: {n}-bench@127.0.0.1\r\n"
             "CSeq: {cseq} {method}\r\n"
             "Max-Forwards: 70\r\n"
             "Content-Length: 0\r\n\r\n")
TO_TAG = re.compile(rb"\r\nTo: [^\r]*;tag=([^;\r]+)")
CALL_NUMBER = re.compile(rb"\r\nCall-ID: (\d+)-bench@")
FIRST_LINE = re.compile(rb"^(SIP/2.0 (\d+)|(\w+) )")


class Caller:
    """Catches what the server sends to the caller's address; read outside the measured time."""

    def __init__(self) -> None:
        self.inbox: list[bytes] = []

    def deliver(self, data: bytes, source) -> None:
        self.inbox.append(data)


def invite(n: int, number: str) -> bytes:
    sdp = SDP.format(port=CALLER_RTP + 2 * (n % 10000))
    return INVITE.format(number=number, n=n, length=len(sdp), sdp=sdp).encode()


def in_dialog(method: str, n: int, number: str, to_tag: str, cseq: int, branch: str | None = None) -> bytes:
    return IN_DIALOG.format(method=method, number=number, n=n, to_tag=to_tag, cseq=cseq,
                            branch=branch or f"z9hG4bK-{n}-{cseq}").encode()


def response_to(request: bytes, status: int, reason: str) -> bytes:
    """A response echoing Via, From, To, Call-ID and CSeq (the server's BYE, answered)."""
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    kept = [line for line in head[1:] if line.split(b":", 1)[0].lower() in (b"via", b"from", b"to", b"call-id",
                                                                            b"cseq")]
    return b"\r\n".join([f"SIP/2.0 {status} {reason}".encode(), *kept, b"Content-Length: 0", b"", b""])


# ---- the run -----------------------------------------------------------------------------------
class Probe:
    """Reactor-thread CPU per phase, the loop-lag probe (wall and CPU time of each reactor step: a
    datagram handled, a timer run) and the garbage collector's pauses (CPU time, by generation).
    Wall times include being descheduled on a shared machine; CPU times do not."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.steps = 0
        self.slowest = 0.0  # wall seconds
        self.slowest_cpu = 0.0
        self.slow_steps = 0  # steps over 50 ms of CPU
        self.gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_started = 0.0
        self.clock: Callable[[], float] | None = None  # simulated time, to say when collections ran
        self.in_step = False
        self.gc_outside_steps = 0.0  # collections the benchmark's own caller code set off
        self.waiting = 0.0  # CPU of the main thread while it waited for other threads
        self.gc_times: list[float] = []

    def run(self, phase: str, function: Callable, *args) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.in_step = True
        function(*args)
        self.in_step = False
        cpu_end, wall_end = time.thread_time(), time.perf_counter()
        used = cpu_end - cpu
        self.cpu[phase] += used
        self.steps += 1
        self.slowest = max(self.slowest, wall_end - wall)
        if used > self.slowest_cpu:
            self.slowest_cpu = used
        if used > 0.05:
            self.slow_steps += 1

    def wait(self, function: Callable, *args) -> None:
        """Wait for other threads (their CPU is theirs; the waiting loop's is left out of the caller's)."""
        cpu = time.thread_time()
        function(*args)
        self.waiting += time.thread_time() - cpu

    def gc_callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            pause = time.thread_time() - self._gc_started
            self.gc_pauses[info["generation"]].append(pause)
            if not self.in_step:
                self.gc_outside_steps += pause
            if self.clock is not None:
                self.gc_times.append(self.clock())


def print_census(limit: int = 20) -> None:
    """How many objects of each type the garbage collector tracks (start-up objects are frozen)."""
    gc.collect()
    objects = gc.get_objects()
    counts = collections.Counter(type(item).__name__ for item in objects)
    print(f"{len(objects)} tracked objects: " + ", ".join(f"{name} {count}" for name, count in counts.most_common(limit)))
    del objects


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds of another thread of this process (0 when it is gone)."""
    if thread is None or not thread.is_alive():
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, AttributeError):
        return 0.0


def configure_logging(level: str, path: Path) -> logging.Handler:
    """The log as `acd serve` writes it (acd/cli.py), into `path` instead of stderr."""
    stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed with the handler
    if log_output is not None:
        return log_output.configure(level, stream=stream)
    handler = logging.StreamHandler(stream)  # what acd serve did before acd/log_output.py
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    return handler


class Bench:
    """One server on a HeapReactor and the calls placed into it."""

    def __init__(self, workdir: Path, args) -> None:
        self.args = args
        # admission off: this bench measures the call path at the rate asked, not the gate (overload_bench does)
        write_config(workdir, sip_port=SERVER[1], rtp_base=20000, rtp_ports=20000, http_port=0, rtp_workers=0,
                     sip_extra="  admission: {max_calls: 1000000, max_new_calls_per_second: 0, "
                               "overload_loop_lag_seconds: 0}\n")
        self.log_handler = configure_logging(args.log_level, workdir / "server.log")
        self.reactor = HeapReactor(real_threads=args.thread_pool == "real")
        self.reactor.advance(START_TIME)
        acd.app.MediaPorts = NoMedia  # the composition root's media port, without sockets
        config = load_config(workdir)
        self.running = build_server(config, self.reactor)
        settle_heap()  # what `acd serve` does once the server is built (acd/cli.py)
        self.sip = self.reactor.udp_ports[SERVER].protocol
        self.caller = Caller()
        self.reactor.network.bind(CALLER, self.caller)
        self.probe = Probe()
        self._events: list[tuple[float, int, str, int, bytes | None]] = []
        self._order = itertools.count()
        self.to_tags: dict[int, str] = {}
        self.answered = self.ended = self.failed = 0
        self._acked: set[int] = set()
        self.writer = next((t for t in threading.enumerate() if t.name == "acd-records"), None)

    def at(self, when: float, kind: str, n: int, data: bytes | None = None) -> None:
        heapq.heappush(self._events, (when, next(self._order), kind, n, data))

    def place(self, first: int, count: int, rate: float) -> None:
        """Schedule `count` calls from call number `first`, `rate` a second, from now."""
        start = self.reactor.seconds()
        for index in range(count):
            self.at(start + index / rate, "invite", first + index)

    def run(self, probe: Probe, census: bool = False) -> None:
        """Handle every scheduled event in time order, then let every timer run out (`census`: print
        the objects the garbage collector tracks when the last call was placed, most common first)."""
        self.run_events(probe)
        if census:
            print_census()
        while True:
            probe.wait(self.reactor.settle)
            if self.reactor._from_threads:
                probe.run("thread_results", self.reactor.run_from_threads)
            if self._events:  # the caller's answers to what the timers made the server send
                self.run_events(probe)
            elif (due := self.reactor.next_timer) is not None:
                probe.run("timers", self.reactor.advance, due - self.reactor.seconds())
                self._read_inbox()
            else:
                break

    def run_events(self, probe: Probe) -> None:
        """Handle every scheduled event in time order."""
        reactor, number = self.reactor, self.args.number
        records = self.running.records
        settle_every = self.args.settle_ms / 1000
        while self._events:
            when, _, kind, n, data = heapq.heappop(self._events)
            if int(when / settle_every) > int(reactor.seconds() / settle_every):
                # The pool's threads get the GIL while the reactor waits for packets: here, every
                # --settle-ms of simulated time (look-ups asked meanwhile wait for it together).
                probe.wait(self.reactor.settle)
                if reactor._from_threads:
                    probe.run("thread_results", reactor.run_from_threads)
            if int(when) > int(reactor.seconds()):
                # Once per simulated second, let the records writer catch up, as it does while a
                # server that is not saturated waits for packets (here time runs faster than real
                # time and the writer would fall behind, its queue growing: not what a server does).
                probe.wait(records.flush, 30)
            if when > reactor.seconds():
                probe.run("timers", reactor.advance, when - reactor.seconds())
                self._read_inbox()
            if kind == "invite":
                probe.run("invite", self.sip.datagramReceived, invite(n, number), CALLER)
            elif kind == "ack":
                probe.run("ack", self.sip.datagramReceived, in_dialog("ACK", n, number, self.to_tags[n], 1,
                                                                         branch=f"z9hG4bK-{n}-ack"), CALLER)
                if self.args.scenario == "digit":
                    self.at(when + 0.5, "dtmf", n)
                if self.args.scenario != "timeout":
                    self.at(when + self.args.hold_seconds, "bye", n)
            elif kind == "dtmf":
                leg = self.running.media.legs.get(f"{n}-bench@127.0.0.1")
                if leg is not None and leg.transport is not None:
                    probe.run("dtmf", leg.on_digit, "1")
            elif kind == "bye":
                tag = self.to_tags.pop(n, None)
                if tag is not None:
                    probe.run("bye", self.sip.datagramReceived, in_dialog("BYE", n, number, tag, 2), CALLER)
            elif kind == "bye-ok":
                probe.run("bye", self.sip.datagramReceived, data, CALLER)
            self._read_inbox()

    def _read_inbox(self) -> None:
        inbox, self.caller.inbox = self.caller.inbox, []
        now = self.reactor.seconds()
        for data in inbox:
            first = FIRST_LINE.match(data)
            number = CALL_NUMBER.search(data)
            if first is None or number is None:
                continue
            n = int(number.group(1))
            if first.group(2) is not None:
                status = int(first.group(2))
                if b"\r\nCSeq: 1 INVITE" in data:
                    if status == 200 and n not in self.to_tags and n not in self._acked:
                        self.to_tags[n] = TO_TAG.search(data).group(1).decode()
                        self._acked.add(n)
                        self.answered += 1
                        self.at(now + 0.001, "ack", n)
                    elif status >= 300:
                        self.failed += 1
                elif b" BYE\r\n" in data and status == 200:
                    self.ended += 1
                    self._acked.discard(n)
            elif first.group(3) == b"BYE":
                self.to_tags.pop(n, None)
                self.ended += 1
                self._acked.discard(n)
                self.at(now + 0.001, "bye-ok", n, response_to(data, 200, "OK"))

    def close(self) -> None:
        self.reactor.fire_shutdown()
        self.reactor.stop_threads()
        logging.getLogger().removeHandler(self.log_handler)
        self.log_handler.close()


def one_run(args, run_index: int) -> dict:
    """Warm up, then measure `args.calls` calls; CPU in microseconds per call."""
    with tempfile.TemporaryDirectory(prefix="sip-path-") as temp:
        bench = Bench(Path(temp), args)
        try:
            bench.place(1, args.warmup, args.rate)
            bench.run(Probe())
            bench.running.records.flush(timeout=30)
            first = args.warmup + 1
            bench.answered = bench.ended = bench.failed = 0
            probe = Probe()
            probe.clock = bench.reactor.seconds
            measured_from = bench.reactor.seconds()
            gc.callbacks.append(probe.gc_callback)
            writer_before = thread_cpu(bench.writer)
            main_before, process_before = time.thread_time(), time.process_time()
            profiler = None
            if args.profile:
                import cProfile
                profiler = cProfile.Profile(time.thread_time)  # CPU: not the waits for the GIL
                profiler.enable()
            started = time.perf_counter()
            bench.place(first, args.calls, args.rate)
            bench.run(probe, census=args.census)
            wall = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            gc.callbacks.remove(probe.gc_callback)
            bench.running.records.flush(timeout=60)
            bench.log_handler.flush()
            writer = thread_cpu(bench.writer) - writer_before
            main_thread, process = time.thread_time() - main_before, time.process_time() - process_before
            leaks = {"sessions": len(bench.running.calls.sessions),
                     "transactions": bench.running.sip.endpoint.transaction_count}
            log_lines = sum(1 for _ in open(Path(temp) / "server.log", encoding="utf-8"))
        finally:
            bench.close()
    calls = args.calls
    per_call = {phase: seconds * 1e6 / calls for phase, seconds in probe.cpu.items()}
    reactor = sum(probe.cpu.values()) * 1e6 / calls
    caller = (main_thread - sum(probe.cpu.values()) - probe.gc_outside_steps - probe.waiting) * 1e6 / calls
    whole = (process - probe.waiting) * 1e6 / calls - caller  # every thread, less the caller and the waits
    pauses = {f"gen{generation}": {"count": len(values), "max_ms": round(max(values, default=0) * 1000, 2),
                                   "total_ms": round(sum(values) * 1000, 1)}
              for generation, values in probe.gc_pauses.items()}
    return {"run": run_index, "calls": calls, "answered": bench.answered, "ended": bench.ended,
            "failed": bench.failed, "reactor_us_per_call": round(reactor, 1),
            "phases_us_per_call": {phase: round(value, 1) for phase, value in per_call.items()},
            "writer_us_per_call": round(writer * 1e6 / calls, 1),
            "other_threads_us_per_call": round((process - main_thread) * 1e6 / calls, 1),
            "caller_us_per_call": round(caller, 1),
            "reactor_us_per_call_normalised": round(reactor * CALLER_REFERENCE_US / caller, 1),
            "process_us_per_call": round(whole, 1),
            "process_us_per_call_normalised": round(whole * CALLER_REFERENCE_US / caller, 1),
            "wall_seconds": round(wall, 2), "slowest_step_ms": round(probe.slowest_cpu * 1000, 2),
            "slowest_step_wall_ms": round(probe.slowest * 1000, 2),
            "steps_over_50ms": probe.slow_steps, "gc": pauses, "left_over": leaks,
            "gc_after_first_40s": sum(1 for at in probe.gc_times if at > measured_from + 40),
            "log_lines_per_call": round(log_lines / (calls + args.warmup), 2)}


def summarize(runs: list[dict]) -> dict:
    def median(key: str, sub: str | None = None) -> float:
        values = [run[key][sub] if sub else run[key] for run in runs]
        return round(statistics.median(values), 1)

    return {"runs": len(runs), "reactor_us_per_call": median("reactor_us_per_call"),
            "reactor_us_per_call_normalised": median("reactor_us_per_call_normalised"),
            "process_us_per_call_normalised": median("process_us_per_call_normalised"),
            "caller_us_per_call": median("caller_us_per_call"),
            "phases_us_per_call": {phase: median("phases_us_per_call", phase) for phase in PHASES},
            "writer_us_per_call": median("writer_us_per_call"),
            "other_threads_us_per_call": median("other_threads_us_per_call"),
            "slowest_step_ms": max(run["slowest_step_ms"] for run in runs),
            "steps_over_50ms": max(run["steps_over_50ms"] for run in runs)}


def code_version() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def print_profile(path: str, limit: int) -> None:
    import pstats
    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="measured calls per run (20000)")
    parser.add_argument("--warmup", type=int, default=500, help="calls before measuring (500)")
    parser.add_argument("--rate", type=float, default=700.0, help="calls a second, simulated time (700)")
    parser.add_argument("--hold-seconds", type=float, default=1.0, help="caller hangs up after (1 s, as sip_bench)")
    parser.add_argument("--scenario", choices=("digit", "hangup", "timeout"), default="digit")
    parser.add_argument("--number", default="1000", help="dialled number (1000: the demo IVR)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--thread-pool", choices=("real", "inline"), default="real",
                        help="thread-pool work on real threads (default), or inline as in tests/shell")
    parser.add_argument("--settle-ms", type=float, default=10.0,
                        help="simulated ms between the moments the pool's threads run (10)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--census", action="store_true",
                        help="after the last call is placed, count the objects the GC tracks, by type (slow)")
    parser.add_argument("--profile", help="write a cProfile of the (last) measured run here, and print its top")
    parser.add_argument("--profile-lines", type=int, default=40)
    parser.add_argument("--out", type=Path, help="JSON file for every run and the medians")
    args = parser.parse_args(argv)
    runs = []
    for index in range(args.runs):
        result = one_run(args, index + 1)
        runs.append(result)
        phases = "  ".join(f"{phase} {value:.1f}" for phase, value in result["phases_us_per_call"].items())
        print(f"run {index + 1}: {result['reactor_us_per_call']:.1f} us/call on the reactor "
              f"(normalised {result['reactor_us_per_call_normalised']:.1f}; caller {result['caller_us_per_call']:.1f}; "
              f"whole process {result['process_us_per_call_normalised']:.1f} normalised) "
              f"({phases}); "
              f"records writer {result['writer_us_per_call']:.1f}, all other threads "
              f"{result['other_threads_us_per_call']:.1f}; {result['answered']}/{result['calls']} answered, "
              f"{result['failed']} failed; slowest step {result['slowest_step_ms']} ms CPU "
              f"({result['slowest_step_wall_ms']} ms wall); gc CPU {result['gc']}, "
              f"{result['gc_after_first_40s']} collection(s) after the first 40 s",
              flush=True)
    summary = summarize(runs)
    print(f"median of {len(runs)}: {summary['reactor_us_per_call']} us of reactor CPU per call "
          f"(normalised {summary['reactor_us_per_call_normalised']}; whole process "
          f"{summary['process_us_per_call_normalised']}); "
          + ", ".join(f"{phase} {value}" for phase, value in summary["phases_us_per_call"].items())
          + f"; records writer {summary['writer_us_per_call']}, all other threads {summary['other_threads_us_per_call']}")
    if args.out:
        args.out.write_text(json.dumps({"code_version": code_version(), "python": platform.python_version(),
                                        "settings": {k: str(v) for k, v in vars(args).items()},
                                        "summary": summary, "runs": runs}, indent=2) + "\n")
    if args.profile:
        print_profile(args.profile, args.profile_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
