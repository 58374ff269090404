"""The routing log and the leader lease in PostgreSQL (psycopg 3): the imperative shell around
`lease.py` and `routing_log.py`.

Why a lease row and not `pg_try_advisory_lock`: an advisory lock is held by a session, so it
carries no epoch (fencing needs a counter that only grows, kept in a table anyway), it is invisible
to the other nodes' "who leads?" question unless they query pg_locks, and it is released only when
PostgreSQL notices the session died, which for a node cut off by the network waits for TCP
keepalive (minutes by default), where a lease expires after `lease_seconds` whatever happened. It
does not survive a connection pooler in transaction mode either. The row gives epoch, holder and
expiry in one place, judged by one clock (the server's `now()`).

Rules of this file:
- Every statement runs in autocommit: one statement, one transaction, nothing held between calls.
- The lease changes holder only by `ACQUIRE` (expired, or already ours) which increments the epoch;
  `RENEW` extends it only while it is still ours, at the same epoch, and not yet expired.
- An append is one statement: it inserts only if the lease row still names this holder at this
  epoch, unexpired, and locks that row (FOR SHARE) so a concurrent ACQUIRE waits for the append to
  commit, and an append after it sees the new epoch: a deposed leader's append inserts nothing and
  raises `FencedOut`. It notifies the tailers (`pg_notify`, sent at commit) in the same statement.
- Events of calls and agents hosted by any node reach the leader through `routing_inbox`: any node
  `submit`s, the leader reads the inbox in id order, routes, and its append deletes the rows it
  consumed in the same fenced statement, so each submitted event enters the log exactly once,
  whichever leader consumes it (a leader that dies before its append leaves the rows in place).
- A lost connection or failed statement is reported to the lease machine as `StoreLost`; the log
  methods raise `psycopg.Error` for the caller to treat the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import psycopg

from ..store.pg_schema import SCHEMA_LOCK_KEY, SCHEMA_LOCK_WAIT_MS
from .lease import LeaseGranted, LeaseRefused, StoreLost
from .routing_log import LogEntry

__all__ = ["SCHEMA", "FencedOut", "PgRoutingLog"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS routing_lease (
    id integer PRIMARY KEY CHECK (id = 1),
    holder text,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
INSERT INTO routing_lease (id, holder, epoch, expires_at) VALUES (1, NULL, 0, 'epoch')
    ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS routing_log (
    epoch bigint NOT NULL,
    seq bigint NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('event', 'decision', 'snapshot')),
    payload jsonb NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS routing_inbox (
    id bigserial PRIMARY KEY,
    origin text NOT NULL,
    payload jsonb NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now()
);
"""

ACQUIRE = """
UPDATE routing_lease SET holder = %(holder)s, epoch = epoch + 1,
       expires_at = now() + make_interval(secs => %(lease)s)
 WHERE id = 1 AND (expires_at < now() OR holder = %(holder)s)
RETURNING epoch
"""
RENEW = """
UPDATE routing_lease SET expires_at = now() + make_interval(secs => %(lease)s)
 WHERE id = 1 AND holder = %(holder)s AND epoch = %(epoch)s AND expires_at >= now()
RETURNING epoch
"""
READ_LEASE = """
SELECT holder, epoch, greatest(extract(epoch FROM expires_at - now()), 0)::float8 FROM routing_lease WHERE id = 1
"""
APPEND = """
WITH lease AS (
    SELECT epoch FROM routing_lease
     WHERE id = 1 AND holder = %(holder)s AND epoch = %(epoch)s AND expires_at > now()
       AND (SELECT count(*) FROM routing_inbox WHERE id = ANY(%(consumed)s::bigint[]))
           = cardinality(%(consumed)s::bigint[])
       FOR SHARE
), consumed AS (
    DELETE FROM routing_inbox WHERE id = ANY(%(consumed)s::bigint[]) AND EXISTS (SELECT 1 FROM lease)
), inserted AS (
    INSERT INTO routing_log (epoch, seq, kind, payload)
    SELECT lease.epoch, entry.seq, entry.kind, entry.payload
      FROM lease, unnest(%(seqs)s::bigint[], %(kinds)s::text[], %(payloads)s::jsonb[])
           AS entry(seq, kind, payload)
    RETURNING seq
), last AS (SELECT max(seq) AS seq FROM inserted)
SELECT (SELECT epoch FROM lease), last.seq, (SELECT pg_notify(%(channel)s, last.seq::text) WHERE last.seq IS NOT NULL)
  FROM last
"""
SUBMIT = """
WITH submitted AS (INSERT INTO routing_inbox (origin, payload) VALUES (%(origin)s, %(payload)s) RETURNING id)
SELECT id, pg_notify(%(channel)s, id::text) FROM submitted
"""
READ_INBOX = """
SELECT id, origin, payload FROM routing_inbox ORDER BY id LIMIT %(limit)s
"""
READ_AFTER = """
SELECT epoch, seq, kind, payload FROM routing_log WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s
"""
READ_FROM_SNAPSHOT = """
SELECT epoch, seq, kind, payload FROM routing_log
 WHERE seq >= coalesce((SELECT max(seq) FROM routing_log WHERE kind = 'snapshot'), 1)
 ORDER BY seq
"""


class FencedOut(Exception):
    """The append was refused: this node no longer holds the lease at that epoch (or the inbox rows
    it consumed are gone). Stop leading, throw the local replica away and rebuild it from the log."""


class PgRoutingLog:
    """One node's connection to the routing log and lease. Blocking calls: run them off the reactor
    thread (or through psycopg's async connection) when wired into the server."""

    def __init__(self, conninfo: str, node_id: str, *, lease_seconds: float = 3.0,
                 channel: str = "routing_log", statement_timeout_seconds: float = 1.0) -> None:
        """`channel`: the NOTIFY channel (database-wide: give each log in one database its own).
        `statement_timeout_seconds`: a statement slower than this fails, reported as `StoreLost`
        (1 s: well inside a 3 s lease, so the leader hears of trouble before its lease ends)."""
        if not channel.isidentifier():
            raise ValueError(f"channel {channel!r} must be a plain identifier (letters, digits, _)")
        self.conninfo = conninfo
        self.node_id = node_id
        self.lease_seconds = lease_seconds
        self.channel = channel
        self.statement_timeout_seconds = statement_timeout_seconds
        self.connection: psycopg.Connection | None = None

    def connect(self) -> "PgRoutingLog":
        """Open (or reopen) the connection, create the tables when missing, and LISTEN."""
        self.close()
        timeout_ms = int(self.statement_timeout_seconds * 1000)
        self.connection = psycopg.connect(self.conninfo, autocommit=True)  # keeps the URL's own options
        self.connection.execute(f"SET statement_timeout = {timeout_ms}")
        with self.connection.transaction():  # nodes starting together would race on CREATE TABLE IF NOT EXISTS
            self.connection.execute(f"SET LOCAL statement_timeout = {SCHEMA_LOCK_WAIT_MS}")  # a migration may hold it
            self.connection.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
            self.connection.execute(SCHEMA)
        self.connection.execute(f"LISTEN {self.channel}")
        self.connection.execute(f"LISTEN {self.channel}_inbox")
        return self

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def backend_pid(self) -> int:
        """The server process id of this node's connection (for pg_terminate_backend in tests)."""
        return self._conn().info.backend_pid

    def _conn(self) -> psycopg.Connection:
        if self.connection is None or self.connection.closed:
            raise psycopg.OperationalError("routing log connection is closed: call connect()")
        return self.connection

    # -- the lease ------------------------------------------------------------------------

    def acquire(self, requested_at: float) -> LeaseGranted | LeaseRefused | StoreLost:
        """Ask for the lease (sent at `requested_at` on the node's clock); the lease machine's input."""
        return self._lease_request(ACQUIRE, {"holder": self.node_id, "lease": self.lease_seconds}, requested_at)

    def renew(self, epoch: int, requested_at: float) -> LeaseGranted | LeaseRefused | StoreLost:
        """Extend our lease at `epoch`; the lease machine's input."""
        return self._lease_request(RENEW, {"holder": self.node_id, "lease": self.lease_seconds, "epoch": epoch},
                                   requested_at)

    def _lease_request(self, sql: str, parameters: dict, requested_at: float):
        try:
            conn = self._conn()
            row = conn.execute(sql, parameters).fetchone()
            if row is not None:
                return LeaseGranted(epoch=int(row[0]), requested_at=requested_at)
            holder, epoch, remaining = conn.execute(READ_LEASE).fetchone()
            return LeaseRefused(holder=holder, epoch=int(epoch), remaining_seconds=float(remaining))
        except psycopg.Error as error:
            return StoreLost(reason=f"{type(error).__name__}: {str(error).strip()}")

    # -- the log --------------------------------------------------------------------------

    def append(self, entries: Iterable[LogEntry], epoch: int, consumed: Iterable[int] = ()) -> int | None:
        """Append `entries` (in seq order) as the leader at `epoch`, all or none, deleting the inbox
        rows `consumed` (ids) in the same statement; the last seq. Raises `FencedOut` when the lease
        is no longer ours at that epoch, or a consumed row is no longer in the inbox. The last seq
        is None when only inbox rows were consumed."""
        entries = list(entries)
        if any(entry.epoch != epoch for entry in entries):
            raise ValueError(f"every appended entry must carry the fencing epoch {epoch}")
        row = self._conn().execute(APPEND, {
            "holder": self.node_id, "epoch": epoch, "channel": self.channel, "consumed": list(consumed),
            "seqs": [entry.seq for entry in entries], "kinds": [entry.kind for entry in entries],
            "payloads": [json.dumps(entry.payload, allow_nan=False) for entry in entries],
        }).fetchone()
        if row[0] is None:
            raise FencedOut(f"node {self.node_id}: append at epoch {epoch} refused: the lease is no "
                            "longer ours at that epoch (or its inbox rows were consumed already); "
                            "stop leading and rebuild from the log")
        return None if row[1] is None else int(row[1])

    def read_after(self, seq: int, limit: int = 1000) -> list[LogEntry]:
        """Up to `limit` entries after `seq`, in order."""
        rows = self._conn().execute(READ_AFTER, {"after": seq, "limit": limit}).fetchall()
        return [_entry(row) for row in rows]

    def read_from_last_snapshot(self) -> list[LogEntry]:
        """The last snapshot entry and every entry after it (the whole log when there is none):
        what `routing_log.replay` needs to rebuild a replica."""
        return [_entry(row) for row in self._conn().execute(READ_FROM_SNAPSHOT).fetchall()]

    def submit(self, payload: dict) -> int:
        """Any node: hand an event entry's payload (`{"at": ..., "input": ...}`) to the leader through
        the inbox; its inbox id."""
        row = self._conn().execute(SUBMIT, {"origin": self.node_id, "channel": f"{self.channel}_inbox",
                                            "payload": json.dumps(payload, allow_nan=False)}).fetchone()
        return int(row[0])

    def read_inbox(self, limit: int = 100) -> list[tuple[int, str, dict]]:
        """Leader: up to `limit` submitted events not yet consumed, oldest first: (id, origin, payload)."""
        return [(int(i), origin, payload)
                for i, origin, payload in self._conn().execute(READ_INBOX, {"limit": limit}).fetchall()]

    def wait(self, timeout_seconds: float) -> str | None:
        """Block until an append ("log") or a submission ("inbox") is notified, or `timeout_seconds`
        pass (None). Read the log and the inbox anyway now and then: NOTIFY is a wake-up, not the
        data, and one sent while this node was reconnecting is lost."""
        for notify in self._conn().notifies(timeout=timeout_seconds, stop_after=1):
            return "inbox" if notify.channel.endswith("_inbox") else "log"
        return None


def _entry(row: tuple) -> LogEntry:
    epoch, seq, kind, payload = row
    return LogEntry(epoch=int(epoch), seq=int(seq), kind=kind, payload=payload)
