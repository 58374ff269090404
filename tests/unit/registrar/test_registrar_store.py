"""Bindings persisted (SQLite, then PostgreSQL: `store_location` in tests/conftest.py): save, load, delete,
survive reopening, one transaction per REGISTER."""

import pytest

from acd.registrar.bindings import Binding, BindingTable
from acd.store.backends import open_binding_store
from acd.store.bindings_store import BindingStore

T0 = 1000.0


def binding(contact="sip:1001@192.0.2.10:5060", aor="sip:1001@acd.example", **changes):
    fields = dict(aor=aor, contact=contact, expires_at=T0 + 3600, call_id="call-1", cseq=1,
                  source=("198.51.100.7", 40000), transport="UDP", user_agent="Zoiper 5", q=0.5, updated_at=T0)
    fields.update(changes)
    return Binding(**fields)


@pytest.fixture
def path(store_location):
    return store_location


def test_save_then_load_gives_the_same_binding(path):
    store = open_binding_store(path)
    store.save(binding())
    assert store.load_all() == [binding()]


def test_save_replaces_the_row_of_the_same_aor_and_contact(path):
    store = open_binding_store(path)
    store.save(binding())
    store.save(binding(cseq=2, expires_at=T0 + 7200))
    assert store.load_all() == [binding(cseq=2, expires_at=T0 + 7200)]


def test_delete_removes_one_binding_and_ignores_missing_ones(path):
    store = open_binding_store(path)
    store.save(binding())
    store.save(binding("sip:1001@192.0.2.11"))
    store.delete("sip:1001@acd.example", "sip:1001@192.0.2.10:5060")
    store.delete("sip:1001@acd.example", "sip:never@saved")
    assert [b.contact for b in store.load_all()] == ["sip:1001@192.0.2.11"]


def test_bindings_survive_reopening_the_file(path):
    store = open_binding_store(path)
    store.save(binding())
    store.close()
    assert open_binding_store(path).load_all() == [binding()]


def test_database_uses_wal(tmp_path):
    store = BindingStore(tmp_path / "acd.db")
    assert store._db.journal_mode == "wal"


def test_save_changes_is_one_transaction(path):
    """A failure in the middle of one REGISTER's changes leaves the stored bindings as they were."""
    store = open_binding_store(path)
    store.save(binding())

    def broken():
        yield binding("sip:new@192.0.2.20")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        store.save_changes(saved=broken(), deleted=[binding()])
    assert store.load_all() == [binding()]


def test_restart_round_trip_through_the_table(path):
    """The shell's loop: apply -> save_changes; on restart load_all -> restore -> delete the expired."""
    table, store = BindingTable(), open_binding_store(path)
    for contact, expires in (("sip:a@192.0.2.1", 60), ("sip:b@192.0.2.2", 600)):
        outcome = table.apply("sip:1001@acd.example", [(contact, expires, 1.0)], None, contact, 1,
                              ("192.0.2.1", 5060), "UDP", "", T0)
        store.save_changes(saved=outcome.added + outcome.refreshed, deleted=outcome.removed)
    store.close()

    store = open_binding_store(path)
    table = BindingTable()
    for gone in table.restore(store.load_all(), T0 + 100):
        store.delete(gone.aor, gone.contact)
    assert [b.contact for b in table.lookup("sip:1001@acd.example", T0 + 100)] == ["sip:b@192.0.2.2"]
    assert [b.contact for b in store.load_all()] == ["sip:b@192.0.2.2"]


def test_the_path_of_a_binding_survives_the_store(path):
    """RFC 3327: a binding made through a proxy keeps its Path across a restart (both backends)."""
    through = binding(path=("<sip:127.0.0.10:5060;lr>", "<sip:edge.example.net;lr;received=sip:192.0.2.7:41000>"))
    store = open_binding_store(path)
    store.save_changes(saved=[through, binding("sip:1001@192.0.2.11")])
    store.close()
    assert open_binding_store(path).load_all() == [through, binding("sip:1001@192.0.2.11")]


def test_a_table_from_before_the_path_column_gets_it_and_keeps_its_rows(store_location):
    """Opening a bindings table made before Path support adds the column; its rows load with no Path."""
    columns = ("aor text NOT NULL, contact text NOT NULL, expires_at double precision NOT NULL, call_id text NOT NULL, "
               "cseq bigint NOT NULL, source_host text NOT NULL, source_port bigint NOT NULL, transport text NOT NULL, "
               "user_agent text NOT NULL, q double precision NOT NULL, updated_at double precision NOT NULL, "
               "PRIMARY KEY (aor, contact)")
    row = ("sip:1001@acd.example", "sip:1001@192.0.2.10:5060", T0 + 3600, "call-1", 1, "198.51.100.7", 40000, "UDP",
           "Zoiper 5", 0.5, T0)
    if isinstance(store_location, str):
        from acd.store.pg_sql import connect

        with connect(store_location, application_name="acd-test") as conn:
            conn.execute(f"CREATE TABLE bindings ({columns})")
            conn.execute("INSERT INTO bindings VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
    else:
        import sqlite3

        with sqlite3.connect(store_location) as conn:
            conn.execute(f"CREATE TABLE bindings ({columns})")
            conn.execute("INSERT INTO bindings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        conn.close()
    store = open_binding_store(store_location)
    assert store.load_all() == [binding()]
    store.save(binding(path=("<sip:127.0.0.10;lr>",)))
    assert store.load_all() == [binding(path=("<sip:127.0.0.10;lr>",))]
