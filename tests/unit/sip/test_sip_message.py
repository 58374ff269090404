"""SIP message parsing and serialisation (RFC 3261 §7, §18.3, §20; RFC 4475 torture tests).

Golden captures live in tests/data/sip (written with exact CRLF line endings). Each golden message
has a `_truncated` twin, and every strict prefix of it must be refused as well.
"""

import pytest

from acd.sip.errors import RemoteProtocolError
from acd.sip.headers import CSeq, NameAddr, SipUri, Via
from acd.sip.message import MAX_MESSAGE_SIZE, Headers, Request, Response, canonical_name, parse_message, split_list_value

from conftest import DATA, load

GOLDEN = ["sipp_invite", "pjsua_invite", "response_100", "response_180", "response_200", "bye", "cancel",
          "options", "register"]


def reparse(message):
    """Serialise and parse again: the normalised form must carry the same fields."""
    return parse_message(bytes(message))


def assert_same_fields(a, b):
    assert type(a) is type(b)
    if isinstance(a, Request):
        assert (a.method, a.uri) == (b.method, b.uri)
    else:
        assert (a.status, a.reason) == (b.status, b.reason)
    # Serialisation moves Content-Length last and writes it from the body; all else keeps its order.
    assert [h for h in a.headers if h[0] != "Content-Length"] == [h for h in b.headers if h[0] != "Content-Length"]
    assert a.headers.get("Content-Length") == b.headers.get("Content-Length") == str(len(a.body))
    assert a.body == b.body


# ---- golden messages ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", GOLDEN)
def test_golden_message_serialises_back_to_the_same_bytes(name):
    """Golden captures are in canonical form (Content-Length last), so bytes(parse(x)) == x."""
    data = load(name)
    message = parse_message(data)
    assert bytes(message) == data
    assert_same_fields(reparse(message), message)


def test_sipp_invite_fields():
    message = parse_message(load("sipp_invite"))
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == "sip:service@10.0.0.1:5060"
    assert message.call_id == "1-12345@10.0.0.10"
    assert CSeq.parse(message.headers.get("CSeq")) == CSeq(1, "INVITE")
    via = Via.parse(message.headers.get("Via"))
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "10.0.0.10", 5061, "z9hG4bK-12345-1-0")
    assert via.sent_by == "10.0.0.10:5061"
    from_addr = NameAddr.parse(message.headers.get("From"))
    assert (from_addr.display_name, from_addr.uri, from_addr.tag) == ("sipp", "sip:sipp@10.0.0.10:5061", "12345SIPpTag001")
    assert NameAddr.parse(message.headers.get("To")).tag is None
    assert NameAddr.parse(message.headers.get("Contact")).uri == "sip:sipp@10.0.0.10:5061"
    assert message.headers.get("Content-Type") == "application/sdp"
    assert message.body.startswith(b"v=0\r\no=user1 ")
    assert message.body.endswith(b"a=rtpmap:0 PCMU/8000\r\n")
    assert int(message.headers.get("Content-Length")) == len(message.body) == 129


def test_pjsua_invite_fields():
    message = parse_message(load("pjsua_invite"))
    vias = [Via.parse(v) for v in message.headers.get_all("Via")]
    assert [v.branch for v in vias] == ["z9hG4bKproxy77", "z9hG4bKPj6b1e2a9c-8f1d-4c2e-9a3b-5d7e0f1a2b3c"]
    assert vias[1].params["rport"] == "40312" and vias[1].params["received"] == "203.0.113.9"
    assert message.headers.get_all("Record-Route") == ["<sip:10.0.0.2;lr;ftag=pj-from-1>"]
    assert message.headers.get_all("Route") == ["<sip:10.0.0.1;lr>"]
    assert message.headers.get_all("Allow")[:3] == ["PRACK", "INVITE", "ACK"]
    assert len(message.headers.get_all("Allow")) == 12
    assert message.headers.get_all("Supported") == ["replaces", "100rel", "timer", "norefersub", "trickle-ice"]
    contact = NameAddr.parse(message.headers.get("Contact"))
    assert contact.display_name == "Agent Alice"
    assert contact.uri == "sip:alice@192.168.1.20:5062;ob"
    assert contact.params == {"+sip.instance": '"<urn:uuid:00000000-0000-0000-0000-00003a1b2c3d>"', "expires": "600"}
    assert message.headers.get("min-se") == "90"
    assert message.headers.get("X-ACD-QUEUE") == 'support;priority="high;urgent"'
    assert message.headers.get("user-agent").startswith("PJSUA2 v2.14.1")
    assert CSeq.parse(message.headers.get("CSeq")).number == 4711
    assert len(message.body) == int(message.headers.get("Content-Length")) == 340
    assert len(message.headers) == 19


@pytest.mark.parametrize("name, status, reason", [
    ("response_100", 100, "Trying"), ("response_180", 180, "Ringing"), ("response_200", 200, "OK")])
def test_response_status_line_and_tags(name, status, reason):
    message = parse_message(load(name))
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (status, reason)
    to_tag = NameAddr.parse(message.headers.get("To")).tag
    assert to_tag == (None if status == 100 else to_tag) and (status == 100 or to_tag)


def test_response_200_carries_sdp_and_two_vias():
    message = parse_message(load("response_200"))
    assert len(message.headers.get_all("Via")) == 2
    assert message.body.startswith(b"v=0\r\n") and b"telephone-event/8000" in message.body
    assert NameAddr.parse(message.headers.get("Contact")).uri == "sip:acd@10.0.0.1:5060"


@pytest.mark.parametrize("name, method, cseq", [
    ("bye", "BYE", CSeq(2, "BYE")), ("cancel", "CANCEL", CSeq(1, "CANCEL")),
    ("options", "OPTIONS", CSeq(101, "OPTIONS")), ("register", "REGISTER", CSeq(2, "REGISTER"))])
def test_non_invite_requests_parse(name, method, cseq):
    message = parse_message(load(name))
    assert message.method == method
    assert CSeq.parse(message.headers.get("CSeq")) == cseq
    assert message.body == b""


def test_register_authorization_and_contact_instance():
    message = parse_message(load("register"))
    authorization = message.headers.get("Authorization")
    assert authorization.startswith('Digest username="alice", realm="pbx.example.com"')
    # Authorization is not a list header: its commas stay inside the one value.
    assert message.headers.get_all("Authorization") == [authorization]
    assert message.headers.get("Expires") == "300"
    assert Via.parse(message.headers.get("Via")).params == {"rport": None, "branch": "z9hG4bKPjreg-0001"}


# ---- broken twins -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", GOLDEN)
def test_truncated_twin_is_refused_with_400(name):
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(load(f"{name}_truncated"))
    assert info.value.status == 400


@pytest.mark.parametrize("name", GOLDEN)
def test_every_strict_prefix_of_a_golden_message_is_refused(name):
    """A datagram cut anywhere is an error: either the headers never end or the body is short (§18.3)."""
    data = load(name)
    for end in range(len(data)):
        with pytest.raises(RemoteProtocolError) as info:
            parse_message(data[:end])
        assert info.value.status == 400, end


def test_data_directory_uses_crlf_only():
    """The captures must be byte-exact: no bare LF anywhere in a header block."""
    for path in DATA.glob("*.txt"):
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
        assert b"\n" not in head.replace(b"\r\n", b""), path.name


# ---- RFC 4475 style torture messages ----------------------------------------------------------

def test_wsinv_folded_lines_and_odd_whitespace():
    """RFC 4475 §3.1.1.1: folding, whitespace around colons and slashes, mixed case, compact forms."""
    message = parse_message(load("torture_wsinv"))
    assert message.method == "INVITE"
    assert message.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    headers = message.headers
    to = NameAddr.parse(headers.get("To"))
    assert (to.uri, to.tag) == ("sip:vivekg@chair-dnrc.example.com", "1918181833n")
    from_addr = NameAddr.parse(headers.get("From"))
    assert (from_addr.uri, from_addr.tag) == ("sip:jdrosen@example.com", "98asjd8")
    assert from_addr.display_name == 'J Rosenberg \\\\\\"'
    assert headers.get("Max-Forwards") == "0068"
    assert CSeq.parse(headers.get("CSeq")) == CSeq(9, "INVITE")
    assert headers.get("Subject") == ""
    assert "Subject" in headers
    assert headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert headers.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    assert headers.get_all("Route") == ["<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"]
    vias = [Via.parse(v) for v in headers.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contact = NameAddr.parse(headers.get("Contact"))
    assert contact.display_name == 'Quoted string \\"\\"'
    assert contact.uri == "sip:jdrosen@example.com"
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(message.body) == 150
    assert_same_fields(reparse(message), message)


def test_compact_forms_expand_to_long_names():
    """RFC 3261 §7.3.3: i, f, t, v, l, m, c, k are Call-ID, From, To, Via, Content-Length, Contact..."""
    message = parse_message(load("torture_compact"))
    names = [name for name, _ in message.headers]
    assert names == ["Via", "Call-ID", "From", "To", "CSeq", "Contact", "Supported", "Content-Type", "Content-Length"]
    assert message.call_id == "compact-1@192.0.2.33"
    assert message.headers.get("i") == message.headers.get("Call-ID")
    assert NameAddr.parse(message.headers.get("f")).tag == "cmp1"
    assert message.headers.get("To") == "<sip:user@example.com>"
    assert message.headers.get_all("k") == ["timer", "100rel"]
    assert message.body == b"hello"
    serialised = bytes(message)
    assert b"\r\nCall-ID: compact-1@192.0.2.33\r\n" in serialised
    assert serialised.endswith(b"\r\nContent-Length: 5\r\n\r\nhello")
    assert_same_fields(reparse(message), message)


def test_intmeth_extension_method_and_unusual_tokens():
    """RFC 4475 §3.1.1.2: any token is a method; control characters inside quoted strings survive."""
    message = parse_message(load("torture_intmeth"))
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert message.method == method
    assert message.uri.startswith("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1")
    assert CSeq.parse(message.headers.get("CSeq")) == CSeq(139122385, method)
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert "\x00" in message.headers.get("To") and "\x7f" in message.headers.get("To")
    assert message.headers.get("extensionheader-!.%*+_`'~") == "\ufeff大停電"
    from_addr = NameAddr.parse(message.headers.get("From"))
    assert from_addr.uri == "sip:mundane@example.com"
    assert from_addr.tag == "_token~1'+`*%!-."
    assert from_addr.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert_same_fields(reparse(message), message)


def test_multiple_vias_in_one_header_and_in_several_headers_keep_their_order():
    message = parse_message(load("torture_semiuri_multivia"))
    vias = [Via.parse(v) for v in message.headers.get_all("Via")]
    assert [v.branch for v in vias] == ["z9hG4bK-first", "z9hG4bK-second", "z9hG4bK-third", "z9hG4bK-fourth"]
    assert (vias[2].transport, vias[2].port, vias[2].params["received"]) == ("TCP", 5070, "192.0.2.103")
    # IPv6 reference in sent-by (RFC 5118 §4.1).
    assert (vias[3].host, vias[3].port, vias[3].sent_by) == ("[2001:db8::9:1]", 5060, "[2001:db8::9:1]:5060")
    assert vias[3].params["maddr"] == "[2001:db8::9:255]"
    assert str(vias[3]) == "SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK-fourth;maddr=[2001:db8::9:255]"


def test_quoted_display_name_with_comma_and_angle_brackets():
    """Commas and '<' inside a quoted display name belong to the name (§25.1 quoted-string)."""
    message = parse_message(load("torture_semiuri_multivia"))
    from_addr = NameAddr.parse(message.headers.get("From"))
    assert from_addr.display_name == "Smith, John <Sales>"
    assert from_addr.uri == "sip:john@example.com"
    assert from_addr.params == {"tag": "123", "note": '"a;b,c"'}
    contacts = [NameAddr.parse(c) for c in message.headers.get_all("Contact")]
    assert [c.uri for c in contacts] == ["sip:[2001:db8::10]:5070;transport=tcp", "sip:second@192.0.2.9"]
    assert contacts[1].params == {"q": "0.5"}


def test_semicolon_in_user_part_of_uri():
    """RFC 4475 §3.1.1.10 "semiuri": ';' before the '@' belongs to the user part."""
    message = parse_message(load("torture_semiuri_multivia"))
    uri = SipUri.parse(message.uri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", {})
    to = NameAddr.parse(message.headers.get("To"))
    assert to.uri == "sip:user"  # bare addr-spec: the first ';' starts header params (§20.10)


def test_long_header_value_survives():
    message = parse_message(load("torture_semiuri_multivia"))
    assert message.headers.get("X-Long") == "a" * 3000
    assert_same_fields(reparse(message), message)


def test_header_names_are_case_insensitive():
    data = (b"OPTIONS sip:a@example.com SIP/2.0\r\nVIA: SIP/2.0/UDP h;branch=z9hG4bK1\r\ncall-id: x\r\n"
            b"FROM: <sip:b@example.com>;tag=1\r\nto: <sip:a@example.com>\r\nCSEQ: 1 OPTIONS\r\n"
            b"max-forwards: 70\r\ncontent-LENGTH: 0\r\n\r\n")
    message = parse_message(data)
    assert [name for name, _ in message.headers] == ["Via", "Call-ID", "From", "To", "CSeq", "Max-Forwards",
                                                     "Content-Length"]
    for spelling in ("call-id", "CALL-ID", "Call-Id", "i", "I"):
        assert message.headers.get(spelling) == "x"


def test_leading_crlf_before_start_line_is_ignored():
    """§7.5: CRLFs before the start line SHOULD be ignored."""
    message = parse_message(b"\r\n\r\n" + load("options"))
    assert message.method == "OPTIONS"


def test_bytes_beyond_content_length_are_discarded():
    """§18.3: over UDP, octets after Content-Length are dropped."""
    message = parse_message(load("options") + b"garbage")
    assert message.body == b""


def test_missing_content_length_takes_the_rest_of_the_datagram():
    data = load("options").replace(b"Content-Length: 0\r\n", b"") + b"body"
    assert parse_message(data).body == b"body"


def test_bare_lf_messages_are_tolerated():
    data = load("options").replace(b"\r\n", b"\n")
    message = parse_message(data)
    assert message.method == "OPTIONS" and message.call_id == "9a8b7c6d-5e4f@198.51.100.7"


def test_empty_reason_phrase_is_accepted():
    data = load("response_180").replace(b"180 Ringing", b"180")
    message = parse_message(data)
    assert (message.status, message.reason) == (180, "")


def test_known_header_names_keep_their_rfc_spelling():
    assert canonical_name("min-se") == "Min-SE"  # RFC 4028
    assert canonical_name("rseq") == "RSeq" and canonical_name("rack") == "RAck"  # RFC 3262
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-ACD-Queue") == "X-ACD-Queue", "unknown names keep their spelling"


def test_unknown_header_lookups_ignore_case():
    """X-ACD-Queue written by us is found as x-acd-queue, and vice versa."""
    headers = Headers([("X-ACD-Queue", "sales")])
    assert headers.get("x-acd-queue") == "sales" and headers.get_all("X-Acd-Queue") == ["sales"]
    headers.set("x-acd-queue", "support")
    assert list(headers) == [("x-acd-queue", "support")]
    headers.remove("X-ACD-QUEUE")
    assert len(headers) == 0


# ---- invalid messages -------------------------------------------------------------------------

@pytest.mark.parametrize("name, status, words", [
    ("invalid_no_empty_line", 400, "empty line"),
    ("invalid_start_line", 400, "start line"),
    ("invalid_clerr", 400, "Content-Length 9999"),
    ("invalid_ncl", 400, "not a number"),
    ("invalid_badvers", 505, "version 7.0"),
])
def test_invalid_message_raises_remote_protocol_error_with_status(name, status, words):
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(load(name))
    assert info.value.status == status
    assert words in info.value.reason


def test_unknown_version_in_status_line_is_505():
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(load("response_180").replace(b"SIP/2.0 180", b"SIP/3.0 180"))
    assert info.value.status == 505


def test_huge_message_is_513():
    data = load("options").replace(b"Content-Length: 0", b"X-Pad: " + b"p" * MAX_MESSAGE_SIZE + b"\r\nContent-Length: 0")
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status == 513


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "0x10", "²", "٣", "1 2", ""])
def test_non_numeric_content_length_is_400(value):
    data = load("options").replace(b"Content-Length: 0", f"Content-Length: {value}".encode())
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status == 400


@pytest.mark.parametrize("status_line", [b"SIP/2.0 099 Odd", b"SIP/2.0 700 Odd", b"SIP/2.0 000 Odd",
                                         b"SIP/2.0 4294967301 Big", b"SIP/2.0 20 OK"])
def test_status_code_outside_100_to_699_is_refused(status_line):
    """§7.2 / RFC 4475 §3.1.2.? "bigcode": status codes are three digits, 100-699."""
    with pytest.raises(RemoteProtocolError):
        parse_message(load("response_180").replace(b"SIP/2.0 180 Ringing", status_line))


@pytest.mark.parametrize("data", [
    b"",
    b"\r\n\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\n Via: continuation first\r\n\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: \xff\xfe\r\n\r\n",
    b"HELLO\r\n\r\n",
])
def test_malformed_heads_are_400(data):
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_too_many_headers_is_refused():
    data = b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-H: 1\r\n" * 300 + b"\r\n"
    with pytest.raises(RemoteProtocolError):
        parse_message(data)


# ---- header types -----------------------------------------------------------------------------

def test_split_list_value_respects_quotes_and_brackets():
    assert split_list_value('"a, b" <sip:x@y>, <sip:z@w;p=1,2>') == ['"a, b" <sip:x@y>', "<sip:z@w;p=1,2>"]
    assert split_list_value('"esc \\", still" <sip:q@r>, sip:s@t') == ['"esc \\", still" <sip:q@r>', "sip:s@t"]
    assert split_list_value(",,") == []
    assert split_list_value("  ") == []


def test_headers_set_replaces_all_values_at_the_first_position():
    headers = Headers([("Via", "a"), ("To", "t"), ("Via", "b")])
    headers.set("v", "c")
    assert list(headers) == [("Via", "c"), ("To", "t")]
    headers.prepend("Via", "d")
    headers.remove("to")
    assert list(headers) == [("Via", "d"), ("Via", "c")]
    assert "To" not in headers and "Via" in headers


def test_serialisation_writes_content_length_last_from_the_body():
    request = Request("MESSAGE", "sip:a@b", Headers([("Content-Length", "999"), ("Call-ID", "c")]), b"hi")
    assert bytes(request) == b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: c\r\nContent-Length: 2\r\n\r\nhi"


@pytest.mark.parametrize("value", ["SIP/2.0/UDP", "SIP/2.0/UDP ;branch=x", "HTTP/1.1/UDP host", "SIP/2.0 host", ""])
def test_malformed_via_is_400(value):
    with pytest.raises(RemoteProtocolError) as info:
        Via.parse(value)
    assert info.value.status == 400


def test_via_lowercase_protocol_is_accepted():
    """RFC 5234 §2.3: ABNF literal strings such as "SIP" are case-insensitive."""
    via = Via.parse("sip/2.0/udp host.example.com:5070;branch=z9hG4bKlow")
    assert (via.transport, via.host, via.port) == ("UDP", "host.example.com", 5070)


@pytest.mark.parametrize("value", ["", "INVITE", "1", "x INVITE", "2147483648 INVITE", "36893488147419103232 INVITE",
                                   "-1 INVITE"])
def test_malformed_cseq_is_400(value):
    with pytest.raises(RemoteProtocolError) as info:
        CSeq.parse(value)
    assert info.value.status == 400


def test_cseq_round_trip_and_limits():
    assert CSeq.parse("  2147483647   BYE ") == CSeq(2**31 - 1, "BYE")
    assert str(CSeq(7, "INFO")) == "7 INFO"


@pytest.mark.parametrize("text, scheme, user, host, port, params", [
    ("sip:alice@192.0.2.1:5062;transport=udp", "sip", "alice", "192.0.2.1", 5062, {"transport": "udp"}),
    ("SIPS:bob@example.com", "sips", "bob", "example.com", None, {}),
    ("sip:[2001:db8::1]:5080;lr", "sip", None, "[2001:db8::1]", 5080, {"lr": None}),
    ("sip:carol:secret@example.com", "sip", "carol", "example.com", None, {}),
    ("tel:+1-201-555-0123;phone-context=example.com", "tel", "+1-201-555-0123", "", None,
     {"phone-context": "example.com"}),
    ("sip:+15551234;npdi;rn=+15550000@198.51.100.1", "sip", "+15551234;npdi;rn=+15550000", "198.51.100.1", None, {}),
])
def test_sip_uri_fields(text, scheme, user, host, port, params):
    uri = SipUri.parse(text)
    assert (uri.scheme, uri.user, uri.host, uri.port, uri.params) == (scheme, user, host, port, params)


def test_sip_uri_headers_and_str():
    uri = SipUri.parse("sip:agent@10.0.0.5:5060;transport=tcp?subject=hi")
    assert uri.headers == "?subject=hi"
    assert str(uri) == "sip:agent@10.0.0.5:5060;transport=tcp?subject=hi"


def test_unsupported_uri_scheme_is_416_and_garbage_is_400():
    with pytest.raises(RemoteProtocolError) as info:
        SipUri.parse("http://example.com/")
    assert info.value.status == 416
    with pytest.raises(RemoteProtocolError) as info:
        SipUri.parse("sip:")
    assert info.value.status == 400
    with pytest.raises(RemoteProtocolError) as info:
        SipUri.parse("not a uri")
    assert info.value.status == 400


def test_name_addr_forms():
    assert NameAddr.parse("sip:a@b;tag=1") == NameAddr(uri="sip:a@b", params={"tag": "1"})
    assert NameAddr.parse('"A B" <sip:a@b;lr>;tag=x;q="0;5"') == NameAddr(
        uri="sip:a@b;lr", display_name="A B", params={"tag": "x", "q": '"0;5"'})
    assert NameAddr.parse("Plain Name <sip:a@b>").display_name == "Plain Name"
    assert NameAddr.parse("caller<sip:caller@example.com>;tag=323").display_name == "caller"  # RFC 4475 lwsdisp
    assert str(NameAddr(uri="sip:a@b", display_name="A", params={"tag": "1"})) == '"A" <sip:a@b>;tag=1'
    with pytest.raises(RemoteProtocolError):
        NameAddr.parse("<sip:a@b")
    with pytest.raises(RemoteProtocolError):
        NameAddr.parse("no-colon")
    with pytest.raises(RemoteProtocolError):  # RFC 4475 §3.1.2.13 "quotbal": unbalanced quote
        NameAddr.parse('"Mr. J. User <sip:j.user@example.com>')
