"""CallerLookups: the customer directory's caller-ID look-ups, several calls to one thread-pool job.

Every answered call looks its caller up (acd/calls/ivr_runner.py) in SQLite, which never runs on the
reactor thread. A trip through Twisted's thread pool and back costs 130-175 µs of the process's CPU
here (a worker thread woken, the GIL changing hands, the reactor woken by its waker), far more than
the look-up itself: a sixth of what a call costs at 700 calls/s, even with the reactor 70 % busy
(each trip is back before the next call comes). So at most one job leaves per BATCH_WINDOW_SECONDS:
a look-up asked after a quiet window goes at once; the ones asked within the window after it wait
for the window's end and go together (at most MAX_BATCH a job, one job in flight at a time). At
1,000 calls/s that is ~20 look-ups a trip; a lone call is not delayed. Each look-up still answers on
its own Deferred, in the order asked, with its own result or failure.
`reactor` provides IReactorTime, IReactorThreads (`getThreadPool`) and IReactorFromThreads.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["CallerLookups", "MAX_BATCH", "BATCH_WINDOW_SECONDS"]

# Bounds one job's time in the pool (a look-up takes well under a millisecond).
MAX_BATCH = 64
# The most a look-up waits for the others of its window: the flow (the welcome prompt) starts this
# much later under load, well inside CALLER_LOOKUP_TIMEOUT_SECONDS (0.5 s).
BATCH_WINDOW_SECONDS = 0.02


class CallerLookups:
    """`find_by_phone(caller)` for the reactor thread, over `directory.find_by_phone` in the pool."""

    def __init__(self, reactor, directory: Any) -> None:
        self.reactor = reactor
        self.directory = directory
        self._waiting: list[tuple[str, Deferred]] = []
        self._in_flight = False
        self._sent_at: float | None = None
        self._timer = None
        self.jobs = 0  # thread-pool jobs sent (tests, benchmarks)

    def find_by_phone(self, caller: str) -> Deferred:
        """The directory's customer for `caller` (or None), or its failure, on a Deferred."""
        answer: Deferred = Deferred()
        self._waiting.append((caller, answer))
        self._send_when_due()
        return answer

    def _send_when_due(self) -> None:
        if self._in_flight or self._timer is not None or not self._waiting:
            return
        now = self.reactor.seconds()
        due = now if self._sent_at is None else self._sent_at + BATCH_WINDOW_SECONDS
        if due <= now:
            self._send()
        else:
            self._timer = self.reactor.callLater(due - now, self._window_ended)

    def _window_ended(self) -> None:
        self._timer = None
        self._send_when_due()

    def _send(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        self._in_flight = True
        self._sent_at = self.reactor.seconds()
        self.jobs += 1
        job = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self._look_up,
                                        [caller for caller, _ in batch])
        job.addBoth(self._answered, [answer for _, answer in batch])

    def _look_up(self, callers: list[str]) -> list[Any]:
        """In the pool: each caller's customer, or the Failure of its look-up."""
        found: list[Any] = []
        for caller in callers:
            try:
                found.append(self.directory.find_by_phone(caller))
            except Exception:  # this caller's look-up fails alone (it is logged by the call)
                found.append(Failure())
        return found

    def _answered(self, results: Any, answers: list[Deferred]) -> None:
        self._in_flight = False
        self._send_when_due()
        if isinstance(results, Failure):  # the job itself failed (the pool is gone): every look-up fails
            results = [results] * len(answers)
        for answer, result in zip(answers, results):
            if isinstance(result, Failure):
                answer.errback(result)
            else:
                answer.callback(result)
