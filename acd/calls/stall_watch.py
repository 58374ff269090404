"""StallWatch: when the event loop stops for longer than it should, say where it is (issue 21).

The lag timer (AdmissionGate) measures how late the loop runs, but only after the loop runs again,
and a histogram cannot say *why* it stopped. At 800-1,100 calls/s a run showed 1-3 stalls of
100-700 ms that were not garbage collections (acd_gc_pause_seconds counted one of 41-79 ms). This
watches from a thread of its own: the loop beats (`beat`, from the lag timer), the thread checks
every `threshold_seconds / 2`, and a stall longer than `threshold_seconds` is logged twice:
- while it lasts, the reactor thread's stack at that moment (where it is: computing, or blocked in
  a system call such as a write to a full pipe);
- when the loop beats again, how long it stopped and how much CPU the reactor thread used in that
  time. CPU close to the stall's length means it was computing; much less means it waited (blocked,
  or not scheduled: the machine's other processes had the cores).

The rules are in `StallCheck` (pure: `now` and CPU readings in, reports out); `StallWatch` is the
thread. A stall is reported once, and at most `MAX_REPORTS_PER_MINUTE` are logged a minute.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["StallCheck", "StallBegan", "StallEnded", "StallWatch", "MAX_REPORTS_PER_MINUTE"]

log = logging.getLogger("acd.loop")

MAX_REPORTS_PER_MINUTE = 10
STACK_FRAMES = 12


@dataclass(frozen=True, slots=True)
class StallBegan:
    """The loop has not beaten for `seconds` (more than the threshold)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class StallEnded:
    """The loop beat again after `seconds` without; its thread used `cpu_seconds` of CPU meanwhile."""

    seconds: float
    cpu_seconds: float


class StallCheck:
    """The stall rules, without threads: `beat(now, cpu)` from the loop, `check(now, cpu)` from the
    watcher; each returns what to report (None: nothing). `cpu` is the reactor thread's CPU clock."""

    def __init__(self, threshold_seconds: float, now: float, cpu: float) -> None:
        self.threshold_seconds = threshold_seconds
        self._last_beat = now
        self._cpu_at_beat = cpu
        self._reported = False
        self._reports: list[float] = []  # when the last reports were made (rate limit)

    def beat(self, now: float, cpu: float) -> StallEnded | None:
        """The loop ran: a StallEnded when a reported stall is over."""
        ended = None
        if self._reported:
            ended = StallEnded(seconds=now - self._last_beat, cpu_seconds=max(0.0, cpu - self._cpu_at_beat))
            self._reported = False
        self._last_beat, self._cpu_at_beat = now, cpu
        return ended

    def check(self, now: float) -> StallBegan | None:
        """From the watcher: a StallBegan the first time a stall passes the threshold (rate-limited)."""
        silent = now - self._last_beat
        if self._reported or silent <= self.threshold_seconds:
            return None
        self._reports = [at for at in self._reports if now - at < 60.0]
        if len(self._reports) >= MAX_REPORTS_PER_MINUTE:
            return None
        self._reports.append(now)
        self._reported = True
        return StallBegan(seconds=silent)


def thread_cpu_clock(thread_id: int) -> Callable[[], float]:
    """A function reading the CPU seconds of the thread `thread_id` (0.0 where the OS cannot tell)."""
    try:
        clock_id = time.pthread_getcpuclockid(thread_id)
    except (AttributeError, OSError):
        return lambda: 0.0

    def read() -> float:
        try:
            return time.clock_gettime(clock_id)
        except OSError:
            return 0.0
    return read


class StallWatch:
    """Watches the reactor thread (the thread that calls `start`) from a daemon thread."""

    def __init__(self, threshold_seconds: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold_seconds = threshold_seconds
        self.clock = clock
        self._thread_id = 0
        self._cpu: Callable[[], float] = lambda: 0.0
        self._check: StallCheck | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Call on the reactor thread, once it runs."""
        if self._thread is not None:
            return
        self._thread_id = threading.get_ident()
        self._cpu = thread_cpu_clock(self._thread_id)
        self._check = StallCheck(self.threshold_seconds, self.clock(), self._cpu())
        self._thread = threading.Thread(target=self._watch, name="acd-stall-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (at shutdown)."""
        self._stop.set()

    def beat(self) -> None:
        """The loop ran (call from the reactor thread, e.g. at each lag tick)."""
        if self._check is None:
            return
        with self._lock:
            ended = self._check.beat(self.clock(), self._cpu())
        if ended is not None:
            waited = ended.seconds - ended.cpu_seconds
            log.warning("event loop stall over after %.0f ms; the reactor thread used %.0f ms of CPU in it (%s)",
                        ended.seconds * 1000, ended.cpu_seconds * 1000,
                        "computing" if waited < ended.seconds / 2 else
                        "mostly waiting: blocked in a system call, or not scheduled while other processes had the cores")

    def _watch(self) -> None:
        while not self._stop.wait(self.threshold_seconds / 2):
            with self._lock:
                began = self._check.check(self.clock()) if self._check is not None else None
            if began is not None:
                log.warning("event loop stalled: no tick for %.0f ms (threshold %.0f ms); the reactor thread is at: %s",
                            began.seconds * 1000, self.threshold_seconds * 1000, self._stack())

    def _stack(self) -> str:
        frame = sys._current_frames().get(self._thread_id)
        if frame is None:
            return "(thread gone)"
        lines = traceback.format_stack(frame, limit=STACK_FRAMES)
        return " <- ".join(line.strip().replace("\n", " ") for line in reversed(lines))
