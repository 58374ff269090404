"""What the customer directory hands out: frozen dataclasses that validate themselves, and its errors.

Rules of this file:
- A `Customer`, `Order` or `Ticket` that exists is valid: the constructor refuses a bad tier, a
  language that is not a language tag, a phone that is not in canonical form (`normalise_e164`).
  The importer relies on this: building the record *is* the row's validation.
- No PIN and no PIN hash ever appears here. `Customer.context()` is what the IVR context (and so
  the screen pop, the whisper and every log) gets.
- Errors carry a stable `error_id` (STYLE 12); those ids are API and never renamed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from .phone import normalise_e164

__all__ = [
    "Customer", "Order", "Ticket", "TIERS", "ORDER_STATUSES", "OPEN_ORDER_STATUSES", "TICKET_STATUSES",
    "OPEN_TICKET_STATUSES", "MAX_ID_LENGTH", "MAX_TEXT_LENGTH",
    "DirectoryError", "UnknownCustomer", "DuplicateAccountNumber", "PhoneAlreadyUsed", "RecordOfAnotherCustomer",
    "InvalidPin",
]

# Tiers, lowest priority first; the routing side maps them to queue priorities.
TIERS = ("standard", "silver", "gold", "vip")
ORDER_STATUSES = ("pending", "processing", "shipped", "delivered", "cancelled", "returned")
OPEN_ORDER_STATUSES = frozenset({"pending", "processing", "shipped"})
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
OPEN_TICKET_STATUSES = frozenset({"open", "pending"})

# Ids end up in SIP headers (screen pop) and log lines; 64 is ample for any CRM's keys.
MAX_ID_LENGTH = 64
# Names, regions, products, subjects: one screen-pop line. 200 keeps a spreadsheet cell's
# accidental paragraph out of SIP headers and whispers.
MAX_TEXT_LENGTH = 200

# RFC 5646 language tags, the common subset: "en", "es", "pt-BR", "zh-Hant".
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
# Account numbers are read out and keyed on DTMF pads: letters, digits, '-'.
_ACCOUNT_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


class DirectoryError(Exception):
    """A request the directory refuses: stable `error_id`, the HTTP `status` an API would answer, `details`."""

    error_id: ClassVar[str] = "directory-error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class UnknownCustomer(DirectoryError):
    """No customer has this id."""

    error_id = "no-such-customer"
    status = 404


class DuplicateAccountNumber(DirectoryError):
    """The account number belongs to another customer (`details["customer_id"]`)."""

    error_id = "duplicate-account-number"
    status = 409


class PhoneAlreadyUsed(DirectoryError):
    """The phone belongs to another customer: one number, one customer, or caller ID would be ambiguous."""

    error_id = "phone-already-used"
    status = 409


class RecordOfAnotherCustomer(DirectoryError):
    """An order or ticket id that already belongs to a different customer."""

    error_id = "record-of-another-customer"
    status = 409


class InvalidPin(DirectoryError):
    """A PIN to store that is not PIN_MIN_DIGITS..PIN_MAX_DIGITS digits."""

    error_id = "invalid-pin"
    status = 400


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(f"{kind} must be non-empty text without surrounding spaces, not {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{kind} is longer than {MAX_ID_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"{kind} {value!r} contains spaces or control characters")


def _check_text(kind: str, value: str | None, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind} is missing")
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"{kind} is longer than {MAX_TEXT_LENGTH} characters")
    if any(not ch.isprintable() for ch in value):
        raise ValueError(f"{kind} contains control characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """One order: `eta` is the expected delivery date, `total` the amount in the account's currency."""

    order_id: str
    customer_id: str
    status: str
    eta: date | None = None
    total: Decimal | None = None

    def __post_init__(self) -> None:
        _check_id("order id", self.order_id)
        _check_id("customer id", self.customer_id)
        if self.status not in ORDER_STATUSES:
            raise ValueError(f"order status {self.status!r} is not one of {', '.join(ORDER_STATUSES)}")
        if self.eta is not None and not isinstance(self.eta, date):
            raise ValueError(f"order eta must be a date, not {self.eta!r}")
        if self.total is not None and (not isinstance(self.total, Decimal) or not self.total.is_finite()
                                       or self.total < 0):
            raise ValueError(f"order total must be a non-negative decimal amount, not {self.total!r}")

    @property
    def is_open(self) -> bool:
        """Still on its way: pending, processing or shipped."""
        return self.status in OPEN_ORDER_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticket:
    """One support ticket."""

    ticket_id: str
    customer_id: str
    status: str
    subject: str

    def __post_init__(self) -> None:
        _check_id("ticket id", self.ticket_id)
        _check_id("customer id", self.customer_id)
        if self.status not in TICKET_STATUSES:
            raise ValueError(f"ticket status {self.status!r} is not one of {', '.join(TICKET_STATUSES)}")
        _check_text("ticket subject", self.subject, required=True)

    @property
    def is_open(self) -> bool:
        """Not resolved yet: open or pending."""
        return self.status in OPEN_TICKET_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class Customer:
    """A customer as the directory knows them.

    `phones` are canonical (`normalise_e164` output). `open_orders` is filled by the directory's
    look-ups (soonest eta first, orders without an eta last, then by order id); a Customer built
    for `upsert_customer` leaves it empty. `last_agent_at` is POSIX seconds.
    """

    id: str
    name: str
    tier: str = "standard"
    language: str = "en"
    account_number: str | None = None
    account_owner: str | None = None
    last_agent: str | None = None
    last_agent_at: float | None = None
    region: str | None = None
    product: str | None = None
    phones: tuple[str, ...] = ()
    open_orders: tuple[Order, ...] = ()

    def __post_init__(self) -> None:
        _check_id("customer id", self.id)
        _check_text("name", self.name, required=True)
        if self.tier not in TIERS:
            raise ValueError(f"tier {self.tier!r} is not one of {', '.join(TIERS)}")
        if not isinstance(self.language, str) or not _LANGUAGE.fullmatch(self.language):
            raise ValueError(f"language {self.language!r} is not a language tag such as 'en' or 'es'")
        if self.account_number is not None and not (
                isinstance(self.account_number, str) and _ACCOUNT_NUMBER.fullmatch(self.account_number)):
            raise ValueError(f"account number {self.account_number!r} is not 1-32 letters, digits or '-'")
        for kind, agent in (("account owner", self.account_owner), ("last agent", self.last_agent)):
            if agent is not None:
                _check_id(kind, agent)
        if (self.last_agent is None) != (self.last_agent_at is None):
            raise ValueError("last agent and last agent time go together")
        if self.last_agent_at is not None and not isinstance(self.last_agent_at, (int, float)):
            raise ValueError(f"last agent time must be POSIX seconds, not {self.last_agent_at!r}")
        _check_text("region", self.region)
        _check_text("product", self.product)
        if not isinstance(self.phones, tuple) or len(set(self.phones)) != len(self.phones):
            raise ValueError("phones must be a tuple without repeats")
        for phone in self.phones:
            if not isinstance(phone, str) or normalise_e164(phone) != phone:
                raise ValueError(f"phone {phone!r} is not in canonical form (normalise_e164)")
        for order in self.open_orders:
            if order.customer_id != self.id or not order.is_open:
                raise ValueError(f"order {order.order_id} is not an open order of customer {self.id}")

    def context(self) -> dict[str, Any]:
        """What the IVR context gets as `customer`: plain data, never the PIN or its hash.

        `verified` is always False here; the IVR sets it once the caller has given the right PIN.
        """
        return {
            "id": self.id, "name": self.name, "tier": self.tier, "language": self.language,
            "account_number": self.account_number, "account_owner": self.account_owner,
            "last_agent": self.last_agent, "last_agent_at": self.last_agent_at,
            "region": self.region, "product": self.product,
            "open_orders": len(self.open_orders),
            "first_open_order": self.open_orders[0].order_id if self.open_orders else None,
            "verified": False,
        }
