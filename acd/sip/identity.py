"""Who is calling, as a trusted carrier asserts it: P-Asserted-Identity (RFC 3325) and Diversion
(RFC 5806). Pure reading of headers; whether to believe them is the trunk's `trusted` setting.

Rules of this file:
- RFC 3325 §9.1: a P-Asserted-Identity holds one or two identities (a sip:/sips: URI and/or a tel:
  URI). We take the first with a user part: that is the number the carrier vouches for, where the
  From may say anything (a withheld "anonymous", a display number, a spoof).
- Only a trunk in our trust domain (§2.3) may assert: the caller of these helpers checks `trusted`.
- Diversion (RFC 5806 §3, historic but what carriers send): the topmost entry is the last number
  that diverted the call to us; its user part is read the same way.
- Unreadable values are skipped, never fatal: the From still identifies the caller.
"""

from __future__ import annotations

from .errors import RemoteProtocolError
from .headers import NameAddr, SipUri
from .message import Headers, split_list_value

__all__ = ["asserted_caller", "diverted_from"]


def _first_user(values: list[str]) -> str | None:
    for header_value in values:
        for value in split_list_value(header_value):
            try:
                user = SipUri.parse(NameAddr.parse(value).uri).user
            except RemoteProtocolError:
                continue
            if user and user.lower() != "anonymous":
                return user
    return None


def asserted_caller(headers: Headers) -> str | None:
    """The caller's number or user as P-Asserted-Identity gives it, or None (absent, anonymous, unreadable)."""
    return _first_user(headers.get_all("P-Asserted-Identity"))


def diverted_from(headers: Headers) -> str | None:
    """The number that last diverted the call to us (the top Diversion entry), or None."""
    return _first_user(headers.get_all("Diversion"))
