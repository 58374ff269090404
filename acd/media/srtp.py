# SPDX-License-Identifier: MIT
"""SRTP packet protection (RFC 3711) for one direction of a media leg, with libsrtp (pylibsrtp).

``SrtpStream.outbound(key)`` protects what we send, ``SrtpStream.inbound(key)`` checks and decrypts
what we receive; both take the 30-byte master key||salt negotiated by SDES (``sdes.py``), suite
AES_CM_128_HMAC_SHA1_80.  One libsrtp session per direction, for any SSRC: a bridged leg sends
our own stream (prompts) and, later, the relayed one of the other party, each its own SRTP stream
under the same key (RFC 3711 §9.1 lets SSRCs share a master key; the SSRC is in every IV).

Cost (scripts/bench/srtp_packet.py, one core of the 2-core dev container, Python 3.11): 2.4 µs to
protect and 2.4 µs to unprotect a 20 ms G.711 packet; a bridged SRTP packet (unprotect, then
protect for the other leg) costs 5 µs more than a plain one, on top of the 10-18 µs the socket
and Twisted spend moving it (DESIGN.md).
"""

from __future__ import annotations

import pylibsrtp

from .sdes import KEY_SALT_BYTES

__all__ = ["SRTP_AUTH_TAG_BYTES", "SrtpRefused", "SrtpStream"]

#: RFC 3711 §4.2 / RFC 4568 §6.2.1: the HMAC-SHA1 tag of AES_CM_128_HMAC_SHA1_80 is 80 bits.
SRTP_AUTH_TAG_BYTES = 10
#: What a packet that fails (authentication, replay, length) raises; the caller drops it.
SrtpRefused = (pylibsrtp.Error, ValueError, TypeError)


class SrtpStream:
    """One direction of SRTP: ``process(packet)`` is ``protect`` or ``unprotect``."""

    __slots__ = ("process", "_session")

    def __init__(self, session: pylibsrtp.Session, outbound: bool) -> None:
        self._session = session
        self.process = session.protect if outbound else session.unprotect

    @classmethod
    def outbound(cls, key: bytes) -> "SrtpStream":
        """Protects what we send with our key; a relayed packet the peer repeated is sent again
        (``allow_repeat_tx``) rather than raising."""
        policy = pylibsrtp.Policy(key=_checked(key), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                  srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
        policy.allow_repeat_tx = True
        return cls(pylibsrtp.Session(policy), outbound=True)

    @classmethod
    def inbound(cls, key: bytes) -> "SrtpStream":
        """Checks and decrypts what the peer sends with its key (replays are refused, RFC 3711 §3.3.2)."""
        policy = pylibsrtp.Policy(key=_checked(key), ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                  srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
        return cls(pylibsrtp.Session(policy), outbound=False)


def _checked(key: bytes) -> bytes:
    if len(key) != KEY_SALT_BYTES:
        raise ValueError(f"an SRTP master key||salt is {KEY_SALT_BYTES} bytes, not {len(key)}")
    return bytes(key)
