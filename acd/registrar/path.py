"""RFC 3327 Path: the proxies a REGISTER came through, and the way back to the phone through them. Pure.

A proxy in front of the registrar (Kamailio in a cluster, `conf/kamailio/kamailio.cfg`) adds a Path
header to each REGISTER it forwards. The registrar keeps the Path values with the binding (§5.3:
"the registrar MUST store the Path header field values ... in the order received"), and a request
to that contact later carries them as a preloaded Route set, so it goes through the same proxies
(§5.3: "...behaves as if it had received the Route header field values in the request"): the
first hop is the first Path URI, the Request-URI stays the Contact.

What we accept: each value a name-addr or addr-spec with a sip: or sips: URI; the Path URIs should
carry `lr` (RFC 3261 loose routing; §4 of RFC 3327 asks proxies to add it), and a strict-routing
one (no `lr`) is refused with 400 rather than rewritten, since we never route that way.
The registrar echoes the stored Path in its 200 when the REGISTER listed `path` in Supported (§5.3).
It stores the Path whether or not the phone said so: Kamailio's registrar `path_mode` 1, not the
strict mode 2 that answers 420 (a phone that never heard of Path is behind our own front door, and
refusing it would lock it out).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from acd.sip.errors import RemoteProtocolError
from acd.sip.headers import NameAddr, SipUri

__all__ = ["AgentContact", "agent_contact", "binding_contact", "parse_path_values", "supports_path", "first_hop",
           "MAX_PATH_VALUES"]

# A Path names each proxy between the phone and us: one in our cluster, two with an edge proxy in
# front of it. Eight is the limit Kamailio's own path handling never comes near (STYLE 7).
MAX_PATH_VALUES = 8


class AgentContact(NamedTuple):
    """Where to send a request to one of an agent's phones: the Contact URI (the Request-URI), the
    address of the next hop, the transport, and the preloaded Route set (the binding's Path; empty
    when the phone registered directly)."""

    uri: str
    destination: tuple[str, int]
    transport: str
    route: tuple[str, ...] = ()


def agent_contact(value: Sequence) -> AgentContact:
    """An AgentContact from one, or from a plain (uri, destination, transport) tuple (no route), as
    a `contacts` callable written before Path support still gives."""
    uri, destination, transport, *route = value
    return AgentContact(uri, tuple(destination), transport, tuple(route[0]) if route else ())


def parse_path_values(values: Sequence[str]) -> tuple[str, ...]:
    """Path header elements (as split by `Headers.get_all`) -> the values to store, each `<uri>`.

    Raises RemoteProtocolError 400 for a malformed value, a URI that is not sip:/sips:, one without
    `lr` (strict routing), or more than MAX_PATH_VALUES values.
    """
    if len(values) > MAX_PATH_VALUES:
        raise RemoteProtocolError(f"REGISTER has {len(values)} Path values; at most {MAX_PATH_VALUES} are taken")
    stored = []
    for value in values:
        address = NameAddr.parse(value)
        uri = SipUri.parse(address.uri)
        if uri.scheme not in ("sip", "sips"):
            raise RemoteProtocolError(f"Path URI {address.uri!r} is not a sip: or sips: URI")
        if "lr" not in uri.params:
            raise RemoteProtocolError(f"Path URI {address.uri!r} has no ;lr (strict routing is not supported)")
        stored.append(f"<{address.uri}>")
    return tuple(stored)


def supports_path(supported_values: Sequence[str]) -> bool:
    """True when a Supported header lists the `path` option tag (RFC 3327 §5.1)."""
    return any(value.strip().lower() == "path" for value in supported_values)


def first_hop(route: Sequence[str]) -> tuple[str, int] | None:
    """The address a request with this Route set is sent to (RFC 3261 §8.1.2: the first Route's
    URI, loose routing); None when it names a host, not an IP address (no DNS in the core)."""
    if not route:
        return None
    uri = SipUri.parse(NameAddr.parse(route[0]).uri)
    host = uri.host.strip("[]")
    if not host or not (host.replace(".", "").isdigit() or ":" in host):
        return None
    return (host, uri.port or (5061 if uri.scheme == "sips" else 5060))


def binding_contact(contact: str, source: tuple[str, int], transport: str, path: Sequence[str] = ()) -> AgentContact:
    """Where to reach one binding (the registrar's and the cluster's shared bindings' one rule).

    A binding registered through a proxy (a Path) is reached through it: the first Path hop's
    address, the Path as Route set (RFC 3327 §5.3). Otherwise the Contact's own address is used
    when its host is the address the REGISTER came from (no NAT in between: the phone may listen
    on another port than it sent from), else the REGISTER's source address, which is what a phone
    behind NAT can be reached at.
    """
    if path:
        try:
            hop = first_hop(path)
        except RemoteProtocolError:
            hop = None
        return AgentContact(contact, hop or source, transport, tuple(path))
    destination = source
    try:
        uri = SipUri.parse(contact)
        if uri.host == source[0] and transport == "UDP":
            destination = (uri.host, uri.port or 5060)
    except RemoteProtocolError:
        pass
    return AgentContact(contact, destination, transport)
