"""A quick look at a request's transaction headers without a full parse, and a stateless answer
built from them. Pure.

Admission control (`acd.sip.admission`) decides about every new INVITE, and answers the ones it
refuses, before the endpoint parses them: at two or three times capacity, refusals must cost a
small fraction of a call, or answering them becomes the overload (RFC 6357 §3.1). `peek_request`
reads the start line, finds the Via, From, To, Call-ID and CSeq lines with one regular expression
(all a response copies, RFC 3261 §8.2.6.2), and says whether To carries a tag (a request inside a
dialog, §12.2). It parses no URI and no body: about half the cost of `parse_message`.

Anything unusual gives None: a folded header line (§7.3.1), a header missing or given twice, a
CSeq method that is not the request's, LF-only line ends. The caller then hands the message to
the full parser as before, which answers it as it always has: the peek never refuses what it does
not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RequestPeek", "peek_request"]

# Header names (long and compact forms, RFC 3261 §7.3.3 and §20) -> the one name kept here.
_KEPT = {b"via": b"v", b"v": b"v", b"from": b"f", b"f": b"f", b"to": b"t", b"t": b"t",
         b"call-id": b"i", b"i": b"i", b"cseq": b"cseq"}
# One kept header line (after the CRLF ending the line before it): its name as written and its value.
# The name must be followed by optional white space and the colon, so "To-Foo:" or "Via2:" never match.
_KEPT_LINE = re.compile(rb"\r\n(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RequestPeek:
    """What admission control needs from a request: its method, Call-ID, top Via branch, CSeq,
    whether it is inside a dialog, and the header lines a response copies."""

    method: bytes
    call_id: str
    branch: bytes
    cseq_number: bytes
    in_dialog: bool
    lines: tuple[tuple[bytes, bytes], ...]  # (header name as written, value): Via, From, To, Call-ID, CSeq

    @property
    def key(self) -> tuple[str, bytes, bytes]:
        """What a retransmission shares with the original, and the ACK of a non-2xx answer too
        (§17.2.3: the top Via's branch; §17.1.1.3: the CSeq number): Call-ID, branch, CSeq number."""
        return self.call_id, self.branch, self.cseq_number

    def answer(self, status: int, reason: str, *, to_tag: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        """A response to this request (§8.2.6.2): its Via, From, To (with `to_tag` added when it has
        none), Call-ID and CSeq lines as received, then `headers` and an empty body."""
        out = [b"SIP/2.0 %d %s" % (status, reason.encode())]
        tag = b";tag=" + to_tag.encode()
        for name, value in self.lines:
            if not self.in_dialog and _KEPT[name.lower()] == b"t":
                value = value.rstrip() + tag
            out.append(b"%s: %s" % (name, value))
        out.extend(f"{name}: {value}".encode() for name, value in headers)
        out.append(b"Content-Length: 0\r\n\r\n")
        return b"\r\n".join(out)


def peek_request(data: bytes) -> RequestPeek | None:
    """The transaction headers of a request, or None when it is not a plain, well-formed request
    (a response, a folded or duplicated header, a missing one: the full parser's business)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end + 2]
    start = head[:head.find(b"\r\n")].split(b" ")
    if len(start) != 3 or start[2] != b"SIP/2.0" or b"\r\n " in head or b"\r\n\t" in head:
        return None
    found = _KEPT_LINE.findall(head)
    values: dict[bytes, bytes] = {}
    for written, value in found:
        name = _KEPT[written.lower()]
        if name in values:
            if name != b"v":
                return None
            continue  # the top Via is the first
        values[name] = value
    if len(values) != 5:
        return None
    cseq = values[b"cseq"].split()
    method = start[0]
    if len(cseq) != 2 or cseq[1] != method or not cseq[0].isdigit():
        return None
    try:
        call_id = values[b"i"].strip().decode("ascii")
    except UnicodeDecodeError:
        return None
    if not call_id:
        return None
    return RequestPeek(method=method, call_id=call_id, branch=_param(values[b"v"].split(b",", 1)[0], b"branch"),
                       cseq_number=cseq[0], in_dialog=_has_tag(values[b"t"]), lines=tuple(found))


def _param(value: bytes, name: bytes) -> bytes:
    """A header parameter's value (`;name=value`), b"" when absent; white space is ignored (SWS)."""
    compact = value.replace(b" ", b"").replace(b"\t", b"")
    at = compact.lower().find(b";" + name + b"=")
    if at < 0:
        return b""
    return compact[at + len(name) + 2:].split(b";", 1)[0]


def _has_tag(to: bytes) -> bool:
    """True when a To value carries a tag parameter. In name-addr form the header's parameters
    follow the `>`; in addr-spec form every parameter is the header's (§20: no URI parameters)."""
    if b">" in to:
        params = to.rpartition(b">")[2]
    else:
        params = to[to.find(b";"):] if b";" in to else b""
    return b";tag=" in params.replace(b" ", b"").replace(b"\t", b"").lower()
