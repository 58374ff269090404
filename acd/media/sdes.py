# SPDX-License-Identifier: MIT
"""SDP security descriptions (RFC 4568): the ``a=crypto`` attribute and SRTP keying by SDES.

``CryptoAttribute.parse(value)`` in, ``str(attribute)`` out, ``ValueError`` naming the field for
a malformed line.  ``usable_key`` says whether we can run SRTP with a line (and why not), and
``choose_offered_key`` / ``answered_key`` are the answerer's and the offerer's side of
RFC 4568 §6.1 and §7.1.  Pure: the caller generates our keys (``KEY_SALT_BYTES`` random bytes).

We implement one suite, AES_CM_128_HMAC_SHA1_80 (RFC 4568 §6.2.1; the one every SDES phone
offers), with a single inline key.  A line we cannot honour exactly is not chosen, and the next one
is tried: another suite, several keys or an MKI (libsrtp through pylibsrtp does not select keys
by MKI), a key lifetime shorter than any call (we never re-key), or a session parameter we do not
implement (§6.3: UNENCRYPTED_*, UNAUTHENTICATED_SRTP, FEC_*, a KDR other than 0).  WSH (the
replay window hint, §6.3.7) is only a hint and is ignored.

Key material never appears in an error message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

__all__ = [
    "KEY_SALT_BYTES", "MIN_KEY_LIFETIME_PACKETS", "SECURE_PROFILES", "SRTP_POLICIES", "SUITE",
    "CryptoAttribute", "SrtpKeyInfo", "answered_key", "choose_offered_key", "crypto_value", "usable_key",
]

#: RFC 4568 §6.2.1: the suite we run, 128-bit AES counter mode and an 80-bit HMAC-SHA1 tag.
SUITE = "AES_CM_128_HMAC_SHA1_80"
#: RFC 4568 §6.1 / RFC 3711 §8.2: a 16-byte master key followed by a 14-byte master salt.
KEY_SALT_BYTES = 30
#: RTP profiles that mean "SRTP" in an m= line (RFC 3711 §12, RFC 5124).
SECURE_PROFILES = ("RTP/SAVP", "RTP/SAVPF")
#: Per trunk and per agent: refuse plain RTP, take what is offered, or refuse SRTP.
SRTP_POLICIES = ("required", "optional", "off")
#: We never re-key, so a key must outlive the longest call: 2^21 packets is 11.6 hours at 50
#: packets/s (Asterisk's res_srtp draws the same line at 10 hours).  RFC 3711's default is 2^48.
MIN_KEY_LIFETIME_PACKETS = 2 ** 21
# §6.3: parameters whose absence we rely on; a line carrying one is not chosen.
_REFUSED_SESSION_PARAMS = ("UNENCRYPTED_SRTCP", "UNENCRYPTED_SRTP", "UNAUTHENTICATED_SRTP", "FEC_ORDER", "FEC_KEY")

# RFC 4568 §9.1:  crypto-attribute = "crypto:" tag 1*WSP crypto-suite 1*WSP key-params
#                                    *(1*WSP session-param)
#                 tag = 1*9DIGIT;  crypto-suite = 1*(ALPHA / DIGIT / "_")
_TAG = re.compile(r"[0-9]{1,9}")
_SUITE = re.compile(r"[A-Za-z0-9_]+")
#                 key-param = key-method ":" key-info;  key-method = "inline" / key-method-ext
_KEY_METHOD = re.compile(r"[A-Za-z0-9_\-.!%*+`'~]+")
# RFC 4568 §9.2:  srtp-key-info = key-salt ["|" lifetime] ["|" mki]
#                 lifetime = ["2^"] 1*(DIGIT);  mki = mki-value ":" mki-length;  mki-length = 1*3DIGIT
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_LIFETIME = re.compile(r"(2\^)?([0-9]{1,20})")
_MKI = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")


@dataclass(frozen=True, slots=True)
class SrtpKeyInfo:
    """The ``inline:`` key-info of an SRTP suite (RFC 4568 §6.1): key||salt, lifetime, MKI."""

    key_salt: bytes = field(repr=False)
    #: Packets the key may protect, or None when not given.
    lifetime: int | None = None
    #: ``(value, length in bytes)``, or None when the packets carry no MKI.
    mki: tuple[int, int] | None = None

    @classmethod
    def parse(cls, info: str) -> "SrtpKeyInfo":
        """Parse ``<base64 key||salt>[|lifetime][|mki:length]``; ``ValueError`` names the field."""
        parts = info.split("|")
        if len(parts) > 3:
            raise ValueError(f"crypto key has {len(parts) - 1} '|' parameters, at most 2 (lifetime, MKI)")
        if not _BASE64.fullmatch(parts[0]) or len(parts[0]) % 4 == 1:
            raise ValueError("crypto key is not base64")
        try:
            key_salt = base64.b64decode(parts[0] + "=" * (-len(parts[0]) % 4), validate=True)
        except binascii.Error:
            raise ValueError("crypto key is not base64") from None
        lifetime = mki = None
        for part in parts[1:]:
            if (match := _MKI.fullmatch(part)) is not None:
                if mki is not None:
                    raise ValueError("crypto key has two MKI parameters")
                length = int(match.group(2))
                if not 1 <= length <= 128:
                    raise ValueError(f"crypto MKI length {length} is outside 1..128")
                mki = (int(match.group(1)), length)
            elif (match := _LIFETIME.fullmatch(part)) is not None:
                if lifetime is not None or mki is not None:
                    raise ValueError("crypto key lifetime must come once, before the MKI")
                exponent_form, number = match.group(1), int(match.group(2))
                if exponent_form and number > 64:
                    raise ValueError(f"crypto key lifetime 2^{number} is not a packet count")
                lifetime = 2 ** number if exponent_form else number
            else:
                raise ValueError(f"crypto key parameter {part[:20]!r} is neither a lifetime nor an MKI")
        return cls(key_salt=key_salt, lifetime=lifetime, mki=mki)


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto:`` value: ``<tag> <crypto-suite> <key-params> [<session-params>]`` (RFC 4568 §4)."""

    tag: int
    suite: str
    #: ``(key-method, key-info)`` pairs, in order (several only with MKIs).
    key_params: tuple[tuple[str, str], ...] = field(repr=False)
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> "CryptoAttribute":
        """Parse the attribute's value (after ``crypto:``); ``ValueError`` names the field."""
        fields = value.split()
        if len(fields) < 3:
            raise ValueError(f"crypto attribute has {len(fields)} fields, expected <tag> <suite> <key-params>")
        tag, suite, key_params, *session_params = fields
        if not _TAG.fullmatch(tag):
            raise ValueError(f"crypto tag {tag[:12]!r} is not 1 to 9 digits")
        if not _SUITE.fullmatch(suite):
            raise ValueError(f"crypto suite {suite[:40]!r} is not letters, digits and '_'")
        params = []
        for key_param in key_params.split(";"):
            method, colon, info = key_param.partition(":")
            if not colon or not _KEY_METHOD.fullmatch(method) or not info:
                raise ValueError("crypto key parameter is not <key-method>:<key-info>")
            params.append((method, info))
        return cls(tag=int(tag), suite=suite, key_params=tuple(params), session_params=tuple(session_params))

    def __str__(self) -> str:
        keys = ";".join(f"{method}:{info}" for method, info in self.key_params)
        return " ".join([str(self.tag), self.suite, keys, *self.session_params])


def crypto_value(tag: int, key_salt: bytes) -> str:
    """Our ``a=crypto`` value for ``key_salt`` (``KEY_SALT_BYTES`` random bytes) under ``tag``."""
    if len(key_salt) != KEY_SALT_BYTES:
        raise ValueError(f"an {SUITE} key is {KEY_SALT_BYTES} bytes (key and salt), not {len(key_salt)}")
    return f"{tag} {SUITE} inline:{base64.b64encode(key_salt).decode('ascii')}"


def usable_key(attribute: CryptoAttribute) -> bytes:
    """The master key||salt of a line we can run SRTP with; ``ValueError`` says why we cannot."""
    if attribute.suite != SUITE:
        raise ValueError(f"suite {attribute.suite} is not supported (only {SUITE})")
    if len(attribute.key_params) != 1:
        raise ValueError(f"{len(attribute.key_params)} keys (MKI key selection) are not supported")
    method, info = attribute.key_params[0]
    if method != "inline":
        raise ValueError(f"key method {method[:20]!r} is not supported (only inline)")
    key = SrtpKeyInfo.parse(info)
    if len(key.key_salt) != KEY_SALT_BYTES:
        raise ValueError(f"key is {len(key.key_salt)} bytes, {SUITE} needs {KEY_SALT_BYTES} (key and salt)")
    if key.mki is not None:
        raise ValueError("an MKI is not supported")
    if key.lifetime is not None and key.lifetime < MIN_KEY_LIFETIME_PACKETS:
        raise ValueError(f"key lifetime of {key.lifetime} packets is shorter than a call may last "
                         f"(we need at least 2^21 and never re-key)")
    for param in attribute.session_params:
        name, _, number = param.partition("=")
        if name == "WSH":
            continue
        if name == "KDR" and number == "0":
            continue
        refused = name in _REFUSED_SESSION_PARAMS or name == "KDR"
        raise ValueError(f"session parameter {param[:30]!r} is {'not supported' if refused else 'unknown'}")
    return key.key_salt


def _crypto_values(attributes) -> list[str]:
    return [value or "" for name, value in attributes if name == "crypto"]


def choose_offered_key(attributes) -> tuple[int, bytes]:
    """The answerer's choice (RFC 4568 §6.1 and §7.1.2): the first crypto line of the offer's
    media ``attributes`` (``(name, value)`` pairs) we can use, as ``(tag, their key||salt)``.

    ``ValueError`` lists why each line was passed over ("no a=crypto line" when there is none);
    a repeated tag makes the whole offer unusable (§4: tags are unique within a media section).
    """
    values = _crypto_values(attributes)
    if not values:
        raise ValueError("no a=crypto line")
    reasons = []
    tags = set()
    chosen = None
    for value in values:
        try:
            attribute = CryptoAttribute.parse(value)
        except ValueError as error:
            reasons.append(f"a=crypto {value.split(' ', 1)[0][:12]}: {error}")
            continue
        if attribute.tag in tags:
            raise ValueError(f"crypto tag {attribute.tag} appears twice")
        tags.add(attribute.tag)
        if chosen is not None:
            continue
        try:
            chosen = (attribute.tag, usable_key(attribute))
        except ValueError as error:
            reasons.append(f"a=crypto {attribute.tag}: {error}")
    if chosen is None:
        raise ValueError("; ".join(reasons))
    return chosen


def answered_key(attributes, offered_tag: int) -> bytes:
    """The offerer's side (RFC 4568 §7.1.3): the answer's one crypto line must carry the tag we
    offered, with our suite; returns the answerer's key||salt.  ``ValueError`` says what is wrong."""
    values = _crypto_values(attributes)
    if len(values) != 1:
        raise ValueError(f"the answer has {len(values)} a=crypto lines, expected 1")
    attribute = CryptoAttribute.parse(values[0])
    if attribute.tag != offered_tag:
        raise ValueError(f"the answer's crypto tag {attribute.tag} is not the offered {offered_tag}")
    return usable_key(attribute)
