"""RemoteLeg: the call process's stand-in for a leg on a media worker (no process, no reactor)."""

from __future__ import annotations

from acd.calls.remote_media import RemoteLeg, worker_count
from acd.media import worker_wire as wire


class FakeWorker:
    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.blobs: set[int] = set()

    def send(self, message: tuple) -> None:
        self.sent.append(message)


class FakePlane:
    def __init__(self) -> None:
        self.blob_ids: dict[bytes, int] = {}

    def blob_on(self, worker, audio: bytes) -> int:
        return self.blob_ids.setdefault(audio, len(self.blob_ids) + 1)

    def release(self, leg) -> None:
        leg.transport = None


def make_leg(finished: list[int]) -> tuple[RemoteLeg, FakeWorker]:
    worker = FakeWorker()
    leg = RemoteLeg(FakePlane(), worker, 4, call_id="c", codec="PCMU", payload_type=0, telephone_event_pt=None,
                    on_digit=lambda digit: None, on_playback_finished=finished.append)
    leg.transport = object()
    return leg, worker


def test_an_end_report_for_a_play_already_replaced_or_stopped_is_dropped():
    """The worker's DONE for play 1 can cross our play 2: only the current play's end counts."""
    finished: list[int] = []
    leg, worker = make_leg(finished)
    leg.play(b"a" * 160, 11)
    leg.play(b"b" * 160, 12)
    leg.playback_done(1)
    assert finished == [] and leg.playing
    leg.playback_done(2)
    assert finished == [12] and not leg.playing
    leg.play(b"a" * 160, 13)
    leg.stop()
    leg.playback_done(3)
    assert finished == [12]
    assert [m[0] for m in worker.sent] == [wire.PLAY, wire.PLAY, wire.PLAY, wire.STOP]


def test_settings_become_commands_and_taps_a_mask():
    leg, worker = make_leg([])
    leg.codec = "PCMA"
    leg.remote = ("127.0.0.1", 4000)
    leg.tap_in = lambda payload: None
    leg.on_audio = lambda payload: None
    leg.tap_in = None
    assert worker.sent == [(wire.SET, 4, "codec", "PCMA"), (wire.SET, 4, "remote", ("127.0.0.1", 4000)),
                           (wire.TAPS, 4, wire.TAP_IN), (wire.TAPS, 4, wire.TAP_IN | wire.TAP_AUDIO),
                           (wire.TAPS, 4, wire.TAP_AUDIO)]
    assert leg.codec == "PCMA" and leg.remote == ("127.0.0.1", 4000)


def test_a_released_leg_sends_nothing_more():
    leg, worker = make_leg([])
    leg.transport = None
    leg.play(b"a" * 160, 1)
    leg.stop()
    assert worker.sent == []


def test_worker_count_auto_leaves_the_first_core_to_the_call_process():
    assert [worker_count("auto", cpus) for cpus in (1, 2, 4, 16)] == [0, 1, 3, 4]
    assert worker_count(0) == 0 and worker_count(2, cpus=1) == 2
