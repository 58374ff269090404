"""Opening the store where `store:` says: SQLite files in data/ (absent) or PostgreSQL (a URL).

The composition root (acd/app.py), the registrar and the records child process open their stores
here; nothing else needs to know which backend is in use. psycopg is imported only when a
PostgreSQL location is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .interfaces import BindingStorage, CallRecords
from .location import is_postgresql

__all__ = ["open_record_store", "open_binding_store"]


def open_record_store(location: str | Path, *, commit_delay_observer: Callable[[float], None] | None = None,
                      synchronous: str = "FULL", in_process: bool = False,
                      schedule: Callable[[float, Callable[[], None]], Any] | None = None,
                      node: str | None = None) -> CallRecords:
    """The records at `location`. `in_process=True`: the writer is a thread of this process;
    False: a child process (`records_process`, as `acd serve` runs it), to which `schedule` (a
    reactor's callLater) ships the buffered writes. `node`: the cluster node id this server runs
    as, written with each call (None: a single server)."""
    if not in_process:
        from .records_process import ProcessRecordStore

        return ProcessRecordStore(location, schedule=schedule, commit_delay_observer=commit_delay_observer,
                                  synchronous=synchronous, node=node)
    if is_postgresql(location):
        from .records_pg import PgRecordStore

        return PgRecordStore(str(location), commit_delay_observer=commit_delay_observer, synchronous=synchronous,
                             node=node)
    from .records import RecordStore

    return RecordStore(location, commit_delay_observer=commit_delay_observer, synchronous=synchronous, node=node)


def open_binding_store(location: str | Path) -> BindingStorage:
    """The registrar bindings at `location` (a SQLite file, or a PostgreSQL URL)."""
    if is_postgresql(location):
        from .bindings_pg import PgBindingStore

        return PgBindingStore(str(location))
    from .bindings_store import BindingStore

    return BindingStore(location)
