"""A reader's own connection to the PostgreSQL records (`acd report`, the call story, the desktop's
history): sqlite-utils' reading methods over psycopg, SQLite-flavoured SQL translated (`pg_sql.to_pg`).

Read-only: the session is `default_transaction_read_only`, so a reader can never write the records.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from .location import describe
from .pg_sql import connect, to_pg

__all__ = ["PgReader"]


class PgReader:
    """A read-only connection to the records database at `url`."""

    def __init__(self, url: str) -> None:
        """Connect; FileNotFoundError (as for a missing SQLite file) when the database has no records."""
        from psycopg.rows import dict_row

        try:
            self._conn = connect(url, application_name="acd-reader", row_factory=dict_row)
        except Exception as error:
            raise FileNotFoundError(f"no records database at {describe(url)}: {error}") from error
        self._conn.execute("SET default_transaction_read_only = on")
        if not self._conn.execute("SELECT to_regclass('calls') IS NOT NULL AS present").fetchone()["present"]:
            self._conn.close()
            raise FileNotFoundError(f"no records in {describe(url)} yet (no calls table): has the server run?")

    def query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] | None = None) -> Iterator[dict]:
        """The rows of `sql`, each a dict (as sqlite-utils' Database.query)."""
        yield from self._conn.execute(to_pg(sql), _parameters(params))

    def execute(self, sql: str, parameters: Iterable[Any] | Mapping[str, Any] | None = None) -> Any:
        """A cursor over `sql`'s rows; rows are tuples as with sqlite3 (`fetchone()[0]` works)."""
        cursor = self._conn.cursor(row_factory=_tuple_row())
        return cursor.execute(to_pg(sql), _parameters(parameters))

    def table_names(self) -> list[str]:
        """The tables of the records (in the connection's current schema, `public` unless the URL sets
        search_path)."""
        return [row["tablename"] for row in self._conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _tuple_row():
    from psycopg.rows import tuple_row

    return tuple_row


def _parameters(params: Iterable[Any] | Mapping[str, Any] | None) -> Any:
    if params is None or isinstance(params, Mapping):
        return params
    return list(params)
