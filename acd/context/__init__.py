"""Customer context: who is calling, what they have open, and who served them last.

The data layer (`directory`, `records`), the E.164 normaliser (`phone`) and the import tool
(`importer`). Synchronous and Twisted-free: the shell (`acd/calls`) runs the directory's methods in
its thread pool.
"""

from .directory import CustomerDirectory, DEFAULT_PIN_ITERATIONS, hash_pin, pin_matches
from .importer import ImportFileError, ImportReport, RejectedRow, import_command, import_customers
from .phone import normalise_e164
from .records import (
    Customer, DirectoryError, DuplicateAccountNumber, InvalidPin, Order, PhoneAlreadyUsed, RecordOfAnotherCustomer,
    Ticket, TIERS, UnknownCustomer,
)

__all__ = [
    "CustomerDirectory", "DEFAULT_PIN_ITERATIONS", "hash_pin", "pin_matches",
    "ImportFileError", "ImportReport", "RejectedRow", "import_command", "import_customers",
    "normalise_e164",
    "Customer", "Order", "Ticket", "TIERS", "DirectoryError", "DuplicateAccountNumber", "InvalidPin",
    "PhoneAlreadyUsed", "RecordOfAnotherCustomer", "UnknownCustomer",
]
