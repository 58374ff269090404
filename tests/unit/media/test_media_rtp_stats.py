"""Receive statistics (RFC 3550 A.1, A.3, A.8): loss, reordering, wrap, restarts and jitter."""

import random

import pytest

from acd.media.rtp_stats import MAX_DROPOUT, ReceiveStatistics, StreamFigures

SSRC = 0x1234ABCD
FRAME = 160  # timestamp units per 20 ms frame at 8000 Hz


def feed(stats: ReceiveStatistics, seqs, *, first_seq: int = 0, ssrc: int = SSRC, jitter_of=lambda n: 0.0,
         first_timestamp: int = 0):
    """Packets numbered by their index n in the sender's stream (seq first_seq + n), sent every 20 ms
    and arriving jitter_of(n) seconds late."""
    for n in seqs:
        stats.received((first_seq + n) & 0xFFFF, (first_timestamp + n * FRAME) & 0xFFFFFFFF, ssrc,
                       100.0 + n * 0.02 + jitter_of(n))


def test_a_clean_stream_counts_every_packet_after_probation_and_no_loss_or_jitter():
    stats = ReceiveStatistics()
    feed(stats, range(500))
    # RFC 3550 A.1: the first packet of a new source is probation only (MIN_SEQUENTIAL = 2).
    assert (stats.packets_received, stats.expected, stats.lost) == (499, 499, 0)
    assert stats.jitter_seconds == pytest.approx(0.0, abs=1e-9)


def test_skipped_sequence_numbers_are_lost():
    stats = ReceiveStatistics()
    missing = {10, 11, 12, 50, 300}
    feed(stats, [n for n in range(400) if n not in missing])
    assert stats.lost == 5
    block = stats.report_block()
    assert block.cumulative_lost == 5 and block.fraction_lost == (5 << 8) // 399
    assert stats.report_block().fraction_lost == 0  # a new interval, nothing lost in it


def test_reordered_packets_are_not_lost_and_duplicates_make_loss_negative():
    stats = ReceiveStatistics()
    order = list(range(100))
    order[40], order[41], order[42] = order[42], order[40], order[41]
    feed(stats, order)
    assert stats.lost == 0
    feed(stats, [99, 99])  # two duplicates
    assert stats.lost == -2


def test_sequence_wrap_is_counted_as_one_more_cycle():
    stats = ReceiveStatistics()
    feed(stats, [n for n in range(200) if n != 150], first_seq=65500, first_timestamp=0xFFFFF000)
    assert stats.cycles == 1 << 16
    assert stats.extended_max_seq == (1 << 16) + (65500 + 199 - 65536)
    assert stats.lost == 1
    assert stats.jitter_seconds == pytest.approx(0.0, abs=1e-9)  # the timestamp wrapped too


def test_a_restarted_sender_is_followed_after_two_sequential_packets():
    stats = ReceiveStatistics()
    feed(stats, range(100))
    feed(stats, range(3), first_seq=40000)  # a jump past MAX_DROPOUT: the first is held as bad_seq
    assert 40000 - 99 > MAX_DROPOUT
    assert stats.max_seq == 40002 and stats.base_seq == 40001
    assert (stats.packets_received, stats.lost) == (99 + 2, 0)  # the leg's totals keep the first run


def test_a_new_ssrc_keeps_the_legs_totals():
    stats = ReceiveStatistics()
    feed(stats, [n for n in range(100) if n != 5])
    feed(stats, [n for n in range(100) if n != 7], ssrc=SSRC + 1, first_seq=9000)
    assert stats.ssrc == SSRC + 1
    assert (stats.packets_received, stats.lost) == (98 + 98, 2)


def test_no_report_block_before_a_source_passed_probation():
    stats = ReceiveStatistics()
    assert stats.report_block() is None
    stats.received(7, 0, SSRC, 1.0)
    assert stats.report_block() is None


@pytest.mark.parametrize("spread_ms", [5, 20, 40])
def test_jitter_of_uniform_random_delay_converges_to_a_third_of_its_spread(spread_ms):
    # D between two packets with independent U(0, s) delays has E|D| = s / 3; A.8's filter tends to it.
    rng = random.Random(spread_ms)
    delays = [rng.uniform(0, spread_ms / 1000) for _ in range(5000)]
    stats = ReceiveStatistics()
    estimates = []
    for n in range(5000):
        feed(stats, [n], jitter_of=delays.__getitem__)
        estimates.append(stats.jitter_seconds)
    settled = estimates[1000:]  # the estimate itself wanders (a 1/16 filter): compare its mean
    assert sum(settled) / len(settled) == pytest.approx(spread_ms / 3000, rel=0.1)
    assert 0 < min(settled) and max(settled) < spread_ms / 1000


def test_telephone_events_count_for_loss_but_not_for_jitter():
    stats = ReceiveStatistics()
    feed(stats, range(50))
    for n in range(50, 60):  # an RFC 4733 event: one timestamp, packets every 20 ms
        stats.received(n, 50 * FRAME, SSRC, 100.0 + n * 0.02, audio=False)
    assert stats.packets_received == 59 and stats.lost == 0
    assert stats.jitter_seconds == pytest.approx(0.0, abs=1e-9)


def test_figures_cross_the_worker_wire_as_plain_values():
    stats = ReceiveStatistics()
    feed(stats, [n for n in range(30) if n != 3])
    figures = stats.figures(reported_lost=4, reported_jitter_seconds=0.002)
    assert figures == StreamFigures(received=28, expected=29, lost=1, jitter_seconds=stats.jitter_seconds,
                                    reported_lost=4, reported_jitter_seconds=0.002)
    assert StreamFigures.from_tuple(figures.as_tuple()) == figures
