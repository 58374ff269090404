"""Which DTMF sources a call takes, from its trunk's `dtmf:` mode (acd/config/dtmf_mode.py), and
whether its caller leg listens for key tones in the audio.

A key press can reach us three ways: an RFC 4733 telephone-event on the caller's RTP leg, a SIP INFO
in the dialog, or a tone in the audio (the leg's in-band detector, acd/media/inband_dtmf.py). A
trunk set to one of them gets digits from that one only, so a press sent two ways is never two
digits. In `auto`, every source counts, and the leg listens for tones only while the caller's SDP
has no telephone-event and no digit came by RFC 4733 or INFO: a phone that signals its keys does
not need us to listen (and listening costs ~100 µs of CPU per 20 ms of the caller's sound).
"""

from __future__ import annotations

import logging

__all__ = ["DtmfSources"]

log = logging.getLogger("acd.calls")


class DtmfSources:
    """One call's DTMF policy: `accepts(method)` for each digit, `leg_setting()` for the caller leg."""

    def __init__(self, mode: str, call_id: str) -> None:
        """`mode`: the trunk's dtmf mode, one of acd.config.dtmf_mode.DTMF_MODES."""
        self.mode = mode
        self.call_id = call_id
        self.signalled = False  # a digit came by RFC 4733 or INFO

    def leg_setting(self, telephone_event_pt: int | None) -> str:
        """The caller leg's `inband_dtmf` ("on", "auto" or "off") for what the SDP negotiated."""
        if self.mode == "inband":
            return "on"
        if self.mode == "auto" and telephone_event_pt is None and not self.signalled:
            return "auto"  # the leg also stops by itself at the first telephone-event packet
        return "off"

    def accepts(self, method: str, leg) -> bool:
        """True when a digit that came by `method` ("rfc4733", "info", "inband") counts. In auto, the
        first signalled digit turns the leg's tone detection off for the rest of the call."""
        if self.mode == "auto":
            if method != "inband" and not self.signalled:
                self.signalled = True
                if getattr(leg, "inband_dtmf", "off") != "off":
                    log.info("call=%s DTMF arrives by %s: in-band DTMF detection off", self.call_id, method)
                    leg.inband_dtmf = "off"
            return True
        if method != self.mode:
            log.info("call=%s dtmf via=%s ignored: the trunk takes DTMF by %s only", self.call_id, method, self.mode)
            return False
        return True
