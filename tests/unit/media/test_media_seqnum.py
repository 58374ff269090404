"""RFC 1982 serial-number arithmetic for RTP sequence numbers and timestamps."""

from hypothesis import given
from hypothesis import strategies as st

from acd.media.seqnum import uint16_add, uint16_gt, uint16_gte, uint16_sub, uint32_add, uint32_gt, uint32_gte, uint32_sub


def test_uint16_add_wraps_at_65536():
    assert uint16_add(65535, 1) == 0
    assert uint16_add(65530, 10) == 4
    assert uint16_add(1, 2) == 3


def test_uint16_sub_wraps_below_zero():
    assert uint16_sub(0, 1) == 65535
    assert uint16_sub(4, 65530) == 10


def test_uint16_gt_across_wraparound():
    assert uint16_gt(0, 65535)
    assert not uint16_gt(65535, 0)
    assert uint16_gt(10, 65500)
    assert uint16_gt(2, 1)
    assert not uint16_gt(1, 2)


def test_uint16_gt_is_false_for_equal_and_half_space_apart():
    assert not uint16_gt(5, 5)
    assert uint16_gte(5, 5)
    assert not uint16_gt(0x8000, 0) and not uint16_gt(0, 0x8000)


def test_uint32_add_and_gt_wrap_at_2_to_32():
    assert uint32_add(0xFFFFFFFF, 1) == 0
    assert uint32_sub(0, 160) == 0xFFFFFF60
    assert uint32_gt(100, 0xFFFFFF00)
    assert not uint32_gt(0xFFFFFF00, 100)
    assert uint32_gte(7, 7)
    assert not uint32_gt(0x80000000, 0) and not uint32_gt(0, 0x80000000)


@given(st.integers(0, 0xFFFF), st.integers(1, 0x7FFF))
def test_uint16_value_ahead_by_less_than_half_is_greater(a, delta):
    b = uint16_add(a, delta)
    assert uint16_gt(b, a)
    assert not uint16_gt(a, b)
    assert uint16_sub(b, a) == delta


@given(st.integers(0, 0xFFFFFFFF), st.integers(1, 0x7FFFFFFF))
def test_uint32_value_ahead_by_less_than_half_is_greater(a, delta):
    b = uint32_add(a, delta)
    assert uint32_gt(b, a)
    assert not uint32_gt(a, b)
    assert uint32_sub(b, a) == delta
