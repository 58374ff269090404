"""NonceUses: strictly growing nc per nonce, single use without qop, burnt after a failure, bounded memory."""

import pytest
from hypothesis import given, settings, strategies as st

from acd.sip.nonce_uses import MAX_NONCE_COUNT, NonceUses

T = 1_000.0


@pytest.fixture
def uses():
    table = NonceUses(lifetime_seconds=30, max_tracked=100)
    table.start(T)
    return table


def test_nc_must_grow_strictly(uses):
    assert uses.use("n", T, 1, T)
    assert uses.use("n", T, 3, T)
    assert not uses.use("n", T, 3, T)
    assert not uses.use("n", T, 2, T)
    assert uses.use("n", T, 4, T)


def test_a_first_nc_of_zero_is_accepted_once(uses):
    """nc=00000000 is not what RFC 2617 says a client sends first, but refusing it would loop a phone
    through stale 401s for ever."""
    assert uses.use("n", T, 0, T)
    assert not uses.use("n", T, 0, T)


def test_without_qop_a_nonce_serves_once_and_ends_every_count(uses):
    assert uses.use("n", T, None, T)
    assert not uses.use("n", T, None, T)
    assert not uses.use("n", T, MAX_NONCE_COUNT, T)


def test_a_counted_nonce_cannot_then_be_used_without_qop(uses):
    assert uses.use("n", T, 1, T)
    assert not uses.use("n", T, None, T)


def test_a_burnt_nonce_serves_nothing(uses):
    uses.burn("n", T, T)
    assert not uses.use("n", T, 1, T)
    assert not uses.use("n", T, MAX_NONCE_COUNT, T)
    assert uses.use("m", T, 1, T), "other nonces are untouched"


def test_a_nonce_issued_before_the_table_started_is_refused(uses):
    assert not uses.use("old", T - 1, 1, T)
    assert uses.use("new", T, 1, T)


def test_expired_nonces_are_forgotten_and_never_accepted_again():
    """Past its lifetime a nonce leaves the table; even if the clock stepped back it stays refused."""
    uses = NonceUses(lifetime_seconds=30, max_tracked=100)
    uses.start(T)
    assert uses.use("n", T, 1, T)
    assert uses.use("later", T + 40, 1, T + 40)
    assert len(uses) == 1
    assert not uses.use("n", T, 2, T + 10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.one_of(st.none(), st.integers(0, 6)), st.booleans()),
                max_size=60))
def test_no_nonce_count_is_ever_accepted_twice_even_when_memory_overflows(steps):
    """Whatever the order of uses and burns, and with a table far too small, an accepted (nonce, nc)
    pair is never accepted again, and no count at or below an accepted one is accepted after it."""
    uses = NonceUses(lifetime_seconds=1_000, max_tracked=3)
    uses.start(0.0)
    accepted: dict[str, int] = {}
    burnt: set[str] = set()
    for index, (number, nc, burn) in enumerate(steps):
        nonce, issued = f"n{number}", float(number)
        if burn:
            uses.burn(nonce, issued, float(index))
            burnt.add(nonce)
            continue
        ok = uses.use(nonce, issued, nc, float(index))
        if ok:
            count = MAX_NONCE_COUNT if nc is None else nc
            assert nonce not in burnt
            assert count > accepted.get(nonce, -1)
            assert nc is not None or nonce not in accepted
            accepted[nonce] = count
    assert len(uses) <= 3
