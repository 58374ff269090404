"""Read-only queries against the records wherever they are: a SQLite file or a `postgresql://` URL.

For readers that run in a thread of the pool (the agent desktop's calls, the wallboard's day): each
call opens its own read-only connection and closes it. SQL is written once, SQLite-style (`?`
placeholders); PgReader translates it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Sequence

from .location import is_postgresql

__all__ = ["read_rows"]


def read_rows(location: str | Path, queries: Sequence[tuple[str, tuple]]) -> list[list[dict[str, Any]]] | None:
    """The rows of each (sql, parameters) in `queries`, in order, read in one connection; None when
    there is no database yet (nothing was recorded)."""
    if is_postgresql(location):
        from .pg_reader import PgReader  # psycopg only where PostgreSQL is configured

        try:
            reader = PgReader(str(location))
        except FileNotFoundError:
            return None
        try:
            return [list(reader.query(sql, parameters)) for sql, parameters in queries]
        finally:
            reader.close()
    path = Path(location)
    if not path.exists():
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        db.row_factory = sqlite3.Row
        return [[dict(row) for row in db.execute(sql, parameters)] for sql, parameters in queries]
