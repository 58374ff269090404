# SPDX-License-Identifier: MIT
"""Modular arithmetic for RTP sequence numbers (16 bit) and timestamps (32 bit).

Comparisons follow RFC 1982 serial-number arithmetic: ``a`` is "greater" than
``b`` when it is ahead of ``b`` by less than half the number space.  Values
exactly half the space apart are undefined by RFC 1982; here they compare as
not greater in either direction.
"""

__all__ = ["uint16_add", "uint16_gt", "uint16_gte", "uint16_sub",
           "uint32_add", "uint32_gt", "uint32_gte", "uint32_sub"]

_UINT16_MASK = 0xFFFF
_UINT16_HALF = 0x8000
_UINT32_MASK = 0xFFFFFFFF
_UINT32_HALF = 0x80000000


def uint16_add(a: int, b: int) -> int:
    """Return ``(a + b) mod 2**16``."""
    return (a + b) & _UINT16_MASK


def uint16_sub(a: int, b: int) -> int:
    """Return ``(a - b) mod 2**16``."""
    return (a - b) & _UINT16_MASK


def uint16_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: True if ``a`` is after ``b`` in 16-bit serial space."""
    diff = (a - b) & _UINT16_MASK
    return 0 < diff < _UINT16_HALF


def uint16_gte(a: int, b: int) -> bool:
    """True if ``a == b`` or ``uint16_gt(a, b)``."""
    return ((a - b) & _UINT16_MASK) < _UINT16_HALF


def uint32_add(a: int, b: int) -> int:
    """Return ``(a + b) mod 2**32``."""
    return (a + b) & _UINT32_MASK


def uint32_sub(a: int, b: int) -> int:
    """Return ``(a - b) mod 2**32``."""
    return (a - b) & _UINT32_MASK


def uint32_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: True if ``a`` is after ``b`` in 32-bit serial space."""
    diff = (a - b) & _UINT32_MASK
    return 0 < diff < _UINT32_HALF


def uint32_gte(a: int, b: int) -> bool:
    """True if ``a == b`` or ``uint32_gt(a, b)``."""
    return ((a - b) & _UINT32_MASK) < _UINT32_HALF
