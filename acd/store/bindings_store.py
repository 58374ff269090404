"""Registrar bindings on disk, so agents stay registered across a server restart.

One row per (aor, contact). Each method is one transaction: `save_changes` writes all the effects of
one REGISTER at once, as RFC 3261 §10.3 step 7 asks ("committed ... if and only if all binding
updates and additions succeed"). The `path` column (RFC 3327 Path values, a JSON list; added to an
older table when opened) came later: a row without it is a binding made without a proxy in front.
WAL mode lets readers (an admin tool, a backup) work while the server writes, and makes each commit
one sequential append.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import sqlite_utils

from acd.registrar.bindings import Binding

__all__ = ["BindingStore", "TABLE", "binding_row", "binding_from_row"]

TABLE = "bindings"
_COLUMNS = {
    "aor": str, "contact": str, "expires_at": float, "call_id": str, "cseq": int, "source_host": str,
    "source_port": int, "transport": str, "user_agent": str, "q": float, "updated_at": float, "path": str,
}


def binding_row(binding: Binding) -> dict:
    """One binding as a row of the table (both backends)."""
    host, port = binding.source
    return {
        "aor": binding.aor, "contact": binding.contact, "expires_at": binding.expires_at,
        "call_id": binding.call_id, "cseq": binding.cseq, "source_host": host, "source_port": port,
        "transport": binding.transport, "user_agent": binding.user_agent, "q": binding.q,
        "updated_at": binding.updated_at, "path": json.dumps(list(binding.path)) if binding.path else "",
    }


def binding_from_row(row: dict) -> Binding:
    """The binding a row of the table holds (both backends)."""
    return Binding(
        aor=row["aor"], contact=row["contact"], expires_at=row["expires_at"], call_id=row["call_id"],
        cseq=row["cseq"], source=(row["source_host"], row["source_port"]), transport=row["transport"],
        user_agent=row["user_agent"], q=row["q"], updated_at=row["updated_at"],
        path=tuple(json.loads(row["path"])) if row.get("path") else (),
    )


class BindingStore:
    """The `bindings` table of the SQLite file at `path` (created with its table if missing)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite_utils.Database(path)
        self._db.enable_wal()
        self._table = self._db.table(TABLE)
        if not self._table.exists():
            self._table.create(_COLUMNS, pk=("aor", "contact"), not_null=set(_COLUMNS), defaults={"path": ""})
        elif "path" not in self._table.columns_dict:
            self._table.add_column("path", str, not_null_default="")

    def save(self, binding: Binding) -> None:
        """Insert or replace one binding."""
        self.save_changes(saved=[binding])

    def delete(self, aor: str, contact: str) -> None:
        """Remove one binding; removing a missing one is not an error."""
        with self._db.atomic():
            self._table.delete_where("aor = ? AND contact = ?", [aor, contact])

    def save_changes(self, *, saved: Iterable[Binding] = (), deleted: Iterable[Binding] = ()) -> None:
        """Apply one REGISTER's effects (`outcome.added + outcome.refreshed`, `outcome.removed`) atomically."""
        with self._db.atomic():
            for binding in deleted:
                self._table.delete_where("aor = ? AND contact = ?", [binding.aor, binding.contact])
            rows = [binding_row(binding) for binding in saved]
            if rows:
                self._table.upsert_all(rows, pk=("aor", "contact"))

    def load_all(self) -> list[Binding]:
        """Every stored binding, expired ones included (`BindingTable.restore` sorts them out)."""
        return [binding_from_row(row) for row in self._table.rows_where(order_by="aor, contact")]

    def close(self) -> None:
        """Close the database file."""
        self._db.close()
