"""Spoken values: turning "123" into prompt names, for "your order 1 2 3" or "one hundred twenty three".

Uses `digits/0`..`digits/9`, `numbers/10`..`numbers/19`, `numbers/20`..`numbers/90` (tens) and
`numbers/hundred`, `numbers/thousand`, `numbers/million` from `sounds/`.
"""

from __future__ import annotations

__all__ = ["digit_prompts", "number_prompts", "NUMBER_PROMPTS"]

NUMBER_PROMPTS = (
    tuple(f"digits/{d}" for d in range(10))
    + tuple(f"numbers/{n}" for n in range(10, 20))
    + tuple(f"numbers/{n}" for n in range(20, 100, 10))
    + ("numbers/hundred", "numbers/thousand", "numbers/million")
)
# str.isdigit() is also true for "²" and "١": only these have prompts (and int() refuses "²").
_ASCII_DIGITS = frozenset("0123456789")
# Beyond this a number is read digit by digit (nobody listens to "four billion...").
LARGEST_SPOKEN_NUMBER = 999_999_999


def digit_prompts(text: str) -> list[str]:
    """One prompt per digit of `text`; other characters are skipped."""
    return [f"digits/{c}" for c in text if c in _ASCII_DIGITS]


def number_prompts(text: str) -> list[str]:
    """Prompts that say an integer in words; a value that is not a whole number is read as digits."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > LARGEST_SPOKEN_NUMBER:
        return digit_prompts(text)
    value = int(text)
    if value == 0:
        return ["digits/0"]
    prompts: list[str] = []
    for scale, name in ((1_000_000, "numbers/million"), (1_000, "numbers/thousand")):
        if value >= scale:
            prompts += _below_thousand(value // scale) + [name]
            value %= scale
    return prompts + _below_thousand(value)


def _below_thousand(value: int) -> list[str]:
    prompts: list[str] = []
    if value >= 100:
        prompts += [f"digits/{value // 100}", "numbers/hundred"]
        value %= 100
    if value >= 20:
        prompts.append(f"numbers/{value // 10 * 10}")
        value %= 10
    if value >= 10:
        prompts.append(f"numbers/{value}")
    elif value > 0:
        prompts.append(f"digits/{value}")
    return prompts
