"""RFC 4028 session timers, UAS side: negotiation (422, refresher choice, headers of our 2xx) and
the refresh and expiry deadlines, with time passed in."""

import pytest

from acd.sip.errors import RemoteProtocolError
from acd.sip.message import Headers, Request
from acd.sip.session_timer import (
    SessionTimer, TimerAction, TimerTerms, expiry_margin, negotiate, peer_allows_update,
)


def invite(*headers: tuple[str, str]) -> Request:
    """An INVITE carrying `headers` (only the ones negotiation reads matter)."""
    fields = Headers()
    for name, value in headers:
        fields.add(name, value)
    return Request(method="INVITE", uri="sip:100@127.0.0.1", headers=fields, body=b"")


def terms(request: Request, *, min_seconds: int = 90, default_seconds: int = 1800) -> TimerTerms | None:
    return negotiate(request, min_seconds=min_seconds, default_seconds=default_seconds)


def test_a_caller_that_asks_for_nothing_gets_no_timer():
    assert terms(invite(("Allow", "INVITE, ACK, BYE"))) is None


def test_supported_timer_without_an_interval_gets_our_default_with_the_caller_refreshing():
    agreed = terms(invite(("Supported", "100rel, timer")))
    assert agreed == TimerTerms(interval_seconds=1800, refresher="uac", uac_supports=True)
    assert agreed.response_headers() == (("Session-Expires", "1800;refresher=uac"), ("Require", "timer"),
                                         ("Supported", "timer"))


def test_the_refresher_the_caller_names_is_kept():
    agreed = terms(invite(("Supported", "timer"), ("Session-Expires", "600;refresher=uas")))
    assert (agreed.interval_seconds, agreed.refresher, agreed.we_refresh) == (600, "uas", True)
    agreed = terms(invite(("Supported", "timer"), ("x", "600 ; refresher=UAC")))  # compact form, any case
    assert (agreed.interval_seconds, agreed.refresher) == (600, "uac")


def test_a_caller_without_the_extension_cannot_refresh_so_we_do_without_require():
    """§9: Session-Expires without Supported: timer: the UAS refreshes, and must not Require timer."""
    agreed = terms(invite(("Session-Expires", "300;refresher=uac")))
    assert (agreed.refresher, agreed.uac_supports) == ("uas", False)
    assert ("Require", "timer") not in agreed.response_headers()
    assert agreed.refresh_headers() == (("Session-Expires", "300;refresher=uas"), ("Supported", "timer"))


def test_an_interval_below_our_minimum_is_refused_422_with_our_min_se():
    with pytest.raises(RemoteProtocolError) as refused:
        terms(invite(("Supported", "timer"), ("Session-Expires", "60")))
    assert refused.value.status == 422
    assert refused.value.headers == (("Min-SE", "90"),)
    assert terms(invite(("Supported", "timer"), ("Session-Expires", "90")), min_seconds=90).interval_seconds == 90


def test_the_callers_min_se_raises_our_default_and_is_kept():
    assert terms(invite(("Supported", "timer"), ("Min-SE", "2000"))).interval_seconds == 2000
    assert terms(invite(("Supported", "timer"), ("Min-SE", "120"))).interval_seconds == 1800


@pytest.mark.parametrize("header", [("Session-Expires", "soon"), ("Session-Expires", "-5"), ("Min-SE", "x")])
def test_malformed_intervals_are_refused_400(header):
    with pytest.raises(RemoteProtocolError) as refused:
        terms(invite(("Supported", "timer"), header))
    assert refused.value.status == 400


def test_terms_check_themselves():
    with pytest.raises(ValueError):
        TimerTerms(interval_seconds=90, refresher="proxy", uac_supports=True)
    with pytest.raises(ValueError):
        TimerTerms(interval_seconds=0, refresher="uac", uac_supports=True)


def test_update_is_used_for_refreshes_only_when_the_peer_allows_it():
    assert peer_allows_update(invite(("Allow", "INVITE, ACK, BYE, update")))
    assert not peer_allows_update(invite(("Allow", "INVITE, ACK, BYE")))
    assert not peer_allows_update(invite())


def test_expiry_margin_is_a_third_of_short_intervals_and_32_s_of_long_ones():
    assert expiry_margin(90) == 30
    assert expiry_margin(1800) == 32


def test_when_the_caller_refreshes_only_expiry_is_due_and_a_refresh_restarts_it():
    timer = SessionTimer(TimerTerms(interval_seconds=90, refresher="uac", uac_supports=True), now=100.0)
    assert timer.next_deadline() == 160.0  # 90 - min(32, 30)
    assert timer.due(159.9) is None
    timer.start(timer.terms, now=150.0)  # a re-INVITE from the caller
    assert timer.next_deadline() == 210.0
    assert timer.due(210.0) is TimerAction.EXPIRE


def test_when_we_refresh_the_refresh_is_due_at_half_the_interval_once_then_expiry():
    timer = SessionTimer(TimerTerms(interval_seconds=1800, refresher="uas", uac_supports=False), now=0.0)
    assert timer.next_deadline() == 900.0
    assert timer.due(900.0) is TimerAction.REFRESH
    assert timer.due(900.0) is None  # in flight: not asked again
    assert timer.next_deadline() == 1768.0
    timer.start(timer.terms, now=901.0)  # its 2xx came
    assert timer.next_deadline() == 1801.0
    assert timer.due(2669.0) is TimerAction.EXPIRE  # expiry wins when both are late
