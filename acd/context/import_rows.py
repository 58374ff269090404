"""An export's text to numbered rows of directory fields: CSV (any delimiter, mapped columns) and JSON.

Rules of this file:
- Row numbers are what an operator can find: the CSV *line* number where the record starts (the
  header is line 1; blank lines and quoted line breaks count) and the JSON list *index* (from 0).
- A row is a dict of fields (`CUSTOMER_FIELDS`, `orders`, `tickets`, and `id_from_phone`: the file
  gives no id, so the importer makes one), or a string saying why the row cannot be read at all.
- Problems with the whole file raise `ValueError` (the importer's ImportFileError says which file).
- CSV: the delimiter comes from the header line (`import_text.detect_delimiter`), the columns from
  `import_columns.plan_columns`. A phones cell may list several numbers separated by ';' or ','
  (no phone number contains either). Rows with more fields than the header are refused (usually an
  unquoted delimiter inside a name, which would shift every later column); shorter rows have their
  missing trailing fields empty. One CSV row carries at most one order.
- JSON: a list of objects; top-level keys are matched like CSV headers (aliases, `--map`), and
  keys with no field are ignored and named in one warning. `orders` and `tickets` are lists of
  objects with exactly their own keys.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Mapping

from .import_columns import CUSTOMER_FIELDS, IGNORE, NAME_PARTS, ColumnPlan, field_for, plan_columns
from .import_text import detect_delimiter

__all__ = ["Row", "Rows", "csv_rows", "json_rows", "ORDER_KEYS", "TICKET_KEYS", "JSON_KEYS"]

ORDER_KEYS = ("order_id", "status", "eta", "total")
TICKET_KEYS = ("ticket_id", "status", "subject")
JSON_KEYS = CUSTOMER_FIELDS + ("orders", "tickets")
_JSON_FIELDS = CUSTOMER_FIELDS + NAME_PARTS
_PHONE_SEPARATORS = re.compile(r"[;,]")

Row = tuple[int, "dict[str, Any] | str"]  # (row number, fields) or (row number, why it is unreadable)
Rows = tuple[list[Row], list[str]]        # the rows, and notes for the operator


def csv_rows(text: str, column_map: Mapping[str, str]) -> Rows:
    """The rows of a CSV export, and the notes on its columns and delimiter."""
    if not text.strip():
        raise ValueError("empty file: expected a header row (id,name,phones,...)")
    delimiter = detect_delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        plan = plan_columns(header, column_map)
        rows: list[Row] = []
        while True:
            line = reader.line_num + 1
            values = next(reader, None)
            if values is None:
                break
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(values) > len(header):
                rows.append((line, f"{len(values)} fields, the header has {len(header)} "
                                   f"(a {_DELIMITER_NAMES[delimiter]} inside a value must be quoted)"))
                continue
            rows.append((line, _csv_fields(plan, values)))
    except csv.Error as error:
        raise ValueError(f"line {reader.line_num}: unreadable CSV ({error})") from None
    notes = plan.notes()
    if delimiter != ",":
        notes.insert(0, f"{_DELIMITER_NAMES[delimiter]}-separated")
    return rows, notes


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _csv_fields(plan: ColumnPlan, values: list[str]) -> dict[str, Any]:
    cells: dict[str, str] = {}
    phones: list[str] = []
    for field, value in zip(plan.fields, values):
        if field == "phones":
            phones += [p.strip() for p in _PHONE_SEPARATORS.split(value) if p.strip()]
        elif field is not None:
            cells[field] = value.strip()
    fields: dict[str, Any] = {key: (cells.get(key) or None) for key in CUSTOMER_FIELDS}
    fields["name"] = fields["name"] or _joined_name(cells)
    fields["phones"] = phones
    fields["id_from_phone"] = "id" not in plan.fields
    order = {key: cells.get(key if key == "order_id" else f"order_{key}") or None for key in ORDER_KEYS}
    fields["orders"] = [order] if any(order.values()) else []
    fields["tickets"] = []
    return fields


def _joined_name(parts: Mapping[str, Any]) -> str | None:
    words = [parts[part].strip() for part in NAME_PARTS if isinstance(parts.get(part), str) and parts[part].strip()]
    return " ".join(words) or None


def json_rows(text: str, column_map: Mapping[str, str]) -> Rows:
    """The rows of a JSON export, and the one warning naming the keys that were ignored."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(data, list):
        raise ValueError("JSON must be a list of customer objects")
    unknown: dict[str, None] = {}  # insertion-ordered set
    rows: list[Row] = [(index, _json_fields(item, column_map, unknown)) for index, item in enumerate(data)]
    notes = []
    if unknown:
        notes.append(f"warning: ignoring {len(unknown)} key{'s' if len(unknown) != 1 else ''} the directory has no "
                     f"field for: {', '.join(repr(key) for key in unknown)} (--map KEY=FIELD imports one, "
                     f"--map KEY={IGNORE} silences this)")
    return rows, notes


def _json_fields(item: Any, column_map: Mapping[str, str], unknown: dict[str, None]) -> dict[str, Any] | str:
    if not isinstance(item, dict):
        return "not a JSON object"
    values: dict[str, Any] = {}
    phones: list[Any] = []
    for key, value in item.items():
        if key in ("orders", "tickets"):
            continue
        field = field_for(str(key), column_map, _JSON_FIELDS)
        if field is None:
            unknown.setdefault(str(key))
        elif field == "phones":
            if isinstance(value, str):
                value = [p.strip() for p in _PHONE_SEPARATORS.split(value) if p.strip()]
            if not isinstance(value, list):
                return "phones must be a list of strings"
            phones += value
        elif field != IGNORE:
            if field in values:
                return f"two keys read as {field}: keep one (e.g. --map {key}={IGNORE})"
            values[field] = value
    fields: dict[str, Any] = {key: values.get(key) for key in CUSTOMER_FIELDS}
    if fields["name"] is None or (isinstance(fields["name"], str) and not fields["name"].strip()):
        fields["name"] = _joined_name(values)
    fields["phones"] = phones
    fields["id_from_phone"] = "id" not in values
    for key, keys in (("orders", ORDER_KEYS), ("tickets", TICKET_KEYS)):
        records = item.get(key) or []
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return f"{key} must be a list of objects"
        for record in records:
            extra = sorted(set(record) - set(keys))
            if extra:
                return f"unknown field {extra[0]!r} in {key} (known: {', '.join(keys)})"
        fields[key] = records
    return fields
