"""RFC 3327 Path, pure: the values a REGISTER brings (a real one Kamailio forwarded, from
tests/data/sip), their broken twins, the binding that keeps them, and the INVITE they preload."""

from pathlib import Path

import pytest

from acd.registrar.bindings import BindingTable
from acd.registrar.path import (MAX_PATH_VALUES, AgentContact, agent_contact, first_hop, parse_path_values,
                                supports_path)
from acd.sip.build import build_invite
from acd.sip.errors import RemoteProtocolError
from acd.sip.message import parse_message

DATA = Path(__file__).resolve().parents[2] / "data" / "sip"
T0 = 1000.0
KAMAILIO = "<sip:127.0.0.10:25070;lr>"


def kamailio_register():
    """A REGISTER as Kamailio's front door (conf/kamailio/kamailio.cfg, add_path) forwards it to a node."""
    return parse_message((DATA / "register_via_kamailio.txt").read_bytes())


def test_the_path_kamailio_adds_is_parsed_and_its_first_hop_is_kamailio():
    register = kamailio_register()
    path = parse_path_values(register.headers.get_all("Path"))
    assert path == (KAMAILIO,)
    assert supports_path(register.headers.get_all("Supported"))
    assert first_hop(path) == ("127.0.0.10", 25070)


def test_two_proxies_keep_their_order_and_the_received_parameter():
    values = ["<sip:edge.example.net;lr>", "<sip:127.0.0.10;lr;received=sip:192.0.2.7:41000>"]
    assert parse_path_values(values) == tuple(values)
    assert first_hop(values[1:]) == ("127.0.0.10", 5060)
    assert first_hop(values) is None, "a host name is not resolved in the core"
    assert first_hop(["<sips:127.0.0.10;lr>"]) == ("127.0.0.10", 5061)
    assert first_hop([]) is None


def test_a_display_name_is_dropped_and_a_bare_uri_loses_its_lr_to_the_header():
    """path-value = name-addr (RFC 3327 §4): in a bare `sip:host;lr` the `;lr` is a header parameter."""
    assert parse_path_values(['"front" <sip:127.0.0.10;lr>']) == ("<sip:127.0.0.10;lr>",)
    with pytest.raises(RemoteProtocolError, match="strict routing"):
        parse_path_values(["sip:127.0.0.10;lr"])


@pytest.mark.parametrize("value, why", [
    ("<sip:127.0.0.10>", "strict routing"),
    ("<tel:+15551234;lr>", "not a sip: or sips: URI"),
    ("<sip:127.0.0.10;lr", "unterminated"),
])
def test_broken_path_values_are_refused_400(value, why):
    with pytest.raises(RemoteProtocolError) as refused:
        parse_path_values([value])
    assert refused.value.status == 400 and why in str(refused.value)


def test_more_path_values_than_the_limit_are_refused():
    with pytest.raises(RemoteProtocolError, match="at most"):
        parse_path_values([KAMAILIO] * (MAX_PATH_VALUES + 1))


def test_supported_path_is_an_option_tag_not_a_substring():
    assert supports_path(["100rel", " Path "])
    assert not supports_path(["100rel", "pathological"])
    assert not supports_path([])


def test_bindings_keep_the_path_of_the_register_that_made_or_refreshed_them():
    table = BindingTable()
    first = table.apply("1001", [("sip:1001@192.0.2.7:5060", None, 1.0)], 600, "c1", 1, ("127.0.0.10", 25070),
                        "UDP", "", T0, path=(KAMAILIO,))
    assert first.added[0].path == (KAMAILIO,)
    moved = table.apply("1001", [("sip:1001@192.0.2.7:5060", None, 1.0)], 600, "c1", 2, ("127.0.0.20", 5060),
                        "UDP", "", T0 + 1, path=("<sip:127.0.0.20;lr>",))
    assert moved.refreshed[0].path == ("<sip:127.0.0.20;lr>",)
    direct = table.apply("1001", [("sip:1001@192.0.2.7:5060", None, 1.0)], 600, "c1", 3, ("192.0.2.7", 5060),
                         "UDP", "", T0 + 2)
    assert direct.refreshed[0].path == ()


def test_an_invite_with_a_preloaded_route_set_golden():
    invite = build_invite(uri="sip:1001@127.0.0.1:5070", call_id="offer-1@127.0.0.11", from_user="acd",
                          to_user="1001", local=("127.0.0.11", 5060), route=(KAMAILIO, "<sip:edge.example.net;lr>"))
    text = bytes(invite).decode()
    tag = invite.headers.get("From").rsplit("tag=", 1)[1]
    assert text == (
        "INVITE sip:1001@127.0.0.1:5070 SIP/2.0\r\n"
        "Route: <sip:127.0.0.10:25070;lr>\r\n"
        "Route: <sip:edge.example.net;lr>\r\n"
        f'From: "ACD" <sip:acd@127.0.0.11:5060>;tag={tag}\r\n'
        "To: <sip:1001@127.0.0.11>\r\n"
        "Call-ID: offer-1@127.0.0.11\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:acd@127.0.0.11:5060>\r\n"
        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER, UPDATE, PRACK\r\n"
        "Content-Length: 0\r\n\r\n")


def test_a_plain_contact_triple_is_an_agent_contact_without_route():
    """`contacts` callables written before Path support give (uri, destination, transport)."""
    assert agent_contact(("sip:1001@192.0.2.7", ["192.0.2.7", 5060], "UDP")) == AgentContact(
        "sip:1001@192.0.2.7", ("192.0.2.7", 5060), "UDP", ())
    through = AgentContact("sip:1001@192.0.2.7", ("127.0.0.10", 5060), "UDP", (KAMAILIO,))
    assert agent_contact(through) == through
