"""A queue's `overflow:` steps in conf/agents.yaml, for the routing core's `OverflowStep`s.

    queues:
      sales:
        overflow:
          - {after: 30, add_queues: [support]}      # after 30 s, support's agents may take it too
          - {after: 60, relax: {spanish: 0}}        # after 60 s, drop the spanish requirement

`after` counts from the caller's arrival (steps in increasing order); `add_queues` names other
queues of this file; `relax` maps skill -> new minimum level (0 drops the requirement). Errors
name the file and line, as every other key of the file does; the routing core checks the skills
of `relax` against the skills it knows when the server starts.
"""

from __future__ import annotations

from ..routing.config import OverflowStep
from .checker import Checker
from .yaml_lines import LineDict, LineList

__all__ = ["parse_overflow", "check_overflow_targets"]

_STEP_KEYS = {"after", "add_queues", "relax"}


def parse_overflow(check: Checker, item: LineDict, queue: str) -> tuple[OverflowStep, ...]:
    """The queue's overflow steps; a bad step is reported with its line and left out."""
    value = item.get("overflow")
    if value is None:
        return ()
    where = f"queue {queue!r} overflow"
    if not isinstance(value, list):
        check.error(item.line_of("overflow"), f"{where} must be a list of steps, "
                                              "e.g. [{after: 30, add_queues: [support]}]")
        return ()
    lines = value.lines if isinstance(value, LineList) else [item.line_of("overflow")] * len(value)
    steps: list[OverflowStep] = []
    previous = 0.0
    for index, (body, line) in enumerate(zip(value, lines)):
        step = check.mapping(body, line, f"{where} step {index}")
        if step is None:
            continue
        check.unknown_keys(step, _STEP_KEYS, f"{where} step {index}")
        after = step.get("after")
        if isinstance(after, bool) or not isinstance(after, (int, float)) or not after > previous:
            check.error(step.line_of("after") if "after" in step else line,
                        f"{where} step {index}: after must be seconds > {previous:g} (steps in increasing order), "
                        f"not {after!r}")
            continue
        previous = float(after)
        queues = step.get("add_queues", [])
        if not isinstance(queues, list) or any(not isinstance(name, str) or not name for name in queues):
            check.error(step.line_of("add_queues"), f"{where} step {index}: add_queues must be a list of queue names")
            continue
        relax = _relax(check, step, f"{where} step {index}")
        steps.append(OverflowStep(after_seconds=float(after), add_queues=tuple(queues), relax=relax))
    return tuple(steps)


def _relax(check: Checker, step: LineDict, where: str) -> tuple[tuple[str, int], ...]:
    value = step.get("relax")
    if value is None:
        return ()
    mapping = check.mapping(value, step.line_of("relax"), f"{where} relax")
    levels = []
    for skill, level in (mapping or {}).items():
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 10:
            check.error(mapping.line_of(skill), f"{where}: relax {skill} must be a level 0-10, not {level!r}")
        else:
            levels.append((str(skill), level))
    return tuple(levels)


def check_overflow_targets(check: Checker, section: LineDict, overflow: dict[str, tuple[OverflowStep, ...]]) -> None:
    """Every queue an overflow step adds is another queue of the file."""
    for queue, steps in overflow.items():
        for index, step in enumerate(steps):
            for extra in step.add_queues:
                if extra == queue or extra not in overflow:
                    check.error(section.line_of(queue), f"queue {queue!r}: overflow step {index} adds {extra!r}, "
                                                        f"which is not another queue (known: {', '.join(overflow)})")
