"""acd.heap.GcPauses: every collection's length and generation reach the observer."""

from __future__ import annotations

import gc

from acd.heap import GcPauses


def test_a_collection_is_timed_from_start_to_stop_with_its_generation():
    seen = []
    times = iter([10.0, 10.25])
    pauses = GcPauses(lambda generation, seconds: seen.append((generation, seconds)), clock=lambda: next(times))
    pauses("start", {"generation": 2})
    pauses("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    assert seen == [(2, 0.25)]


def test_a_stop_without_its_start_is_not_reported():
    seen = []
    GcPauses(lambda generation, seconds: seen.append(generation))("stop", {"generation": 0})
    assert seen == []


def test_installed_it_sees_a_real_collection_and_removed_it_sees_none():
    seen = []
    pauses = GcPauses(lambda generation, seconds: seen.append((generation, seconds)))
    pauses.install()
    pauses.install()
    try:
        gc.collect()
    finally:
        pauses.remove()
    assert [generation for generation, _ in seen] == [2]
    assert seen[0][1] >= 0
    gc.collect()
    assert len(seen) == 1
