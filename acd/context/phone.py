"""Phone numbers to E.164 ("+" then 8 to 15 digits), without a numbering-plan database.

This is deliberately small: no `phonenumbers` dependency and no per-country plan. It turns the
forms people type into spreadsheets, and the forms trunks put in caller IDs, into one canonical key
for the customer directory. The rule, in order:

1. Visual separators are removed: whitespace (any, including no-break spaces), '.', '-', '(' and
   ')'. RFC 3966 §5.1.1 calls these "visual-separator"s; the digits are the number.
2. What is left must be ASCII digits, optionally after one leading '+'. A letter is refused
   ("letters in number": vanity numbers, "anonymous", "ext 12"); anything else ('*', '#', '/',
   '+' in the middle, non-ASCII digits) is refused naming the character.
3. A short number, fewer than `E164_MIN_DIGITS` digits with no '+', is returned as it is: an
   extension or a test trunk's caller ID such as "5551234". Caller-ID look-up must never fail a
   call, so these are kept (and matched exactly) rather than refused.
4. '+' prefix, or the ITU international prefix '00' (ITU-T E.164 Supplement / the 00 used across
   Europe): the digits after it are already country code + national number.
5. A single leading '0' is the national trunk prefix (UK "020 7946 0018", most of Europe): it is
   dropped and `default_country_code` put in front.
6. Otherwise, digits that already start with `default_country_code` and have at least
   `COUNTRY_CODE_PRESENT_MIN_DIGITS` (11) digits are taken as international without the '+'
   ("442079460018", "15551234567"); any other digits are the national number for the default
   country ("2079460018" gives "+442079460018"; "(555) 123-4567" with default "1" gives
   "+15551234567").
   Eleven is the shortest full number of the plans we meet (NANP "1" + 10; UK "44" + 9 or 10),
   and national numbers in those plans are 10 digits at most, so the two readings do not collide.
7. The result must have `E164_MIN_DIGITS`..`E164_MAX_DIGITS` digits after the '+' (ITU-T E.164
   §6.1: at most 15 digits; the shortest real national numbers with their country code are 8),
   and a country code never starts with 0.

Every refusal is a `ValueError` whose message says why ("too few digits", "letters in number").
"""

from __future__ import annotations

__all__ = [
    "normalise_e164", "is_short_number", "E164_MIN_DIGITS", "E164_MAX_DIGITS",
    "COUNTRY_CODE_PRESENT_MIN_DIGITS", "MAX_RAW_LENGTH",
]

# ITU-T E.164 §6.1: "the maximum number length ... is 15 digits" (country code included).
E164_MAX_DIGITS = 15
# The shortest full numbers in use (small plans such as +354 Iceland: 3 + 7 digits = 10; a few
# have 8). Anything shorter without a '+' is an internal or test number (rule 3).
E164_MIN_DIGITS = 8
# Rule 6: digits starting with the default country code are taken as international from this length.
COUNTRY_CODE_PRESENT_MIN_DIGITS = 11
# Refuse before looking at the text: the longest honest form ("+44 (0) 20 7946 0018 ..." with
# generous spacing) is far below this; a caller ID longer than this is garbage or an attack.
MAX_RAW_LENGTH = 64

_SEPARATORS = frozenset(".-()")
_ASCII_DIGITS = frozenset("0123456789")


def normalise_e164(raw: str, default_country_code: str = "44") -> str:
    """`raw` as "+<8-15 digits>", or as its own digits when it is a short number (rule 3).

    `default_country_code` is the country's calling code without '+' ("44", "1", "34"); it is
    used for national forms (rules 5 and 6). Raises ValueError with the reason otherwise.
    """
    _check_country_code(default_country_code)
    if not isinstance(raw, str):
        raise ValueError(f"phone number must be text, not {type(raw).__name__}")
    if len(raw) > MAX_RAW_LENGTH:
        raise ValueError(f"too long to be a phone number ({len(raw)} characters, at most {MAX_RAW_LENGTH})")
    cleaned = "".join(ch for ch in raw if not ch.isspace() and ch not in _SEPARATORS)
    if not cleaned:
        raise ValueError("empty number")
    international = cleaned.startswith("+")
    digits = cleaned[1:] if international else cleaned
    for ch in digits:
        if ch not in _ASCII_DIGITS:
            if ch.isalpha():
                raise ValueError("letters in number")
            raise ValueError(f"unexpected character {ch!r} in number")
    if not digits:
        raise ValueError("no digits after '+'")
    if not international and len(digits) < E164_MIN_DIGITS:
        return digits  # rule 3: an extension or a test trunk's caller ID, kept as it is
    if international:
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    elif digits.startswith("0"):
        full = default_country_code + digits[1:]
    elif digits.startswith(default_country_code) and len(digits) >= COUNTRY_CODE_PRESENT_MIN_DIGITS:
        full = digits
    else:
        full = default_country_code + digits
    if len(full) < E164_MIN_DIGITS:
        raise ValueError(f"too few digits ({len(full)}, at least {E164_MIN_DIGITS} with the country code)")
    if len(full) > E164_MAX_DIGITS:
        raise ValueError(f"too many digits ({len(full)}, E.164 allows at most {E164_MAX_DIGITS})")
    if full.startswith("0"):
        raise ValueError("country code cannot start with 0")
    return "+" + full


def is_short_number(value: str) -> bool:
    """True for what `normalise_e164` passes through unchanged (rule 3): 1-7 ASCII digits, no '+'."""
    return 0 < len(value) < E164_MIN_DIGITS and all(ch in _ASCII_DIGITS for ch in value)


def _check_country_code(code: str) -> None:
    # ITU-T E.164 country codes are 1 to 3 digits and none starts with 0.
    if not (isinstance(code, str) and 1 <= len(code) <= 3 and all(ch in _ASCII_DIGITS for ch in code)
            and code[0] != "0"):
        raise ValueError(f"default country code {code!r} is not 1-3 digits without a leading 0")
