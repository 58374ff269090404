"""Phone numbers to E.164 ("+" then 8 to 15 digits), national forms read with `phonenumbers`.

One canonical key for the customer directory, from the forms people type into spreadsheets and
the forms trunks put in caller IDs. National numbers are read by Google's libphonenumber plan
data (the `phonenumbers` package), so each country's trunk prefix is handled as that country
dials: the UK's "0" is dropped ("020 7946 0018" → +442079460018), Italy's leading 0 is part of
the number and kept ("06 1234 5678" → +390612345678), the US has no trunk 0 and takes a leading
"1" ("(201) 555-0123" and "1 201 555 0123" → +12015550123). The rule, in order:

1. Already canonical ("+" and 8-15 ASCII digits, nothing else, first digit not 0): returned as it
   is. This is the common caller ID and every stored phone (`Customer` checks its phones with this
   function), so it stays a regular-expression match: no plan look-up on the per-call path.
2. Visual separators are removed: whitespace (any, including no-break spaces), '.', '-', '(' and
   ')'. RFC 3966 §5.1.1 calls these "visual-separator"s; the digits are the number.
3. What is left must be ASCII digits, optionally after one leading '+'. A letter is refused
   ("letters in number": vanity numbers, "anonymous", "ext 12"); anything else ('*', '#', '/',
   '+' in the middle, non-ASCII digits) is refused naming the character.
4. A short number, fewer than `E164_MIN_DIGITS` digits with no '+', is returned as it is: an
   extension or a test trunk's caller ID such as "5551234". Caller-ID look-up must never fail a
   call, so these are kept (and matched exactly) rather than refused.
5. '+' or a leading '00' (the ITU international prefix used across Europe, accepted whatever the
   default country; no national number starts with 00): international, read by `phonenumbers`,
   which drops a trunk 0 written after the country code ("+44 (0)20 7946 0018" and
   "+44 020 7946 0018" → +442079460018) and keeps Italy's ("+39 06 ..."); a country code it has
   no plan for keeps the digits as written (test trunks use made-up numbers). Only rule 1's exact
   form skips this, so "+44020794600018" written without separators stays as it is.
6. Anything else is national for `default_country_code`, read with that country's plan (its main
   region: "1" is read as the US, "7" as Russia, "44" as the UK). The plan also knows its own
   international prefix (US "011 44 20 7946 0018" → +442079460018) and takes digits that already
   start with the country code ("442079460018" with 44). A calling code `phonenumbers` has no
   plan for falls back to the simple rule: drop one leading 0, put the code in front.
7. The result must have `E164_MIN_DIGITS`..`E164_MAX_DIGITS` digits after the '+' (ITU-T E.164
   §6.1: at most 15 digits; the shortest real national numbers with their country code are 8),
   and a country code never starts with 0.

Numbers are not checked against the plan's *assigned* ranges (`is_valid_number`): test and
fictional numbers (+1 555 ...) must still work as caller IDs. Every refusal is a `ValueError`
whose message says why ("too few digits", "letters in number").
"""

from __future__ import annotations

import functools
import re

import phonenumbers

__all__ = [
    "normalise_e164", "is_short_number", "E164_MIN_DIGITS", "E164_MAX_DIGITS", "MAX_RAW_LENGTH",
]

# ITU-T E.164 §6.1: "the maximum number length ... is 15 digits" (country code included).
E164_MAX_DIGITS = 15
# The shortest full numbers in use (small plans such as +354 Iceland: 3 + 7 digits = 10; a few
# have 8). Anything shorter without a '+' is an internal or test number (rule 4).
E164_MIN_DIGITS = 8
# Refuse before looking at the text: the longest honest form ("+44 (0) 20 7946 0018 ..." with
# generous spacing) is far below this; a caller ID longer than this is garbage or an attack.
MAX_RAW_LENGTH = 64
# Distinct national or spaced forms remembered with their reading (a few hundred bytes each):
# a day's repeat callers on a busy trunk, bounded so odd caller IDs cannot grow it.
PARSED_CACHE_SIZE = 4096

_CANONICAL = re.compile(rf"\+[1-9][0-9]{{{E164_MIN_DIGITS - 1},{E164_MAX_DIGITS - 1}}}")
_SEPARATORS = frozenset(".-()")
_ASCII_DIGITS = frozenset("0123456789")
_E164 = phonenumbers.PhoneNumberFormat.E164
# phonenumbers' refusals, in our words (NumberParseException.error_type → reason).
_PARSE_REASONS = {
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too few digits after the international prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too few digits",
    phonenumbers.NumberParseException.TOO_LONG: "too many digits",
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
}


def normalise_e164(raw: str, default_country_code: str = "44") -> str:
    """`raw` as "+<8-15 digits>", or as its own digits when it is a short number (rule 4).

    `default_country_code` is the country's calling code without '+' ("44", "1", "39"); it is
    used for national forms (rule 6). Raises ValueError with the reason otherwise.
    """
    region = _region(default_country_code)
    if not isinstance(raw, str):
        raise ValueError(f"phone number must be text, not {type(raw).__name__}")
    if _CANONICAL.fullmatch(raw):
        return raw  # rule 1
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
        return digits  # rule 4: an extension or a test trunk's caller ID, kept as it is
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if international:
        full = _international(digits)
    elif region is None:
        full = default_country_code + (digits[1:] if digits.startswith("0") else digits)
    else:
        full = _parsed(digits, region)
    if len(full) < E164_MIN_DIGITS:
        raise ValueError(f"too few digits ({len(full)}, at least {E164_MIN_DIGITS} with the country code)")
    if len(full) > E164_MAX_DIGITS:
        raise ValueError(f"too many digits ({len(full)}, E.164 allows at most {E164_MAX_DIGITS})")
    if full.startswith("0"):
        raise ValueError("country code cannot start with 0")
    return "+" + full


def is_short_number(value: str) -> bool:
    """True for what `normalise_e164` passes through unchanged (rule 4): 1-7 ASCII digits, no '+'."""
    return 0 < len(value) < E164_MIN_DIGITS and all(ch in _ASCII_DIGITS for ch in value)


def _international(digits: str) -> str:
    """Country code + national number from the digits after '+' or '00' (rule 5)."""
    if not E164_MIN_DIGITS <= len(digits) <= E164_MAX_DIGITS or digits.startswith("0"):
        return digits  # the length and country-code checks of rule 7 say what is wrong
    try:
        return _parsed("+" + digits, None)
    except ValueError:
        return digits  # a country code without a plan: the digits as written


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parsed(text: str, region: str | None) -> str:
    """E.164 digits of `text` as read by `phonenumbers` for `region`; ValueError with the reason.

    Cached: a plan look-up costs ~25 µs, a repeat caller's national caller ID ~1 µs.
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(_PARSE_REASONS.get(error.error_type, "not a phone number")) from None
    return phonenumbers.format_number(number, _E164)[1:]


_REGIONS: dict[str, str | None] = {}


def _region(code: str) -> str | None:
    """The main region (ISO 3166 alpha-2) for a calling code, None when the plan has none; checks the code."""
    try:
        return _REGIONS[code]
    except (KeyError, TypeError):
        pass
    # ITU-T E.164 country codes are 1 to 3 digits and none starts with 0.
    if not (isinstance(code, str) and 1 <= len(code) <= 3 and all(ch in _ASCII_DIGITS for ch in code)
            and code[0] != "0"):
        raise ValueError(f"default country code {code!r} is not 1-3 digits without a leading 0")
    region = phonenumbers.region_code_for_country_code(int(code))
    # "ZZ": no plan; "001": a non-geographic code (+800, +882...) that has no national form.
    _REGIONS[code] = region if region.isalpha() and region != phonenumbers.UNKNOWN_REGION else None
    return _REGIONS[code]
