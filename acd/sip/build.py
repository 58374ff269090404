"""Building messages from other messages: responses to requests (§8.2.6), ACKs (§17.1.1.3), ids."""

from __future__ import annotations

import secrets
import threading

from .errors import RemoteProtocolError
from .headers import BRANCH_MAGIC_COOKIE, NameAddr
from .message import Headers, Request, Response

__all__ = ["ALLOWED_METHODS", "REASON_PHRASES", "make_response", "build_ack_for_error", "build_cancel", "build_invite",
           "build_message", "new_tag", "new_branch", "new_call_id"]

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    423: "Interval Too Brief", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "Version Not Supported",
    513: "Message Too Large", 603: "Decline",
}


class _RandomBlocks:
    """Hex text from the OS's cryptographic random source (what `secrets` reads), fetched a block at
    a time: one system call for hundreds of tags and branches instead of one each. A system call
    lets go of the GIL, and on the way to a 200 OK another thread could then keep it for up to its
    switch interval. Each byte is handed out once; safe from any thread."""

    BLOCK_BYTES = 4096

    def __init__(self) -> None:
        self._block = b""
        self._offset = 0
        self._lock = threading.Lock()

    def hex(self, count: int) -> str:
        """`count` fresh random bytes as hex text."""
        with self._lock:
            offset = self._offset
            if offset + count > len(self._block):
                self._block, offset = secrets.token_bytes(self.BLOCK_BYTES), 0
            self._offset = offset + count
            return self._block[offset:offset + count].hex()


_random = _RandomBlocks()


def new_tag() -> str:
    """A From/To tag: 64 random bits (§19.3 asks for at least 32, cryptographically random)."""
    return _random.hex(8)


def new_branch() -> str:
    """A Via branch unique in space and time, with the RFC 3261 magic cookie (§8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + _random.hex(10)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID (§8.1.1.4)."""
    return f"{_random.hex(12)}@{host}"


def make_response(request: Request, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, extra_headers: tuple[tuple[str, str], ...] = (),
                  body: bytes = b"", content_type: str | None = None) -> Response:
    """A response copying Via, From, To, Call-ID and CSeq from the request (§8.2.6.2), and for
    101-299 its Record-Route (§12.1.1).

    `to_tag` is added to To when the request's To has none (every response but 100 needs one
    once a dialog or a final answer exists).
    """
    headers = Headers()
    for via in request.headers.get_all("Via"):
        headers.add("Via", via)
    headers.add("From", request.headers.get("From", ""))
    to_value = request.headers.get("To", "")
    if to_tag and status != 100:
        try:
            to_addr = NameAddr.parse(to_value)
            if to_addr.tag is None:
                to_value = f"{to_value};tag={to_tag}"
        except RemoteProtocolError:  # a malformed To is echoed as received (the 400 path)
            pass
    headers.add("To", to_value)
    headers.add("Call-ID", request.headers.get("Call-ID", ""))
    headers.add("CSeq", request.headers.get("CSeq", ""))
    if 100 < status < 300:
        # §12.1.1: a response that may establish a dialog copies every Record-Route, in order, so the
        # caller's in-dialog requests (PRACK, ACK, BYE) go through the proxies that asked to stay in.
        for record_route in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", record_route)
    for name, value in extra_headers:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", content_type or "application/sdp")
    return Response(status=status, reason=reason or REASON_PHRASES.get(status, "Unknown"),
                    headers=headers, body=body)


def build_ack_for_error(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx-6xx (§17.1.1.3): same branch, To from the response."""
    headers = Headers()
    vias = invite.headers.get_all("Via")
    if vias:
        headers.add("Via", vias[0])
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From", ""))
    headers.add("To", response.headers.get("To", ""))
    headers.add("Call-ID", invite.headers.get("Call-ID", ""))
    number = (invite.headers.get("CSeq", "0") or "0").split()[0]
    headers.add("CSeq", f"{number} ACK")
    return Request(method="ACK", uri=invite.uri, headers=headers)


def build_cancel(invite: Request) -> Request:
    """The CANCEL for an INVITE we sent (§9.1), to pass to `SipEndpoint.send_request`.

    Request-URI, Call-ID, To, From, Route and the CSeq number are the INVITE's, and the single Via is
    the INVITE's top Via (the one `send_request` added), so the peer matches it to that INVITE.
    """
    headers = Headers()
    vias = invite.headers.get_all("Via")
    if vias:
        headers.add("Via", vias[0])
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From", ""))
    headers.add("To", invite.headers.get("To", ""))
    headers.add("Call-ID", invite.headers.get("Call-ID", ""))
    number = (invite.headers.get("CSeq", "0") or "0").split()[0]
    headers.add("CSeq", f"{number} CANCEL")
    return Request(method="CANCEL", uri=invite.uri, headers=headers)


# Methods we accept, in every Allow header we send (§20.5): one list for OPTIONS, 200 OK, 405 and offers.
ALLOWED_METHODS = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER, UPDATE, PRACK"


def build_invite(*, uri: str, call_id: str, from_user: str, to_user: str, local: tuple[str, int],
                 extra_headers: tuple[tuple[str, str], ...] = (), sdp: bytes = b"",
                 display_name: str = "ACD", contact: str | None = None, route: tuple[str, ...] = ()) -> Request:
    """A new out-of-dialog INVITE from us (§8.1.1): fresh From tag, CSeq 1, our Contact, the Allow list
    and the SDP offer; `send_request` adds Via and Max-Forwards. `local` is our public (host, port);
    `contact` our Contact for the transport used (default: sip:acd@host:port). `route`: a preloaded
    Route set (§8.1.1.1; a registration's Path, RFC 3327 §5.3), one Route header each, in order."""
    host, port = local
    headers = Headers()
    for value in route:
        headers.add("Route", value)
    headers.add("From", f"\"{display_name}\" <sip:{from_user}@{host}:{port}>;tag={new_tag()}")
    headers.add("To", f"<sip:{to_user}@{host}>")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", contact or f"<sip:acd@{host}:{port}>")
    headers.add("Allow", ALLOWED_METHODS)
    for name, value in extra_headers:
        headers.add(name, value)
    if sdp:
        headers.add("Content-Type", "application/sdp")
    return Request(method="INVITE", uri=uri, headers=headers, body=sdp)


def build_message(*, uri: str, from_user: str, to_user: str, local: tuple[str, int], text: str,
                  display_name: str = "ACD", route: tuple[str, ...] = ()) -> Request:
    """An out-of-dialog MESSAGE with a text/plain body (RFC 3428 §4: no Contact, a new Call-ID and
    From tag); `send_request` adds Via and Max-Forwards. `local` is our public (host, port); `route`
    a preloaded Route set, as for `build_invite`."""
    host, port = local
    headers = Headers()
    for value in route:
        headers.add("Route", value)
    headers.add("From", f"\"{display_name}\" <sip:{from_user}@{host}:{port}>;tag={new_tag()}")
    headers.add("To", f"<sip:{to_user}@{host}>")
    headers.add("Call-ID", new_call_id(host))
    headers.add("CSeq", "1 MESSAGE")
    headers.add("Content-Type", "text/plain;charset=UTF-8")
    return Request(method="MESSAGE", uri=uri, headers=headers, body=text.encode("utf-8"))
