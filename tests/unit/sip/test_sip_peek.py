"""`peek_request`: the transaction headers of a request without a full parse, and a stateless answer
from them that the full parser reads back as the response §8.2.6.2 asks for."""

import pytest

from acd.sip.message import Response, parse_message
from acd.sip.peek import peek_request

INVITE = (b"INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a1;rport\r\n"
          b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-b2\r\n"
          b"Max-Forwards: 70\r\n"
          b"From: \"Caller\" <sip:5551@127.0.0.1>;tag=f1\r\n"
          b"To: <sip:1000@127.0.0.1>\r\n"
          b"Call-ID: abc-123@127.0.0.1\r\n"
          b"CSeq: 7 INVITE\r\n"
          b"Contact: <sip:5551@127.0.0.1:5070>\r\n"
          b"Content-Type: application/sdp\r\n"
          b"Content-Length: 4\r\n\r\n"
          b"v=0\n")


def test_a_new_invite_is_seen_with_its_key_and_outside_any_dialog():
    peek = peek_request(INVITE)
    assert (peek.method, peek.call_id, peek.branch, peek.cseq_number) == (b"INVITE", "abc-123@127.0.0.1",
                                                                         b"z9hG4bK-a1", b"7")
    assert peek.key == ("abc-123@127.0.0.1", b"z9hG4bK-a1", b"7")
    assert not peek.in_dialog


def test_its_answer_is_a_response_the_full_parser_reads_with_every_copied_header():
    """Both Vias in order, From, To with our tag, Call-ID, CSeq; Retry-After; no body (§8.2.6.2)."""
    answer = peek_request(INVITE).answer(503, "Service Unavailable", to_tag="t99", headers=(("Retry-After", "2"),))
    response = parse_message(answer)
    request = parse_message(INVITE)
    assert isinstance(response, Response) and (response.status, response.reason) == (503, "Service Unavailable")
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    for name in ("From", "Call-ID", "CSeq"):
        assert response.headers.get(name) == request.headers.get(name)
    assert response.headers.get("To") == "<sip:1000@127.0.0.1>;tag=t99"
    assert response.headers.get("Retry-After") == "2" and response.body == b""


def test_the_ack_of_a_non_2xx_answer_shares_the_invites_key():
    """§17.1.1.3: same branch, same CSeq number; its To has our tag."""
    ack = (INVITE.split(b"\r\n\r\n")[0].replace(b"INVITE sip", b"ACK sip").replace(b"7 INVITE", b"7 ACK")
           .replace(b"To: <sip:1000@127.0.0.1>", b"To: <sip:1000@127.0.0.1>;tag=t99") + b"\r\n\r\n")
    peek = peek_request(ack)
    assert peek.key == peek_request(INVITE).key and peek.in_dialog and peek.method == b"ACK"


@pytest.mark.parametrize("to, tagged", [
    (b"To: <sip:1000@127.0.0.1>;tag=x", True),
    (b"To: <sip:1000@127.0.0.1> ; TAG = x", True),
    (b"t: sip:1000@127.0.0.1;tag=x", True),  # addr-spec: every parameter is the header's
    (b"To: <sip:1000@127.0.0.1;tag=x>", False),  # a URI parameter, not the header's tag
    (b"To: \"a;tag=b\" <sip:1000@127.0.0.1>", False),
])
def test_a_to_tag_is_found_only_as_a_header_parameter(to, tagged):
    peek = peek_request(INVITE.replace(b"To: <sip:1000@127.0.0.1>", to))
    assert peek.in_dialog is tagged


def test_compact_and_lower_case_names_are_read():
    compact = (INVITE.replace(b"Via:", b"v:").replace(b"From:", b"f:").replace(b"To:", b"t:")
               .replace(b"Call-ID:", b"i:").replace(b"CSeq:", b"cseq:"))
    peek = peek_request(compact)
    assert peek.key == peek_request(INVITE).key
    response = parse_message(peek.answer(503, "Service Unavailable", to_tag="z"))
    assert response.headers.get("To") == "<sip:1000@127.0.0.1>;tag=z"


def test_a_header_whose_name_only_starts_like_a_kept_one_is_ignored():
    peek = peek_request(INVITE.replace(b"Max-Forwards: 70", b"To-Tag-Hint: x;tag=1\r\nVia2: y"))
    assert not peek.in_dialog and len([name for name, _ in peek.lines if name.lower() == b"via"]) == 2


@pytest.mark.parametrize("broken", [
    INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 7 BYE"),                       # CSeq method is not the request's
    INVITE.replace(b"Call-ID: abc-123@127.0.0.1\r\n", b""),                   # a kept header missing
    INVITE.replace(b"To: <sip:1000@127.0.0.1>", b"To: <sip:1000@127.0.0.1>\r\nTo: <sip:x@y>"),  # given twice
    INVITE.replace(b"From: \"Caller\"", b"From:\r\n \"Caller\""),             # a folded line (§7.3.1)
    INVITE.replace(b"\r\n", b"\n"),                                           # LF-only
    INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1),
    b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
    INVITE.split(b"\r\n\r\n")[0],                                              # no end of headers
    INVITE.replace(b"CSeq: 7", b"CSeq: seven"),
])
def test_anything_unusual_is_left_to_the_full_parser(broken):
    assert peek_request(broken) is None
