"""SQLite-flavoured SQL for psycopg: the store's statements are written once, for SQLite.

`to_pg` rewrites, outside string literals: `?` -> `%s`, `:name` -> `%(name)s`, `[name]` -> `"name"`
and a literal `%` -> `%%` (psycopg's placeholder character). What differs beyond spelling (SQLite's
two-argument MAX, INSERT OR REPLACE) is written per backend where it is used, not translated here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["to_pg", "connect"]

_TOKEN = re.compile(r"\[(\w+)\]|(?<![:\w]):([A-Za-z_]\w*)|\?|%")


def _replace(match: re.Match) -> str:
    if match.group(1) is not None:
        return f'"{match.group(1)}"'
    if match.group(2) is not None:
        return f"%({match.group(2)})s"
    return "%s" if match.group(0) == "?" else "%%"


@lru_cache(maxsize=512)
def to_pg(sql: str) -> str:
    """`sql` with psycopg placeholders and PostgreSQL identifier quotes (cached: the statements are few)."""
    parts = sql.split("'")
    for index in range(len(parts)):
        parts[index] = _TOKEN.sub(_replace, parts[index]) if index % 2 == 0 else parts[index].replace("%", "%%")
    return "'".join(parts)


def connect(url: str, *, application_name: str, **options: Any):
    """A psycopg connection to `url`, autocommit (transactions are explicit), failing within 10 s."""
    import psycopg

    return psycopg.connect(url, autocommit=True, application_name=application_name, connect_timeout=10, **options)
