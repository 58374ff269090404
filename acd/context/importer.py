"""`acd customers import FILE`: load customers from a CSV or JSON export into the directory, row by row.

Rules of this file:
- A row is a customer. Each row is checked on its own and written in its own transaction
  (`CustomerDirectory.upsert_customer`), so one bad row costs that row only: it is reported with
  its number and the reason, and the others are imported. Any rejected row makes the exit status
  1 (unless `--allow-rejects`), so a script or an operator cannot miss it.
- Real exports are read as they come (the modules beside this one): the encoding and delimiter are
  detected (`import_text`), columns are matched by name, alias or `--map` and unknown columns are
  ignored with one warning naming them all (`import_columns`), rows are numbered as the file's
  lines (`import_rows`). Problems with the file as a whole (missing, binary, not JSON, a header
  without a name or id column) raise `ImportFileError`: no row can be trusted then.
- Importing is an upsert: the same file twice updates the customers, never duplicates them. A
  customer's fields and phones are replaced by the row's; orders and tickets are added or updated
  by id and never removed. In CSV, a customer with several orders takes one row per order
  (repeating the customer's columns); the last row's customer fields win.
- An export without an `id` column (CSV) or `id` key (JSON): each customer's id is their first
  phone number in E.164 ("+442079460018"), so importing the next export of the same CRM updates the
  same customers. A customer whose first number changed gets a new id, and the old record keeps
  its phones: the row is rejected (phone already used) and says which customer to remove or fix.
  A row with an empty id in a file that has ids is rejected ("missing id"): ids there are data.
- Phones are read with the configured `country_code` (`phone.normalise_e164`: each country's
  trunk prefix as that country dials). The directory has no e-mail field: an e-mail column is
  ignored with the other unknown columns.

CSV columns: id, name, phones (';'- or ','-separated in one cell), tier, language, account_number,
pin, account_owner, region, product, last_agent, last_agent_at, and for one order: order_id,
order_status, order_eta (YYYY-MM-DD), order_total; first_name/last_name make a missing name.
JSON: a list of objects with the same customer keys, `phones` a list (or one string), `orders` a
list of {order_id, status, eta, total} and `tickets` a list of {ticket_id, status, subject}.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping, TextIO

from .directory import CustomerDirectory, check_pin_format
from .import_columns import CSV_COLUMNS, CUSTOMER_FIELDS
from .import_rows import JSON_KEYS, csv_rows, json_rows
from .import_text import Decoded, decode_export
from .phone import normalise_e164
from .records import Customer, DirectoryError, Order, Ticket

__all__ = [
    "import_customers", "import_command", "ImportReport", "RejectedRow", "ImportFileError",
    "CSV_COLUMNS", "JSON_KEYS", "MAX_FILE_BYTES", "MAX_PHONES_PER_CUSTOMER", "MAX_LISTED_REJECTS",
]

# The whole file is read into memory (JSON has to be). 64 MiB is a few hundred thousand customers;
# a bigger file is better split than loaded into the server's host in one go.
MAX_FILE_BYTES = 64 * 1024 * 1024
# A household or a small business has a few numbers; more is usually a spreadsheet accident
# (a whole column pasted into one cell), and every phone is a caller-ID key.
MAX_PHONES_PER_CUSTOMER = 10
# Rejected rows printed one per line; past this a bad export would bury the summary, so the rest
# are listed by line number only (up to `MAX_LISTED_LINE_NUMBERS`).
MAX_LISTED_REJECTS = 50
MAX_LISTED_LINE_NUMBERS = 200


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (the message says why); no row was looked at."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedRow:
    """A row left out: its CSV line number or JSON index, and why."""

    row: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What an import did: `imported` rows (of which `created` were new customers), `rejected` rows,
    and `notes` on how the file was read (encoding guessed, delimiter, columns renamed or ignored)."""

    source: Path
    imported: int
    rejected: list[RejectedRow] = field(default_factory=list)
    created: int = 0
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the operator."""
        rejected = f"{len(self.rejected)} row{'s' if len(self.rejected) != 1 else ''} rejected"
        if self.imported:
            updated = self.imported - self.created
            return (f"{self.source}: {self.imported} row{'s' if self.imported != 1 else ''} imported "
                    f"({self.created} new customer{'s' if self.created != 1 else ''}, "
                    f"{updated} update{'s' if updated != 1 else ''}), {rejected}")
        if self.rejected:
            return f"{self.source}: nothing imported, all {rejected}"
        return f"{self.source}: nothing imported, the file has no customer rows"

    def lines(self) -> list[str]:
        """The notes, the summary, then each rejected row as "FILE:ROW: reason" (the first
        MAX_LISTED_REJECTS; the line numbers of the others on one more line)."""
        lines = [f"{self.source}: {note}" for note in self.notes] + [self.summary()]
        lines += [f"{self.source}:{r.row}: {r.reason}" for r in self.rejected[:MAX_LISTED_REJECTS]]
        rest = self.rejected[MAX_LISTED_REJECTS:]
        if rest:
            numbers = ", ".join(str(r.row) for r in rest[:MAX_LISTED_LINE_NUMBERS])
            lines.append(f"{self.source}: {len(rest)} more rejected rows, at {numbers}"
                         + (", ..." if len(rest) > MAX_LISTED_LINE_NUMBERS else ""))
        return lines

    @property
    def exit_status(self) -> int:
        """0 when every row was imported; 1 when any row was rejected or nothing could be imported."""
        return 0 if self.imported and not self.rejected else 1


def import_customers(directory: CustomerDirectory, path: Path, *, default_country_code: str = "44",
                     now: float | None = None, column_map: Mapping[str, str] | None = None) -> ImportReport:
    """Import the CSV or JSON file at `path` (by its suffix) into `directory`.

    `default_country_code` reads national phone numbers; `now` (POSIX seconds, default the clock)
    stamps a `last_agent` given without `last_agent_at`; `column_map` is `--map` as parsed by
    `import_columns.parse_column_map`. Raises ImportFileError for a file that cannot be read at
    all; every row-level problem ends up in the report instead.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ImportFileError(f"unknown file type {path.suffix or '(none)'!r}: use .csv or .json")
    decoded = _read_text(path)
    try:
        rows, notes = (csv_rows if suffix == ".csv" else json_rows)(decoded.text, column_map or {})
    except ValueError as error:
        raise ImportFileError(str(error)) from None
    now = time.time() if now is None else now
    imported = created = 0
    rejected: list[RejectedRow] = []
    for number, fields in rows:
        try:
            if isinstance(fields, str):
                raise ValueError(fields)
            customer, pin, orders, tickets = _build(fields, default_country_code, now)
            existed = directory.customer(customer.id) is not None
            directory.upsert_customer(customer, pin=pin, orders=orders, tickets=tickets)
        except (ValueError, DirectoryError) as error:
            rejected.append(RejectedRow(row=number, reason=str(error)))
            continue
        imported += 1
        created += not existed
    return ImportReport(source=path, imported=imported, rejected=rejected, created=created,
                        notes=tuple(([decoded.note] if decoded.note else []) + notes))


def import_command(directory: CustomerDirectory, path: Path, *, out: TextIO, default_country_code: str = "44",
                   column_map: Mapping[str, str] | None = None, allow_rejects: bool = False) -> int:
    """The CLI contract of `acd customers import FILE`: print the report to `out`, return the exit status.

    Exit 0 when every row was imported; 1 when any row was rejected (0 with `allow_rejects` if at
    least one row was imported), nothing could be, or the file cannot be read ("FILE: reason").
    """
    try:
        report = import_customers(directory, Path(path), default_country_code=default_country_code,
                                  column_map=column_map)
    except ImportFileError as error:
        print(f"{path}: {error}", file=out)
        return 1
    for line in report.lines():
        print(line, file=out)
    if report.imported and report.rejected and not allow_rejects:
        count = len(report.rejected)
        print(f"{path}: exit status 1: {count} row{'s' if count != 1 else ''} rejected; fix "
              f"{'them' if count != 1 else 'it'} and import the file again (imported rows are updated, not "
              "duplicated), or pass --allow-rejects", file=out)
    if allow_rejects and report.imported:
        return 0
    return report.exit_status


# -- reading the file ---------------------------------------------------------------------------------

def _read_text(path: Path) -> Decoded:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImportFileError(f"file is {size} bytes, more than {MAX_FILE_BYTES}: split it")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError("no such file") from None
    except OSError as error:
        raise ImportFileError(f"cannot read the file: {error.strerror or error}") from None
    try:
        return decode_export(data)
    except ValueError as error:
        raise ImportFileError(str(error)) from None


# -- one row to records -------------------------------------------------------------------------------

def _build(fields: dict[str, Any], country_code: str, now: float
           ) -> tuple[Customer, str | None, list[Order], list[Ticket]]:
    text = {key: _text(key, fields.get(key)) for key in CUSTOMER_FIELDS if key not in ("phones", "last_agent_at")}
    phones = _phones(fields["phones"], country_code)
    if fields.get("id_from_phone") and not text["id"]:
        if not phones:
            raise ValueError("no phone to make the customer's id from (the file has no id column)")
        text["id"] = phones[0]
    if not text["id"]:
        raise ValueError("missing id")
    if not text["name"]:
        raise ValueError("missing name")
    if text["pin"] is not None:
        check_pin_format(text["pin"])
    last_agent_at = _instant(fields.get("last_agent_at"), now) if text["last_agent"] else None
    # "en_GB" (a locale, as CRMs write it) is the language tag "en-GB".
    primary, dash, subtags = (text["language"] or "en").replace("_", "-").partition("-")
    customer = Customer(
        id=text["id"], name=text["name"], tier=(text["tier"] or "standard").lower(),
        language=primary.lower() + dash + subtags,
        account_number=text["account_number"], account_owner=text["account_owner"],
        last_agent=text["last_agent"], last_agent_at=last_agent_at,
        region=text["region"], product=text["product"], phones=phones)
    orders = [_order(customer.id, record) for record in fields["orders"]]
    tickets = [Ticket(ticket_id=_text("ticket_id", record.get("ticket_id")) or "", customer_id=customer.id,
                      status=(_text("status", record.get("status")) or "open").lower(),
                      subject=_text("subject", record.get("subject")) or "")
               for record in fields["tickets"]]
    return customer, text["pin"], orders, tickets


def _text(key: str, value: Any) -> str | None:
    """A field as stripped text, None when empty. JSON numbers are fine except for a PIN (leading zeros)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key != "pin":
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return value.strip() or None


def _phones(raw_phones: list[Any], country_code: str) -> tuple[str, ...]:
    if len(raw_phones) > MAX_PHONES_PER_CUSTOMER:
        raise ValueError(f"{len(raw_phones)} phones, at most {MAX_PHONES_PER_CUSTOMER} per customer")
    phones: list[str] = []
    for raw in raw_phones:
        if not isinstance(raw, str):
            raise ValueError(f"phone {raw!r} must be text")
        try:
            phone = normalise_e164(raw, country_code)
        except ValueError as error:
            raise ValueError(f"phone {raw!r}: {error}") from None
        if phone not in phones:
            phones.append(phone)
    return tuple(phones)


def _order(customer_id: str, record: dict[str, Any]) -> Order:
    order_id = _text("order id", record.get("order_id"))
    if not order_id:
        raise ValueError("order without an order id")
    status = _text("order status", record.get("status"))
    if not status:
        raise ValueError(f"order {order_id} has no status")
    eta_text = _text("order eta", record.get("eta"))
    try:
        eta = date.fromisoformat(eta_text) if eta_text else None
    except ValueError:
        raise ValueError(f"order eta {eta_text!r} is not a date (YYYY-MM-DD)") from None
    total_value = record.get("total")
    total_text = str(total_value) if isinstance(total_value, (int, float)) and not isinstance(total_value, bool) \
        else _text("order total", total_value)
    try:
        total = Decimal(total_text) if total_text else None
    except InvalidOperation:
        raise ValueError(f"order total {total_text!r} is not an amount") from None
    return Order(order_id=order_id, customer_id=customer_id, status=status.lower(), eta=eta, total=total)


def _instant(value: Any, now: float) -> float:
    """last_agent_at: POSIX seconds or an ISO 8601 time with its zone ("2024-05-01T10:30:00Z")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return float(now)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"last_agent_at must be a time, not {type(value).__name__}")
    seconds: float | None = None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        try:
            seconds = float(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"last_agent_at {value!r} has no time zone (add Z or +01:00)")
            seconds = moment.timestamp() if moment is not None else None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"last_agent_at {value!r} is not a time (ISO 8601 or POSIX seconds)")
    return seconds
