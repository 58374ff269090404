"""Random event sequences never stop the writer, and each arrived call has exactly one CDR row."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd.store.records import QUEUE_LOG_EVENTS, RecordStore

CALL_IDS = st.sampled_from(["c1", "c2", "c3", "c4", "ghost"])
TIMES = st.floats(min_value=0, max_value=1e6, allow_nan=False)
TEXT = st.text(max_size=8)

EVENTS = st.one_of(
    st.builds(lambda c, t: ("call_arrived", (c,), {"trunk": "t", "caller": "1", "dialled": "2", "at": t}),
              CALL_IDS, TIMES),
    st.builds(lambda c, t: ("call_answered", (c,), {"at": t}), CALL_IDS, TIMES),
    st.builds(lambda c, s, t: ("ivr_step", (c,), {"flow": "main", "step": s, "at": t}), CALL_IDS, TEXT, TIMES),
    st.builds(lambda c, q, t: ("call_queued", (c,), {"queue": q, "at": t}), CALL_IDS, TEXT, TIMES),
    st.builds(lambda c, a, t: ("call_connected", (c,), {"agent": a, "at": t}), CALL_IDS, TEXT, TIMES),
    st.builds(lambda c, o, t: ("call_ended", (c,), {"outcome": o, "reason": "r", "at": t}), CALL_IDS,
              st.sampled_from(["completed", "caller_hangup", "agent_hangup"]), TIMES),
    st.builds(lambda c, n, v: ("set_field", (c, n, v), {}), CALL_IDS,
              st.sampled_from(["recording_path", "disposition"]), st.one_of(st.none(), TEXT)),
    st.builds(lambda c, v: ("set_field", (c, "survey", v), {}), CALL_IDS,
              st.dictionaries(st.sampled_from(["q1", "q2"]), st.integers(-3, 9))),
    st.builds(lambda c, e, t, d: ("queue_log", (), {"at": t, "call_id": c, "queue": "q", "agent": "a", "event": e,
                                                   "data1": d}),
              CALL_IDS, st.sampled_from(sorted(QUEUE_LOG_EVENTS)), TIMES, st.one_of(TEXT, TIMES, st.none())),
    st.builds(lambda a, s, t: ("agent_state", (a,), {"state": s, "reason": "", "at": t}),
              st.sampled_from(["alice", "bob"]), st.sampled_from(["available", "paused", "on_call"]), TIMES),
    st.builds(lambda t: ("close_interrupted", (), {"at": t}), TIMES),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENTS, max_size=40))
def test_random_event_sequences_never_stop_the_writer(events):
    logging.getLogger("acd.store.records").disabled = True  # unknown-call warnings are expected here
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "r.db"
            store = RecordStore(path)
            for method, args, kwargs in events:
                getattr(store, method)(*args, **kwargs)
            assert store.flush(10)
            store.call_arrived("sentinel", trunk="t", caller="1", dialled="2", at=0.0)
            assert store.flush(10)
            assert store._thread.is_alive()
            store.close()
            reader = sqlite3.connect(path)
            counts = dict(reader.execute("SELECT call_id, COUNT(*) FROM calls GROUP BY call_id").fetchall())
            reader.close()
    finally:
        logging.getLogger("acd.store.records").disabled = False
    arrived = {args[0] for method, args, _ in events if method == "call_arrived"} | {"sentinel"}
    assert counts == {call_id: 1 for call_id in arrived}
