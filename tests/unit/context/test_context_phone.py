"""E.164 normalisation: the forms people and trunks write, the refusals, and a property over any text."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from acd.context.phone import E164_MAX_DIGITS, MAX_RAW_LENGTH, is_short_number, normalise_e164

E164 = re.compile(r"\+[1-9][0-9]{7,14}")
SHORT = re.compile(r"[0-9]{1,7}")


@pytest.mark.parametrize("raw, country, expected", [
    ("+44 20 7946 0018", "44", "+442079460018"),            # international with spaces
    ("020 7946 0018", "44", "+442079460018"),               # national: trunk 0 replaced by the country code
    ("0044 20 7946 0018", "44", "+442079460018"),           # '00' international prefix
    ("0034 912 345 678", "44", "+34912345678"),             # '00' keeps the foreign country code
    ("(020) 7946-0018", "44", "+442079460018"),             # parentheses and dashes
    ("020.7946.0018", "44", "+442079460018"),               # dots
    ("+44\u00a020\u00a07946\u00a00018", "44", "+442079460018"),  # no-break spaces from a spreadsheet
    ("2079460018", "44", "+442079460018"),                  # national digits without the trunk 0
    ("442079460018", "44", "+442079460018"),                # starts with the country code, >= 11 digits
    ("(555) 123-4567", "1", "+15551234567"),                # NANP style with default 1
    ("15551234567", "1", "+15551234567"),                   # NANP with the 1, no '+'
    ("555-123-4567", "1", "+15551234567"),
    ("+1 (555) 123-4567", "44", "+15551234567"),            # '+' wins over the default country
    ("912 345 678", "34", "+34912345678"),                  # Spain: 9 national digits
    ("+354 412 3456", "44", "+3544123456"),                 # a short plan (Iceland), 10 digits
    ("+123456789012345", "44", "+123456789012345"),         # exactly 15 digits
])
def test_normalise_e164_accepts_the_usual_forms(raw, country, expected):
    assert normalise_e164(raw, country) == expected


@pytest.mark.parametrize("raw, country, expected", [
    # The cases: each country's trunk prefix as that country dials it.
    ("06 1234 5678", "39", "+390612345678"),                # Italy: the leading 0 is part of the number
    ("020 7946 0018", "44", "+442079460018"),               # UK: trunk 0 dropped
    ("(201) 555-0123", "1", "+12015550123"),                # US: no trunk 0
    ("1 (201) 555-0123", "1", "+12015550123"),              # US: the trunk prefix 1
    # The examples in phonenumbers' README and libphonenumber's PhoneNumberUtilTest.
    ("020 8366 1177", "44", "+442083661177"),               # README: parse("020 8366 1177", "GB")
    ("00 1 650 253 2222", "44", "+16502532222"),            # README: dialled from GB, a US number
    ("02 3661 8300", "39", "+390236618300"),                # IT_NUMBER (italian_leading_zero)
    ("345 678 901", "39", "+39345678901"),                  # IT_MOBILE: no leading zero
    ("+39 02 3661 8300", "44", "+390236618300"),            # international form keeps Italy's 0
    ("650 253 0000", "1", "+16502530000"),                  # US_NUMBER
    ("011 44 20 7946 0018", "1", "+442079460018"),          # the US international prefix 011
    ("030 123456", "49", "+4930123456"),                    # DE_NUMBER
    ("03 331 6005", "64", "+6433316005"),                   # NZ_NUMBER
    ("044 668 18 00", "41", "+41446681800"),                # Switzerland, the Java demo's number
    ("+44 (0)20 7946 0018", "1", "+442079460018"),          # a written "(0)" trunk prefix is dropped
    ("+44 020 7946 0018", "39", "+442079460018"),           # ... and so is an unbracketed one
    ("+999 1234 5678", "44", "+99912345678"),               # a code without a plan: digits kept
    ("0612 345 678", "800", "+800612345678"),               # a code without national form: simple rule
])
def test_national_numbers_follow_each_countrys_plan(raw, country, expected):
    assert normalise_e164(raw, country) == expected


@pytest.mark.parametrize("raw", ["5551234", "1001", "0", "555 1234", "012"])
def test_short_numbers_are_kept_as_they_are_so_test_trunk_callers_still_match(raw):
    """Fewer than 8 digits and no '+': an extension or a test trunk's caller ID, passed through."""
    result = normalise_e164(raw)
    assert result == raw.replace(" ", "") and is_short_number(result)


@pytest.mark.parametrize("raw, reason", [
    ("", "empty number"),
    ("   ", "empty number"),
    ("anonymous", "letters in number"),
    ("020 7946 OO18", "letters in number"),                 # letter O for zero
    ("1-800-FLOWERS", "letters in number"),
    ("020 7946 0018 ext 12", "letters in number"),
    ("+44 20 7946 0018#", "unexpected character '#'"),
    ("44+2079460018", "unexpected character '+'"),
    ("020/7946/0018", "unexpected character '/'"),
    ("\u0660\u0662\u0660\u0667\u0669\u0664\u0666\u0660\u0660\u0661\u0668", "unexpected character"),  # Arabic-Indic
    ("+", "no digits after '+'"),
    ("+4420", "too few digits"),
    ("+1234567", "too few digits"),
    ("+1234567890123456", "too many digits"),
    ("0044 1234 5678 9012 345", "too many digits"),
    ("000 1234 5678", "country code cannot start with 0"),
    ("+0 20 7946 0018", "country code cannot start with 0"),
    ("1" * (MAX_RAW_LENGTH + 1), "too long"),
])
def test_normalise_e164_refuses_with_the_reason(raw, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalise_e164(raw)


@pytest.mark.parametrize("country", ["", "0", "04", "1234", "+44", "4a"])
def test_a_bad_default_country_code_is_refused(country):
    with pytest.raises(ValueError, match="default country code"):
        normalise_e164("020 7946 0018", country)


def test_a_non_string_is_a_value_error_not_a_type_error():
    with pytest.raises(ValueError, match="must be text"):
        normalise_e164(2079460018)  # type: ignore[arg-type]


PHONE_LIKE = st.text(alphabet="0123456789+ -().#*/aO\u00a0\t", max_size=30)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(PHONE_LIKE, st.text(max_size=80)),
       country=st.sampled_from(["1", "7", "33", "34", "44", "353", "354"]))
def test_normalise_e164_returns_e164_or_a_short_number_or_raises_value_error(raw, country):
    """Never anything else: not a bad string, not another exception type; and the result is a fixed point."""
    try:
        result = normalise_e164(raw, country)
    except ValueError:
        return
    assert E164.fullmatch(result) or SHORT.fullmatch(result), result
    assert len(result.lstrip("+")) <= E164_MAX_DIGITS
    assert normalise_e164(result, country) == result
