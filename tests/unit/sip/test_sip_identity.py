"""P-Asserted-Identity and Diversion as carriers send them (RFC 3325, RFC 5806)."""

import pytest

from acd.sip.identity import asserted_caller, diverted_from
from acd.sip.message import Headers


@pytest.mark.parametrize("values, expected", [
    (['"Jane" <sip:+447700900123@carrier.example;user=phone>'], "+447700900123"),
    (["<tel:+447700900124>, <sip:+447700900124@carrier.example>"], "+447700900124"),  # RFC 3325 §9.1: two in one
    (["<sip:anonymous@anonymous.invalid>", "<tel:+447700900125>"], "+447700900125"),  # withheld first, then a number
    (["<mailto:x@y>", "garbage <", "<sip:carrier.example>"], None),  # unreadable or no user: From stays
    ([], None),
])
def test_the_first_asserted_identity_with_a_user_is_the_caller(values, expected):
    """The carrier's asserted number wins; what cannot be read is skipped."""
    assert asserted_caller(Headers(("P-Asserted-Identity", v) for v in values)) == expected


def test_the_top_diversion_entry_is_the_number_that_diverted_the_call():
    """RFC 5806: the topmost Diversion is the last redirection."""
    headers = Headers([("Diversion", "<sip:+442079460000@pbx.example>;reason=unconditional;counter=1"),
                       ("Diversion", "<sip:+442079460001@pbx.example>;reason=no-answer")])
    assert diverted_from(headers) == "+442079460000" and diverted_from(Headers()) is None
