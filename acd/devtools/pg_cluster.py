"""A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temp dir, one server on
127.0.0.1 and a free port (its unix socket in the same dir), stopped and removed by `stop()`.

PostgreSQL refuses to run as root; when we are root (CI), the cluster belongs to an unprivileged
user (`nobody` by default) and its programs run through `runuser -u USER --`. The programs come from
the Debian package `postgresql` (scripts/setup installs it): PATH first, then /usr/lib/postgresql/*/bin.

    python -m acd.devtools.pg_cluster     # starts one, prints its URL, stops it on Enter
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PgCluster", "postgresql_programs", "unavailable_reason"]

SUPERUSER = "acd"  # the cluster's superuser role (trust authentication: loopback and its own socket only)


def postgresql_programs() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres; None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def unavailable_reason(run_as: str = "nobody") -> str | None:
    """None when a throwaway cluster can start here; otherwise why not (for a test skip)."""
    if postgresql_programs() is None:
        return "PostgreSQL is not installed (Debian package postgresql: scripts/setup installs it)"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pyproject dependency psycopg[binary]: run scripts/setup)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            return f"running as root and there is no user {run_as!r} to own the cluster"
        if shutil.which("runuser") is None:
            return "running as root without runuser to start the cluster as an unprivileged user"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PgCluster:
    """One throwaway cluster; `start()` then `url(database)` / `create_database(name)`, `stop()` at the end."""

    def __init__(self, *, fsync: bool = True, run_as: str = "nobody") -> None:
        """`fsync=False` for tests (nothing there depends on surviving a power loss; commits are
        faster); keep it for measurements."""
        self.fsync = fsync
        self.run_as = run_as if os.geteuid() == 0 else None
        self.directory: Path | None = None
        self.port = 0
        self._bin = postgresql_programs()

    def _run(self, program: str, *arguments: str, timeout: float = 60) -> None:
        command = [str(self._bin / program), *arguments]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd="/")
        if result.returncode != 0:
            log = self.directory / "server.log" if self.directory else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()} {tail}")

    def start(self) -> "PgCluster":
        """initdb and start the server; raises RuntimeError with its output when it cannot."""
        reason = unavailable_reason(self.run_as or "nobody")
        if reason is not None:
            raise RuntimeError(reason)
        self.directory = Path(tempfile.mkdtemp(prefix="acd-pg-"))
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--no-instructions")
        self.port = _free_port()
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c shared_buffers=16MB -c max_connections=40 "
                   f"-c fsync={'on' if self.fsync else 'off'} -c full_page_writes={'on' if self.fsync else 'off'}")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.directory / "server.log"), "-o", options, "-w",
                  "-t", "30", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        """The libpq URL of `database` on this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database `name`; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, name: str, database: str = "postgres") -> str:
        """Create an empty schema `name` in `database`: a URL whose search_path is that schema (a
        test's own namespace, made in milliseconds where a database takes a checkpoint)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url(database)}?options=-csearch_path%3D{name}"

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing whatever connection is still on it."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server at once and remove its directory (safe to call twice)."""
        if self.directory is None:
            return
        try:
            if (self.directory / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


if __name__ == "__main__":
    cluster = PgCluster().start()
    try:
        print(cluster.url(cluster.create_database("acd")))
        input("Enter stops and removes it: ")
    finally:
        cluster.stop()
