"""An export file's bytes to text, and its CSV delimiter: what CRMs and spreadsheets actually write.

Rules of this file:
- Encoding, in order: a UTF-16 byte-order mark (Excel's "Unicode text" export) → UTF-16; a UTF-8
  byte-order mark, or bytes that are valid UTF-8 → UTF-8; anything else → Windows-1252 (cp1252,
  what Excel and most Windows CRMs write for Western European text), and if the file has bytes
  cp1252 leaves undefined, ISO-8859-1 (latin-1), which reads every byte. UTF-8 is tried first
  because real cp1252 text with accents is almost never valid UTF-8; the guess is reported
  (`Decoded.note`) so the operator can check the accented names it names.
- A NUL byte is refused: that is a binary file (an .xlsx renamed .csv) or UTF-16 without its
  mark, and reading it as text would import garbage.
- The delimiter is the one of `,` `;` tab `|` that occurs most often in the header line, outside
  double quotes (ties in that order; none at all: a one-column file, `,`). The header decides
  because data rows hold free text (names with commas, phone lists with ';'); header names do not.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["Decoded", "decode_export", "detect_delimiter", "DELIMITERS"]

# In order of preference on a tie: comma (RFC 4180), semicolon (spreadsheets in locales whose
# decimal separator is a comma: most of Europe), tab (Excel "text"), pipe (some CRM/ERP exports).
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class Decoded:
    """The text of an export, the encoding it was read with, and a note when that was a guess."""

    text: str
    encoding: str
    note: str | None = None


def decode_export(data: bytes) -> Decoded:
    """Decode an export's bytes (see the rules above); ValueError naming the problem otherwise."""
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return _checked(Decoded(data[len(bom):].decode(encoding), "utf-16"))
            except UnicodeDecodeError as error:
                raise ValueError(f"starts with a UTF-16 byte-order mark but is not UTF-16 "
                                 f"(byte {error.start + len(bom)})") from None
    try:
        text = data.decode("utf-8-sig")  # "-sig": spreadsheets often write a byte-order mark
    except UnicodeDecodeError as error:
        if data.startswith(codecs.BOM_UTF8):
            raise ValueError(f"starts with a UTF-8 byte-order mark but is not UTF-8 (byte {error.start})") from None
    else:
        return _checked(Decoded(text, "utf-8"))
    try:
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "latin-1"
    name = "Windows-1252 (cp1252)" if encoding == "cp1252" else "ISO-8859-1 (latin-1)"
    line = next((number for number, text_line in enumerate(text.split("\n"), 1) if not text_line.isascii()), 1)
    note = (f"not UTF-8: read as {name}; check the accented text (first on line {line}), "
            "or save the file as UTF-8 to avoid this guess")
    return _checked(Decoded(text, encoding, note))


def _checked(decoded: Decoded) -> Decoded:
    if "\x00" in decoded.text:
        raise ValueError("has NUL bytes: a binary file (a spreadsheet?) rather than text; save it as CSV")
    return decoded


def detect_delimiter(header_line: str) -> str:
    """The delimiter of a CSV file, from its header line (see the rules above)."""
    outside_quotes = header_line.split('"')[::2]  # the even pieces lie outside "..." pairs
    counts = {delimiter: sum(piece.count(delimiter) for piece in outside_quotes) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # max() keeps the first on a tie
    return best if counts[best] else ","
