"""Which pause an unpause ended and for how long (PauseBook), and the queue_log PAUSE/UNPAUSE lines
that carry it."""

from acd.calls.pauses import EndedPause, PauseBook, short_duration
from acd.calls.queue_log import QueueLog
from acd.routing import AgentStateChanged
from acd.routing.agent_states import AgentState

S = AgentState


def change(previous: AgentState, state: AgentState, reason: str, agent: str = "1001") -> AgentStateChanged:
    return AgentStateChanged(agent_id=agent, previous=previous, state=state, reason=reason)


def test_short_duration_gives_the_two_largest_units():
    assert [short_duration(s) for s in (0, 45.4, 60, 725, 3600, 3725.9)] == ["0s", "45s", "1m 0s", "12m 5s",
                                                                            "1h 0m", "1h 2m"]


def test_unpause_returns_the_pause_it_ended_with_its_length():
    book = PauseBook()
    assert book.follow(change(S.AVAILABLE, S.PAUSED, "paused: lunch"), "lunch", 1000.0) is None
    ended = book.follow(change(S.PAUSED, S.AVAILABLE, "ready"), "", 1725.0)
    assert ended == EndedPause(reason="lunch", seconds=725.0)
    assert ended.explain("ready") == "ready after lunch (12m 5s)"
    assert book.follow(change(S.AVAILABLE, S.PAUSED, "paused: x"), "x", 1800.0) is None, "the old pause is gone"


def test_a_new_reason_while_paused_ends_the_first_pause_and_log_out_ends_the_second():
    book = PauseBook()
    book.follow(change(S.WRAP_UP, S.PAUSED, "paused after the call: lunch"), "lunch", 0.0)
    assert book.follow(change(S.PAUSED, S.PAUSED, "paused: training"), "training", 600.0) == \
        EndedPause(reason="lunch", seconds=600.0)
    assert book.follow(change(S.PAUSED, S.LOGGED_OUT, "logged out"), "", 660.0) == \
        EndedPause(reason="training", seconds=60.0)


def test_agents_are_followed_separately_and_other_changes_end_nothing():
    book = PauseBook()
    book.follow(change(S.AVAILABLE, S.PAUSED, "paused: lunch", "a"), "lunch", 0.0)
    book.follow(change(S.OFFERED, S.PAUSED, "auto-pause: 2 missed offers", "b"), "auto-pause: 2 missed offers", 5.0)
    assert book.follow(change(S.AVAILABLE, S.OFFERED, "offered c1", "c"), "", 6.0) is None
    assert book.follow(change(S.PAUSED, S.AVAILABLE, "ready", "b"), "", 35.0).reason == "auto-pause: 2 missed offers"
    assert book.follow(change(S.PAUSED, S.AVAILABLE, "ready", "a"), "", 40.0).seconds == 40.0


class _Records:
    def __init__(self):
        self.rows = []

    def queue_log(self, **row):
        self.rows.append(row)


class _Clock:
    def seconds(self):
        return 50.0


def test_queue_log_pause_has_the_reason_code_and_unpause_the_ended_pause_and_its_seconds():
    records = _Records()
    queue_log = QueueLog(records, _Clock())
    queue_log.agent_state_changed(change(S.AVAILABLE, S.PAUSED, "paused: lunch"), pause_reason="lunch")
    queue_log.agent_state_changed(change(S.PAUSED, S.AVAILABLE, "ready"),
                                  ended=EndedPause(reason="lunch", seconds=725.4))
    assert [(row["event"], row["data1"], row["data2"]) for row in records.rows] == [
        ("PAUSE", "lunch", ""), ("UNPAUSE", "lunch", "725")]
