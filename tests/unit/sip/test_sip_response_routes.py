"""make_response copies the request's Record-Route into responses that may establish a dialog
(RFC 3261 §12.1.1), so a caller behind a Record-Routing proxy (a carrier) sends its PRACK, ACK and
BYE through the proxy; other responses carry none."""

from __future__ import annotations

import pytest

from acd.sip.build import make_response
from acd.sip.message import parse_message

INVITE = (b"INVITE sip:acd@192.0.2.1:5060 SIP/2.0\r\n"
          b"Record-Route: <sip:198.51.100.7;lr;ftag=abc>, <sip:198.51.100.8;lr>\r\n"
          b"Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKp1\r\nVia: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKu1\r\n"
          b"Record-Route: <sip:198.51.100.9;lr;did=x.y>\r\n"
          b"From: <sip:5551234@carrier.test>;tag=f1\r\nTo: <sip:1010@carrier.test>\r\nCall-ID: rr-1\r\n"
          b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("status", [180, 183, 200])
def test_dialog_establishing_responses_copy_every_record_route_in_order(status):
    response = make_response(parse_message(INVITE), status, to_tag="t1")
    again = parse_message(bytes(response))
    assert again.headers.get_all("Record-Route") == ["<sip:198.51.100.7;lr;ftag=abc>", "<sip:198.51.100.8;lr>",
                                                     "<sip:198.51.100.9;lr;did=x.y>"]


@pytest.mark.parametrize("status", [100, 404, 486, 500])
def test_trying_and_refusals_carry_no_record_route(status):
    response = make_response(parse_message(INVITE), status, to_tag="t1")
    assert parse_message(bytes(response)).headers.get_all("Record-Route") == []
