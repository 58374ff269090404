"""Registrar bindings in PostgreSQL (`store: postgresql://...`): BindingStore's table and methods.

The SQLite store writes on the caller's thread (a local file, a few hundred microseconds). A
database across the network must not hold up the reactor: here each write method enqueues and a
writer thread of its own applies the writes in order, each `save_changes` one transaction (RFC 3261
§10.3 step 7: all of one REGISTER's updates or none). `load_all` (start-up only) reads at once,
after the writes queued before it. `flush` waits for the queue to drain; `close` flushes.
The `path` column (RFC 3327) is added to a table made before it (`ADD COLUMN IF NOT EXISTS`).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Iterable

from acd.registrar.bindings import Binding

from .bindings_store import TABLE, binding_from_row, binding_row
from .location import check_postgresql_url, describe
from .pg_schema import SCHEMA_LOCK_KEY
from .pg_sql import connect

__all__ = ["PgBindingStore"]

log = logging.getLogger("acd.store.bindings")

_COLUMNS = ("aor", "contact", "expires_at", "call_id", "cseq", "source_host", "source_port", "transport",
            "user_agent", "q", "updated_at", "path")
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (aor text NOT NULL, contact text NOT NULL, "
           "expires_at double precision NOT NULL, call_id text NOT NULL, cseq bigint NOT NULL, "
           "source_host text NOT NULL, source_port bigint NOT NULL, transport text NOT NULL, "
           "user_agent text NOT NULL, q double precision NOT NULL, updated_at double precision NOT NULL, "
           "path text NOT NULL DEFAULT '', PRIMARY KEY (aor, contact))")
_ADD_PATH = f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS path text NOT NULL DEFAULT ''"
_UPSERT = (f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(f'%({c})s' for c in _COLUMNS)}) "
           "ON CONFLICT (aor, contact) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c not in ("aor", "contact")))
_DELETE = f"DELETE FROM {TABLE} WHERE aor = %s AND contact = %s"
_STOP = object()


class PgBindingStore:
    """The `bindings` table of the PostgreSQL database at `url` (created if missing)."""

    def __init__(self, url: str) -> None:
        """Connect and create the table; RuntimeError with what to check when the database is unreachable."""
        problem = check_postgresql_url(url)
        if problem is not None:
            raise ValueError(f"bindings: store {problem}")
        self._url = url
        try:
            self._conn = connect(url, application_name="acd-bindings")
            with self._conn.transaction():  # nodes starting together would race on CREATE TABLE IF NOT EXISTS
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
                self._conn.execute(_CREATE)
                self._conn.execute(_ADD_PATH)
        except Exception as error:
            raise RuntimeError(f"bindings: cannot open the PostgreSQL store {describe(url)}: {error} (is the "
                               "database server running, and `store:` in conf/acd.yaml right?)") from error
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="acd-bindings", daemon=True)
        self._thread.start()

    def save(self, binding: Binding) -> None:
        """Insert or replace one binding."""
        self.save_changes(saved=[binding])

    def delete(self, aor: str, contact: str) -> None:
        """Remove one binding; removing a missing one is not an error."""
        self._put([], [(aor, contact)])

    def save_changes(self, *, saved: Iterable[Binding] = (), deleted: Iterable[Binding] = ()) -> None:
        """Apply one REGISTER's effects atomically (in the writer thread, after the writes before it)."""
        self._put([binding_row(binding) for binding in saved], [(b.aor, b.contact) for b in deleted])

    def load_all(self) -> list[Binding]:
        """Every stored binding, expired ones included, once the queued writes are in."""
        self.flush()
        from psycopg.rows import dict_row

        with self._conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(f"SELECT * FROM {TABLE} ORDER BY aor, contact").fetchall()
        return [binding_from_row(row) for row in rows]

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until the writes queued before this call are committed."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(10)
        self._conn.close()

    def _put(self, rows: list[dict], keys: list[tuple[str, str]]) -> None:
        if self._closed:
            log.warning("bindings: store closed, dropped a change of %d binding(s)", len(rows) + len(keys))
            return
        self._queue.put((rows, keys))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            rows, keys = item
            try:
                if self._conn.broken:
                    self._conn = connect(self._url, application_name="acd-bindings")
                with self._conn.transaction(), self._conn.cursor() as cursor:
                    if keys:
                        cursor.executemany(_DELETE, keys)
                    if rows:
                        cursor.executemany(_UPSERT, rows)
            except Exception:
                log.exception("bindings: change of %d binding(s) lost (database %s)", len(rows) + len(keys),
                              describe(self._url))
