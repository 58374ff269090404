"""Which DTMF sources a call takes, from its trunk's `dtmf:` mode (acd/config/dtmf_mode.py).

A key press can reach us three ways: an RFC 4733 telephone-event on the caller's RTP leg, a SIP INFO
in the dialog, or a tone in the audio (the leg's in-band detector). A trunk that is set to one of
them gets digits from that one only, so a press sent two ways is never two digits. In `auto`, every
source counts, and in-band detection runs only until a digit arrives by RFC 4733 or INFO: a line
that signals its digits also plays the tone to the caller's ear, often into the audio as well.
"""

from __future__ import annotations

import logging

__all__ = ["inband_setting", "digit_accepted"]

log = logging.getLogger("acd.calls")


def inband_setting(mode: str) -> str:
    """The caller leg's `inband_dtmf` for a trunk's dtmf mode: "on", "auto" or "off"."""
    return {"inband": "on", "auto": "auto"}.get(mode, "off")


def digit_accepted(mode: str, method: str, leg, call_id: str) -> bool:
    """True when a digit that came by `method` ("rfc4733", "info", "inband") counts on a trunk in
    `mode`. In auto, a signalled digit turns the leg's in-band detection off for the rest of the call."""
    if mode == "auto":
        if method != "inband" and getattr(leg, "inband_dtmf", "off") == "auto":
            log.info("call=%s DTMF arrives by %s: in-band DTMF detection off", call_id, method)
            leg.inband_dtmf = "off"
        return True
    if method != mode:
        log.info("call=%s dtmf via=%s ignored: the trunk takes DTMF by %s only", call_id, method, mode)
        return False
    return True
