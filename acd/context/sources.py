"""Look-up sources served by the customer directory, shared by the call shell and `acd simulate`.

`customer_account` (key: account number) → the customer's context; `customer_pin` (key
"CUSTOMER_ID:PIN") → {"verified": True} or nothing; `orders` (key: order id) → status, eta, days.
Blocking (SQLite, PBKDF2): the shell calls `directory_lookup` from the thread pool.
"""

from __future__ import annotations

import datetime
from typing import Any

from .directory import CustomerDirectory

__all__ = ["apply_lookup_result", "directory_lookup"]


def directory_lookup(directory: CustomerDirectory, source: str, key: str,
                     today: datetime.date | None = None) -> dict[str, Any] | None:
    """The record for `key` in a directory source, or None."""
    if source == "customer_account":
        customer = directory.find_by_account(key)
        return customer.context() if customer else None
    if source == "customer_pin":
        customer_id, _, pin = key.partition(":")
        return {"verified": True} if customer_id and pin and directory.verify_pin(customer_id, pin) else None
    if source == "orders":
        order = directory.order(key)
        if order is None:
            return None
        days = (order.eta - (today or datetime.date.today())).days if order.eta else None
        return {"status": order.status, "eta": order.eta.isoformat() if order.eta else None,
                "days_to_arrival": max(days, 0) if days is not None else None,
                "total": str(order.total) if order.total is not None else None}
    return None


def apply_lookup_result(context: Any, source: str, record: dict[str, Any] | None) -> None:
    """What a found directory record means for the caller's context (shell and `acd simulate` alike):
    an account number found makes the caller that customer; a PIN found verifies them."""
    if record is None:
        return
    if source == "customer_account":
        context.set("customer", record)
    elif source == "customer_pin":
        context.set("verified", True)
        customer = context.get("customer")
        if isinstance(customer, dict):
            customer["verified"] = True
