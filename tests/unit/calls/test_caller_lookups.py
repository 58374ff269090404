"""CallerLookups: at most one thread-pool job per BATCH_WINDOW_SECONDS and one in flight; a look-up
after a quiet window goes at once, the ones asked within a window go together at its end; each
answers on its own Deferred, in order, with its own customer or failure."""

from __future__ import annotations

from twisted.internet import task
from twisted.python.failure import Failure

from acd.calls.caller_lookups import BATCH_WINDOW_SECONDS, MAX_BATCH, CallerLookups


class HeldPool:
    """A thread pool whose jobs wait until the test runs them."""

    def __init__(self) -> None:
        self.jobs: list = []

    def callInThreadWithCallback(self, on_result, function, *args, **kwargs):  # noqa: N802 - Twisted API
        self.jobs.append((on_result, function, args, kwargs))

    def run_next(self) -> None:
        on_result, function, args, kwargs = self.jobs.pop(0)
        try:
            result = function(*args, **kwargs)
        except Exception:
            on_result(False, Failure())
        else:
            on_result(True, result)


class Reactor(task.Clock):
    def __init__(self) -> None:
        super().__init__()
        self.pool = HeldPool()

    def getThreadPool(self):  # noqa: N802 - Twisted API
        return self.pool

    def callFromThread(self, function, *args, **kwargs):  # noqa: N802 - Twisted API
        function(*args, **kwargs)


class Directory:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_by_phone(self, caller: str):
        self.asked.append(caller)
        if caller == "broken":
            raise RuntimeError("database is locked")
        return f"customer of {caller}" if caller.startswith("+44") else None


def answers(deferred) -> list:
    got: list = []
    deferred.addCallbacks(got.append, lambda failure: got.append(failure.getErrorMessage()))
    return got


def make() -> tuple[Reactor, Directory, CallerLookups]:
    reactor, directory = Reactor(), Directory()
    reactor.advance(100.0)
    return reactor, directory, CallerLookups(reactor, directory)


def test_a_look_up_after_a_quiet_window_goes_at_once():
    reactor, directory, lookups = make()
    got = answers(lookups.find_by_phone("+442079460018"))
    assert len(reactor.pool.jobs) == 1
    reactor.pool.run_next()
    assert got == ["customer of +442079460018"]
    reactor.advance(BATCH_WINDOW_SECONDS)
    answers(lookups.find_by_phone("+441"))
    assert len(reactor.pool.jobs) == 1 and lookups.jobs == 2


def test_look_ups_within_a_window_go_together_at_its_end_and_answer_in_order():
    reactor, directory, lookups = make()
    first = answers(lookups.find_by_phone("+441"))
    reactor.pool.run_next()
    later = [answers(lookups.find_by_phone(caller)) for caller in ("5551", "broken", "+442")]
    reactor.advance(BATCH_WINDOW_SECONDS / 2)
    assert reactor.pool.jobs == [] and later == [[], [], []], "the window after a job is not over"
    reactor.advance(BATCH_WINDOW_SECONDS / 2)
    assert len(reactor.pool.jobs) == 1
    reactor.pool.run_next()
    assert first == ["customer of +441"]
    assert later == [[None], ["database is locked"], ["customer of +442"]]
    assert directory.asked == ["+441", "5551", "broken", "+442"] and lookups.jobs == 2


def test_one_job_in_flight_at_a_time():
    reactor, directory, lookups = make()
    answers(lookups.find_by_phone("+441"))
    second = answers(lookups.find_by_phone("+442"))
    reactor.advance(BATCH_WINDOW_SECONDS * 10)  # a slow directory: the first job is still out
    assert len(reactor.pool.jobs) == 1
    reactor.pool.run_next()
    assert len(reactor.pool.jobs) == 1, "the waiting look-up goes when the first job is back"
    reactor.pool.run_next()
    assert second == ["customer of +442"]


def test_a_job_holds_at_most_max_batch_look_ups():
    reactor, directory, lookups = make()
    got = [answers(lookups.find_by_phone(f"+44{n}")) for n in range(MAX_BATCH + 2)]
    for _ in range(3):
        reactor.pool.run_next()
        reactor.advance(BATCH_WINDOW_SECONDS)
    assert all(answer == [f"customer of +44{n}"] for n, answer in enumerate(got)) and lookups.jobs == 3


def test_a_failed_job_fails_each_of_its_look_ups():
    reactor, directory, lookups = make()
    lookups._look_up = lambda callers: (_ for _ in ()).throw(RuntimeError("no pool"))
    first = answers(lookups.find_by_phone("+441"))
    reactor.pool.run_next()
    later = [answers(lookups.find_by_phone(caller)) for caller in ("+442", "+443")]
    reactor.advance(BATCH_WINDOW_SECONDS)
    reactor.pool.run_next()
    assert first == ["no pool"] and later == [["no pool"], ["no pool"]]
