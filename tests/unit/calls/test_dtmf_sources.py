"""A call's DTMF policy per trunk mode: which digits count, and when the caller leg listens for tones."""

from __future__ import annotations

import pytest

from acd.calls.dtmf_sources import DtmfSources


class Leg:
    inband_dtmf = "auto"


@pytest.mark.parametrize("mode, telephone_event_pt, setting", [
    ("auto", None, "auto"), ("auto", 101, "off"), ("inband", 101, "on"), ("inband", None, "on"),
    ("rfc4733", None, "off"), ("info", None, "off")])
def test_the_leg_listens_for_tones_in_inband_and_in_auto_without_telephone_events(mode, telephone_event_pt, setting):
    assert DtmfSources(mode, "c").leg_setting(telephone_event_pt) == setting


@pytest.mark.parametrize("mode", ["rfc4733", "info", "inband"])
def test_a_single_source_mode_takes_only_its_own_digits(mode):
    sources = DtmfSources(mode, "c")
    assert [m for m in ("rfc4733", "info", "inband") if sources.accepts(m, Leg())] == [mode]


def test_auto_takes_every_source_and_a_signalled_digit_stops_tone_listening_for_good():
    sources, leg = DtmfSources("auto", "c"), Leg()
    assert sources.accepts("inband", leg) and leg.inband_dtmf == "auto"
    assert sources.accepts("info", leg) and leg.inband_dtmf == "off"
    assert sources.accepts("rfc4733", leg)
    assert sources.leg_setting(None) == "off", "a re-INVITE without telephone-event does not turn it back on"
