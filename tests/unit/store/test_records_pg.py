"""What only the PostgreSQL store has: SQLite-flavoured SQL translated for psycopg, and a writer that
connects again when the database drops its connection (the batch then written again, nothing lost)."""

from __future__ import annotations

import logging
import threading
import uuid

from acd.store.pg_sql import to_pg
from tests.store_backends import open_records, read_rows


def test_placeholders_and_quotes_are_translated_outside_string_literals():
    assert to_pg("SELECT [at] FROM t WHERE a = ? AND b = :name AND c = '?:x[y]%' AND d LIKE 'a%'") == \
        "SELECT \"at\" FROM t WHERE a = %s AND b = %(name)s AND c = '?:x[y]%%' AND d LIKE 'a%%'"
    assert to_pg("SELECT a::text, 5 % 2") == "SELECT a::text, 5 %% 2"


def test_the_writer_connects_again_after_the_database_dropped_it(pg_url, caplog):
    import psycopg

    store = open_records(pg_url)
    try:
        store.call_arrived("before", trunk="t", caller="1", dialled="2", at=1.0)
        assert store.flush(5)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE application_name = 'acd-records'").fetchall()
        assert ended == [(True,)]
        with caplog.at_level(logging.WARNING, logger="acd.store.records"):
            store.call_arrived("after", trunk="t", caller="1", dialled="2", at=2.0)
            store.call_answered("after", at=3.0)
            assert store.flush(15)
    finally:
        store.close()
    assert read_rows(pg_url, "SELECT call_id, answered_at FROM calls ORDER BY arrived_at") == [
        {"call_id": "before", "answered_at": None}, {"call_id": "after", "answered_at": 3.0}]
    assert "lost before the commit of" in caplog.text and "they are lost" not in caplog.text


def test_nodes_starting_together_on_one_schema_all_get_their_previous_run(pg_cluster):
    """Three cluster nodes' records writers open one fresh schema and read their previous run at the
    same moment. The second and third used to re-run the migration's ALTER TABLEs (an ACCESS
    EXCLUSIVE lock each) while the first read its previous run: a deadlock, and a node that did
    not start ("no answer from the writer about the previous run")."""
    from acd.store.records_pg import PgRecordStore

    for round_number in range(3):
        url = pg_cluster.create_schema(f"t_start_{round_number}_{uuid.uuid4().hex[:8]}")
        barrier = threading.Barrier(3)
        answers: dict[str, object] = {}

        def start(node: str) -> None:
            barrier.wait(timeout=30)
            store = PgRecordStore(url, node=node)  # its migration, then at once its previous run
            try:
                answers[node] = store.start_run(at=1.0)
            except Exception as error:  # noqa: BLE001 - the assertion below shows it
                answers[node] = error
            finally:
                store.close(timeout=10)

        threads = [threading.Thread(target=start, args=(f"n{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(answers) == ["n0", "n1", "n2"]
        assert all(not isinstance(answer, Exception) and answer.first_start for answer in answers.values()), answers
