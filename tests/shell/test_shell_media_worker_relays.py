"""WorkerMedia's relays when a leg closes: the legs relaying to it stop (no send to a closed socket),
and nothing is left behind in the index that makes a close O(1)."""

from __future__ import annotations

from acd.calls.media_worker import WorkerMedia
from acd.media import worker_wire as wire

from .fake_reactor import FakeReactor


def worker_with_legs(*legs: int) -> tuple[WorkerMedia, list[tuple]]:
    reports: list[tuple] = []
    media = WorkerMedia(FakeReactor(), address="127.0.0.1", send=reports.append)
    for leg in legs:
        media.handle((wire.OPEN, leg, 30000 + 2 * leg, f"call-{leg}", "PCMU", 0, 101))
    return media, reports


def test_closing_a_relay_target_stops_the_legs_relaying_to_it():
    media, reports = worker_with_legs(1, 2, 3)
    a, b, c = media.legs[1], media.legs[2], media.legs[3]
    media.handle((wire.RELAY, 1, 2))
    media.handle((wire.RELAY, 3, 2))
    media.handle((wire.RELAY, 2, 1))
    media.handle((wire.CLOSE, 2))
    assert a.relay_to is None and c.relay_to is None and b.relay_to is None
    assert media.relayed_to == {}
    assert reports[-1][:2] == (wire.CLOSED, 2)


def test_a_relay_moved_or_cleared_leaves_no_stale_entry():
    media, _ = worker_with_legs(1, 2, 3)
    media.handle((wire.RELAY, 1, 2))
    media.handle((wire.RELAY, 1, 3))
    assert media.relayed_to == {media.legs[3]: {media.legs[1]}}
    media.handle((wire.RELAY, 1, 0))
    assert media.legs[1].relay_to is None and media.relayed_to == {}
    media.handle((wire.RELAY, 1, 2))
    media.handle((wire.CLOSE, 1))
    assert media.legs[2].relay_to is None and media.relayed_to == {}
