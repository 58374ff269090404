"""SIP over TCP and TLS in the core: in-dialog requests reuse the connection, our Via names the TLS
port, and a dialog made with a SIPS URI gets a SIPS Contact (RFC 3261 §12.1.1, §26)."""

from acd.sip.dialog import Dialog, wants_sips
from acd.sip.endpoint import SipEndpoint
from acd.sip.message import Headers, Request, parse_message

from conftest import load

CONNECTION = ("203.0.113.9", 40312)  # the phone's end of its TLS connection (an ephemeral port)


def invite(uri: str = "sip:1000@pbx.example.com", contact: str = "<sip:alice@203.0.113.9:5061;transport=tls>",
           record_route: str | None = None) -> Request:
    request = parse_message(load("pjsua_invite"))
    request.uri = uri
    request.headers.set("Contact", contact)
    if record_route is None:
        request.headers.remove("Record-Route")
    else:
        request.headers.set("Record-Route", record_route)
    return request


def test_a_dialog_over_tls_sends_on_its_connection_not_to_the_contact_port():
    """A phone's Contact names its listening port; it connected from another one, and we open no connections."""
    dialog = Dialog.as_uas(invite(), local_tag="t", local_contact="<sip:acd@10.0.0.1:5061;transport=tls>",
                           source=CONNECTION, transport="TLS")
    assert dialog.destination() == CONNECTION


def test_a_dialog_over_udp_still_follows_the_contact():
    dialog = Dialog.as_uas(invite(contact="<sip:alice@203.0.113.9:5062>"), local_tag="t",
                           local_contact="<sip:acd@10.0.0.1:5060>", source=CONNECTION, transport="UDP")
    assert dialog.destination() == ("203.0.113.9", 5062)


def test_sips_is_wanted_for_a_sips_request_uri_record_route_or_contact():
    assert not wants_sips(invite())
    assert wants_sips(invite(uri="sips:1000@pbx.example.com"))
    assert wants_sips(invite(contact="<sips:alice@203.0.113.9>"))
    assert wants_sips(invite(record_route="<sips:proxy.example.com;lr>"))
    assert not wants_sips(invite(contact="<sips:alice@203.0.113.9>", record_route="<sip:proxy.example.com;lr>"))


def test_our_via_names_the_tls_port_for_requests_over_tls():
    endpoint = SipEndpoint(local_host="192.0.2.1", local_port=5060, transport_ports={"TLS": 5061})
    headers = Headers([("From", "<sip:acd@192.0.2.1>;tag=1"), ("To", "<sip:1001@192.0.2.1>"), ("Call-ID", "c"),
                       ("CSeq", "1 OPTIONS")])
    over_tcp = Request("OPTIONS", "sip:1001@203.0.113.9", headers.copy())
    endpoint.send_request(Request("OPTIONS", "sip:1001@203.0.113.9", headers), CONNECTION, "TLS", 0.0)
    endpoint.send_request(over_tcp, CONNECTION, "TCP", 0.0)
    tls, tcp = endpoint.datagrams_to_send()
    assert b"Via: SIP/2.0/TLS 192.0.2.1:5061;" in tls.data and tls.transport == "TLS"
    assert b"Via: SIP/2.0/TCP 192.0.2.1:5060;" in tcp.data
    assert endpoint.new_via("TLS").startswith("SIP/2.0/TLS 192.0.2.1:5061;")
