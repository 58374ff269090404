"""Which column of an export is which directory field: header aliases and the operator's `--map`.

Rules of this file:
- Header names are compared by key: lower case, every run of other than letters and digits made
  one '_' ("Customer ID", "customer-id" and "CUSTOMER_ID" are all `customer_id`).
- A column is, in order: what `--map COLUMN=FIELD` says (FIELD `-` ignores it); a field's own name
  (`id`, `name`, `phones`, `tier`, ... `order_total`); an alias from `ALIASES`; otherwise it is
  ignored, and all ignored columns are named in one warning.
- Several columns may feed `phones` (Phone, Mobile, Work phone): their numbers are joined, in
  column order. Any other field read from two columns is refused: which one is meant is a guess.
- `first_name` and `last_name` columns make the name ("Ann" "Whitfield" → "Ann Whitfield") on rows
  whose `name` is empty or absent.
- A file must give a name (`name`, or `first_name`/`last_name`) and an id or phones: customers of
  an export without ids get one made from their first phone (see `importer`).

The alias table (documented in README.md's customer-import paragraph):

| field | header aliases |
|---|---|
| id | customer id, account id, contact id, client id, crm id, external id, record id |
| name | full name, customer name, contact name, client name, display name |
| first_name / last_name | first name, given name, firstname / last name, surname, family name, lastname |
| phones | phone, phone number(s), telephone, telephone number, tel, mobile, mobile phone, mobile number, cell, cell phone, cellphone, msisdn, contact number, work phone, home phone, landline |
| tier | customer tier, service tier, support tier |
| language | lang, preferred language, language code, locale |
| account_number | account no, account num, acct number, acct no |
| account_owner | owner, account manager, owner id |
| region | territory, sales region |
| product | plan, product name |
| order_id | order number, order no |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

__all__ = [
    "CUSTOMER_FIELDS", "ORDER_COLUMNS", "NAME_PARTS", "CSV_COLUMNS", "IGNORE", "ALIASES",
    "ColumnPlan", "column_key", "parse_column_map", "plan_columns", "field_for",
]

CUSTOMER_FIELDS = ("id", "name", "phones", "tier", "language", "account_number", "pin", "account_owner",
                   "region", "product", "last_agent", "last_agent_at")
ORDER_COLUMNS = ("order_id", "order_status", "order_eta", "order_total")
NAME_PARTS = ("first_name", "last_name")
CSV_COLUMNS = CUSTOMER_FIELDS + ORDER_COLUMNS
IGNORE = "-"  # `--map notes=-`: ignore this column without a warning

ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("customer_id", "account_id", "contact_id", "client_id", "crm_id", "external_id", "record_id"),
    "name": ("full_name", "customer_name", "contact_name", "client_name", "display_name"),
    "first_name": ("given_name", "firstname"),
    "last_name": ("surname", "family_name", "lastname"),
    "phones": ("phone", "phone_number", "phone_numbers", "telephone", "telephone_number", "tel", "mobile",
               "mobile_phone", "mobile_number", "cell", "cell_phone", "cellphone", "msisdn", "contact_number",
               "work_phone", "home_phone", "landline"),
    "tier": ("customer_tier", "service_tier", "support_tier"),
    "language": ("lang", "preferred_language", "language_code", "locale"),
    "account_number": ("account_no", "account_num", "acct_number", "acct_no"),
    "account_owner": ("owner", "account_manager", "owner_id"),
    "region": ("territory", "sales_region"),
    "product": ("plan", "product_name"),
    "order_id": ("order_number", "order_no"),
}
_BY_ALIAS = {alias: field for field, aliases in ALIASES.items() for alias in aliases}
_MAPPABLE = CSV_COLUMNS + NAME_PARTS
_NOT_A_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


def column_key(name: str) -> str:
    """A header name as compared: "Customer ID" → "customer_id", "E-mail" → "e_mail"."""
    return _NOT_A_LETTER_OR_DIGIT.sub("_", name.strip().lower()).strip("_")


def parse_column_map(texts: Iterable[str]) -> dict[str, str]:
    """`--map` values ("phone=phones,email=-", one or several) as {column key: field or IGNORE}.

    Raises ValueError naming the bad pair and the fields there are.
    """
    column_map: dict[str, str] = {}
    for text in texts:
        for pair in text.split(","):
            if not pair.strip():
                continue
            column, equals, field = (part.strip() for part in pair.partition("="))
            key = column_key(column)
            if not equals or not key:
                raise ValueError(f"--map {pair.strip()!r}: write COLUMN=FIELD, e.g. --map phone=phones,email=-")
            if field != IGNORE and field not in _MAPPABLE:
                raise ValueError(f"--map {pair.strip()!r}: {field!r} is not a directory field "
                                 f"(fields: {', '.join(_MAPPABLE)}; or {IGNORE} to ignore the column)")
            if column_map.get(key, field) != field:
                raise ValueError(f"--map names column {column!r} twice")
            column_map[key] = field
    return column_map


def field_for(name: str, column_map: Mapping[str, str], fields: Sequence[str] = _MAPPABLE) -> str | None:
    """The field a column (or JSON key) `name` is read as, IGNORE when mapped away, None when unknown."""
    key = column_key(name)
    if key in column_map:
        return column_map[key]
    if key in fields:
        return key
    field = _BY_ALIAS.get(key)
    return field if field in fields else None


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """How to read a CSV header: the field of each column (None: ignored), and what to tell the operator."""

    fields: tuple[str | None, ...]
    ignored: tuple[str, ...]   # header names as written, no field and not mapped away
    renamed: tuple[str, ...]   # "'Telephone' as phones" for columns read by alias or --map

    def notes(self) -> list[str]:
        """The operator's lines: columns read under another name, then the one ignored-columns warning."""
        notes = []
        if self.renamed:
            notes.append("reading columns " + ", ".join(self.renamed))
        if self.ignored:
            count = len(self.ignored)
            notes.append(f"warning: ignoring {count} column{'s' if count != 1 else ''} the directory has no "
                         f"field for: {', '.join(repr(name) for name in self.ignored)} (--map COLUMN=FIELD "
                         f"imports one, --map COLUMN={IGNORE} silences this)")
        return notes


def plan_columns(header: Sequence[str], column_map: Mapping[str, str]) -> ColumnPlan:
    """The plan for a CSV header. Raises ValueError for a header no row can be read with (see the rules)."""
    keys = [column_key(name) for name in header]
    for key in column_map:
        if key not in keys:
            raise ValueError(f"--map names column {key!r}, which the file does not have "
                             f"(its columns: {', '.join(repr(name) for name in header)})")
    fields: list[str | None] = []
    ignored: list[str] = []
    renamed: list[str] = []
    first_column: dict[str, str] = {}
    for name in header:
        field = field_for(name, column_map)
        if field is None:
            ignored.append(name.strip())
        elif field != IGNORE:
            if field in first_column and field != "phones":
                raise ValueError(f"columns {first_column[field]!r} and {name.strip()!r} both read as {field}: "
                                 f"keep one (e.g. --map {column_key(name)}={IGNORE})")
            first_column.setdefault(field, name.strip())
            if column_key(name) != field:
                renamed.append(f"{name.strip()!r} as {field}")
        fields.append(field if field not in (None, IGNORE) else None)
    if "name" not in first_column and not any(part in first_column for part in NAME_PARTS):
        raise ValueError("missing column 'name' (or first_name/last_name): name the file's column with "
                         "--map COLUMN=name")
    if "id" not in first_column and "phones" not in first_column:
        raise ValueError("missing column 'id' (or phones, to make ids from): name the file's column with "
                         "--map COLUMN=id")
    return ColumnPlan(fields=tuple(fields), ignored=tuple(ignored), renamed=tuple(renamed))
