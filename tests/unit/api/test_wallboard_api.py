"""The wallboard's API from a signed-in supervisor's session (in-memory requests, a fake clock):
`GET /api/today?since=` (the figures of the browser's day) and listen / whisper / barge / leave on
the supervisor's own phone, with clear refusals; an agent's session reaches neither."""

from __future__ import annotations

from twisted.internet.defer import succeed

from acd.api.rest import ApiResource
from acd.today_figures import AgentToday, QueueToday, Today

from test_web_desk_access import TOKEN, Desk, FakeView


class FakeMonitoring:
    """Monitoring's commands, remembered; `start` answers `answer`."""

    def __init__(self) -> None:
        self.done: list[tuple] = []
        self.answer = "calling"

    def start(self, call_id: str, supervisor_id: str, mode: str, *, by: str = "API") -> str:
        self.done.append(("start", call_id, supervisor_id, mode, by))
        return self.answer

    def change(self, call_id: str, mode: str, *, by: str = "API") -> str:
        self.done.append(("change", call_id, mode, by))
        return "changed"

    def stop(self, call_id: str, *, by: str = "API") -> str:
        self.done.append(("stop", call_id, by))
        return "left"

    def describe(self) -> list[dict]:
        return [{"call_id": "call-1001", "supervisor": "9001", "mode": "listen", "state": "listen"}]


class Board(Desk):
    """The desk's login page and sessions, with an API that has figures and monitoring."""

    def __init__(self) -> None:
        super().__init__()
        self.monitoring = FakeMonitoring()
        self.asked: list[float] = []

        def today(since: float):
            self.asked.append(since)
            return succeed(Today(since=since, until=self.clock.seconds(), queues=(QueueToday(
                queue="sales", offered=3, answered=2, answered_within_threshold=1, abandoned=1,
                abandoned_before_threshold=0, timed_out=0, callbacks=0, service_level_seconds=20.0,
                service_level=1 / 3),), agents=(AgentToday(
                    agent="1001", answered=2, handled=2, talk_seconds=100.0, wrap_up_seconds=10.0,
                    aht_seconds=55.0, hold_seconds=30.25, average_hold_seconds=15.125),)))

        self.api = ApiResource(view=FakeView(self.clock), desk=self.desk, events=None, token=TOKEN,
                               reload=lambda why: None, sign_in=self.sign_in, monitor=self.monitoring, today=today)


def test_the_figures_of_the_day_start_at_the_since_the_wallboard_sends():
    board = Board()
    cookie, _ = board.session("9001", "sam-pw")
    since = board.clock.seconds() - 3 * 3600
    status, body = board.call("GET", f"/api/today?since={since}", cookie=cookie)
    assert status == 200 and board.asked == [since]
    assert body["queues"][0] == {"queue": "sales", "offered": 3, "answered": 2, "answered_within_threshold": 1,
                                 "abandoned": 1, "abandoned_before_threshold": 0, "timed_out": 0, "callbacks": 0,
                                 "service_level_seconds": 20.0, "service_level": 0.3333}
    assert body["agents"][0]["aht_seconds"] == 55.0 and body["agents"][0]["hold_seconds"] == 30.2
    assert board.call("GET", "/api/today", token=TOKEN)[0] == 200  # automation: the last 24 hours
    assert board.asked[-1] == board.clock.seconds() - 86400


def test_a_since_that_is_no_time_or_more_than_a_day_ago_is_refused():
    board = Board()
    for since in ("yesterday", "nan", str(board.clock.seconds() - 27 * 3600)):
        status, body = board.call("GET", f"/api/today?since={since}", token=TOKEN)
        assert (status, body["error_id"]) == (400, "invalid-request"), since
    assert board.asked == []


def test_a_signed_in_supervisor_listens_whispers_and_leaves_on_their_own_phone():
    board = Board()
    cookie, csrf = board.session("9001", "sam-pw")
    status, body = board.call("POST", "/api/calls/call-1001/monitor", cookie=cookie, csrf=csrf, body={"mode": "listen"})
    assert status == 200 and body["supervisor"] == "9001" and body["result"] == "calling"
    assert board.call("PATCH", "/api/calls/call-1001/monitor", cookie=cookie, csrf=csrf,
                      body={"mode": "whisper"})[1]["result"] == "changed"
    assert board.call("DELETE", "/api/calls/call-1001/monitor", cookie=cookie, csrf=csrf)[1]["result"] == "left"
    assert board.monitoring.done == [("start", "call-1001", "9001", "listen", "API (9001)"),
                                     ("change", "call-1001", "whisper", "API (9001)"),
                                     ("stop", "call-1001", "API (9001)")]
    status, sessions = board.call("GET", "/api/monitoring", cookie=cookie)
    assert status == 200 and sessions[0]["supervisor"] == "9001"


def test_a_supervisor_may_not_ring_another_supervisors_phone_nor_monitor_without_the_csrf_token():
    board = Board()
    cookie, csrf = board.session("9001", "sam-pw")
    status, body = board.call("POST", "/api/calls/call-1001/monitor", cookie=cookie, csrf=csrf,
                              body={"mode": "listen", "supervisor": "9002"})
    assert (status, body["error_id"]) == (403, "not-your-phone")
    status, body = board.call("POST", "/api/calls/call-1001/monitor", cookie=cookie, body={"mode": "listen"})
    assert (status, body["error_id"]) == (403, "csrf-token-refused")
    assert board.monitoring.done == []


def test_refusals_say_what_happened_and_what_to_do():
    board = Board()
    cookie, csrf = board.session("9001", "sam-pw")
    for answer, words in (("not-registered", "phone 9001 is not registered"),
                          ("already-monitored", "another supervisor monitors it")):
        board.monitoring.answer = answer
        status, body = board.call("POST", "/api/calls/call-1001/monitor", cookie=cookie, csrf=csrf,
                                  body={"mode": "barge"})
        assert (status, body["error_id"], body["details"]["result"]) == (409, "monitor-refused", answer)
        assert words in body["message"], body


def test_an_agents_session_reaches_neither_the_figures_nor_monitoring():
    board = Board()
    cookie, csrf = board.session("1001", "alice-pw")
    for method, path in (("GET", "/api/today"), ("GET", "/api/monitoring"),
                         ("POST", "/api/calls/call-1001/monitor")):
        status, body = board.call(method, path, cookie=cookie, csrf=csrf, body={"mode": "listen"})
        assert (status, body["error_id"]) == (403, "supervisors-only"), path
    assert board.asked == [] and board.monitoring.done == []
