# SPDX-License-Identifier: MIT
"""Offer/answer after the first exchange (RFC 3264 §8): re-INVITE and UPDATE offers in a dialog.

One ``SessionNegotiation`` per call leg holds what the leg agreed so far: our SDP as last sent
and the audio it set up.  ``receive(method, body)`` takes an in-dialog INVITE or UPDATE and says
what to reply and what the media becomes; ``receive_ack(body)`` takes the answer to an offer of
ours that went in a 2xx.  Pure: no I/O, keys and ports are passed in.

The rules, with where they come from:

- An offer is answered by the same rules as the first one (``answer_offer``), with the leg's
  SRTP policy and our key of the call (a direction whose key does not change keeps its SRTP state).
- The codec in use is kept while the offer still lists it (no glitch for a refresh or a hold);
  when it is gone, another one we support is taken, unless the leg is pinned to its codec (the
  call is bridged, recorded or offered to agents in it), which makes the offer unacceptable (488).
- A stream offered with port 0 is rejected with port 0 (§8.2); when every audio stream is, the
  answer rejects them all and the leg's audio is off (``audio`` None) until an offer enables it.
- An INVITE without SDP gets our offer in the 2xx and its answer comes in the ACK
  (RFC 3261 §14.2); an UPDATE without SDP changes nothing (RFC 3311 §5.2).
- Only one offer may be outstanding (RFC 3264 §4): an offer that arrives while ours (in a 2xx)
  still waits for its answer gets 491 Request Pending (RFC 3311 §5.2, RFC 3261 §14.2).
- Our SDP's ``o=`` line stays the same but for its version, which goes up by one exactly when
  the SDP changes (RFC 3264 §8).
- An offer we cannot take leaves everything as it was (the call goes on unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sdes import SECURE_PROFILES
from .sdp import (
    ANSWER_DIRECTION, NegotiatedAudio, Origin, SdpError, SessionDescription, answer_offer, build_offer,
    rejected_stream, srtp_key_of_answer,
)

__all__ = ["OfferReply", "SessionNegotiation", "next_version", "offered_codecs", "read_answer"]

#: The codecs we can run, in our order of preference for our own offers.
SUPPORTED_CODECS = ("PCMU", "PCMA")
_STATIC_NAMES = {"PCMU": 0, "PCMA": 8}


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferReply:
    """What to answer an in-dialog INVITE or UPDATE with, and what the leg's audio became.

    ``status`` is the SIP status (200, 488, 491); ``body`` our SDP for a 200 (an answer, or our
    offer for an INVITE without SDP), empty otherwise; ``reason`` says why a refusal, for the
    Warning header and the log.  ``changed`` is True when ``audio`` differs from before.
    """

    status: int
    body: bytes = b""
    reason: str = ""
    audio: NegotiatedAudio | None = None
    changed: bool = False


def next_version(previous: SessionDescription, new: SessionDescription) -> SessionDescription:
    """``new`` with ``previous``'s origin, the version one higher only if the rest differs (RFC 3264 §8)."""
    old = previous.origin
    new.origin = Origin(old.username, old.sess_id, old.sess_version, old.address)
    if str(new) != str(previous):
        new.origin.sess_version = old.sess_version + 1
    return new


def offered_codecs(offer: SessionDescription) -> list[str]:
    """The codecs we support (PCMU, PCMA at 8000 Hz) listed in the offer's active audio streams."""
    found: list[str] = []
    for media in offer.media:
        if media.media != "audio" or media.port == 0:
            continue
        for pt in media.formats:
            name = media.codec_name(pt) if isinstance(pt, int) else None
            if name is not None and name[1] == 8000 and name[0].upper() in _STATIC_NAMES \
                    and name[0].upper() not in found:
                found.append(name[0].upper())
    return found


def read_answer(offer: SessionDescription, answer: SessionDescription, *, srtp: str,
                srtp_key: bytes | None) -> NegotiatedAudio | None:
    """The audio an answer to our one-stream ``offer`` sets up (RFC 3264 §6, seen from the offerer);
    None when the answer rejects the stream (port 0).  ``SdpError`` when it does not fit the offer."""
    if len(answer.media) != len(offer.media):
        raise SdpError(f"the answer has {len(answer.media)} media streams, our offer {len(offer.media)} "
                       "(RFC 3264 §6: one m= line per offered stream)")
    ours, theirs = offer.media[0], answer.media[0]
    if theirs.port == 0:
        return None
    codec = payload_type = telephone_event_pt = None
    for pt in theirs.formats:
        name = theirs.codec_name(pt) if isinstance(pt, int) else None
        if name is None or name[1] != 8000:
            continue
        encoding = name[0].upper()
        if codec is None and encoding in _STATIC_NAMES and pt in ours.formats:
            codec, payload_type = encoding, pt
        elif telephone_event_pt is None and encoding == "TELEPHONE-EVENT":
            telephone_event_pt = pt
    if codec is None:
        raise SdpError(f"the answer takes none of the codecs we offered ({' '.join(map(str, ours.formats))})")
    address = answer.address_for(theirs)
    if address is None:
        raise SdpError("the answer has no connection address (c=) for the audio stream")
    remote_key = srtp_key_of_answer(theirs, srtp=srtp)
    return NegotiatedAudio(
        remote_address=address, remote_port=theirs.port, payload_type=payload_type, codec=codec,
        telephone_event_pt=telephone_event_pt, direction=ANSWER_DIRECTION[theirs.direction],
        remote_ptime=theirs.ptime, srtp_local_key=srtp_key if remote_key is not None else None,
        srtp_remote_key=remote_key,
    )


@dataclass(slots=True)
class SessionNegotiation:
    """The offer/answer state of one leg in an established dialog.

    ``local`` is our SDP as last sent (answer or offer), ``audio`` what is agreed now (None: the
    audio stream is disabled).  ``srtp`` is the leg's policy and ``srtp_key`` our key||salt for the
    call (None when the policy is ``off``).  ``pending`` is our offer sent in a 2xx, until the
    ACK brings its answer.
    """

    local: SessionDescription
    audio: NegotiatedAudio | None
    local_address: str
    local_port: int
    srtp: str = "off"
    srtp_key: bytes | None = field(default=None, repr=False)
    pending: SessionDescription | None = None

    def receive(self, method: str, body: bytes, *, keep_codec: bool = False) -> OfferReply:
        """An in-dialog INVITE or UPDATE with ``body`` (its SDP, or empty).  ``keep_codec``: the
        leg must stay on its codec (a bridge relays packets as they are: both legs share one)."""
        if not body:
            if method == "UPDATE":
                return OfferReply(status=200, audio=self.audio)  # RFC 3311 §5.2: no offer, nothing changes
            if self.pending is not None:
                return OfferReply(status=491, reason="our offer in the last 200 OK still waits for its answer in "
                                  "the ACK", audio=self.audio)
            self.pending = self._our_offer(keep_codec)
            return OfferReply(status=200, body=bytes(self.pending), audio=self.audio)
        if self.pending is not None:
            return OfferReply(status=491, reason="our offer in the last 200 OK still waits for its answer in the ACK",
                              audio=self.audio)
        try:
            answer, audio = self._answer(SessionDescription.parse(body), keep_codec)
        except SdpError as error:
            return OfferReply(status=488, reason=str(error), audio=self.audio)
        changed = audio != self.audio
        self.local, self.audio = answer, audio
        return OfferReply(status=200, body=bytes(answer), audio=audio, changed=changed)

    def receive_ack(self, body: bytes) -> OfferReply | None:
        """The ACK of a 2xx: the answer when our offer went in it; None when no offer of ours waited.
        A missing or unusable answer keeps the audio as it was (status 488, ``reason`` says why)."""
        offer, self.pending = self.pending, None
        if offer is None:
            return None
        try:
            if not body:
                raise SdpError("the ACK carries no answer to our offer in the 200 OK")
            audio = read_answer(offer, SessionDescription.parse(body), srtp=self.srtp, srtp_key=self.srtp_key)
        except SdpError as error:
            return OfferReply(status=488, reason=str(error), audio=self.audio)
        changed = audio != self.audio
        self.local, self.audio = offer, audio
        return OfferReply(status=200, audio=audio, changed=changed)

    # ---- building our SDP ------------------------------------------------------------------------
    def _answer(self, offer: SessionDescription, keep_codec: bool) -> tuple[SessionDescription,
                                                                            NegotiatedAudio | None]:
        current = self.audio.codec if self.audio is not None else None
        if not any(m.media == "audio" and m.port != 0 for m in offer.media):
            if not any(m.media == "audio" for m in offer.media):
                raise SdpError("SDP offer has no audio stream (RFC 3264 §8: a stream is removed with port 0, "
                               "not by leaving its m= line out)")
            answer = SessionDescription(origin=self.local.origin, connection_address=self.local_address,
                                        media=[rejected_stream(m) for m in offer.media])
            return next_version(self.local, answer), None
        offered = offered_codecs(offer)
        if current is not None and current in offered:
            supported: tuple[str, ...] = (current,)
        elif keep_codec and current is not None:
            raise SdpError(f"SDP offer drops {current}, the codec this call is bridged or recorded in "
                           f"(offered: {', '.join(offered) or 'none we support'})")
        else:
            supported = SUPPORTED_CODECS
        answer, audio = answer_offer(offer, local_address=self.local_address, local_port=self.local_port,
                                     session_id=self.local.origin.sess_id, supported=supported,
                                     session_version=self.local.origin.sess_version, srtp=self.srtp,
                                     srtp_key=self.srtp_key)
        return next_version(self.local, answer), audio

    def _our_offer(self, keep_codec: bool) -> SessionDescription:
        audio = self.audio
        codecs = SUPPORTED_CODECS
        if audio is not None:
            codecs = (audio.codec,) if keep_codec else (audio.codec, *(c for c in SUPPORTED_CODECS if c != audio.codec))
        previous = next((m for m in self.local.media if m.media == "audio" and m.port != 0), None)
        secure = previous is not None and previous.proto.upper() in SECURE_PROFILES
        offer = build_offer(self.local_address, self.local_port, self.local.origin.sess_id, codecs,
                            telephone_event_pt=(audio.telephone_event_pt if audio is not None else None) or 101,
                            session_version=self.local.origin.sess_version,
                            srtp="required" if secure and self.srtp != "off" else self.srtp, srtp_key=self.srtp_key)
        return next_version(self.local, offer)

