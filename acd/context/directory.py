"""The customer directory: customers, their phones, orders and tickets in SQLite (sqlite-utils).

Rules of this file:
- Methods are synchronous; the Twisted shell calls them through its thread pool (`deferToThread`),
  never on the reactor thread. One connection (`check_same_thread=False`) is shared under a lock;
  each public method holds the lock for its SQL only, and PBKDF2 runs outside it so a PIN check
  never blocks caller-ID look-ups. Look-ups take well under a millisecond, so one connection is
  enough; WAL lets `acd customers import` (another process) write while the server reads.
- Each write method is one transaction: a customer, their phones, PIN, orders and tickets commit
  together or not at all (`upsert_customer` is the importer's unit: one row, one transaction).
- PINs are never stored. `pin_hash` is "pbkdf2_sha256$<iterations>$<salt>$<hash>" (base64): PBKDF2
  (RFC 8018 §5.2) with HMAC-SHA256 and a fresh 16-byte salt per customer, so the same PIN hashes
  differently for two customers. The iteration count is stored in the hash, so raising the default
  later does not invalidate existing PINs. Be honest about what this buys: a 4-digit PIN has 10,000
  values, so anyone holding the database file can still try them all (10,000 x 0.13 s). The hash
  keeps PINs out of backups, logs and SELECT output; the IVR's attempt limit is the real protection.
- Look-ups never raise for an odd caller ID ("anonymous", empty): no match is `None`, so caller-ID
  look-up can never fail a call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Iterable

import sqlite_utils

from .phone import normalise_e164
from .records import (
    OPEN_ORDER_STATUSES, OPEN_TICKET_STATUSES, Customer, DuplicateAccountNumber, InvalidPin, Order, PhoneAlreadyUsed,
    RecordOfAnotherCustomer, Ticket, UnknownCustomer,
)

__all__ = [
    "CustomerDirectory", "hash_pin", "pin_matches", "check_pin_format",
    "DEFAULT_PIN_ITERATIONS", "PIN_MIN_DIGITS", "PIN_MAX_DIGITS", "PIN_SALT_BYTES", "PIN_HASH_SCHEME",
]

# OWASP Password Storage Cheat Sheet (2023): PBKDF2-HMAC-SHA256 with 600,000 iterations (Django 4.2
# uses the same). About 0.13 s per hash here, so an import of n customers with PINs takes ~n x 0.13 s.
DEFAULT_PIN_ITERATIONS = 600_000
# A stored hash claiming more iterations than this is corrupt (it would pin a worker thread for minutes).
MAX_PIN_ITERATIONS = 10_000_000
# NIST SP 800-132 §5.1: the salt shall be at least 128 bits, from an approved random generator.
PIN_SALT_BYTES = 16
PIN_HASH_SCHEME = "pbkdf2_sha256"
# Bank-card PINs are 4 to 12 digits (ISO 9564-1); phone keypads and callers cope with 4 to 8.
PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8

_CUSTOMER_COLUMNS = {
    "id": str, "name": str, "tier": str, "language": str, "account_number": str, "pin_hash": str,
    "account_owner": str, "last_agent": str, "last_agent_at": float, "region": str, "product": str,
}
_PHONE_COLUMNS = {"phone": str, "customer_id": str}
_ORDER_COLUMNS = {"order_id": str, "customer_id": str, "status": str, "eta": str, "total": str}
_TICKET_COLUMNS = {"ticket_id": str, "customer_id": str, "status": str, "subject": str}
_CUSTOMER_FK = [("customer_id", "customers", "id")]
_OPEN_ORDERS = sorted(OPEN_ORDER_STATUSES)
_OPEN_TICKETS = sorted(OPEN_TICKET_STATUSES)


def check_pin_format(pin: str) -> None:
    """Raise InvalidPin unless `pin` is PIN_MIN_DIGITS..PIN_MAX_DIGITS ASCII digits."""
    if not (isinstance(pin, str) and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS
            and all("0" <= ch <= "9" for ch in pin)):
        raise InvalidPin(f"PIN must be {PIN_MIN_DIGITS}-{PIN_MAX_DIGITS} digits")


def hash_pin(pin: str, *, iterations: int = DEFAULT_PIN_ITERATIONS, salt: bytes | None = None) -> str:
    """The stored form of `pin`: "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>"."""
    check_pin_format(pin)
    if not 1 <= iterations <= MAX_PIN_ITERATIONS:
        raise ValueError(f"PBKDF2 iterations must be 1..{MAX_PIN_ITERATIONS}")
    salt = secrets.token_bytes(PIN_SALT_BYTES) if salt is None else salt
    derived = hashlib.pbkdf2_hmac("sha256", pin.encode("ascii"), salt, iterations)
    return "$".join((PIN_HASH_SCHEME, str(iterations), _b64(salt), _b64(derived)))


def pin_matches(pin: str, encoded: str) -> bool:
    """Whether `pin` gives `encoded` (from `hash_pin`); compares with `hmac.compare_digest`.

    A malformed PIN or hash is simply no match: this answers a caller, it does not validate input.
    """
    try:
        scheme, iterations_text, salt_text, expected_text = encoded.split("$")
        iterations = int(iterations_text)
        salt, expected = base64.b64decode(salt_text, validate=True), base64.b64decode(expected_text, validate=True)
    except (AttributeError, ValueError):
        return False
    if scheme != PIN_HASH_SCHEME or not 1 <= iterations <= MAX_PIN_ITERATIONS:
        return False
    candidate = pin.encode("ascii", "replace") if isinstance(pin, str) else b""
    derived = hashlib.pbkdf2_hmac("sha256", candidate, salt, iterations)
    # Constant time: how long the comparison takes says nothing about how many bytes matched.
    return hmac.compare_digest(derived, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class CustomerDirectory:
    """The directory in the SQLite file at `path` (created with its tables if missing).

    `default_country_code` reads national caller IDs ("020 7946 0018"); `pin_iterations` is the
    PBKDF2 count for new PIN hashes (tests lower it; production keeps the default);
    `busy_timeout` (seconds) is how long a write waits for another process's transaction.
    """

    def __init__(self, path: str | Path, *, default_country_code: str = "44",
                 pin_iterations: int = DEFAULT_PIN_ITERATIONS, busy_timeout: float = 5.0) -> None:
        normalise_e164("+442079460018", default_country_code)  # refuses a bad country code now
        if not 1 <= pin_iterations <= MAX_PIN_ITERATIONS:
            raise ValueError(f"pin_iterations must be 1..{MAX_PIN_ITERATIONS}")
        self.path = Path(path)
        self.default_country_code = default_country_code
        self.pin_iterations = pin_iterations
        self._lock = threading.RLock()
        self._db = sqlite_utils.Database(sqlite3.connect(str(self.path), timeout=busy_timeout,
                                                         check_same_thread=False))
        self._db.enable_wal()
        self._db.execute("PRAGMA foreign_keys = ON")
        # A dummy hash to check against when there is no real one, so "no such customer" and
        # "no PIN set" take as long as a wrong PIN.
        self._decoy_hash = hash_pin("0000", iterations=pin_iterations)
        with self._lock, self._db.atomic():
            self._create_schema()

    def _create_schema(self) -> None:
        db = self._db
        if not db["customers"].exists():
            db["customers"].create(_CUSTOMER_COLUMNS, pk="id", not_null={"id", "name", "tier", "language"})
            # SQLite lets several rows hold NULL in a UNIQUE column: customers without an account number.
            db["customers"].create_index(["account_number"], unique=True)
        for name, columns, pk in (("customer_phones", _PHONE_COLUMNS, "phone"),
                                  ("orders", _ORDER_COLUMNS, "order_id"),
                                  ("tickets", _TICKET_COLUMNS, "ticket_id")):
            if not db[name].exists():
                not_null = {pk, "customer_id"} | ({"status"} if "status" in columns else set())
                db[name].create(columns, pk=pk, not_null=not_null, foreign_keys=_CUSTOMER_FK)
                db[name].create_index(["customer_id"])

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    # -- look-ups ---------------------------------------------------------------------------------

    def find_by_phone(self, raw: str) -> Customer | None:
        """The customer with this phone, however it is written; None when unknown or not a number.

        Short test/internal numbers (fewer than 8 digits) match exactly as stored.
        """
        try:
            phone = normalise_e164(raw, self.default_country_code)
        except ValueError:
            return None
        with self._lock:
            row = self._db.execute("SELECT customer_id FROM customer_phones WHERE phone = ?", [phone]).fetchone()
            return self._load(row[0]) if row else None

    def find_by_account(self, account_number: str) -> Customer | None:
        """The customer with this account number (surrounding spaces ignored), or None."""
        if not isinstance(account_number, str) or not account_number.strip():
            return None
        with self._lock:
            row = self._db.execute("SELECT id FROM customers WHERE account_number = ?",
                                   [account_number.strip()]).fetchone()
            return self._load(row[0]) if row else None

    def customer(self, customer_id: str) -> Customer | None:
        """The customer with this id, or None."""
        with self._lock:
            return self._load(customer_id)

    def open_orders(self, customer_id: str) -> list[Order]:
        """The customer's open orders, soonest eta first (no eta last), then by order id."""
        with self._lock:
            return self._open_orders(customer_id)

    def order(self, order_id: str) -> Order | None:
        """One order by id (any status), or None."""
        with self._lock:
            rows = list(self._db["orders"].rows_where("order_id = ?", [order_id]))
        return _order(rows[0]) if rows else None

    def open_tickets(self, customer_id: str) -> list[Ticket]:
        """The customer's open or pending tickets, by ticket id."""
        with self._lock:
            rows = list(self._db["tickets"].rows_where(
                f"customer_id = ? AND status IN ({_marks(_OPEN_TICKETS)})", [customer_id, *_OPEN_TICKETS],
                order_by="ticket_id"))
        return [Ticket(**row) for row in rows]

    def ticket(self, ticket_id: str) -> Ticket | None:
        """One ticket by id (any status), or None."""
        with self._lock:
            rows = list(self._db["tickets"].rows_where("ticket_id = ?", [ticket_id]))
        return Ticket(**rows[0]) if rows else None

    def verify_pin(self, customer_id: str, pin: str) -> bool:
        """Whether `pin` is this customer's PIN. False for a wrong PIN, no PIN set, or no such customer.

        All three cost one PBKDF2 run and end in `hmac.compare_digest`, so timing tells them apart no
        better than the answer does.
        """
        with self._lock:
            row = self._db.execute("SELECT pin_hash FROM customers WHERE id = ?", [customer_id]).fetchone()
        encoded = row[0] if row and row[0] else None
        matched = pin_matches(pin, encoded if encoded else self._decoy_hash)
        return matched and encoded is not None

    # -- writes -------------------------------------------------------------------------------------

    def upsert_customer(self, customer: Customer, *, pin: str | None = None, orders: Iterable[Order] = (),
                        tickets: Iterable[Ticket] = ()) -> Customer:
        """Insert or update `customer` with its phones, PIN, orders and tickets, in one transaction.

        The customer's fields and phones replace what was stored (the phones a customer no longer
        has are removed). `last_agent`/`last_agent_at` are kept when `customer` has none (they are
        written at run time by `record_last_agent`). `pin=None` keeps the stored PIN. Orders and
        tickets are inserted or updated by id, never removed.
        Raises DuplicateAccountNumber, PhoneAlreadyUsed or RecordOfAnotherCustomer (nothing written).
        """
        orders, tickets = tuple(orders), tuple(tickets)
        for record in orders + tickets:
            if record.customer_id != customer.id:
                raise RecordOfAnotherCustomer(f"{_describe(record)} is for customer {record.customer_id}, "
                                              f"not {customer.id}", customer_id=customer.id)
        pin_hash = hash_pin(pin, iterations=self.pin_iterations) if pin is not None else None
        with self._lock, self._db.atomic():
            self._check_account_number(customer)
            self._check_phones(customer)
            self._check_records(customer.id, orders, tickets)
            row = {name: getattr(customer, name) for name in _CUSTOMER_COLUMNS if name != "pin_hash"}
            if customer.last_agent is None:
                del row["last_agent"], row["last_agent_at"]
            if pin_hash is not None:
                row["pin_hash"] = pin_hash
            self._db["customers"].upsert(row, pk="id")
            self._db["customer_phones"].delete_where("customer_id = ?", [customer.id])
            self._db["customer_phones"].insert_all(
                [{"phone": phone, "customer_id": customer.id} for phone in customer.phones], pk="phone")
            self._db["orders"].upsert_all([_order_row(order) for order in orders], pk="order_id")
            self._db["tickets"].upsert_all([_ticket_row(ticket) for ticket in tickets], pk="ticket_id")
            return self._load(customer.id)

    def upsert_order(self, order: Order) -> None:
        """Insert or update one order of an existing customer."""
        with self._lock, self._db.atomic():
            self._require(order.customer_id)
            self._check_records(order.customer_id, (order,), ())
            self._db["orders"].upsert(_order_row(order), pk="order_id")

    def upsert_ticket(self, ticket: Ticket) -> None:
        """Insert or update one ticket of an existing customer."""
        with self._lock, self._db.atomic():
            self._require(ticket.customer_id)
            self._check_records(ticket.customer_id, (), (ticket,))
            self._db["tickets"].upsert(_ticket_row(ticket), pk="ticket_id")

    def set_pin(self, customer_id: str, pin: str) -> None:
        """Store a new PIN (hashed with a fresh salt). Raises InvalidPin or UnknownCustomer."""
        pin_hash = hash_pin(pin, iterations=self.pin_iterations)
        with self._lock, self._db.atomic():
            self._require(customer_id)
            self._db["customers"].update(customer_id, {"pin_hash": pin_hash})

    def record_last_agent(self, customer_id: str, agent_id: str, at: float) -> None:
        """Remember that `agent_id` served this customer at `at` (POSIX seconds): the sticky target."""
        if not isinstance(agent_id, str) or not agent_id:
            raise ValueError(f"agent id must be non-empty text, not {agent_id!r}")
        with self._lock, self._db.atomic():
            self._require(customer_id)
            self._db["customers"].update(customer_id, {"last_agent": agent_id, "last_agent_at": float(at)})

    # -- checks (no effects) -------------------------------------------------------------------------

    def _require(self, customer_id: str) -> None:
        if self._db.execute("SELECT 1 FROM customers WHERE id = ?", [customer_id]).fetchone() is None:
            raise UnknownCustomer(f"no customer {customer_id!r}", customer_id=customer_id)

    def _check_account_number(self, customer: Customer) -> None:
        if customer.account_number is None:
            return
        row = self._db.execute("SELECT id FROM customers WHERE account_number = ? AND id != ?",
                               [customer.account_number, customer.id]).fetchone()
        if row:
            raise DuplicateAccountNumber(f"account number {customer.account_number} already belongs to "
                                         f"customer {row[0]}", account_number=customer.account_number,
                                         customer_id=row[0])

    def _check_phones(self, customer: Customer) -> None:
        for phone in customer.phones:
            row = self._db.execute("SELECT customer_id FROM customer_phones WHERE phone = ? AND customer_id != ?",
                                   [phone, customer.id]).fetchone()
            if row:
                raise PhoneAlreadyUsed(f"phone {phone} already belongs to customer {row[0]}",
                                       phone=phone, customer_id=row[0])

    def _check_records(self, customer_id: str, orders: tuple[Order, ...], tickets: tuple[Ticket, ...]) -> None:
        for table, key, records in (("orders", "order_id", orders), ("tickets", "ticket_id", tickets)):
            for record in records:
                row = self._db.execute(f"SELECT customer_id FROM {table} WHERE {key} = ?",
                                       [getattr(record, key)]).fetchone()
                if row and row[0] != customer_id:
                    raise RecordOfAnotherCustomer(f"{_describe(record)} belongs to customer {row[0]}",
                                                  customer_id=row[0])

    # -- reading rows --------------------------------------------------------------------------------

    def _load(self, customer_id: str) -> Customer | None:
        rows = list(self._db["customers"].rows_where("id = ?", [customer_id]))
        if not rows:
            return None
        row = rows[0]
        del row["pin_hash"]
        phones = tuple(phone for (phone,) in self._db.execute(
            "SELECT phone FROM customer_phones WHERE customer_id = ? ORDER BY rowid", [customer_id]))
        return Customer(**row, phones=phones, open_orders=tuple(self._open_orders(customer_id)))

    def _open_orders(self, customer_id: str) -> list[Order]:
        rows = self._db["orders"].rows_where(
            f"customer_id = ? AND status IN ({_marks(_OPEN_ORDERS)})", [customer_id, *_OPEN_ORDERS],
            order_by="eta IS NULL, eta, order_id")
        return [_order(row) for row in rows]


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values))


def _describe(record: Order | Ticket) -> str:
    return f"order {record.order_id}" if isinstance(record, Order) else f"ticket {record.ticket_id}"


def _order_row(order: Order) -> dict:
    return {"order_id": order.order_id, "customer_id": order.customer_id, "status": order.status,
            "eta": order.eta.isoformat() if order.eta else None,
            "total": str(order.total) if order.total is not None else None}


def _order(row: dict) -> Order:
    return Order(order_id=row["order_id"], customer_id=row["customer_id"], status=row["status"],
                 eta=date.fromisoformat(row["eta"]) if row["eta"] else None,
                 total=Decimal(row["total"]) if row["total"] is not None else None)


def _ticket_row(ticket: Ticket) -> dict:
    return {"ticket_id": ticket.ticket_id, "customer_id": ticket.customer_id, "status": ticket.status,
            "subject": ticket.subject}
