"""RFC 3262 reliable provisional responses, UAS side: what the caller asks for, RSeq, the retransmit
schedule (T1 doubling, no T2 cap), PRACK matching by RAck (481 otherwise), the 2xx held until the
PRACK of a provisional with SDP, giving up after 64*T1, and a final response (CANCEL) mid-way."""

import pytest

from acd.sip.errors import LocalProtocolError, RemoteProtocolError
from acd.sip.message import Headers, Request
from acd.sip.reliable_provisional import (
    DueAction, Provisional, RAck, Reliability, ReliableProvisionals, peer_reliability, wants_reliable,
)

T1 = 0.5


def invite(*headers: tuple[str, str]) -> Request:
    fields = Headers()
    for name, value in headers:
        fields.add(name, value)
    return Request(method="INVITE", uri="sip:1000@127.0.0.1", headers=fields, body=b"")


def machine(*, retransmit: bool = True) -> ReliableProvisionals:
    return ReliableProvisionals(invite_cseq=1, first_rseq=4711, t1_seconds=T1, retransmit=retransmit)


def rack(rseq: int = 4711, cseq: int = 1, method: str = "INVITE") -> RAck:
    return RAck(rseq=rseq, cseq=cseq, method=method)


def run_timers(core: ReliableProvisionals, until: float) -> list[tuple[float, DueAction]]:
    """Every due action up to `until`, at the deadlines the core reports."""
    fired = []
    while (deadline := core.next_deadline()) is not None and deadline <= until:
        action = core.due(deadline)
        if action is not None:
            fired.append((deadline, action[0]))
    return fired


def test_require_or_supported_100rel_is_read_from_the_invite_in_any_form():
    assert peer_reliability(invite(("Require", "100rel"))) is Reliability.REQUIRED
    assert peer_reliability(invite(("Supported", "replaces, 100rel, timer"))) is Reliability.SUPPORTED
    assert peer_reliability(invite(("k", "timer, 100REL"))) is Reliability.SUPPORTED  # compact form, any case
    assert peer_reliability(invite(("Supported", "timer"))) is Reliability.NONE


def test_required_makes_every_provisional_reliable_supported_only_those_with_sdp():
    assert wants_reliable(Reliability.REQUIRED, has_sdp=False)
    assert wants_reliable(Reliability.SUPPORTED, has_sdp=True)
    assert not wants_reliable(Reliability.SUPPORTED, has_sdp=False)
    assert not wants_reliable(Reliability.NONE, has_sdp=True)


def test_a_reliable_provisional_carries_require_100rel_and_rseq_counting_up():
    core = machine()
    first = core.send(183, has_sdp=True, now=0.0)
    assert first == Provisional(status=183, rseq=4711, has_sdp=True)
    assert first.headers() == (("Require", "100rel"), ("RSeq", "4711"))
    core.receive_prack(rack(4711), 0.1)
    assert core.send(180, has_sdp=False, now=0.2).rseq == 4712


def test_100_is_never_sent_reliably_and_the_first_rseq_is_in_range():
    with pytest.raises(ValueError):
        Provisional(status=100, rseq=1, has_sdp=False)
    with pytest.raises(ValueError):
        ReliableProvisionals(invite_cseq=1, first_rseq=0, t1_seconds=T1)
    with pytest.raises(ValueError):
        ReliableProvisionals(invite_cseq=1, first_rseq=2 ** 31, t1_seconds=T1)


def test_retransmits_at_t1_doubling_without_a_t2_cap_then_gives_up_at_64_t1():
    core = machine()
    core.send(183, has_sdp=True, now=10.0)
    fired = run_timers(core, until=100.0)
    assert [(round(at - 10.0, 3), action) for at, action in fired] == [
        (0.5, DueAction.RETRANSMIT), (1.5, DueAction.RETRANSMIT), (3.5, DueAction.RETRANSMIT),
        (7.5, DueAction.RETRANSMIT), (15.5, DueAction.RETRANSMIT), (31.5, DueAction.RETRANSMIT),
        (32.0, DueAction.GIVE_UP)]
    assert core.next_deadline() is None and core.unacknowledged is not None


def test_over_a_stream_transport_nothing_is_retransmitted_but_it_still_gives_up():
    core = machine(retransmit=False)
    core.send(183, has_sdp=True, now=0.0)
    assert run_timers(core, until=100.0) == [(32.0, DueAction.GIVE_UP)]


def test_a_matching_prack_stops_the_retransmissions():
    core = machine()
    core.send(183, has_sdp=True, now=0.0)
    assert core.due(0.5)[0] is DueAction.RETRANSMIT
    outcome = core.receive_prack(rack(), 0.7)
    assert outcome.acknowledged.rseq == 4711 and outcome.send_next is None and not outcome.send_final
    assert core.next_deadline() is None and core.unacknowledged is None


@pytest.mark.parametrize("wrong", [rack(4712), rack(4711, cseq=2), rack(4711, method="UPDATE")],
                         ids=["rseq", "cseq", "method"])
def test_a_prack_matching_no_unacknowledged_response_gets_481(wrong):
    core = machine()
    core.send(183, has_sdp=True, now=0.0)
    with pytest.raises(RemoteProtocolError) as refused:
        core.receive_prack(wrong, 0.1)
    assert refused.value.status == 481
    assert core.unacknowledged is not None  # the right PRACK is still awaited


def test_a_second_prack_for_the_same_response_gets_481():
    core = machine()
    core.send(183, has_sdp=True, now=0.0)
    core.receive_prack(rack(), 0.1)
    with pytest.raises(RemoteProtocolError, match="already acknowledged") as refused:
        core.receive_prack(rack(), 0.2)
    assert refused.value.status == 481


def test_a_prack_before_any_reliable_provisional_gets_481():
    with pytest.raises(RemoteProtocolError):
        machine().receive_prack(rack(), 0.0)


@pytest.mark.parametrize("text", [None, "", "1 INVITE", "x 1 INVITE", "1 2 INVITE extra"])
def test_a_malformed_rack_is_a_400(text):
    with pytest.raises(RemoteProtocolError) as refused:
        RAck.parse(text)
    assert refused.value.status == 400


def test_rack_reads_numbers_and_method():
    assert RAck.parse(" 776656  1 invite ") == RAck(rseq=776656, cseq=1, method="INVITE")


def test_the_2xx_waits_for_the_prack_of_a_provisional_with_sdp():
    core = machine()
    core.send(183, has_sdp=True, now=0.0)
    assert core.may_send_2xx() is False
    assert core.may_send_2xx() is False  # asked again: still held, nothing breaks
    assert core.due(0.5)[0] is DueAction.RETRANSMIT  # still retransmitted while the 2xx waits
    outcome = core.receive_prack(rack(), 0.6)
    assert outcome.send_final
    assert core.may_send_2xx()
    core.final_sent()
    assert core.next_deadline() is None


def test_a_provisional_without_sdp_does_not_hold_the_2xx_and_the_2xx_stops_its_retransmissions():
    core = machine()
    core.send(180, has_sdp=False, now=0.0)
    assert core.may_send_2xx()
    core.final_sent()
    assert core.next_deadline() is None
    core.receive_prack(rack(), 1.0)  # a late PRACK for it is still answered (§3 "MUST be prepared")


def test_a_second_reliable_provisional_waits_in_line_for_the_first_prack():
    core = machine()
    core.send(180, has_sdp=False, now=0.0)
    second = core.send(183, has_sdp=True, now=0.1)
    assert second.rseq == 4712 and core.unacknowledged.rseq == 4711  # not sent yet
    outcome = core.receive_prack(rack(4711), 0.2)
    assert outcome.send_next == Provisional(status=183, rseq=4712, has_sdp=True)
    assert core.unacknowledged == outcome.send_next and core.next_deadline() == pytest.approx(0.7)


def test_a_cancel_during_early_media_ends_the_retransmissions():
    """CANCEL: the shell answers 487 to the INVITE, a final response like any other."""
    core = machine()
    core.send(183, has_sdp=True, now=0.0)
    assert core.may_send_2xx() is False
    core.final_sent()
    assert core.next_deadline() is None and core.due(100.0) is None


def test_nothing_is_sent_after_giving_up_and_a_late_prack_gets_481():
    core = machine()
    core.send(183, has_sdp=True, now=0.0)
    assert core.may_send_2xx() is False
    run_timers(core, until=40.0)
    with pytest.raises(RemoteProtocolError) as refused:
        core.receive_prack(rack(), 40.0)
    assert refused.value.status == 481
    core.final_sent()  # the 500 that rejects the INVITE: allowed, changes nothing


def test_sending_a_provisional_after_the_final_response_is_our_bug():
    core = machine()
    core.final_sent()
    with pytest.raises(LocalProtocolError):
        core.send(183, has_sdp=True, now=0.0)
