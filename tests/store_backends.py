"""Helpers for tests that run against both store backends (`store_location` in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acd.store.backends import open_record_store
from acd.store.location import is_postgresql
from acd.store.records import open_for_reading


def open_records(location: str | Path, **options: Any):
    """The records store at `location` with its writer thread in this process (RecordStore or PgRecordStore)."""
    return open_record_store(location, in_process=True, **options)


def read_rows(location: str | Path, sql: str, *parameters: Any) -> list[dict]:
    """Rows of SQLite-flavoured `sql` (`?` placeholders) from a reader connection of our own, as dicts."""
    reader = open_for_reading(location)
    try:
        return [dict(row) for row in reader.query(sql, parameters)]
    finally:
        reader.close()


def backend(location: str | Path) -> str:
    """"postgresql" or "sqlite"."""
    return "postgresql" if is_postgresql(location) else "sqlite"
