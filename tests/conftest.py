"""Fixtures for every test directory: the store backends. A store test that takes `store_location`
runs twice, against a SQLite file and against a fresh database in a throwaway PostgreSQL cluster
(one per test process, started on first use: `acd.devtools.pg_cluster`).

`--postgresql=auto` (default) runs the PostgreSQL half when initdb and psycopg are installed and
skips it, saying why, otherwise; `require` fails instead of skipping (CI); `off` skips it.
"""

from __future__ import annotations

import uuid

import pytest

from acd.devtools.pg_cluster import PgCluster, unavailable_reason


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--postgresql", choices=("auto", "require", "off"), default="auto",
                     help="run the store tests against PostgreSQL too: auto (when installed), require, off")


@pytest.fixture(scope="session")
def pg_cluster(request: pytest.FixtureRequest):
    """A throwaway PostgreSQL cluster for this test process (fsync off: nothing here needs a power-loss test)."""
    mode = request.config.getoption("--postgresql")
    if mode == "off":
        pytest.skip("PostgreSQL store tests are off (--postgresql=off)")
    reason = unavailable_reason()
    if reason is not None:
        if mode == "require":
            pytest.fail(f"--postgresql=require: {reason}")
        pytest.skip(reason)
    cluster = PgCluster(fsync=False).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A URL to an empty namespace of the cluster: a new schema, the URL's search_path (left for the
    cluster's removal to clean up)."""
    return pg_cluster.create_schema(f"t_{uuid.uuid4().hex[:16]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path):
    """Where a store test keeps its data: a SQLite file in tmp_path, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "records.db"
    return request.getfixturevalue("pg_url")
