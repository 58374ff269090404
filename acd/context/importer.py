"""`acd customers import FILE`: load customers from CSV or JSON into the directory, row by row.

Rules of this file:
- A row is a customer. Each row is checked on its own and written in its own transaction
  (`CustomerDirectory.upsert_customer`), so one bad row costs that row only: it is reported with
  its number and the reason, and the others are imported.
- Row numbers are what an operator can find: the CSV *line* number (the header is line 1) and the
  JSON list *index* (from 0).
- Problems with the file as a whole (missing, not UTF-8, not JSON, an unknown or missing CSV
  column) raise `ImportFileError`: no row can be trusted then. An unknown column is refused rather
  than ignored, so a typo ("tire") cannot silently drop data.
- Importing is an upsert: the same file twice updates the customers, never duplicates them. A
  customer's fields and phones are replaced by the row's; orders and tickets are added or updated
  by id and never removed. In CSV, a customer with several orders takes one row per order
  (repeating the customer's columns); the last row's customer fields win.
- CSV rows with more fields than the header are refused (usually an unquoted comma in a name,
  which would shift every later column); shorter rows have their missing trailing fields empty.

CSV columns: id, name, phones (';'-separated), tier, language, account_number, pin, account_owner,
region, product, last_agent, last_agent_at, and for one order: order_id, order_status, order_eta
(YYYY-MM-DD), order_total. JSON: a list of objects with the same customer keys, `phones` a list,
`orders` a list of {order_id, status, eta, total} and `tickets` a list of {ticket_id, status, subject}.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from .directory import CustomerDirectory, check_pin_format
from .phone import normalise_e164
from .records import Customer, DirectoryError, Order, Ticket

__all__ = [
    "import_customers", "import_command", "ImportReport", "RejectedRow", "ImportFileError",
    "CSV_COLUMNS", "JSON_KEYS", "MAX_FILE_BYTES", "MAX_PHONES_PER_CUSTOMER",
]

_CUSTOMER_KEYS = ("id", "name", "phones", "tier", "language", "account_number", "pin", "account_owner",
                  "region", "product", "last_agent", "last_agent_at")
CSV_COLUMNS = _CUSTOMER_KEYS + ("order_id", "order_status", "order_eta", "order_total")
JSON_KEYS = _CUSTOMER_KEYS + ("orders", "tickets")
_REQUIRED_COLUMNS = ("id", "name")
_ORDER_KEYS = ("order_id", "status", "eta", "total")
_TICKET_KEYS = ("ticket_id", "status", "subject")

# The whole file is read into memory (JSON has to be). 64 MiB is a few hundred thousand customers;
# a bigger file is better split than loaded into the server's host in one go.
MAX_FILE_BYTES = 64 * 1024 * 1024
# A household or a small business has a few numbers; more is usually a spreadsheet accident
# (a whole column pasted into one cell), and every phone is a caller-ID key.
MAX_PHONES_PER_CUSTOMER = 10


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (the message says why); no row was looked at."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedRow:
    """A row left out: its CSV line number or JSON index, and why."""

    row: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What an import did: `imported` rows (of which `created` were new customers), `rejected` rows."""

    source: Path
    imported: int
    rejected: list[RejectedRow] = field(default_factory=list)
    created: int = 0

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
        """The summary, then each rejected row as "FILE:ROW: reason"."""
        return [self.summary()] + [f"{self.source}:{r.row}: {r.reason}" for r in self.rejected]

    @property
    def exit_status(self) -> int:
        """0 when at least one row was imported, 1 when nothing could be."""
        return 0 if self.imported else 1


def import_customers(directory: CustomerDirectory, path: Path, *, default_country_code: str = "44",
                     now: float | None = None) -> ImportReport:
    """Import the CSV or JSON file at `path` (by its suffix) into `directory`.

    `default_country_code` reads national phone numbers; `now` (POSIX seconds, default the clock)
    stamps a `last_agent` given without `last_agent_at`. Raises ImportFileError for a file that
    cannot be read at all; every row-level problem ends up in the report instead.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ImportFileError(f"unknown file type {path.suffix or '(none)'!r}: use .csv or .json")
    text = _read_text(path)
    rows = _csv_rows(text) if suffix == ".csv" else _json_rows(text)
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
    return ImportReport(source=path, imported=imported, rejected=rejected, created=created)


def import_command(directory: CustomerDirectory, path: Path, *, out: TextIO,
                   default_country_code: str = "44") -> int:
    """The CLI contract of `acd customers import FILE`: print the report to `out`, return the exit status.

    Exit 0 if at least one row was imported, 1 if nothing could be (every row rejected, an empty
    file, or a file that cannot be read: printed as "FILE: reason").
    """
    try:
        report = import_customers(directory, Path(path), default_country_code=default_country_code)
    except ImportFileError as error:
        print(f"{path}: {error}", file=out)
        return 1
    for line in report.lines():
        print(line, file=out)
    return report.exit_status


# -- reading the file ---------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
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
        return data.decode("utf-8-sig")  # "-sig": spreadsheets often write a byte-order mark
    except UnicodeDecodeError as error:
        raise ImportFileError(f"not UTF-8 text (byte {error.start})") from None


_Row = tuple[int, "dict[str, Any] | str"]  # (row number, fields) or (row number, why it is unreadable)


def _csv_rows(text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("empty file: expected a header row (id,name,phones,...)")
        header = [column.strip().lower() for column in header]
        _check_header(header)
        rows: list[_Row] = []
        while True:
            line = reader.line_num + 1
            values = next(reader, None)
            if values is None:
                return rows
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(values) > len(header):
                rows.append((line, f"{len(values)} fields, the header has {len(header)} "
                                   "(a comma inside a value must be quoted)"))
                continue
            fields = {column: value.strip() for column, value in zip(header, values)}
            rows.append((line, _csv_fields(fields)))
    except csv.Error as error:
        raise ImportFileError(f"line {reader.line_num}: unreadable CSV ({error})") from None


def _check_header(header: list[str]) -> None:
    for column in header:
        if column not in CSV_COLUMNS:
            raise ImportFileError(f"unknown column {column!r} (known: {', '.join(CSV_COLUMNS)})")
        if header.count(column) > 1:
            raise ImportFileError(f"column {column!r} appears twice")
    for column in _REQUIRED_COLUMNS:
        if column not in header:
            raise ImportFileError(f"missing column {column!r}")


def _csv_fields(fields: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {key: (fields.get(key) or None) for key in _CUSTOMER_KEYS}
    values["phones"] = [p.strip() for p in (fields.get("phones") or "").split(";") if p.strip()]
    order = {key: fields.get(key if key == "order_id" else f"order_{key}") or None for key in _ORDER_KEYS}
    values["orders"] = [order] if any(order.values()) else []
    values["tickets"] = []
    return values


def _json_rows(text: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFileError(f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(data, list):
        raise ImportFileError("JSON must be a list of customer objects")
    return [(index, _json_fields(item)) for index, item in enumerate(data)]


def _json_fields(item: Any) -> dict[str, Any] | str:
    if not isinstance(item, dict):
        return "not a JSON object"
    unknown = sorted(set(item) - set(JSON_KEYS))
    if unknown:
        return f"unknown field {unknown[0]!r} (known: {', '.join(JSON_KEYS)})"
    values: dict[str, Any] = {key: item.get(key) for key in _CUSTOMER_KEYS}
    for key in ("orders", "tickets"):
        records = item.get(key) or []
        keys = _ORDER_KEYS if key == "orders" else _TICKET_KEYS
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return f"{key} must be a list of objects"
        for record in records:
            extra = sorted(set(record) - set(keys))
            if extra:
                return f"unknown field {extra[0]!r} in {key} (known: {', '.join(keys)})"
        values[key] = records
    phones = item.get("phones") or []
    if not isinstance(phones, list):
        return "phones must be a list of strings"
    values["phones"] = phones
    return values


# -- one row to records -------------------------------------------------------------------------------

def _build(fields: dict[str, Any], country_code: str, now: float
           ) -> tuple[Customer, str | None, list[Order], list[Ticket]]:
    text = {key: _text(key, fields.get(key)) for key in _CUSTOMER_KEYS if key not in ("phones", "last_agent_at")}
    if not text["id"]:
        raise ValueError("missing id")
    if not text["name"]:
        raise ValueError("missing name")
    phones = _phones(fields["phones"], country_code)
    if text["pin"] is not None:
        check_pin_format(text["pin"])
    last_agent_at = _instant(fields.get("last_agent_at"), now) if text["last_agent"] else None
    primary, dash, subtags = (text["language"] or "en").partition("-")
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
