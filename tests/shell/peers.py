"""Scripted SIP peers on the fake network: a trunk caller, agent phones, a customer called back.

A peer never answers anything by itself: the test says what it sends, and reads what it got. A
`SipPeer` keeps every message it received in `inbox`; `expect_request`/`expect_response` take the
first matching one not taken yet, advancing the clock (in 20 ms steps) until it comes or the
timeout passes. Dialog bookkeeping (tags, CSeq, targets) is in `OutgoingCall` (we sent the INVITE)
and `IncomingCall` (the server sent it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from acd.sip.message import Request, Response, parse_message

from .wire import (RtpSeen, RtpSender, Sdp, build_request, build_response, digest_authorization, offer_sdp, tag_of,
                   telephone_event, unique, uri_of)

if TYPE_CHECKING:
    from .harness import ShellHarness

__all__ = ["SipPeer", "Caller", "AgentPhone", "OutgoingCall", "IncomingCall", "Received"]

Address = tuple[str, int]


@dataclass
class Received:
    """One SIP message a peer got."""

    message: Request | Response
    source: Address
    at: float
    taken: bool = False

    def matches(self, *, method: str | None, status: int | None, call_id: str | None, cseq_method: str | None,
                request: bool) -> bool:
        message = self.message
        if request != isinstance(message, Request):
            return False
        if call_id is not None and message.call_id != call_id:
            return False
        if request:
            return method is None or message.method == method
        if status is not None and message.status != status:
            return False
        return cseq_method is None or (message.headers.get("CSeq") or "").split()[-1] == cseq_method


class _RtpSide:
    def __init__(self, peer: "SipPeer") -> None:
        self.peer = peer

    def deliver(self, data: bytes, source: Address) -> None:
        self.peer.rtp_inbox.append(RtpSeen(source, data, self.peer.harness.reactor.seconds()))


class SipPeer:
    """A SIP user agent at `address` with an RTP port at `rtp_address`."""

    def __init__(self, harness: "ShellHarness", address: Address, rtp_address: Address, user: str) -> None:
        self.harness = harness
        self.network = harness.reactor.network
        self.address = address
        self.rtp_address = rtp_address
        self.user = user
        self.inbox: list[Received] = []
        self.rtp_inbox: list[RtpSeen] = []
        self.network.bind(address, self)
        self.network.bind(rtp_address, _RtpSide(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.user} at {self.address[0]}:{self.address[1]}>"

    # ---- the network side ------------------------------------------------------------------------
    def deliver(self, data: bytes, source: Address) -> None:
        """A datagram for our SIP port: kept, parsed."""
        self.inbox.append(Received(parse_message(data), source, self.harness.reactor.seconds()))

    def send(self, data: bytes, destination: Address | None = None) -> None:
        """Put a datagram on the wire (to the server's SIP port by default)."""
        self.network.send(self.address, destination or self.harness.sip_address, data)

    def send_rtp(self, destination: Address, data: bytes) -> None:
        """Send one RTP datagram from our RTP port."""
        self.network.send(self.rtp_address, destination, data)

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.address[0]}:{self.address[1]}>"

    def via(self, branch: str | None = None) -> str:
        return f"SIP/2.0/UDP {self.address[0]}:{self.address[1]};branch={branch or unique('z9hG4bK')};rport"

    # ---- reading what came -----------------------------------------------------------------------
    def _find(self, request: bool, method=None, status=None, call_id=None, cseq_method=None) -> Received | None:
        for item in self.inbox:
            if not item.taken and item.matches(method=method, status=status, call_id=call_id,
                                               cseq_method=cseq_method, request=request):
                return item
        return None

    def _expect(self, request: bool, timeout: float, what: str, **match) -> Received:
        found = self._find(request, **match)
        if found is None and timeout > 0:
            self.harness.advance_until(lambda: self._find(request, **match) is not None, timeout=timeout,
                                       what=f"{self!r} to receive {what}", fail=False)
            found = self._find(request, **match)
        if found is None:
            raise AssertionError(f"{self!r} got no {what} (timeout {timeout}s); inbox:\n{self.describe_inbox()}")
        found.taken = True
        return found

    def expect_request(self, method: str, *, call_id: str | None = None, timeout: float = 0.0) -> Request:
        """The first request of `method` not taken yet (waiting up to `timeout` seconds)."""
        return self._expect(True, timeout, f"{method} request", method=method, call_id=call_id).message

    def expect_response(self, status: int | None = None, *, method: str | None = None, call_id: str | None = None,
                        timeout: float = 0.0) -> Response:
        """The first response (of `status`, to `method`) not taken yet."""
        what = f"{status or 'any'} response{f' to {method}' if method else ''}"
        return self._expect(False, timeout, what, status=status, call_id=call_id, cseq_method=method).message

    def requests(self, method: str | None = None, *, call_id: str | None = None) -> list[Request]:
        """Every request received (taken or not)."""
        return [i.message for i in self.inbox if i.matches(method=method, status=None, call_id=call_id,
                                                            cseq_method=None, request=True)]

    def responses(self, *, call_id: str | None = None, method: str | None = None) -> list[Response]:
        """Every response received (taken or not)."""
        return [i.message for i in self.inbox if i.matches(method=None, status=None, call_id=call_id,
                                                            cseq_method=method, request=False)]

    def untaken(self) -> list[Request | Response]:
        """Messages nobody looked at yet."""
        return [i.message for i in self.inbox if not i.taken]

    def describe_inbox(self) -> str:
        lines = []
        for item in self.inbox[-15:]:
            message = item.message
            first = f"{message.method} {message.uri}" if isinstance(message, Request) else \
                f"{message.status} {message.reason} ({message.headers.get('CSeq')})"
            lines.append(f"  t+{item.at - self.harness.started:.2f} {'taken ' if item.taken else ''}{first} "
                         f"call={message.call_id}")
        return "\n".join(lines) or "  (empty)"

    def rtp_from(self, source: Address, *, since: float | None = None) -> list[RtpSeen]:
        """RTP packets received from `source` (since a time)."""
        return [p for p in self.rtp_inbox if p.source == source and (since is None or p.at >= since)]

    # ---- placing calls -----------------------------------------------------------------------------
    def invite(self, number: str, *, sdp: bytes | None = None, headers: list[tuple[str, str]] = (),
               call_id: str | None = None, display: str = "Test Caller") -> "OutgoingCall":
        """Send an INVITE for `number` at the server; returns the call (responses via `call.expect`)."""
        call = OutgoingCall(self, number, call_id=call_id or unique("call-") + "@test",
                            sdp=offer_sdp(self.rtp_address) if sdp is None else sdp, display=display)
        call.send_invite(extra=list(headers))
        return call

    def incoming(self, *, timeout: float = 0.0) -> "IncomingCall":
        """The next INVITE the server sent us (an offer, a callback), as a call we can answer."""
        received = self._expect(True, timeout, "INVITE (incoming call)", method="INVITE")
        return IncomingCall(self, received.message, received.source)


class OutgoingCall:
    """A call this peer placed (we are the UAC)."""

    def __init__(self, peer: SipPeer, number: str, *, call_id: str, sdp: bytes, display: str) -> None:
        self.peer = peer
        self.number = number
        self.uri = f"sip:{number}@{peer.harness.sip_address[0]}:{peer.harness.sip_address[1]}"
        self.call_id = call_id
        self.local_tag = unique("ft")
        self.from_value = f'"{display}" <sip:{peer.user}@{peer.address[0]}>;tag={self.local_tag}'
        self.to_value = f"<sip:{number}@{peer.harness.sip_address[0]}>"
        self.sdp = sdp
        self.cseq = 1
        self.invite_branch = ""
        self.invite_cseq = 1
        self.remote_tag: str | None = None
        self.remote_target: str | None = None
        self.answer: Sdp | None = None
        self.rtp = RtpSender()
        self.authorization: str | None = None

    # ---- INVITE transaction ----------------------------------------------------------------------
    def send_invite(self, extra: list[tuple[str, str]] = ()) -> None:
        self.invite_branch = unique("z9hG4bK")
        self.invite_cseq = self.cseq
        headers = [("Via", self.peer.via(self.invite_branch)), ("Max-Forwards", "70"), ("From", self.from_value),
                   ("To", self.to_value), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} INVITE"),
                   ("Contact", self.peer.contact), ("User-Agent", "shell-test"), *extra]
        if self.authorization:
            headers.append(("Authorization", self.authorization))
        if self.sdp:
            headers.append(("Content-Type", "application/sdp"))
        self.peer.send(build_request("INVITE", self.uri, headers, self.sdp))

    def resend_invite(self) -> None:
        """A retransmission of the last INVITE (same branch, same CSeq)."""
        headers = [("Via", self.peer.via(self.invite_branch)), ("Max-Forwards", "70"), ("From", self.from_value),
                   ("To", self.to_value), ("Call-ID", self.call_id), ("CSeq", f"{self.invite_cseq} INVITE"),
                   ("Contact", self.peer.contact), ("Content-Type", "application/sdp")]
        self.peer.send(build_request("INVITE", self.uri, headers, self.sdp))

    def expect(self, status: int, *, method: str = "INVITE", timeout: float = 0.0, ack: bool = True) -> Response:
        """A response to this call; a 2xx to INVITE sets up the dialog, a final error is ACKed
        (as the UAC transaction layer does, RFC 3261 §17.1.1.3) unless `ack` is False."""
        response = self.peer.expect_response(status, method=method, call_id=self.call_id, timeout=timeout)
        if method == "INVITE" and status >= 200:
            tag = tag_of(response.headers.get("To", ""))
            if 200 <= status < 300:
                self.remote_tag = self.remote_tag or tag
                contact = response.headers.get("Contact")
                if contact:
                    self.remote_target = uri_of(contact)
                if response.body:
                    self.answer = Sdp.parse(response.body)
            elif ack:
                self._ack_error(response)
        return response

    def _ack_error(self, response: Response) -> None:
        headers = [("Via", self.peer.via(self.invite_branch)), ("Max-Forwards", "70"), ("From", self.from_value),
                   ("To", response.headers.get("To", "")), ("Call-ID", self.call_id),
                   ("CSeq", f"{self.invite_cseq} ACK")]
        self.peer.send(build_request("ACK", self.uri, headers))

    def ack(self, sdp: bytes = b"") -> None:
        """ACK for the 2xx: a new transaction to the remote target (RFC 3261 §13.2.2.4); `sdp` is the
        answer when the 2xx carried an offer (a re-INVITE without SDP)."""
        self._in_dialog("ACK", cseq=self.invite_cseq, body=sdp,
                        headers=[("Content-Type", "application/sdp")] if sdp else [])

    def cancel(self) -> None:
        """CANCEL the pending INVITE: same branch and CSeq number (§9.1)."""
        headers = [("Via", self.peer.via(self.invite_branch)), ("Max-Forwards", "70"), ("From", self.from_value),
                   ("To", self.to_value), ("Call-ID", self.call_id), ("CSeq", f"{self.invite_cseq} CANCEL")]
        self.peer.send(build_request("CANCEL", self.uri, headers))

    def early_dialog(self, provisional: Response) -> None:
        """Enter the early dialog a tagged provisional response made (its To tag, its Contact as target)."""
        self.remote_tag = self.remote_tag or tag_of(provisional.headers.get("To", ""))
        contact = provisional.headers.get("Contact")
        if contact:
            self.remote_target = uri_of(contact)
        if provisional.body:
            self.answer = Sdp.parse(provisional.body)

    def prack(self, provisional: Response, *, rseq: str | None = None) -> None:
        """PRACK a reliable provisional response (RFC 3262 §7.2): `RAck: RSeq CSeq INVITE` in the early
        dialog (`rseq` overrides the RSeq acknowledged)."""
        self.early_dialog(provisional)
        self._in_dialog("PRACK", headers=[("RAck", f"{rseq or provisional.headers.get('RSeq')} {self.invite_cseq} INVITE")])

    # ---- in the dialog ---------------------------------------------------------------------------
    def _in_dialog(self, method: str, *, cseq: int | None = None, headers: list[tuple[str, str]] = (),
                   body: bytes = b"", branch: str | None = None) -> None:
        assert self.remote_tag, f"{method} before the call was answered"
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        base = [("Via", self.peer.via(branch)), ("Max-Forwards", "70"), ("From", self.from_value),
                ("To", f"{self.to_value};tag={self.remote_tag}"), ("Call-ID", self.call_id),
                ("CSeq", f"{cseq} {method}"), *headers]
        self.peer.send(build_request(method, self.remote_target or self.uri, base, body))

    def bye(self) -> None:
        """Hang up."""
        self._in_dialog("BYE")

    def info_digit(self, digit: str) -> None:
        """A DTMF key by SIP INFO (application/dtmf-relay)."""
        self._in_dialog("INFO", headers=[("Content-Type", "application/dtmf-relay")],
                        body=f"Signal={digit}\r\nDuration=160\r\n".encode())

    def reinvite(self, sdp: bytes | None = None, *, headers: list[tuple[str, str]] = ()) -> None:
        """A re-INVITE (session refresh or hold) with `sdp` (our offer again by default; b"": none, the
        server's offer then comes in the 200 and our answer goes in the ACK) and more `headers`."""
        self.invite_cseq = self.cseq + 1
        self.invite_branch = unique("z9hG4bK")  # an error response is ACKed in this transaction
        body = offer_sdp(self.peer.rtp_address, version=2) if sdp is None else sdp
        self._in_dialog("INVITE", headers=[("Contact", self.peer.contact), *headers,
                                           *([("Content-Type", "application/sdp")] if body else [])], body=body,
                        branch=self.invite_branch)

    def update(self, sdp: bytes = b"", *, headers: list[tuple[str, str]] = ()) -> None:
        """An UPDATE (RFC 3311) with an SDP offer, or without a body, and more `headers`."""
        self._in_dialog("UPDATE", headers=[("Contact", self.peer.contact), *headers,
                                           *([("Content-Type", "application/sdp")] if sdp else [])], body=sdp)

    def notify_transfer(self, status_line: str) -> None:
        """NOTIFY the progress of a REFER the server sent us (RFC 3515 §2.4.4): a sipfrag status line."""
        final = not status_line.split(" ")[1].startswith("1")
        self._in_dialog("NOTIFY", headers=[
            ("Event", "refer"), ("Contact", self.peer.contact),
            ("Subscription-State", "terminated;reason=noresource" if final else "active;expires=60"),
            ("Content-Type", "message/sipfrag;version=2.0")], body=f"{status_line}\r\n".encode())

    def respond(self, request: Request, status: int = 200, *, headers: list[tuple[str, str]] = (),
                body: bytes = b"") -> None:
        """Answer a request the server sent in this dialog (BYE, REFER, NOTIFY)."""
        self.peer.send(build_response(request, status, headers=list(headers), body=body))

    # ---- media -------------------------------------------------------------------------------------
    @property
    def server_rtp(self) -> Address:
        assert self.answer is not None, "no SDP answer yet"
        return self.answer.rtp_address

    def send_audio(self, frames: int = 1, payload: bytes = b"\x55" * 160) -> None:
        """Send `frames` PCMU frames to the server's RTP port."""
        for _ in range(frames):
            self.peer.send_rtp(self.server_rtp, self.rtp.packet(payload, 0, marker=self.rtp.sent == 0))

    def rfc4733_digit(self, digit: str, payload_type: int = 101) -> None:
        """A key press as RFC 4733 telephone-events: 3 updates, 3 end packets, one timestamp."""
        start = self.rtp.timestamp
        for n in (1, 2, 3):
            self.peer.send_rtp(self.server_rtp, self.rtp.packet(telephone_event(digit, end=False, duration=160 * n),
                                                                payload_type, marker=n == 1, timestamp=start,
                                                                advance=False))
        for _ in range(3):
            self.peer.send_rtp(self.server_rtp, self.rtp.packet(telephone_event(digit, end=True, duration=480),
                                                                payload_type, timestamp=start, advance=False))
        self.rtp.timestamp += 480

    def rtp_received(self, since: float | None = None) -> list[RtpSeen]:
        """What the server sent to our RTP port from this call's media port."""
        return self.peer.rtp_from(self.server_rtp, since=since)


class IncomingCall:
    """A call the server placed to this peer (we are the UAS): an offer, or a callback."""

    def __init__(self, peer: SipPeer, invite: Request, source: Address) -> None:
        self.peer = peer
        self.invite = invite
        self.source = source
        self.call_id = invite.call_id
        self.local_tag = unique("tt")
        self.offer = Sdp.parse(invite.body)
        self.remote_target = uri_of(invite.headers.get("Contact", "")) or None
        self.from_value = f"{invite.headers.get('To')};tag={self.local_tag}"
        self.to_value = invite.headers.get("From", "")
        self.cseq = 100
        self.rtp = RtpSender(ssrc=0x0A6E7000)

    def header(self, name: str) -> str | None:
        return self.invite.headers.get(name)

    def _respond_invite(self, status: int, body: bytes = b"") -> None:
        headers = [("Contact", self.peer.contact)]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self.peer.send(build_response(self.invite, status, to_tag=self.local_tag, headers=headers, body=body),
                       self.source)

    def ring(self) -> None:
        self._respond_invite(180)

    def answer(self, sdp: bytes | None = None) -> None:
        """200 OK with our SDP answer (PCMU and telephone-event, like the offer)."""
        self._respond_invite(200, sdp or offer_sdp(self.peer.rtp_address, codecs=tuple(
            pt for pt in self.offer.formats if pt in (0, 8))[:1] or (0,)))

    def decline(self, status: int = 486) -> None:
        self._respond_invite(status)

    def expect_ack(self, timeout: float = 0.0) -> Request:
        return self.peer.expect_request("ACK", call_id=self.call_id, timeout=timeout)

    def expect_request(self, method: str, timeout: float = 0.0) -> Request:
        return self.peer.expect_request(method, call_id=self.call_id, timeout=timeout)

    def respond(self, request: Request, status: int = 200, *, headers: list[tuple[str, str]] = ()) -> None:
        self.peer.send(build_response(request, status, headers=list(headers)), self.source)

    def _in_dialog(self, method: str, *, headers: list[tuple[str, str]] = (), body: bytes = b"") -> None:
        self.cseq += 1
        base = [("Via", self.peer.via()), ("Max-Forwards", "70"), ("From", self.from_value), ("To", self.to_value),
                ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}"), *headers]
        self.peer.send(build_request(method, self.remote_target or self.invite.uri, base, body), self.source)

    def bye(self) -> None:
        self._in_dialog("BYE")

    def reinvite(self, direction: str = "sendrecv", *, sdp: bytes | None = None, ack_sdp: bytes = b"",
                 status: int = 200) -> Response:
        """Hold (sendonly) or resume (sendrecv) by re-INVITE, or re-INVITE with `sdp` (b"": none);
        waits for the final response (`status`) and ACKs a 2xx, with `ack_sdp` as the answer to an
        offer in it."""
        body = offer_sdp(self.peer.rtp_address, direction=direction, version=self.cseq + 1) if sdp is None else sdp
        self._in_dialog("INVITE", headers=[("Contact", self.peer.contact),
                                           *([("Content-Type", "application/sdp")] if body else [])], body=body)
        cseq = self.cseq
        response = self.peer.expect_response(status, method="INVITE", call_id=self.call_id, timeout=1)
        if status >= 300:
            return response  # not ACKed: the server retransmits it until Timer H
        base = [("Via", self.peer.via()), ("Max-Forwards", "70"), ("From", self.from_value), ("To", self.to_value),
                ("Call-ID", self.call_id), ("CSeq", f"{cseq} ACK"),
                *([("Content-Type", "application/sdp")] if ack_sdp else [])]
        self.peer.send(build_request("ACK", self.remote_target or self.invite.uri, base, ack_sdp), self.source)
        return response

    def update(self, sdp: bytes = b"") -> Response:
        """An UPDATE (RFC 3311) with an SDP offer or without a body; waits for its final response."""
        self._in_dialog("UPDATE", headers=[("Contact", self.peer.contact),
                                           *([("Content-Type", "application/sdp")] if sdp else [])], body=sdp)
        return self.peer.expect_response(None, method="UPDATE", call_id=self.call_id, timeout=1)

    def refer(self, target: str) -> None:
        """Blind transfer (RFC 3515) of the other party to `target` (a queue name or a number)."""
        host, port = self.peer.harness.sip_address
        self._in_dialog("REFER", headers=[("Refer-To", f"<sip:{target}@{host}:{port}>"),
                                          ("Referred-By", self.peer.contact), ("Contact", self.peer.contact)])

    # ---- media -------------------------------------------------------------------------------------
    @property
    def server_rtp(self) -> Address:
        return self.offer.rtp_address

    def send_audio(self, frames: int = 1, payload: bytes = b"\x33" * 160) -> None:
        for _ in range(frames):
            self.peer.send_rtp(self.server_rtp, self.rtp.packet(payload, 0, marker=self.rtp.sent == 0))

    def rtp_received(self, since: float | None = None) -> list[RtpSeen]:
        return self.peer.rtp_from(self.server_rtp, since=since)


class Caller(SipPeer):
    """The trunk side: places customer calls."""


class AgentPhone(SipPeer):
    """An agent's softphone: registers and dials feature codes with Digest, answers offers."""

    def __init__(self, harness: "ShellHarness", address: Address, rtp_address: Address, user: str,
                 password: str) -> None:
        super().__init__(harness, address, rtp_address, user)
        self.password = password
        self.register_call_id = unique("reg-") + "@test"
        self.register_cseq = 0

    def authorization_for(self, challenge_response: Response, method: str, uri: str,
                          prefer: str = "SHA-256", password: str | None = None) -> str:
        """Answer the challenge of a 401 (the algorithm we prefer, if offered); every 401 brings a
        fresh nonce, so the nonce count is always 1."""
        challenges = challenge_response.headers.get_all("WWW-Authenticate")
        assert challenges, f"401 without WWW-Authenticate: {bytes(challenge_response)!r}"
        chosen = next((c for c in challenges if f"algorithm={prefer}" in c.replace('"', "")), challenges[0])
        return digest_authorization(chosen, method=method, uri=uri, username=self.user,
                                    password=self.password if password is None else password, nc=1,
                                    cnonce=unique("cn"))

    def register(self, *, expires: int = 600, prefer: str = "SHA-256", password: str | None = None,
                 authenticate: bool = True, aor: str | None = None,
                 extra_headers: tuple[tuple[str, str], ...] = (), contact: str | None = None) -> Response:
        """REGISTER (for our own address, or `aor`; `contact` instead of ours, `extra_headers` added,
        e.g. a proxy's Path); answer the 401 challenge with Digest; return the final response."""
        host, port = self.harness.sip_address
        uri = f"sip:{host}:{port}"
        aor = aor or self.user

        def send(authorization: str | None) -> None:
            self.register_cseq += 1
            headers = [("Via", self.via()), ("Max-Forwards", "70"),
                       ("From", f"<sip:{aor}@{host}>;tag={unique('rt')}"), ("To", f"<sip:{aor}@{host}>"),
                       ("Call-ID", self.register_call_id), ("CSeq", f"{self.register_cseq} REGISTER"),
                       ("Contact", contact or self.contact), ("Expires", str(expires)), *extra_headers]
            if authorization:
                headers.append(("Authorization", authorization))
            self.send(build_request("REGISTER", uri, headers))

        send(None)
        first = self.expect_response(method="REGISTER", call_id=self.register_call_id)
        if first.status != 401 or not authenticate:
            return first
        send(self.authorization_for(first, "REGISTER", uri, prefer=prefer, password=password))
        return self.expect_response(method="REGISTER", call_id=self.register_call_id)

    def dial(self, number: str, *, password: str | None = None) -> OutgoingCall:
        """Call `number` (a feature code): INVITE, 401, INVITE with Digest. Returns the call, whose
        final response is still to be read with `call.expect(...)`."""
        call = self.invite(number, display=f"Agent {self.user}")
        challenge = call.expect(401)
        call.cseq += 1
        call.authorization = self.authorization_for(challenge, "INVITE", call.uri, password=password)
        call.send_invite()
        return call

    def feature(self, code: str, *, timeout: float = 6.0) -> OutgoingCall:
        """Dial a feature code, take the confirmation prompt and answer the server's BYE."""
        call = self.dial(code)
        call.expect(200)
        call.ack()
        bye = self.expect_request("BYE", call_id=call.call_id, timeout=timeout)
        call.respond(bye, 200)
        return call

    def login(self) -> OutgoingCall:
        """*45: log in to my queues."""
        return self.feature("*45")

    def logout(self) -> OutgoingCall:
        return self.feature("*46")

    def pause(self, reason_code: str = "") -> OutgoingCall:
        return self.feature("*47" + reason_code)

    def unpause(self) -> OutgoingCall:
        return self.feature("*48")

    def offer(self, *, timeout: float = 2.0) -> IncomingCall:
        """The next offer the ACD sends this phone."""
        return self.incoming(timeout=timeout)

    def take_offer(self, *, timeout: float = 2.0) -> IncomingCall:
        """The next offer, rung and answered, its ACK received."""
        call = self.offer(timeout=timeout)
        call.ring()
        call.answer()
        call.expect_ack(timeout=1)
        return call

