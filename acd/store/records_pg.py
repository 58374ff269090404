"""Call records in PostgreSQL (`store: postgresql://...`): RecordStore's writer, another database.

Everything but the database is RecordStore's (records.py): the reactor only enqueues, ONE writer
thread (in `acd serve`: the thread of the records child process, records_process.py) owns the only
write connection, group commit (a batch of up to MAX_BATCH_ITEMS items, one transaction, one
commit), a failing item costs only itself, the commit delay is observed.

What differs:
- A batch goes to the server as ONE multi-statement query: each statement's parameters bound
  client-side (psycopg's ClientCursor.mogrify, the server's quoting rules), the statements joined
  and sent in the simple query protocol, then one COMMIT: two round trips per batch, not one per
  item. (A psycopg pipeline, or executemany, costs ~170 us of client time per statement in Python;
  this ~55 us, measured with scripts/bench/records_commit.py.) Each statement's row count comes
  back with it (`nextset`), so "update for an unknown call" is checked after the batch ran
  (`_check_updates`), in the same transaction. A statement whose rows are read (the previous run
  at start-up) runs the batch queued so far first. When a statement fails, the batch is rolled
  back and written again item by item, each in its own savepoint, as SQLite's writer does.
- Durability: `synchronous_commit = on` (the default; FULL in SQLite's terms): COMMIT returns after
  the WAL is flushed on the database server, so a committed event survives a crash of either box.
  NORMAL/OFF map to `synchronous_commit = off` (only to measure what durability costs).
- The connection can break (the database restarted): the writer connects again and writes the
  batch again when the break came before its COMMIT (the database rolled it back); a break during
  the COMMIT leaves its fate unknown, so the batch is logged as lost, as a failed SQLite COMMIT is.
- SQL: the statements are SQLite's, translated by `pg_sql.to_pg`; three are written for
  PostgreSQL: GREATEST for SQLite's two-argument MAX, INSERT ... ON CONFLICT for INSERT OR REPLACE,
  and the IVR step's update-then-insert as one statement (a batch cannot branch on a row count).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

from .location import check_postgresql_url, describe
from .pg_schema import create_pg_schema
from .pg_sql import connect, to_pg
from .records import DEAD_INCARNATIONS_CALLS, RecordStore

__all__ = ["PgRecordStore"]

log = logging.getLogger("acd.store.records")

_REPLACE_KEYS = {"agent_presence": "agent_id"}  # INSERT OR REPLACE targets: table -> primary key
_IVR_STEP = ("WITH hit AS (UPDATE calls SET ivr_path = CASE WHEN ivr_path IS NULL OR ivr_path = '' THEN :step "
             "ELSE ivr_path || '>' || :step END WHERE call_id = :call_id AND ended_at IS NULL RETURNING call_id) "
             "INSERT INTO ivr_steps (call_id, flow, step, at) SELECT call_id, :flow, :step, :at FROM hit")
_CLOSE_INTERRUPTED = (
    "UPDATE calls SET ended_at = GREATEST(:at, arrived_at), outcome = 'interrupted', end_reason = :reason, "
    "talk_seconds = GREATEST(:at, arrived_at) - connected_at WHERE ended_at IS NULL{own} RETURNING call_id")
# One statement, so that of several survivors closing a dead node's calls at once exactly one closes
# each call and frees its agent: `open` locks the calls (FOR UPDATE); a racer waits for the winner's
# commit, re-checks `ended_at IS NULL` and finds nothing. `latest`: the agent's last connection is
# this call (an agent moved on to another call is left alone). Which calls: `DEAD_INCARNATIONS_CALLS`
# (those of the incarnation that died and earlier ones, not the node's next incarnation's).
_CLOSE_NODE_CALLS = (
    "WITH open AS (SELECT call_id, agent, connected_at, talk_seconds IS NULL AS talking FROM calls "
    "WHERE " + DEAD_INCARNATIONS_CALLS + " FOR UPDATE), "
    "closed AS (UPDATE calls SET ended_at = GREATEST(:at, calls.arrived_at), outcome = 'interrupted', "
    "end_reason = :reason, talk_seconds = COALESCE(calls.talk_seconds, GREATEST(:at, calls.arrived_at) - "
    "calls.connected_at) FROM open WHERE calls.call_id = open.call_id AND calls.ended_at IS NULL "
    "RETURNING open.call_id, open.agent, open.connected_at, open.talking), "
    "latest AS (SELECT agent, MAX(connected_at) AS connected_at FROM calls "
    "WHERE agent IN (SELECT agent FROM closed) GROUP BY agent), "
    "freed AS (UPDATE agent_presence SET state = CASE pending WHEN 'pause' THEN 'paused' "
    "WHEN 'logout' THEN 'logged_out' ELSE 'available' END, "
    "pause_reason = CASE WHEN pending = 'pause' THEN pending_reason END, "
    "queues = CASE WHEN pending = 'logout' THEN '{}' ELSE queues END, pending = NULL, pending_reason = NULL, "
    "reason = 'call ' || closed.call_id || ' interrupted: ' || :reason, updated_at = :at "
    "FROM closed JOIN latest ON latest.agent = closed.agent AND latest.connected_at = closed.connected_at "
    "WHERE closed.talking AND agent_presence.agent_id = closed.agent AND agent_presence.state = 'on_call' "
    "RETURNING agent_presence.agent_id, agent_presence.state, agent_presence.reason), "
    "written AS (INSERT INTO agent_states (agent_id, state, reason, at) SELECT agent_id, state, reason, :at "
    "FROM freed RETURNING agent_id) "
    "SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM written)")


class _Result:
    """A statement's result once its batch has run: `rowcount`, and the rows (`fetchone`, `fetchall`),
    which run the batch queued so far when asked for before it has."""

    def __init__(self, connection: "_WriterConnection") -> None:
        self._connection = connection
        self.rowcount = -1
        self.rows: list[tuple] | None = None

    def fetchall(self) -> list[tuple]:
        """Every row (runs the queued statements first if needed)."""
        if self.rows is None:
            self._connection.send()
        return self.rows or []

    def fetchone(self) -> tuple | None:
        """The first row, or None."""
        rows = self.fetchall()
        return rows[0] if rows else None

    def __iter__(self):
        return iter(self.fetchall())


class _WriterConnection:
    """The writer's psycopg connection with the two sqlite-utils methods RecordStore's writes use
    (`execute`, `conn.execute`), SQL translated. While `batching`, statements are bound client-side
    and queued; `send()` runs them all as one multi-statement query (one round trip)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.conn = self
        self.batching = False
        self._queued: list[tuple[str, _Result]] = []
        self._client: Any = None  # a ClientCursor of `raw`, for its mogrify

    def execute(self, sql: str, parameters: Any = None) -> Any:
        """Run (or, batching, queue) SQLite-flavoured `sql`; a cursor or a `_Result`."""
        return self.execute_pg(to_pg(sql), parameters)

    def execute_pg(self, sql: str, parameters: Any = None) -> Any:
        """Run (or, batching, queue) psycopg-flavoured `sql`."""
        if not self.batching:
            return self.raw.execute(sql, parameters)
        if self._client is None or self._client.connection is not self.raw:
            import psycopg

            self._client = psycopg.ClientCursor(self.raw)
        result = _Result(self)
        self._queued.append((self._client.mogrify(sql, parameters), result))
        return result

    def send(self) -> None:
        """Run the queued statements as one query (simple query protocol) and give each its result."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        cursor = self.raw.cursor()
        cursor.execute(";\n".join(text for text, _ in queued))
        for index, (_, result) in enumerate(queued):
            if index:
                cursor.nextset()
            result.rowcount = cursor.rowcount
            result.rows = cursor.fetchall() if cursor.description is not None else []

    def discard(self) -> None:
        """Forget the queued statements (their batch failed) and stop batching."""
        self._queued.clear()
        self.batching = False

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


class PgRecordStore(RecordStore):
    """The records in the PostgreSQL database at `url` (tables created or migrated if needed)."""

    def __init__(self, url: str, *, thread_name: str = "acd-records",
                 commit_delay_observer: Callable[[float], None] | None = None, synchronous: str = "FULL",
                 node: str | None = None) -> None:
        """As RecordStore; raises ValueError on a malformed URL and RuntimeError when the database
        cannot be reached or migrated."""
        problem = check_postgresql_url(url)
        if problem is not None:
            raise ValueError(f"records: store {problem}")
        self._url = url
        self._unchecked: list[tuple[Any, str, str]] = []  # (cursor, call id, kind) of updates not yet checked
        self._committing = False  # the batch's COMMIT is under way: a failure now may have committed it
        super().__init__(url, thread_name=thread_name, commit_delay_observer=commit_delay_observer,
                         synchronous=synchronous, node=node)
        self.location = url

    def _open(self) -> _WriterConnection:
        try:
            raw = connect(self._url, application_name="acd-records")
            raw.execute("SET synchronous_commit = " + ("on" if self._synchronous in ("FULL", "EXTRA") else "off"))
            create_pg_schema(raw)
        except Exception as error:
            raise RuntimeError(f"records: cannot open the PostgreSQL store {describe(self._url)}: {error} "
                               "(is the database server running, and `store:` in conf/acd.yaml right?)") from error
        log.info("records: PostgreSQL store %s, synchronous_commit %s", describe(self._url),
                 raw.execute("SHOW synchronous_commit").fetchone()[0])
        return _WriterConnection(raw)

    def _commit_batch(self, db: _WriterConnection, batch: list) -> bool:
        """Write `batch` in one transaction sent as one query (`_write_batch`), then wake the flushers
        waiting on it. A connection lost before the COMMIT was sent (the database rolled the batch
        back) is opened again and the batch written once more; lost during the COMMIT, or twice, the
        batch is logged as lost. True when the batch held the stop marker."""
        waiters = [item for item in batch if isinstance(item, threading.Event)]
        writes = [item for item in batch if isinstance(item, tuple)]
        if writes:
            for attempt in (1, 2):
                self._committing = False
                try:
                    if db.raw.broken or db.raw.closed:
                        self._reconnect(db)
                    self._write_batch(db, writes)
                    break
                except Exception:
                    self._unchecked.clear()
                    if attempt == 1 and not self._committing and (db.raw.broken or db.raw.closed):
                        log.warning("records: connection to %s lost before the commit of %d item(s); writing "
                                    "them again", describe(self._url), len(writes))
                        continue
                    log.exception("records: commit of %d item(s) to %s failed; they are lost: %r", len(writes),
                                  describe(self._url), [kind for kind, _, _ in writes])
                    break
            if self._observe_commit_delay is not None:
                self._observe_commit_delay(time.perf_counter() - writes[0][2])
        for waiter in waiters:
            waiter.set()
        return any(not isinstance(item, (tuple, threading.Event)) for item in batch)  # the stop marker

    def _write_batch(self, db: _WriterConnection, writes: list) -> None:
        """One transaction: the batch as one query; rolled back and written item by item in
        savepoints when a statement fails. Raises when the connection or the COMMIT fails."""
        import psycopg

        failed = False
        with db.raw.transaction():
            try:
                db.batching = True
                for kind, arguments, _ in writes:
                    getattr(self, f"_write_{kind}")(**arguments)
                db.send()
            except psycopg.Error:
                if db.raw.broken:
                    raise
                failed = True
                self._unchecked.clear()
                raise psycopg.Rollback()
            finally:
                db.discard()
            self._check_updates()
            self._committing = True
        if failed:
            with db.raw.transaction():
                self._write_one_by_one(db.raw, writes)
                self._committing = True

    def _reconnect(self, db: _WriterConnection) -> None:
        """A new connection after the old one broke (the schema is there: no migration)."""
        log.warning("records: connection to %s lost; connecting again", describe(self._url))
        db.raw = connect(self._url, application_name="acd-records")
        db.raw.execute("SET synchronous_commit = " + ("on" if self._synchronous in ("FULL", "EXTRA") else "off"))

    def _write_one_by_one(self, conn: Any, writes: list) -> None:
        """Each write in its own savepoint: a failing one is logged and skipped, the others kept."""
        for kind, arguments, _ in writes:
            mark = len(self._unchecked)
            try:
                with conn.transaction():
                    getattr(self, f"_write_{kind}")(**arguments)
            except Exception:
                del self._unchecked[mark:]
                log.exception("records: write failed, skipped: %s %r", kind, arguments)
        self._check_updates()

    def _check_updates(self) -> None:
        """Log each update of the batch that matched no open call (after the batch ran)."""
        pending, self._unchecked = self._unchecked, []
        for cursor, call_id, kind in pending:
            if cursor.rowcount == 1:
                continue
            known = self._db.execute("SELECT 1 FROM calls WHERE call_id = ?", [call_id]).fetchone()
            if known is None:
                log.warning("records: %s for unknown call %r, skipped", kind, call_id)
            else:
                log.warning("records: %s for call %r after it ended, skipped", kind, call_id)

    def _update_call(self, call_id: str, kind: str, sql: str, parameters: Mapping[str, Any]) -> bool:
        """Send the UPDATE; its row count is checked after the batch ran (`_check_updates`)."""
        self._unchecked.append((self._db.execute(sql, {**parameters, "call_id": call_id}), call_id, kind))
        return True

    def _insert(self, table: str, row: Mapping[str, Any], verb: str = "INSERT") -> None:
        key = (verb, table, tuple(row))
        sql = self._insert_sql.get(key)
        if sql is None:
            columns = ", ".join(f'"{name}"' for name in row)
            values = ", ".join(f"%({name})s" for name in row)
            sql = f'INSERT INTO "{table}" ({columns}) VALUES ({values})'
            if verb == "INSERT OR REPLACE":
                primary = _REPLACE_KEYS[table]
                updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in row if name != primary)
                sql += f' ON CONFLICT ("{primary}") DO UPDATE SET {updates}'
            self._insert_sql[key] = sql
        self._db.execute_pg(sql, row)

    def _write_ivr_step(self, call_id: str, flow: str, step: str, at: float) -> None:
        self._update_call(call_id, "ivr_step", _IVR_STEP, {"flow": flow, "step": step, "at": at})

    def _write_close_interrupted(self, at: float, reason: str, node: str | None = None) -> None:
        own = "" if node is None else " AND (node IS NULL OR node = :node)"
        ended = len(self._db.execute(_CLOSE_INTERRUPTED.format(own=own),
                                     {"at": at, "reason": reason, "node": node}).fetchall())
        log.info("records: %d interrupted call(s) closed", ended)

    def _write_close_node_calls(self, node: str, at: float, reason: str, incarnation: int | None = None) -> None:
        ended, freed = self._db.execute(_CLOSE_NODE_CALLS, {"node": node, "at": at, "reason": reason,
                                                            "incarnation": incarnation}).fetchone()
        log.info("records: node %s: %d interrupted call(s) closed, %d agent(s) freed", node, ended, freed)
