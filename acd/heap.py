"""How `acd serve` sets Python's garbage collector: no long pauses on the reactor thread (issue 16).

What the pauses were: every call left a reference cycle behind (session <-> IVR runner, session <->
the closures its media leg called back through), so each ended call waited for the collector, and
each generation-1 collection walked hundreds of thousands of such objects: 0.4-0.8 s with the
reactor stopped, at 700 calls/s (scripts/bench/sip_path.py). An ended call now leaves no cycle
(IvrRunner.release, InboundCalls' leg callbacks), a server transaction drops its request once
answered, and once it only waits out Timer J/L it is replaced by plain strings and bytes (the
endpoint's lingering transactions), so an ended call leaves nothing the collector tracks.

What stays: the collector runs when the number of tracked objects grew by `threshold0` since its
last run. With the per-call garbage gone, that happens while the load rises, rarely at a steady
rate; each run walks the objects made since the last one that are still alive (the live calls'
objects). A step from idle to 550 calls/s now triggers one young collection in its first 36 s
where the lingering transactions made four (scripts/bench/sip_path.py at 550/s, issue 21); each
walks ~50,000 objects, ~1 us apiece on a heap this size. Generation 1 runs after 20 of those, the
full collection after 20 of generation 1.
"""

from __future__ import annotations

import gc
import time
from typing import Callable

__all__ = ["GC_THRESHOLDS", "GcPauses", "settle_heap"]

# (generation 0, 1, 2), as gc.set_threshold takes them. CPython's default 700 runs the young
# collection every few calls; its generation 2 then ran every few seconds at 700 calls/s, 100 ms each.
GC_THRESHOLDS = (50_000, 20, 20)


def settle_heap() -> None:
    """Once the server is built: free what start-up left over, put every object made so far
    (config, prompts, the object graph) out of the collector's view for good, and set the
    thresholds. Objects made later are collected as usual."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class GcPauses:
    """Times every garbage collection (a `gc.callbacks` entry) and hands its length in seconds and
    its generation to `observe`: the reactor thread stops for that long, whichever thread triggered it.
    `acd serve` feeds `acd_gc_pause_seconds`, so a lag spike can be told from saturation."""

    def __init__(self, observe: Callable[[int, float], None], clock: Callable[[], float] = time.perf_counter) -> None:
        self._observe = observe
        self._clock = clock
        self._started: float | None = None

    def install(self) -> None:
        """Start timing collections (once)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """Stop timing collections."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = self._clock()
        elif self._started is not None:
            self._observe(info.get("generation", 0), self._clock() - self._started)
            self._started = None
