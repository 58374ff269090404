"""The customer directory on SQLite: look-ups by phone and account, writes, PIN hashing, records."""

import sqlite3
import threading
from datetime import date
from decimal import Decimal

import pytest

from acd.context import directory as directory_module
from acd.context.directory import (
    DEFAULT_PIN_ITERATIONS, CustomerDirectory, hash_pin, pin_matches,
)
from acd.context.records import (
    Customer, DuplicateAccountNumber, InvalidPin, Order, PhoneAlreadyUsed, RecordOfAnotherCustomer, Ticket,
    UnknownCustomer,
)

FAST = 1_000  # PBKDF2 iterations for tests only; the default stays DEFAULT_PIN_ITERATIONS


@pytest.fixture
def path(tmp_path):
    return tmp_path / "customers.db"


@pytest.fixture
def directory(path):
    directory = CustomerDirectory(path, pin_iterations=FAST)
    yield directory
    directory.close()


def customer(customer_id="C1", **changes):
    fields = dict(id=customer_id, name="Eleanor Whitfield", tier="vip", language="en", account_number="ACC-1",
                  account_owner="1001", region="london", product="broadband",
                  phones=("+442079460018", "5550100"))
    fields.update(changes)
    return Customer(**fields)


def order(order_id="12345", customer_id="C1", status="shipped", eta=date(2026, 12, 2), total=Decimal("249.99")):
    return Order(order_id=order_id, customer_id=customer_id, status=status, eta=eta, total=total)


def test_find_by_phone_matches_any_way_the_number_is_written(directory):
    directory.upsert_customer(customer())
    for raw in ("+442079460018", "+44 20 7946 0018", "020 7946 0018", "0044 20 7946 0018", "442079460018"):
        assert directory.find_by_phone(raw).id == "C1", raw


def test_short_test_numbers_match_exactly(directory):
    directory.upsert_customer(customer())
    assert directory.find_by_phone("5550100").id == "C1"
    assert directory.find_by_phone("555010") is None
    assert directory.find_by_phone("15550100") is None


@pytest.mark.parametrize("caller_id", ["anonymous", "", "Restricted", "+44", "020 7946 0019"])
def test_find_by_phone_returns_none_for_unknown_or_unparseable_caller_ids_and_never_raises(directory, caller_id):
    directory.upsert_customer(customer())
    assert directory.find_by_phone(caller_id) is None


def test_find_by_phone_uses_the_directory_default_country_code(path):
    directory = CustomerDirectory(path, default_country_code="1", pin_iterations=FAST)
    directory.upsert_customer(customer(phones=("+15551234567",)))
    assert directory.find_by_phone("(555) 123-4567").id == "C1"


def test_find_by_account_ignores_surrounding_spaces_and_returns_none_when_unknown(directory):
    directory.upsert_customer(customer())
    assert directory.find_by_account(" ACC-1 ").id == "C1"
    assert directory.find_by_account("ACC-2") is None
    assert directory.find_by_account("") is None


def test_a_customer_read_back_is_the_customer_written_with_its_open_orders(directory):
    stored = directory.upsert_customer(customer(), orders=[order()])
    assert stored == customer(open_orders=(order(),))
    assert directory.customer("C1") == stored
    assert directory.customer("C2") is None


def test_upsert_updates_fields_and_replaces_phones_without_duplicating(directory, path):
    directory.upsert_customer(customer())
    directory.upsert_customer(customer(name="Eleanor Whitfield-Jones", phones=("+447700900123",)))
    assert directory.customer("C1").name == "Eleanor Whitfield-Jones"
    assert directory.find_by_phone("020 7946 0018") is None
    assert directory.find_by_phone("07700 900123").id == "C1"
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT count(*) FROM customers").fetchone() == (1,)
    assert connection.execute("SELECT count(*) FROM customer_phones").fetchone() == (1,)


def test_a_phone_of_another_customer_is_refused_and_nothing_is_written(directory):
    directory.upsert_customer(customer())
    with pytest.raises(PhoneAlreadyUsed, match=r"\+442079460018 already belongs to customer C1") as caught:
        directory.upsert_customer(customer("C2", account_number="ACC-2", phones=("+447700900999", "+442079460018")))
    assert caught.value.error_id == "phone-already-used"
    assert directory.customer("C2") is None
    assert directory.find_by_phone("07700 900999") is None


def test_a_duplicate_account_number_is_refused(directory):
    directory.upsert_customer(customer())
    with pytest.raises(DuplicateAccountNumber, match="ACC-1 already belongs to customer C1"):
        directory.upsert_customer(customer("C2", phones=()))
    assert directory.customer("C2") is None


def test_customers_without_account_numbers_can_coexist(directory):
    directory.upsert_customer(customer("C1", account_number=None, phones=()))
    directory.upsert_customer(customer("C2", account_number=None, phones=()))
    assert directory.customer("C2") is not None


def test_open_orders_are_soonest_first_and_closed_orders_are_left_out(directory):
    directory.upsert_customer(customer(), orders=[
        order("A", eta=date(2026, 12, 9)), order("B", eta=None, status="processing"),
        order("C", eta=date(2026, 12, 1), status="pending"), order("D", status="delivered"),
        order("E", status="cancelled"),
    ])
    assert [o.order_id for o in directory.open_orders("C1")] == ["C", "A", "B"]
    context = directory.customer("C1").context()
    assert (context["open_orders"], context["first_open_order"]) == (3, "C")
    assert directory.order("D").status == "delivered"
    assert directory.order("nope") is None


def test_upsert_order_updates_status_and_refuses_unknown_customers_and_foreign_ids(directory):
    directory.upsert_customer(customer(), orders=[order()])
    directory.upsert_order(order(status="delivered"))
    assert directory.open_orders("C1") == []
    with pytest.raises(UnknownCustomer):
        directory.upsert_order(order("X", customer_id="C9"))
    directory.upsert_customer(customer("C2", account_number="ACC-2", phones=()))
    with pytest.raises(RecordOfAnotherCustomer, match="order 12345 belongs to customer C1"):
        directory.upsert_order(order(customer_id="C2"))


def test_tickets_are_stored_and_open_ones_listed(directory):
    directory.upsert_customer(customer(), tickets=[
        Ticket(ticket_id="T1", customer_id="C1", status="open", subject="Router keeps rebooting"),
        Ticket(ticket_id="T2", customer_id="C1", status="closed", subject="Bill query"),
    ])
    directory.upsert_ticket(Ticket(ticket_id="T3", customer_id="C1", status="pending", subject="Engineer visit"))
    assert [t.ticket_id for t in directory.open_tickets("C1")] == ["T1", "T3"]
    assert directory.ticket("T2").subject == "Bill query"


def test_record_last_agent_is_kept_across_a_later_upsert_without_one(directory):
    directory.upsert_customer(customer())
    directory.record_last_agent("C1", "1001", 1_780_000_000.5)
    directory.upsert_customer(customer(name="E. Whitfield"))
    stored = directory.customer("C1")
    assert (stored.last_agent, stored.last_agent_at) == ("1001", 1_780_000_000.5)
    with pytest.raises(UnknownCustomer) as caught:
        directory.record_last_agent("C9", "1001", 0.0)
    assert caught.value.error_id == "no-such-customer"


def test_context_has_exactly_the_ivr_fields_and_never_the_pin(directory):
    directory.upsert_customer(customer(), pin="4821", orders=[order()])
    context = directory.find_by_phone("020 7946 0018").context()
    assert context == {
        "id": "C1", "name": "Eleanor Whitfield", "tier": "vip", "language": "en", "account_number": "ACC-1",
        "account_owner": "1001", "last_agent": None, "last_agent_at": None, "region": "london",
        "product": "broadband", "open_orders": 1, "first_open_order": "12345", "verified": False,
    }
    assert "4821" not in repr(directory.customer("C1"))


def test_pins_are_stored_only_as_salted_pbkdf2_hashes(directory, path):
    directory.upsert_customer(customer(), pin="4821")
    directory.upsert_customer(customer("C2", account_number="ACC-2", phones=()), pin="4821")
    hashes = [h for (h,) in sqlite3.connect(path).execute("SELECT pin_hash FROM customers ORDER BY id")]
    assert hashes[0] != hashes[1], "same PIN, different salt, different hash"
    for stored in hashes:
        scheme, iterations, salt, derived = stored.split("$")
        assert (scheme, int(iterations)) == ("pbkdf2_sha256", FAST) and "4821" not in stored
    assert b"4821" not in path.read_bytes()


def test_verify_pin_accepts_the_right_pin_only(directory):
    directory.upsert_customer(customer(), pin="4821")
    assert directory.verify_pin("C1", "4821")
    assert not directory.verify_pin("C1", "4822")
    assert not directory.verify_pin("C1", "")
    assert not directory.verify_pin("C1", "48210")
    assert not directory.verify_pin("C9", "4821")


def test_verify_pin_is_false_when_no_pin_is_set_even_for_the_decoy_pin(directory):
    directory.upsert_customer(customer())
    assert not directory.verify_pin("C1", "0000")


def test_verify_pin_always_ends_in_a_constant_time_comparison(directory, monkeypatch):
    """Right PIN, wrong PIN, no PIN set, no such customer: each compares with hmac.compare_digest."""
    calls = []
    real = directory_module.hmac.compare_digest
    monkeypatch.setattr(directory_module.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    directory.upsert_customer(customer(), pin="4821")
    directory.upsert_customer(customer("C2", account_number="ACC-2", phones=()))
    results = [directory.verify_pin("C1", "4821"), directory.verify_pin("C1", "1111"),
               directory.verify_pin("C2", "1111"), directory.verify_pin("C9", "1111")]
    assert results == [True, False, False, False]
    assert len(calls) == 4


def test_set_pin_replaces_the_pin_and_refuses_bad_pins_and_unknown_customers(directory):
    directory.upsert_customer(customer(), pin="4821")
    directory.set_pin("C1", "13579")
    assert directory.verify_pin("C1", "13579") and not directory.verify_pin("C1", "4821")
    for bad in ("123", "123456789", "12a4", "١٢٣٤"):
        with pytest.raises(InvalidPin, match="4-8 digits"):
            directory.set_pin("C1", bad)
    with pytest.raises(UnknownCustomer):
        directory.set_pin("C9", "1234")


def test_an_upsert_without_a_pin_keeps_the_stored_pin(directory):
    directory.upsert_customer(customer(), pin="4821")
    directory.upsert_customer(customer(name="E. Whitfield"))
    assert directory.verify_pin("C1", "4821")


def test_hashes_made_with_another_iteration_count_still_verify():
    assert pin_matches("4821", hash_pin("4821", iterations=1234))
    assert not pin_matches("4821", "pbkdf2_sha256$1000$not-base64$x")
    assert not pin_matches("4821", "md5$1$AA==$AA==")


def test_the_default_iteration_count_is_at_least_100k(path):
    assert DEFAULT_PIN_ITERATIONS >= 100_000
    assert CustomerDirectory(path).pin_iterations == DEFAULT_PIN_ITERATIONS


def test_records_refuse_bad_values():
    with pytest.raises(ValueError, match="tier 'platinum'"):
        customer(tier="platinum")
    with pytest.raises(ValueError, match="not in canonical form"):
        customer(phones=("020 7946 0018",))
    with pytest.raises(ValueError, match="language"):
        customer(language="English")
    with pytest.raises(ValueError, match="order status"):
        order(status="lost")
    with pytest.raises(ValueError, match="go together"):
        customer(last_agent="1001")


def test_the_database_is_in_wal_mode_and_survives_reopening(directory, path):
    directory.upsert_customer(customer(), pin="4821", orders=[order()])
    directory.close()
    reopened = CustomerDirectory(path, pin_iterations=FAST)
    assert reopened.find_by_account("ACC-1").open_orders == (order(),)
    assert reopened.verify_pin("C1", "4821")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_look_ups_work_from_the_shells_thread_pool(directory):
    directory.upsert_customer(customer())
    found = []
    workers = [threading.Thread(target=lambda: found.append(directory.find_by_phone("020 7946 0018").id))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert found == ["C1"] * 4
