"""Dialogs (RFC 3261 §12): the state two user agents share for one call leg.

A dialog is identified by Call-ID, local tag and remote tag. It knows where in-dialog requests go
(the remote target from Contact, through the route set) and keeps both CSeq counters.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .errors import RemoteProtocolError
from .headers import CSeq, NameAddr, SipUri
from .message import Headers, Request, Response

__all__ = ["Dialog", "DialogId", "wants_sips"]

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)


def wants_sips(request: Request) -> bool:
    """RFC 3261 §12.1.1: our Contact in the dialog must be a SIPS URI when the request that makes it
    had a SIPS Request-URI, or a SIPS top Record-Route, or (without Record-Route) a SIPS Contact."""
    routes = request.headers.get_all("Record-Route")
    contacts = request.headers.get_all("Contact")
    second = routes[0] if routes else (contacts[0] if contacts else "")
    return any(uri.strip().lstrip("<").lower().startswith("sips:")
               for uri in (request.uri, NameAddr.parse(second).uri if second else ""))


@dataclass(slots=True)
class Dialog:
    """One dialog, seen from our side."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None
    local_contact: str = ""
    fallback_destination: tuple[str, int] = ("127.0.0.1", 5060)
    transport: str = "UDP"
    # Over a stream transport (TCP, TLS): the peer's end of the connection the dialog was made on.
    # In-dialog requests go back on it (connection reuse, as RFC 5923 and RFC 5626 flows do): we open
    # no connections, and a phone's Contact names its listening port, not the port it connected from.
    connection: tuple[str, int] | None = None

    @classmethod
    def as_uas(cls, invite: Request, *, local_tag: str, local_contact: str, source: tuple[str, int],
               transport: str, local_cseq: int = 0) -> "Dialog":
        """The dialog a UAS creates by answering an INVITE (§12.1.1)."""
        from_addr = NameAddr.parse(invite.headers.get("From", ""))
        to_addr = NameAddr.parse(invite.headers.get("To", ""))
        contacts = invite.headers.get_all("Contact")
        if not contacts:
            raise RemoteProtocolError("INVITE has no Contact header")  # §8.1.1.8
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=from_addr.tag or "",
            local_uri=to_addr.uri,
            remote_uri=from_addr.uri,
            remote_target=NameAddr.parse(contacts[0]).uri,
            route_set=invite.headers.get_all("Record-Route"),  # §12.1.1: in order, for the UAS
            local_cseq=local_cseq,
            remote_cseq=CSeq.parse(invite.headers.get("CSeq", "")).number,
            local_contact=local_contact,
            fallback_destination=source,
            transport=transport,
            connection=source if transport != "UDP" else None,
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response, *, source: tuple[str, int], transport: str) -> "Dialog":
        """The dialog a UAC creates from a 2xx (or tagged 1xx) to its INVITE (§12.1.2)."""
        from_addr = NameAddr.parse(invite.headers.get("From", ""))
        to_addr = NameAddr.parse(response.headers.get("To", ""))
        contacts = response.headers.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else invite.uri
        return cls(
            call_id=invite.call_id,
            local_tag=from_addr.tag or "",
            remote_tag=to_addr.tag or "",
            local_uri=from_addr.uri,
            remote_uri=to_addr.uri,
            remote_target=target,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),  # §12.1.2: reversed
            local_cseq=CSeq.parse(invite.headers.get("CSeq", "")).number,
            local_contact=(invite.headers.get("Contact") or ""),
            fallback_destination=source,
            transport=transport,
            connection=source if transport != "UDP" else None,
        )

    @classmethod
    def from_stray_2xx(cls, response: Response, *, transport: str) -> "Dialog":
        """The dialog a 2xx to an INVITE we no longer know establishes (its INVITE was sent before a
        restart): rebuilt from the response alone, enough to ACK it and BYE it (§13.2.2.4)."""
        from_addr = NameAddr.parse(response.headers.get("From", ""))
        to_addr = NameAddr.parse(response.headers.get("To", ""))
        contacts = response.headers.get_all("Contact")
        return cls(
            call_id=response.call_id,
            local_tag=from_addr.tag or "",
            remote_tag=to_addr.tag or "",
            local_uri=from_addr.uri,
            remote_uri=to_addr.uri,
            remote_target=NameAddr.parse(contacts[0]).uri if contacts else to_addr.uri,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_cseq=CSeq.parse(response.headers.get("CSeq", "")).number,
            transport=transport,
        )

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def check_request(self, request: Request) -> None:
        """Check an in-dialog request's CSeq (§12.2.2): lower than the last one gets 500."""
        cseq = CSeq.parse(request.headers.get("CSeq", "")).number
        if request.method in ("ACK", "CANCEL"):
            return
        if self.remote_cseq is not None and cseq < self.remote_cseq:
            raise RemoteProtocolError(f"CSeq {cseq} is lower than the dialog's {self.remote_cseq}", 500)
        self.remote_cseq = cseq
        contacts = request.headers.get_all("Contact")
        if request.method in ("INVITE", "UPDATE") and contacts:
            self.remote_target = NameAddr.parse(contacts[0]).uri  # §12.2.2 target refresh (RFC 3311 §5.2)

    def create_request(self, method: str, *, body: bytes = b"", content_type: str | None = None,
                       extra_headers: tuple[tuple[str, str], ...] = ()) -> Request:
        """A new in-dialog request (§12.2.1.1); the endpoint adds the Via. ACK reuses the INVITE's CSeq."""
        if method != "ACK":
            self.local_cseq += 1
        headers = Headers()
        for route in self.route_set:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        headers.add("To", f"<{self.remote_uri}>;tag={self.remote_tag}" if self.remote_tag else f"<{self.remote_uri}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        if self.local_contact and method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
            headers.add("Contact", self.local_contact)
        for name, value in extra_headers:
            headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return Request(method=method, uri=self.remote_target, headers=headers, body=body)

    def destination(self) -> tuple[str, int]:
        """Where in-dialog requests go: the first route, or the remote target, if it names an IP.

        Host names are not resolved (no DNS in the core); the address the dialog's INVITE came from
        is used instead, which is right for trunks and softphones that send from their Contact.
        A dialog over a stream transport uses its connection.
        """
        if self.connection is not None:
            return self.connection
        target = NameAddr.parse(self.route_set[0]).uri if self.route_set else self.remote_target
        try:
            uri = SipUri.parse(target)
            host = uri.host.strip("[]")
            ipaddress.ip_address(host)
            return (host, uri.port or 5060)
        except (RemoteProtocolError, ValueError):
            return self.fallback_destination
