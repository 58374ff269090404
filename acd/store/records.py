"""Call records in SQLite, written as events happen: CDRs, the queue log, agent state history, each
agent's current state and the server's runs (`acd/store/presence.py` says why those two exist).

Rules of this file:
- The reactor thread never touches SQLite. Each public method checks its arguments, puts one
  `(kind, arguments)` tuple on a `queue.SimpleQueue` and returns (a few microseconds). ONE writer
  thread owns the only write connection and applies the items in order.
- Group commit: the writer takes every item queued (up to `MAX_BATCH_ITEMS`) into one
  transaction, each item inside its own savepoint, and commits once. At low load a batch is one
  item; under load one fsync covers many events, so the writer keeps up with the reactor.
  A crash loses at most the items not yet committed, never a half-written event, and never
  anything already committed.
- Journal mode WAL, `synchronous=FULL`: each commit fsyncs the -wal file, so a committed event
  survives a power loss or kernel crash too, not only the process dying
  (https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html).
  The window between an event and its commit is what a kill -9 can lose; the writer reports it
  for each batch (`commit_delay_observer`, the metric `acd_records_commit_delay_seconds`) and
  `scripts/bench/records_commit.py` measures it.
- A bad item never stops the writer: an update for an unknown call id is logged and skipped,
  and any write error is logged with the item, rolled back to its savepoint, and the writer goes
  on to the next one.
- Readers (`acd report`, backups) open their own connection; WAL lets them read while we write.
- Times are POSIX seconds (float). Strings are stored as given: the shell masks collected
  digits ("****") before they reach this module, which never sees a PIN.

The queue log follows Asterisk's queue_log (doc/queuelog.txt, "QUEUE LOG EVENTS"), with three
data fields and every duration in seconds. `QUEUE_LOG_EVENTS` says what each field holds.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import sqlite_utils

from .interfaces import RecordsReader
from .location import is_postgresql
from .presence import PRESENCE_COLUMNS, RUNS_COLUMNS, PreviousRun, read_previous_run, seed_presence_from_history

__all__ = ["RecordStore", "QUEUE_LOG_EVENTS", "MONITORING_EVENTS", "SETTABLE_FIELDS", "SCHEMA_VERSION", "open_for_reading"]

log = logging.getLogger("acd.store.records")

SCHEMA_VERSION = 8  # 2: agent_presence and server_runs; 3: calls.served_queue ... transfer_target (`_ADDED_CALLS_COLUMNS`); 4: routing_events; 5: monitoring; 6: calls.notes; 7: calls.node; 8: calls.incarnation

# Asterisk's event names; CALLBACK is ours (the caller left the queue asking to be called back).
# Value: (data1, data2, data3). Durations in seconds, as decimal text; "" where a field is unused.
QUEUE_LOG_EVENTS: dict[str, tuple[str, str, str]] = {
    "ENTERQUEUE": ("", "caller id", "position on entry (1 = first)"),
    "CONNECT": ("holdtime: seconds waited in this queue", "agent leg call id", "ringtime: seconds the agent rang"),
    "COMPLETECALLER": ("holdtime", "calltime: talk seconds", "origposition: position on entry"),
    "COMPLETEAGENT": ("holdtime", "calltime: talk seconds", "origposition: position on entry"),
    "TRANSFER": ("target (queue or extension)", "holdtime", "calltime: talk seconds before the transfer"),
    "ABANDON": ("position at hang-up", "origposition", "waittime: seconds waited"),
    "EXITWITHTIMEOUT": ("position when the queue timed out", "origposition", "waittime"),
    "CALLBACK": ("position when the callback was asked", "origposition", "waittime"),
    "RINGNOANSWER": ("ringtime: seconds rung (Asterisk: milliseconds)", "", ""),
    "AGENTLOGIN": ("agent device (contact)", "", ""),
    "AGENTLOGOFF": ("agent device (contact)", "logintime: seconds logged in", ""),
    "PAUSE": ("reason", "", ""),
    "UNPAUSE": ("reason of the pause that ended", "pausetime: seconds paused", ""),
}

# `set_field` may write these CDR columns, nothing else (the name ends up in SQL), converted by type.
_FIELD_TYPES: dict[str, type] = {"recording_path": str, "survey": str, "disposition": str, "wrap_up_seconds": float,
                                 "entry_position": int, "transfer_target": str, "agent": str, "notes": str}
SETTABLE_FIELDS = frozenset(_FIELD_TYPES)

_CALLS_COLUMNS = {
    "call_id": str, "trunk": str, "caller": str, "dialled": str, "arrived_at": float, "answered_at": float,
    "queue": str, "queued_at": float, "agent": str, "connected_at": float, "ended_at": float, "outcome": str,
    "end_reason": str, "ivr_path": str, "wait_seconds": float, "talk_seconds": float, "wrap_up_seconds": float,
    "recording_path": str, "survey": str, "disposition": str,
}
# Added in schema 3, to the calls table of an older database too (ALTER TABLE ADD COLUMN: NULL in old rows).
# served_queue: the queue whose agent took the call (overflow: another queue than `queue`, the one entered);
# entry_position: place in line on entering (1 = first); priority and priority_source ("flow", "customer tier",
# "api"): as the routing engine got it; callback_requested_at: when the caller asked to be called back (the
# outbound leg's times are this row's connected_at/ended_at); transfer_target: where an agent sent the caller.
# Schema 6: notes, the agent's wrap-up notes from the desktop (free text, next to `disposition`).
# Schema 7: node, the cluster node hosting the call (issue 20; NULL on a single server), so the calls
# of a node that died are closed by the survivors (`close_node_calls`) and a restart closes only its own.
# Schema 8: incarnation, the node's incarnation (`cluster_nodes.incarnation`) when the call arrived (NULL
# on a single server and in older rows), so a survivor closing a dead incarnation's calls leaves alone
# those of the node's next incarnation, which shares its id (`close_node_calls`).
_ADDED_CALLS_COLUMNS = {
    "served_queue": str, "entry_position": int, "priority": int, "priority_source": str,
    "callback_requested_at": float, "transfer_target": str, "notes": str, "node": str, "incarnation": int,
}
_CALLS_COLUMNS.update(_ADDED_CALLS_COLUMNS)
_IVR_STEPS_COLUMNS = {"id": int, "call_id": str, "flow": str, "step": str, "at": float}
_QUEUE_LOG_COLUMNS = {"id": int, "at": float, "call_id": str, "queue": str, "agent": str, "event": str,
                      "data1": str, "data2": str, "data3": str}
_ROUTING_EVENTS_COLUMNS = {"id": int, "call_id": str, "at": float, "what": str}
_AGENT_STATES_COLUMNS = {"id": int, "agent_id": str, "state": str, "reason": str, "at": float}
# A supervisor on a call: event "calling" (the API rings the supervisor), "start", "mode" (a switch),
# "end"; mode listen, whisper or barge; via "phone" (feature code) or "api"; detail: why it ended.
_MONITORING_COLUMNS = {"id": int, "call_id": str, "at": float, "supervisor": str, "agent": str, "event": str,
                       "mode": str, "via": str, "detail": str}
MONITORING_EVENTS = ("calling", "start", "mode", "end")

# The history tables with an integer `id` key: (name, columns, indexes). Both backends create these.
HISTORY_TABLES = (
    ("ivr_steps", _IVR_STEPS_COLUMNS, (["call_id"], ["at"])),
    ("queue_log", _QUEUE_LOG_COLUMNS, (["at"], ["call_id"])),
    ("agent_states", _AGENT_STATES_COLUMNS, (["agent_id", "at"], ["at"])),
    ("routing_events", _ROUTING_EVENTS_COLUMNS, (["call_id"], ["at"])),
    ("monitoring", _MONITORING_COLUMNS, (["call_id"], ["at"])),
)
CALLS_COLUMNS = _CALLS_COLUMNS  # the CDR table's columns (schema 3's additions included)
ADDED_CALLS_COLUMNS = _ADDED_CALLS_COLUMNS  # added to an older calls table by the migration

_STOP = object()
MAX_BATCH_ITEMS = 1000  # items per transaction at most; bounds one commit's time and memory


def create_schema(db: sqlite_utils.Database) -> None:
    """Create the tables and their indexes when missing (idempotent); a new `agent_presence` is
    seeded from the history, so an upgraded server restores the agents the old one had."""
    if not db["calls"].exists():
        db["calls"].create(_CALLS_COLUMNS, pk="call_id", not_null={"call_id", "arrived_at"})
        db["calls"].create_index(["arrived_at"])
    missing = {name: kind for name, kind in _ADDED_CALLS_COLUMNS.items() if name not in db["calls"].columns_dict}
    for name, kind in missing.items():
        db["calls"].add_column(name, kind)
    for name, columns, indexes in HISTORY_TABLES:
        if not db[name].exists():
            db[name].create(columns, pk="id", not_null=set(columns) - {"id"})
            for index in indexes:
                db[name].create_index(index)
    if not db["server_runs"].exists():
        db["server_runs"].create(RUNS_COLUMNS, pk="id", not_null={"started_at"})
    elif "node" not in db["server_runs"].columns_dict:
        db["server_runs"].add_column("node", str)
    if not db["agent_presence"].exists():
        db["agent_presence"].create(PRESENCE_COLUMNS, pk="agent_id",
                                    not_null={"agent_id", "state", "queues", "reason", "updated_at"})
        seeded = seed_presence_from_history(db)
        if seeded:
            log.info("records: agent_presence seeded from the history for %d agent(s)", seeded)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def open_for_reading(path: str | Path) -> RecordsReader:
    """A connection of its own for a reader; refuses a missing file rather than creating one.
    A `postgresql://` location gives a PostgreSQL reader with the same `query`/`execute` methods."""
    if is_postgresql(path):
        from .pg_reader import PgReader  # psycopg only where PostgreSQL is configured

        return PgReader(str(path))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no records database at {path}")
    return sqlite_utils.Database(path)


def check_synchronous(setting: str) -> str:
    """`setting` when it is one of SQLite's synchronous levels; ValueError otherwise."""
    if setting not in ("FULL", "NORMAL", "OFF", "EXTRA"):
        raise ValueError(f"records: unknown synchronous setting {setting!r}")
    return setting


class RecordStore:
    """The records database at `path` (created with its tables if missing), written by one thread.

    Every public write method only enqueues; `flush()` waits for the writer to catch up.
    """

    # After its first item, the writer waits this long for more before committing: fewer, larger
    # transactions (each one a sync to disk) when items come one at a time. 0: commit at once.
    gather_seconds = 0.0
    # The cluster incarnation this node runs as, written with each call (`calls.incarnation`); None
    # alone or before the node joined. Set on the thread that calls `call_arrived` (the reactor's),
    # by ClusterLife when the node joins or rejoins (acd/calls/cluster_life.py).
    incarnation: int | None = None

    def __init__(self, path: str | Path, *, thread_name: str = "acd-records",
                 commit_delay_observer: Callable[[float], None] | None = None, synchronous: str = "FULL",
                 node: str | None = None) -> None:
        """`commit_delay_observer`, when given, is called from the writer thread after each commit with
        the seconds its oldest item waited between being enqueued and being committed. `synchronous`
        is SQLite's setting (FULL, the server's; NORMAL or OFF only to measure what FULL costs).
        `node`: the cluster node id this server runs as (written in each call's `node`); None alone."""
        self.node = node
        self._synchronous = check_synchronous(synchronous)
        self.path = Path(path)
        self.location: str | Path = self.path
        self._observe_commit_delay = commit_delay_observer
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._crashed = False
        self._insert_sql: dict[tuple, str] = {}
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    # -- the reactor side: check, enqueue, return --------------------------------------------

    def call_arrived(self, call_id: str, *, trunk: str, caller: str, dialled: str, at: float) -> None:
        """A new call (INVITE accepted for handling): inserts its CDR row."""
        self._put("call_arrived", call_id=call_id, trunk=trunk, caller=caller, dialled=dialled, at=at, node=self.node,
                  **({} if self.incarnation is None else {"incarnation": self.incarnation}))

    def call_answered(self, call_id: str, *, at: float) -> None:
        """We answered the caller (200 OK sent), usually to start the IVR."""
        self._put("call_answered", call_id=call_id, at=at)

    def ivr_step(self, call_id: str, *, flow: str, step: str, at: float) -> None:
        """The call entered IVR step `step` of `flow`: appended to `calls.ivr_path` and `ivr_steps`."""
        self._put("ivr_step", call_id=call_id, flow=flow, step=step, at=at)

    def call_queued(self, call_id: str, *, queue: str, at: float) -> None:
        """The call joined `queue`. Overflow to another queue while still waiting keeps the first
        `queued_at` (the caller's wait goes on); queueing again after an agent leg (transfer to a
        queue) starts a new wait."""
        self._put("call_queued", call_id=call_id, queue=queue, at=at)

    def call_connected(self, call_id: str, *, agent: str, at: float, queue: str | None = None) -> None:
        """An agent answered (`queue`: the queue that served it, `served_queue`): `wait_seconds = at -
        queued_at`, NULL when the call never queued. For a callback, `at` is when the customer answered
        our call back and was bridged, and the wait ends at `callback_requested_at` (the time the caller
        spent in line; the call back is outbound)."""
        self._put("call_connected", call_id=call_id, agent=agent, at=at, queue=queue)

    def routing_event(self, call_id: str, *, at: float, what: str) -> None:
        """One routing decision about a queued call and its reason (`acd report --call` prints them)."""
        self._put("routing_event", call_id=call_id, at=at, what=what)

    def monitoring(self, call_id: str, *, supervisor: str, agent: str, event: str, mode: str, via: str,
                   at: float, detail: str = "") -> None:
        """A supervisor's monitoring of a call: `event` one of MONITORING_EVENTS (`acd report --call` prints them)."""
        if event not in MONITORING_EVENTS:
            raise ValueError(f"monitoring: unknown event {event!r} (one of {', '.join(MONITORING_EVENTS)})")
        self._put("monitoring", call_id=call_id, at=at, supervisor=supervisor, agent=agent, event=event, mode=mode,
                  via=via, detail=detail)

    def call_priority(self, call_id: str, *, priority: int, source: str) -> None:
        """The call's priority in line and what set it ("flow", "customer tier", "api")."""
        self._put("call_priority", call_id=call_id, priority=int(priority), source=str(source))

    def callback_requested(self, call_id: str, *, at: float) -> None:
        """The caller left the queue asking to be called back; the call stays open (no `call_ended`)
        until the call back is over."""
        self._put("callback_requested", call_id=call_id, at=at)

    def talk_ended(self, call_id: str, *, at: float) -> None:
        """The agent's leg is over but the caller stays (the agent hung up first and the caller
        takes the survey): `talk_seconds = at - connected_at`, which the call's end keeps."""
        self._put("talk_ended", call_id=call_id, at=at)

    def call_ended(self, call_id: str, *, outcome: str, reason: str, at: float) -> None:
        """The call is over: `talk_seconds = at - connected_at` of the last agent leg, if any (unless
        `talk_ended` already set it for that leg).

        `outcome` is a short word the report counts on: "completed" (the flow finished it),
        "caller_hangup", "agent_hangup", "cancelled", "transferred", "callback", "failed",
        "shutdown" (ended by a graceful server stop), "interrupted" (see `close_interrupted`). `reason` is free text. A second end is ignored."""
        self._put("call_ended", call_id=call_id, outcome=outcome, reason=reason, at=at)

    def set_field(self, call_id: str, name: str, value: Any) -> None:
        """Set one of `SETTABLE_FIELDS` on the CDR. `survey` takes a mapping ({"q1": 4, ...}),
        stored as JSON; `wrap_up_seconds` a number, `entry_position` an integer; the others a string
        (or None to clear)."""
        if name not in SETTABLE_FIELDS:
            raise ValueError(f"set_field: {name!r} is not one of {sorted(SETTABLE_FIELDS)}")
        if name == "survey" and value is not None:
            value = json.dumps(dict(value), sort_keys=True)
        elif value is not None:
            value = _FIELD_TYPES[name](value)
        self._put("set_field", call_id=call_id, name=name, value=value)

    def queue_log(self, *, at: float, call_id: str, queue: str, agent: str, event: str,
                  data1: Any = "", data2: Any = "", data3: Any = "") -> None:
        """One line of the queue log; `event` is a key of `QUEUE_LOG_EVENTS`. Use "" for no
        call (agent events), no queue or no agent. Data fields are stored as text."""
        if event not in QUEUE_LOG_EVENTS:
            raise ValueError(f"queue_log: unknown event {event!r}")
        self._put("queue_log", at=at, call_id=call_id, queue=queue, agent=agent, event=event,
                  data1=_text(data1), data2=_text(data2), data3=_text(data3))

    def agent_state(self, agent_id: str, *, state: str, reason: str, at: float) -> None:
        """The agent entered `state` (an `AgentState` value: "available", "paused"...) at `at`."""
        self._put("agent_state", agent_id=agent_id, state=state, reason=reason, at=at)

    def agent_presence(self, agent_id: str, *, state: str, queues: Mapping[str, int], reason: str, at: float,
                       pause_reason: str | None = None, pending: str | None = None,
                       pending_reason: str | None = None) -> None:
        """The agent's current state, replacing the last one (what a restart restores). `pending` is a
        change asked for during a call ("pause" or "logout"), applied when the call is over."""
        if pending not in (None, "pause", "logout"):
            raise ValueError(f"agent_presence: pending must be None, 'pause' or 'logout', not {pending!r}")
        self._put("agent_presence", agent_id=agent_id, state=state, queues=json.dumps(dict(queues), sort_keys=True),
                  reason=reason, at=at, pause_reason=pause_reason, pending=pending, pending_reason=pending_reason)

    def start_run(self, *, at: float, timeout: float = 10.0) -> PreviousRun:
        """At start-up only (it waits for the writer): how the previous run ended and who was logged in
        then; opens this run's row. Raises RuntimeError when the writer does not answer in `timeout`."""
        answer: list[PreviousRun] = []
        done = threading.Event()
        self._put("start_run", at=at, answer=answer, done=done, node=self.node)
        if not done.wait(timeout) or not answer:
            raise RuntimeError(f"records: no answer from the writer about the previous run within {timeout}s "
                               "(see the records lines above: the database refused or was too slow)")
        return answer[0]

    def stop_run(self, *, at: float) -> None:
        """On the normal shutdown path: this run stopped cleanly at `at` (a crash never writes it)."""
        self._put("stop_run", at=at, **({} if self.node is None else {"node": self.node}))

    def close_interrupted(self, *, at: float, reason: str = "server stopped unexpectedly") -> None:
        """At start-up, before any new call: end every call left open by a crash (outcome
        "interrupted", ended at `at`). Agents are left as they were: the server restores them.
        A cluster node (`node` given) closes only its own calls, and those of no node."""
        self._put("close_interrupted", at=at, reason=reason, node=self.node)

    def close_node_calls(self, node: str, *, at: float, reason: str | None = None,
                         incarnation: int | None = None) -> None:
        """Cluster node `node` died: end every call it hosted still open (outcome "interrupted", as a
        restart does, ended at `at`), and free each agent whose presence still says on_call for one of
        those calls (its last call, its talk not over): available, or what it asked for during the
        call (paused, logged out), one `agent_states` row each. Idempotent, and when several
        survivors run it at once only one closes each call and frees its agent.

        `incarnation`: the incarnation that died. Only calls taken at that incarnation or an earlier
        one (or with none written: older rows) are closed; a call of a later incarnation is left
        alone. The node's id outlives a death: restarted (or rejoining after being declared dead),
        it takes calls again under the same id, and this close, queued by the survivor that won the
        death claim, may reach the database after them. (The earlier incarnations' calls are all
        dead: the new one closes them itself as well, `close_interrupted`, which is harmless twice.)
        None: every call of the node, whatever its incarnation."""
        if not node:
            raise ValueError("close_node_calls: node must be the dead node's id")
        self._put("close_node_calls", node=node, at=at, reason=reason or f"node {node} stopped unexpectedly",
                  **({} if incarnation is None else {"incarnation": incarnation}))

    @property
    def backlog(self) -> int:
        """Items queued and not yet written (approximate)."""
        return self._queue.qsize()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything enqueued before this call is committed; False on timeout or when
        the writer is gone."""
        if not self._thread.is_alive():
            return self._queue.empty() and not self._crashed
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush, stop the writer and close the database. Later writes are logged and dropped."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("records: writer still busy after %ss; %d item(s) may be lost", timeout, self.backlog)

    def _put(self, kind: str, **arguments: Any) -> None:
        if self._closed:
            log.warning("records: store closed, dropped %s %r", kind, arguments)
            return
        self._queue.put((kind, arguments, time.perf_counter()))

    # -- the writer thread ------------------------------------------------------------------

    def _open(self) -> Any:
        """The writer's connection, the schema created or migrated (runs on the writer thread)."""
        db = sqlite_utils.Database(self.path)
        db.enable_wal()
        db.execute(f"PRAGMA synchronous = {self._synchronous}")
        create_schema(db)
        return db

    def _run(self) -> None:
        try:
            db = self._open()
        except BaseException as error:  # reported to the constructor, on the caller's thread
            self._startup_error = error
            self._ready.set()
            return
        self._db = db
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                batch = [self._queue.get()]
                if self.gather_seconds:
                    time.sleep(self.gather_seconds)
                while len(batch) < MAX_BATCH_ITEMS:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stopping = self._commit_batch(db, batch)
        except BaseException:
            self._crashed = True
            log.critical("records: the writer thread stopped; its batch and %d queued item(s) will not be written",
                         self.backlog)
            raise
        finally:
            db.close()

    def _commit_batch(self, db: sqlite_utils.Database, batch: list) -> bool:
        """Write `batch` in one transaction, then wake the flushers waiting on it. True when the batch
        held the stop marker. Items go without savepoints (two statements each, a fifth of the
        writer's time); when one fails, the batch is rolled back and written again item by item,
        each in its own savepoint, so only the failing item is skipped."""
        waiters = [item for item in batch if isinstance(item, threading.Event)]
        writes = [item for item in batch if isinstance(item, tuple)]
        if writes:
            conn = db.conn
            try:
                conn.execute("BEGIN")
                try:
                    for kind, arguments, _ in writes:
                        getattr(self, f"_write_{kind}")(**arguments)
                except Exception:
                    conn.execute("ROLLBACK")
                    conn.execute("BEGIN")
                    self._write_one_by_one(conn, writes)
                conn.execute("COMMIT")
            except Exception:  # the COMMIT itself (disk full, I/O error): the batch is lost, say so loudly
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                log.exception("records: commit of %d item(s) failed; they are lost: %r", len(writes),
                              [kind for kind, _, _ in writes])
            if self._observe_commit_delay is not None:
                self._observe_commit_delay(time.perf_counter() - writes[0][2])
        for waiter in waiters:
            waiter.set()
        return any(item is _STOP for item in batch)

    def _write_one_by_one(self, conn, writes: list) -> None:
        """Each write in its own savepoint: a failing one is logged and skipped, the others kept."""
        for kind, arguments, _ in writes:
            conn.execute("SAVEPOINT item")
            try:
                getattr(self, f"_write_{kind}")(**arguments)
            except Exception:
                conn.execute("ROLLBACK TO item")
                log.exception("records: write failed, skipped: %s %r", kind, arguments)
            conn.execute("RELEASE item")

    def _update_call(self, call_id: str, kind: str, sql: str, parameters: Mapping[str, Any]) -> bool:
        """Run an UPDATE of one CDR; log and return False when no row matched."""
        if self._db.conn.execute(sql, {**parameters, "call_id": call_id}).rowcount == 1:
            return True
        known = self._db.execute("SELECT 1 FROM calls WHERE call_id = ?", [call_id]).fetchone()
        if known is None:
            log.warning("records: %s for unknown call %r, skipped", kind, call_id)
        else:
            log.warning("records: %s for call %r after it ended, skipped", kind, call_id)
        return False

    def _insert(self, table: str, row: Mapping[str, Any], verb: str = "INSERT") -> None:
        """One row by a cached prepared statement (sqlite-utils' insert re-reads the table's columns
        on each call: a third of the writer's time per event)."""
        key = (verb, table, tuple(row))
        sql = self._insert_sql.get(key)
        if sql is None:
            columns = ", ".join(f"[{name}]" for name in row)
            values = ", ".join(f":{name}" for name in row)
            sql = self._insert_sql[key] = f"{verb} INTO [{table}] ({columns}) VALUES ({values})"
        self._db.conn.execute(sql, row)

    def _write_call_arrived(self, call_id: str, trunk: str, caller: str, dialled: str, at: float,
                            node: str | None = None, incarnation: int | None = None) -> None:
        self._insert("calls", {"call_id": call_id, "trunk": trunk, "caller": caller, "dialled": dialled,
                                  "arrived_at": at, "ivr_path": "", "node": node, "incarnation": incarnation})

    def _write_call_answered(self, call_id: str, at: float) -> None:
        self._update_call(call_id, "call_answered",
                          "UPDATE calls SET answered_at = :at WHERE call_id = :call_id AND ended_at IS NULL", {"at": at})

    def _write_ivr_step(self, call_id: str, flow: str, step: str, at: float) -> None:
        sql = ("UPDATE calls SET ivr_path = CASE WHEN ivr_path IS NULL OR ivr_path = '' THEN :step "
               "ELSE ivr_path || '>' || :step END WHERE call_id = :call_id AND ended_at IS NULL")
        if self._update_call(call_id, "ivr_step", sql, {"step": step}):
            self._insert("ivr_steps", {"call_id": call_id, "flow": flow, "step": step, "at": at})

    def _write_call_queued(self, call_id: str, queue: str, at: float) -> None:
        sql = ("UPDATE calls SET queue = :queue, queued_at = CASE WHEN queued_at IS NOT NULL AND connected_at IS NULL "
               "THEN queued_at ELSE :at END WHERE call_id = :call_id AND ended_at IS NULL")
        self._update_call(call_id, "call_queued", sql, {"queue": queue, "at": at})

    def _write_call_connected(self, call_id: str, agent: str, at: float, queue: str | None) -> None:
        sql = ("UPDATE calls SET agent = :agent, connected_at = :at, talk_seconds = NULL, "
               "served_queue = COALESCE(:queue, queue), "
               "wait_seconds = COALESCE(callback_requested_at, :at) - queued_at "
               "WHERE call_id = :call_id AND ended_at IS NULL")
        self._update_call(call_id, "call_connected", sql, {"agent": agent, "at": at, "queue": queue})

    def _write_routing_event(self, call_id: str, at: float, what: str) -> None:
        self._insert("routing_events", {"call_id": call_id, "at": at, "what": what})

    def _write_monitoring(self, **row: Any) -> None:
        self._insert("monitoring", row)

    def _write_call_priority(self, call_id: str, priority: int, source: str) -> None:
        self._update_call(call_id, "call_priority", "UPDATE calls SET priority = :priority, priority_source = "
                          ":source WHERE call_id = :call_id AND ended_at IS NULL",
                          {"priority": priority, "source": source})

    def _write_callback_requested(self, call_id: str, at: float) -> None:
        self._update_call(call_id, "callback_requested", "UPDATE calls SET callback_requested_at = :at "
                          "WHERE call_id = :call_id AND ended_at IS NULL", {"at": at})

    def _write_talk_ended(self, call_id: str, at: float) -> None:
        self._update_call(call_id, "talk_ended", "UPDATE calls SET talk_seconds = :at - connected_at "
                          "WHERE call_id = :call_id AND ended_at IS NULL", {"at": at})

    def _write_call_ended(self, call_id: str, outcome: str, reason: str, at: float) -> None:
        sql = ("UPDATE calls SET ended_at = :at, outcome = :outcome, end_reason = :reason, "
               "talk_seconds = COALESCE(talk_seconds, :at - connected_at) WHERE call_id = :call_id AND ended_at IS NULL")
        self._update_call(call_id, "call_ended", sql, {"outcome": outcome, "reason": reason, "at": at})

    def _write_set_field(self, call_id: str, name: str, value: Any) -> None:
        assert name in SETTABLE_FIELDS  # checked by set_field; the name is part of the SQL
        self._update_call(call_id, f"set_field {name}", f"UPDATE calls SET {name} = :value WHERE call_id = :call_id",
                          {"value": value})

    def _write_queue_log(self, **row: Any) -> None:
        self._insert("queue_log", row)

    def _write_agent_state(self, agent_id: str, state: str, reason: str, at: float) -> None:
        self._insert("agent_states", {"agent_id": agent_id, "state": state, "reason": reason, "at": at})

    def _write_agent_presence(self, agent_id: str, **row: Any) -> None:
        row["updated_at"] = row.pop("at")
        self._insert("agent_presence", {"agent_id": agent_id, **row}, verb="INSERT OR REPLACE")

    def _write_start_run(self, at: float, answer: list, done: threading.Event, node: str | None = None) -> None:
        # `done` only once answered: a failed read (a deadlock) is written again item by item by the
        # batch writer, and the waiter must get that answer, not give up at the first attempt.
        answer.append(read_previous_run(self._db, node))
        self._insert("server_runs", {"started_at": at, "stopped_at": None, "node": node})
        done.set()

    def _write_stop_run(self, at: float, node: str | None = None) -> None:
        if node is None:
            self._db.execute("UPDATE server_runs SET stopped_at = ? WHERE id = (SELECT MAX(id) FROM server_runs)", [at])
        else:
            self._db.execute("UPDATE server_runs SET stopped_at = ? WHERE id = (SELECT MAX(id) FROM server_runs "
                             "WHERE node = ?)", [at, node])

    def _write_close_interrupted(self, at: float, reason: str, node: str | None = None) -> None:
        ended = self._db.execute(
            "UPDATE calls SET ended_at = MAX(:at, arrived_at), outcome = 'interrupted', end_reason = :reason, "
            "talk_seconds = MAX(:at, arrived_at) - connected_at WHERE ended_at IS NULL" + _own_calls(node),
            {"at": at, "reason": reason, "node": node}).rowcount
        log.info("records: %d interrupted call(s) closed", ended)

    def _write_close_node_calls(self, node: str, at: float, reason: str, incarnation: int | None = None) -> None:
        db = self._db
        which = {"node": node, "incarnation": incarnation}
        talking = db.execute("SELECT call_id, agent, connected_at FROM calls WHERE " + DEAD_INCARNATIONS_CALLS +
                             " AND agent IS NOT NULL AND connected_at IS NOT NULL AND talk_seconds IS NULL",
                             which).fetchall()
        ended = db.execute(
            "UPDATE calls SET ended_at = MAX(:at, arrived_at), outcome = 'interrupted', end_reason = :reason, "
            "talk_seconds = COALESCE(talk_seconds, MAX(:at, arrived_at) - connected_at) "
            "WHERE " + DEAD_INCARNATIONS_CALLS, {"at": at, "reason": reason, **which}).rowcount
        freed = 0
        for call_id, agent, connected_at in talking:
            latest = db.execute("SELECT MAX(connected_at) FROM calls WHERE agent = ?", [agent]).fetchone()[0]
            why = f"call {call_id} interrupted: {reason}"
            if latest != connected_at or db.execute(FREE_AGENT, {"agent": agent, "why": why, "at": at}).rowcount != 1:
                continue
            state = db.execute("SELECT state FROM agent_presence WHERE agent_id = ?", [agent]).fetchone()[0]
            self._insert("agent_states", {"agent_id": agent, "state": state, "reason": why, "at": at})
            freed += 1
        log.info("records: node %s: %d interrupted call(s) closed, %d agent(s) freed", node, ended, freed)


# The open calls `close_node_calls` closes: the node's, taken at the incarnation that died or an earlier
# one (or with no incarnation written); `:incarnation` NULL: all of them.
DEAD_INCARNATIONS_CALLS = ("node = :node AND ended_at IS NULL AND (:incarnation IS NULL OR incarnation IS NULL "
                           "OR incarnation <= :incarnation)")

# An agent on a call of a dead node is freed as the end of the call would: available, or the pause or
# log-out it asked for during the call. Only while its presence still says on_call.
FREE_AGENT = (
    "UPDATE agent_presence SET state = CASE pending WHEN 'pause' THEN 'paused' WHEN 'logout' THEN 'logged_out' "
    "ELSE 'available' END, pause_reason = CASE WHEN pending = 'pause' THEN pending_reason END, "
    "queues = CASE WHEN pending = 'logout' THEN '{}' ELSE queues END, pending = NULL, pending_reason = NULL, "
    "reason = :why, updated_at = :at WHERE agent_id = :agent AND state = 'on_call'")


def _own_calls(node: str | None) -> str:
    """The condition limiting a restart's clean-up to this node's calls (none when not in a cluster)."""
    return "" if node is None else " AND (node IS NULL OR node = :node)"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)
