"""Dialogs (RFC 3261 §12): creation on each side, in-dialog requests, CSeq ordering, destination."""

import pytest

from acd.sip.dialog import Dialog
from acd.sip.errors import RemoteProtocolError
from acd.sip.headers import CSeq, NameAddr
from acd.sip.message import Headers, Request, Response, parse_message

from conftest import load

SOURCE = ("203.0.113.9", 40312)


def uas_dialog(**overrides):
    invite = parse_message(load("pjsua_invite"))
    for name, value in overrides.items():
        invite.headers.set(name.replace("_", "-"), value)
    return invite, Dialog.as_uas(invite, local_tag="acd-tag", local_contact="<sip:acd@10.0.0.1:5060>",
                                 source=SOURCE, transport="UDP")


def in_dialog(method, cseq, contact=None):
    headers = Headers([("From", '"Agent Alice" <sip:alice@pbx.example.com>;tag=pj-from-1'),
                       ("To", "<sip:1000@pbx.example.com>;tag=acd-tag"),
                       ("Call-ID", "6f2a8d1c9e7b4a3f5d0e1c2b3a495867"), ("CSeq", f"{cseq} {method}")])
    if contact:
        headers.add("Contact", contact)
    return Request(method, "sip:acd@10.0.0.1:5060", headers)


def test_as_uas_takes_ids_target_and_route_set_from_the_invite():
    invite, dialog = uas_dialog()
    assert dialog.id == ("6f2a8d1c9e7b4a3f5d0e1c2b3a495867", "acd-tag", "pj-from-1")
    assert dialog.local_uri == "sip:1000@pbx.example.com"
    assert dialog.remote_uri == "sip:alice@pbx.example.com"
    assert dialog.remote_target == "sip:alice@192.168.1.20:5062;ob"
    assert dialog.route_set == ["<sip:10.0.0.2;lr;ftag=pj-from-1>"]  # §12.1.1: Record-Route, in order
    assert dialog.remote_cseq == 4711
    assert dialog.transport == "UDP" and dialog.fallback_destination == SOURCE


def test_as_uas_keeps_record_route_order_across_headers():
    invite = parse_message(load("pjsua_invite"))
    invite.headers.set("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    invite.headers.add("Record-Route", "<sip:p3.example.com;lr>")
    dialog = Dialog.as_uas(invite, local_tag="t", local_contact="", source=SOURCE, transport="UDP")
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"]


def test_as_uas_requires_a_contact():
    invite = parse_message(load("pjsua_invite"))
    invite.headers.remove("Contact")
    with pytest.raises(RemoteProtocolError):
        Dialog.as_uas(invite, local_tag="t", local_contact="", source=SOURCE, transport="UDP")


def test_bye_from_uas_swaps_tags_increments_cseq_and_routes():
    _, dialog = uas_dialog()
    bye = dialog.create_request("BYE")
    assert bye.method == "BYE"
    assert bye.uri == "sip:alice@192.168.1.20:5062;ob"  # Request-URI = remote target (§12.2.1.1)
    from_addr = NameAddr.parse(bye.headers.get("From"))
    to_addr = NameAddr.parse(bye.headers.get("To"))
    assert (from_addr.uri, from_addr.tag) == ("sip:1000@pbx.example.com", "acd-tag")
    assert (to_addr.uri, to_addr.tag) == ("sip:alice@pbx.example.com", "pj-from-1")
    assert bye.call_id == "6f2a8d1c9e7b4a3f5d0e1c2b3a495867"
    assert CSeq.parse(bye.headers.get("CSeq")) == CSeq(1, "BYE")
    assert bye.headers.get_all("Route") == ["<sip:10.0.0.2;lr;ftag=pj-from-1>"]
    assert "Contact" not in bye.headers and "Via" not in bye.headers  # the endpoint adds the Via
    second = dialog.create_request("INFO", body=b"Signal=5\r\n", content_type="application/dtmf-relay")
    assert CSeq.parse(second.headers.get("CSeq")) == CSeq(2, "INFO")
    assert second.headers.get("Content-Type") == "application/dtmf-relay" and second.body == b"Signal=5\r\n"
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n")
    assert reinvite.headers.get("Contact") == "<sip:acd@10.0.0.1:5060>"
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    ack = dialog.create_request("ACK")
    assert CSeq.parse(ack.headers.get("CSeq")) == CSeq(3, "ACK")  # ACK reuses the INVITE's number
    parse_message(bytes(bye))  # serialises to a valid message


def test_uas_local_cseq_can_start_anywhere():
    invite = parse_message(load("sipp_invite"))
    dialog = Dialog.as_uas(invite, local_tag="t", local_contact="", source=SOURCE, transport="UDP", local_cseq=100)
    assert dialog.create_request("BYE").headers.get("CSeq") == "101 BYE"
    assert dialog.route_set == [] and dialog.create_request("BYE").headers.get_all("Route") == []


def test_check_request_rejects_lower_cseq_with_500():
    _, dialog = uas_dialog()
    with pytest.raises(RemoteProtocolError) as info:
        dialog.check_request(in_dialog("BYE", 4710))
    assert info.value.status == 500
    assert dialog.remote_cseq == 4711


def test_check_request_accepts_higher_cseq_and_refreshes_target_on_reinvite_and_update():
    _, dialog = uas_dialog()
    dialog.check_request(in_dialog("INFO", 4712, contact="<sip:alice@198.51.100.3:5070>"))
    assert dialog.remote_cseq == 4712
    assert dialog.remote_target == "sip:alice@192.168.1.20:5062;ob"  # INFO is no target refresh
    dialog.check_request(in_dialog("INVITE", 4713, contact="<sip:alice@198.51.100.3:5070>"))
    assert dialog.remote_target == "sip:alice@198.51.100.3:5070"  # §12.2.2: re-INVITE refreshes it
    dialog.check_request(in_dialog("UPDATE", 4713 + 1, contact="<sip:alice@198.51.100.4:5070>"))
    assert dialog.remote_target == "sip:alice@198.51.100.4:5070"  # RFC 3311 §5.2: so does UPDATE
    dialog.check_request(in_dialog("ACK", 4713))
    dialog.check_request(in_dialog("CANCEL", 1))  # ACK and CANCEL are not ordered by the dialog
    assert dialog.remote_cseq == 4714


def test_check_request_with_malformed_cseq_is_400():
    _, dialog = uas_dialog()
    with pytest.raises(RemoteProtocolError) as info:
        dialog.check_request(in_dialog("BYE", "x"))
    assert info.value.status == 400


def test_destination_is_the_first_route_when_it_is_an_ip():
    _, dialog = uas_dialog()
    assert dialog.destination() == ("10.0.0.2", 5060)


def test_destination_is_the_contact_ip_without_routes():
    _, dialog = uas_dialog(Record_Route="")
    assert dialog.route_set == []  # an empty Record-Route header holds no route
    assert dialog.create_request("BYE").headers.get_all("Route") == []
    assert dialog.destination() == ("192.168.1.20", 5062)
    dialog.remote_target = "sip:alice@[2001:db8::7]:5070;transport=udp"
    assert dialog.destination() == ("2001:db8::7", 5070)
    dialog.remote_target = "sip:+15551234;npdi@198.51.100.20"
    assert dialog.destination() == ("198.51.100.20", 5060)


def test_destination_falls_back_to_the_source_for_host_names():
    _, dialog = uas_dialog()
    dialog.route_set = ["<sip:proxy.example.com;lr>"]
    assert dialog.destination() == SOURCE
    dialog.route_set = []
    dialog.remote_target = "sip:alice@phone.example.com"
    assert dialog.destination() == SOURCE
    dialog.remote_target = "not a uri"
    assert dialog.destination() == SOURCE


def test_as_uac_reverses_record_route_and_targets_the_2xx_contact():
    headers = Headers([("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx"), ("From", "<sip:acd@10.0.0.1>;tag=ours"),
                       ("To", "<sip:agent@10.0.0.2>"), ("Call-ID", "uac-1"), ("CSeq", "10 INVITE"),
                       ("Contact", "<sip:acd@10.0.0.1:5060>")])
    invite = Request("INVITE", "sip:agent@10.0.0.2", headers)
    response = Response(200, "OK", Headers([
        ("Record-Route", "<sip:p1.example.com;lr>"), ("Record-Route", "<sip:10.9.9.9;lr>"),
        ("From", "<sip:acd@10.0.0.1>;tag=ours"), ("To", "<sip:agent@10.0.0.2>;tag=theirs"),
        ("Call-ID", "uac-1"), ("CSeq", "10 INVITE"), ("Contact", "<sip:agent@10.0.0.2:5062>")]))
    dialog = Dialog.as_uac(invite, response, source=("10.0.0.2", 5062), transport="UDP")
    assert dialog.id == ("uac-1", "ours", "theirs")
    assert dialog.route_set == ["<sip:10.9.9.9;lr>", "<sip:p1.example.com;lr>"]  # §12.1.2: reversed
    assert dialog.remote_target == "sip:agent@10.0.0.2:5062"
    assert dialog.destination() == ("10.9.9.9", 5060)
    assert dialog.create_request("ACK").headers.get("CSeq") == "10 ACK"  # the ACK for the 2xx
    bye = dialog.create_request("BYE")
    assert bye.headers.get("CSeq") == "11 BYE"
    assert NameAddr.parse(bye.headers.get("To")).tag == "theirs"
    assert bye.headers.get_all("Route") == ["<sip:10.9.9.9;lr>", "<sip:p1.example.com;lr>"]
