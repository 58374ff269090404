"""Where the store lives: SQLite files in the data directory, or a PostgreSQL database.

`store:` in conf/acd.yaml is absent (SQLite: `data/records.db`, `data/registrations.db`) or a
libpq URL `postgresql://user@host:port/database` (every table in that one database). A location
is a `Path` (SQLite) or that URL as a `str`; `is_postgresql` tells them apart.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["POSTGRESQL_SCHEMES", "is_postgresql", "records_location", "bindings_location", "describe",
           "check_postgresql_url"]

POSTGRESQL_SCHEMES = ("postgresql", "postgres")


def is_postgresql(location: object) -> bool:
    """True for a `postgresql://` (or `postgres://`) URL."""
    return isinstance(location, str) and location.split("://", 1)[0] in POSTGRESQL_SCHEMES and "://" in location


def records_location(store: str | None, data_dir: Path) -> str | Path:
    """The call records: `store`'s database, or `data_dir/records.db`."""
    return store if store else Path(data_dir) / "records.db"


def bindings_location(store: str | None, data_dir: Path) -> str | Path:
    """The registrar bindings: `store`'s database, or `data_dir/registrations.db`."""
    return store if store else Path(data_dir) / "registrations.db"


def describe(location: str | Path) -> str:
    """The location for a log line or an error: a URL's password is replaced by ***."""
    if not is_postgresql(location):
        return str(location)
    parts = urlsplit(str(location))
    if parts.password is None:
        return str(location)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_postgresql_url(url: str) -> str | None:
    """None when `url` is a usable `postgresql://user@host:port/database`; otherwise what is wrong."""
    if not is_postgresql(url):
        return f"must start with postgresql:// (absent: SQLite files in data_dir), not {describe(url)!r}"
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        return f"port of {describe(url)!r} is not a number"
    if not parts.path.strip("/"):
        return f"{describe(url)!r} names no database: postgresql://user@host:port/DATABASE"
    return None
