"""The in-memory session table: idle and absolute expiry on the time passed in, random ids and CSRF
tokens apart, bounded size (least recently used ended first), sign-out of one or all of a user's."""

import pytest

from acd.api.web_sessions import SessionTable


def table(**limits) -> SessionTable:
    return SessionTable(idle_seconds=limits.pop("idle", 60), max_seconds=limits.pop("longest", 600), **limits)


def test_a_session_lives_while_used_and_ends_after_its_idle_time():
    sessions = table()
    session = sessions.open(user="1001", role="agent", name="Alice", now=0)
    assert sessions.find(session.session_id, 60) is session
    assert sessions.find(session.session_id, 120) is session
    assert sessions.find(session.session_id, 180.5) is None and len(sessions) == 0


def test_a_session_ends_after_its_maximum_life_however_busy():
    sessions = table()
    session = sessions.open(user="1001", role="agent", name="Alice", now=0)
    for now in range(50, 600, 50):
        assert sessions.find(session.session_id, now) is session
    assert sessions.find(session.session_id, 601) is None


def test_ids_and_csrf_tokens_are_random_and_distinct():
    sessions = table()
    opened = [sessions.open(user="1001", role="agent", name="", now=0) for _ in range(20)]
    secrets = [s.session_id for s in opened] + [s.csrf_token for s in opened]
    assert len(set(secrets)) == 40 and min(map(len, secrets)) >= 40
    assert opened[0].csrf_matches(opened[0].csrf_token) and not opened[0].csrf_matches(opened[1].csrf_token)
    assert not opened[0].csrf_matches("")


def test_the_table_is_bounded_and_ends_the_least_recently_used_first():
    sessions = table(max_sessions=2)
    first = sessions.open(user="a", role="agent", name="", now=0)
    second = sessions.open(user="b", role="agent", name="", now=1)
    sessions.find(first.session_id, 2)
    sessions.open(user="c", role="supervisor", name="", now=3)
    assert sessions.find(second.session_id, 4) is None and sessions.find(first.session_id, 4) is first


def test_signing_out_and_removing_a_user():
    sessions = table()
    one = sessions.open(user="1001", role="agent", name="", now=0)
    sessions.open(user="1001", role="agent", name="", now=0)
    assert sessions.close(one.session_id) and not sessions.close(one.session_id)
    assert sessions.close_user("1001") == 1 and len(sessions) == 0
    with pytest.raises(ValueError):
        sessions.open(user="x", role="admin", name="", now=0)
