"""A media leg's figures at its end, into the metrics and one log line (both media planes).

`StreamFigures` (acd.media.rtp_stats) come from the leg itself on the in-process plane and from the
worker's CLOSED report on the worker plane. The log line carries the call id so a bad call's audio
can be told from the log: `call=... rtp received=N lost=M jitter_ms=J peer_lost=.. peer_jitter_ms=..`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..media.rtp_stats import StreamFigures

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["account_leg_figures"]

log = logging.getLogger("acd.media")


def account_leg_figures(metrics: "Metrics | None", call_id: str, figures: StreamFigures) -> None:
    """Count a closed leg's loss and jitter (received, and reported by the peer) and log them."""
    reported = figures.reported_lost is not None
    if metrics is not None:
        if figures.received:
            metrics.rtp_jitter.labels("received").observe(figures.jitter_seconds)
            if figures.lost > 0:
                metrics.rtp_lost.labels("received").inc(figures.lost)
        if reported:
            metrics.rtp_jitter.labels("reported").observe(figures.reported_jitter_seconds or 0.0)
            if figures.reported_lost > 0:
                metrics.rtp_lost.labels("reported").inc(figures.reported_lost)
    log.info("call=%s rtp received=%d expected=%d lost=%d jitter_ms=%.1f peer_lost=%s peer_jitter_ms=%s", call_id,
             figures.received, figures.expected, figures.lost, figures.jitter_seconds * 1000,
             figures.reported_lost if reported else "-",
             f"{figures.reported_jitter_seconds * 1000:.1f}" if reported else "-")
