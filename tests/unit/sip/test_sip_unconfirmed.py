"""Unconfirmed calls (taken, no ACK yet) counted per source address and in total, for the 503 caps."""

from acd.sip.unconfirmed import PER_SOURCE, TOTAL, UnconfirmedCalls

A, B = "192.0.2.1", "192.0.2.2"


def test_the_per_source_cap_refuses_that_source_only():
    calls = UnconfirmedCalls()
    for n in range(3):
        calls.add(f"a{n}", A)
    assert calls.refusal(A, max_per_source=3, max_total=10) == PER_SOURCE
    assert calls.refusal(B, max_per_source=3, max_total=10) is None


def test_the_total_cap_refuses_everyone():
    calls = UnconfirmedCalls()
    calls.add("a", A)
    calls.add("b", B)
    assert calls.refusal("192.0.2.3", max_per_source=5, max_total=2) == TOTAL


def test_an_ack_or_the_end_frees_the_place_once():
    """The ACK and the call's end both discard; the second is a no-op, so nothing is counted twice."""
    calls = UnconfirmedCalls()
    calls.add("a", A)
    calls.add("a", A)  # a repeated add does not count twice
    calls.add("b", A)
    assert (calls.count(A), calls.total) == (2, 2)
    calls.discard("a")
    calls.discard("a")
    assert (calls.count(A), calls.total) == (1, 1)
    calls.discard("b")
    assert (calls.count(A), calls.total, calls.peak) == (0, 0, 2)
    assert calls.refusal(A, max_per_source=1, max_total=1) is None
