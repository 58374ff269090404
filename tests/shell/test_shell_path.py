"""RFC 3327 Path in process: an agent's phone registered through a proxy (Kamailio in front of a
cluster) is reached through it. The REGISTER's Path is stored with the binding and echoed in the 200
when the phone supports it; the offer goes to the first Path hop with the Path as its Route set and
the Contact as Request-URI. Here the agent's own phone stands in for the proxy (its address is the
Path URI), and its Contact names an address nothing listens on: the offer can only come via the Path.
"""

from __future__ import annotations

from .harness import queue_files

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join}"
UNREACHABLE_CONTACT = "sip:1001@192.0.2.77:5999"


def path_harness(make_harness):
    return make_harness(extra_files=queue_files({"q": Q}, {"1001": "{q: 0}"}))


def test_offer_to_an_agent_registered_through_a_proxy_goes_through_it_with_the_path_as_route(make_harness):
    harness = path_harness(make_harness)
    phone = harness.agent("1001")
    proxy = f"<sip:{phone.address[0]}:{phone.address[1]};lr>"
    ok = phone.register(contact=f"<{UNREACHABLE_CONTACT}>", extra_headers=(("Path", proxy), ("Supported", "path")))
    assert ok.status == 200
    assert ok.headers.get_all("Path") == [proxy], "the stored Path is echoed (RFC 3327 §5.3)"
    assert "path" in ok.headers.get_all("Supported")
    phone.login()
    harness.answered_call("3000")
    offer = phone.offer()
    assert offer.invite.uri == UNREACHABLE_CONTACT
    assert offer.invite.headers.get_all("Route") == [proxy]
    assert harness.agent_state("1001") == "offered"


def test_path_without_supported_path_is_stored_but_not_echoed(make_harness):
    """A phone that never heard of Path, behind our own proxy: registered all the same (no 420),
    the 200 says nothing of the Path, and offers still go through the proxy."""
    harness = path_harness(make_harness)
    phone = harness.agent("1001")
    proxy = f"<sip:{phone.address[0]}:{phone.address[1]};lr;received=sip:192.0.2.77:5999>"
    ok = phone.register(contact=f"<{UNREACHABLE_CONTACT}>", extra_headers=(("Path", proxy),))
    assert ok.status == 200 and ok.headers.get_all("Path") == []
    phone.login()
    harness.answered_call("3000")
    assert phone.offer().invite.headers.get_all("Route") == [proxy]


def test_a_strict_routing_path_is_refused_400_and_registers_nothing(make_harness):
    harness = path_harness(make_harness)
    phone = harness.agent("1001")
    refused = phone.register(extra_headers=(("Path", f"<sip:{phone.address[0]}:{phone.address[1]}>"),))
    assert refused.status == 400
    assert harness.agent_info("1001")["registered"] is False
