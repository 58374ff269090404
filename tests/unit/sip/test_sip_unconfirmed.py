"""Unconfirmed calls (taken, no ACK yet) counted per source address and in total, for the 503 caps."""

from acd.sip.unconfirmed import CONFIRMING_SECONDS, PER_SOURCE, TOTAL, UnconfirmedCalls

A, B = "192.0.2.1", "192.0.2.2"
T0 = 1000.0


def test_the_per_source_cap_refuses_that_silent_source_only():
    calls = UnconfirmedCalls()
    for n in range(3):
        calls.add(f"a{n}", A)
    assert calls.refusal(A, T0, max_per_source=3, max_total=10) == PER_SOURCE
    assert calls.refusal(B, T0, max_per_source=3, max_total=10) is None


def test_a_source_that_acks_is_not_held_to_the_per_source_cap_until_it_stops():
    """A live trunk under load has many calls whose ACK is late; one ACK within 8 s shows it is alive."""
    calls = UnconfirmedCalls()
    for n in range(5):
        calls.add(f"a{n}", A)
    calls.confirm("a0", T0)
    assert calls.count(A) == 4 and calls.confirming(A, T0 + 1)
    assert calls.refusal(A, T0 + 1, max_per_source=3, max_total=10) is None
    assert calls.refusal(A, T0 + CONFIRMING_SECONDS, max_per_source=3, max_total=10) == PER_SOURCE


def test_the_total_cap_refuses_everyone_even_a_confirming_source():
    calls = UnconfirmedCalls()
    calls.add("a", A)
    calls.add("b", B)
    calls.add("c", A)
    calls.confirm("c", T0)
    assert calls.refusal("192.0.2.3", T0, max_per_source=5, max_total=2) == TOTAL
    assert calls.refusal(A, T0, max_per_source=5, max_total=2) == TOTAL


def test_an_ack_or_the_end_frees_the_place_once():
    """The ACK and the call's end both come; the second is a no-op, so nothing is counted twice."""
    calls = UnconfirmedCalls()
    calls.add("a", A)
    calls.add("a", A)  # a repeated add does not count twice
    calls.add("b", A)
    assert (calls.count(A), calls.total) == (2, 2)
    calls.confirm("a", T0)
    calls.discard("a")
    assert (calls.count(A), calls.total) == (1, 1)
    calls.discard("b")
    calls.confirm("b", T0)  # an ACK after the end: nothing to do
    assert (calls.count(A), calls.total, calls.peak) == (0, 0, 2)
