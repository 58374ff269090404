"""`store:` in conf/acd.yaml: absent (SQLite in data_dir), a postgresql:// URL, or a file:line error;
changing it needs a restart (the password never shows)."""

from dataclasses import replace

import pytest

from acd.config.changes import restart_required
from acd.config.loader import ConfigInvalid, load_config
from acd.store.location import bindings_location, describe, records_location

from tests.e2e.harness import write_config


def load(tmp_path, main_extra: str = ""):
    write_config(tmp_path, sip_port=5060, rtp_base=20000, main_extra=main_extra)
    return load_config(tmp_path)


def test_absent_means_sqlite_files_in_the_data_dir(tmp_path):
    config = load(tmp_path)
    assert config.store is None
    assert records_location(config.store, config.data_dir) == config.data_dir / "records.db"
    assert bindings_location(config.store, config.data_dir) == config.data_dir / "registrations.db"


def test_a_postgresql_url_is_the_location_of_every_table(tmp_path):
    config = load(tmp_path, "store: postgresql://acd@127.0.0.1:5432/acd\n")
    assert config.store == "postgresql://acd@127.0.0.1:5432/acd"
    assert records_location(config.store, config.data_dir) == bindings_location(config.store, config.data_dir) \
        == "postgresql://acd@127.0.0.1:5432/acd"


@pytest.mark.parametrize("value, needle", [
    ("mysql://acd@db/acd", "must start with postgresql://"),
    ("postgresql://acd@db:port/acd", "port of"),
    ("postgresql://acd:secret@db:5432/", "names no database"),
])
def test_a_bad_store_is_reported_at_its_line_without_the_password(tmp_path, value, needle):
    with pytest.raises(ConfigInvalid) as invalid:
        load(tmp_path, f"store: {value}\n")
    (error,) = [e for e in invalid.value.errors if "store" in e.message]
    assert needle in error.message and "secret" not in error.message
    assert (tmp_path / "conf" / "acd.yaml").read_text().splitlines()[error.line - 1].startswith("store:")


def test_changing_the_store_needs_a_restart(tmp_path):
    config = load(tmp_path)
    moved = replace(config, store="postgresql://acd:secret@db:5432/acd")
    assert restart_required(config, moved) == ["store 'SQLite' -> 'postgresql://acd:***@db:5432/acd'"]
    assert describe("postgresql://acd:secret@db:5432/acd") == "postgresql://acd:***@db:5432/acd"
