"""Prometheus metrics of one server (DESIGN: `acd_` prefix, unit suffixes, low-cardinality labels).

One `Metrics` object with its own CollectorRegistry (no global state), handed to the parts that
count. Counters and histograms are bumped where things happen; gauges that describe "now" (active
calls, callers waiting, agents by state) are read at scrape time from the live objects, so they can
never drift from the truth. No caller numbers or call ids in labels.
"""

from __future__ import annotations

import platform
from collections import Counter as Counter_
from importlib import metadata
from typing import Any, Iterable

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, PlatformCollector, ProcessCollector,
                               disable_created_metrics)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["Metrics", "WAIT_BUCKETS_SECONDS", "SIP_METHODS"]

SIP_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY", "REGISTER", "REFER",
                         "SUBSCRIBE", "UPDATE", "PRACK", "MESSAGE", "PUBLISH"})


# Queue waits from "answered at once" to "gave up after 20 minutes".
WAIT_BUCKETS_SECONDS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
HANDLE_BUCKETS_SECONDS = (10, 30, 60, 120, 180, 300, 600, 1200, 1800, 3600)
# Announced estimate minus actual wait: negative = we promised less than it took.
ESTIMATE_ERROR_BUCKETS_SECONDS = (-600, -300, -120, -60, -30, -10, 0, 10, 30, 60, 120, 300, 600)
# Event to durable commit in the records store: an fsync is ~0.1-10 ms; above 1 s the disk is failing.
COMMIT_DELAY_BUCKETS_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
# How late the event loop runs (admission control's tick): a few ms is a busy tick, 0.1 s is overload.
LOOP_LAG_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
RTP_JITTER_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)  # 20 ms = one G.711 frame


class _RememberedChildren:
    """`labels(*values)` from a dict of the children made so far: prometheus_client converts and
    checks the values, takes a lock and looks the child up on every call (2-3 µs; a call bumps a
    dozen labelled metrics). Values seen for the first time go through prometheus_client. Labels
    are low-cardinality (module docstring) and children are never removed, so the dict stays small."""

    _children: dict[tuple, Any] | None = None

    def labels(self, *values: Any, **named: Any) -> Any:
        children = self._children
        if children is not None and not named:
            child = children.get(values)
            if child is not None:
                return child
        child = super().labels(*values, **named)  # type: ignore[misc]
        if not named:
            if children is None:
                children = self._children = {}
            children[values] = child
        return child


class _Counter(_RememberedChildren, Counter):
    """A prometheus_client Counter whose `labels` remembers its children."""


class _Histogram(_RememberedChildren, Histogram):
    """A prometheus_client Histogram whose `labels` remembers its children."""


def _version() -> str:
    try:
        return metadata.version("acd")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        disable_created_metrics()  # the `_created` twin of every counter only doubles the series
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)   # process_cpu_seconds_total, process_resident_memory_bytes, open fds...
        PlatformCollector(registry=r)  # python_info
        Info("acd_build", "The server's version and the Python it runs on", registry=r).info(
            {"version": _version(), "python": platform.python_version()})
        self.calls = _Counter("acd_calls_total", "Calls ended, by trunk and result", ["trunk", "result"], registry=r)
        self.calls_session_expired = _Counter("acd_calls_session_expired_total",
                                              "Calls ended by their RFC 4028 session timer (no refresh in time, or "
                                              "our refresh failed)", registry=r)
        self.trunk_registered = Gauge("acd_trunk_registered", "1 while the trunk's registration at its carrier "
                                      "is in force, else 0", ["trunk"], registry=r)
        self.trunk_registration_failures = Counter("acd_trunk_registration_failures_total",
                                                   "Failed REGISTERs to a carrier, by reason", ["trunk", "reason"],
                                                   registry=r)
        self.calls_refused = _Counter("acd_calls_refused_total", "INVITEs refused before answer, by SIP status",
                                     ["status"], registry=r)
        self.ivr_steps = _Counter("acd_ivr_steps_total", "IVR steps entered", ["flow", "step"], registry=r)
        self.ivr_hangups = _Counter("acd_ivr_abandoned_total", "Callers who hung up inside the IVR, by step",
                                   ["flow", "step"], registry=r)
        self.ivr_events = _Counter("acd_ivr_events_total", "Named flow events reached", ["flow", "event"], registry=r)
        self.sip_requests = _Counter("acd_sip_requests_received_total", "SIP requests received", ["method"], registry=r)
        self.sip_responses = _Counter("acd_sip_responses_sent_total", "SIP responses sent", ["code"], registry=r)
        self.sip_throttled = _Counter("acd_sip_requests_throttled_total",
                                     "SIP requests dropped over their source's rate budget, by kind of source",
                                     ["source"], registry=r)
        self.unconfirmed_refused = _Counter("acd_calls_refused_unconfirmed_total",
                                           "INVITEs refused 503 because too many calls wait for their ACK, by cap",
                                           ["limit"], registry=r)
        self.unconfirmed_calls = Gauge("acd_calls_unconfirmed", "Calls taken whose ACK has not come yet",
                                       registry=r)  # read at scrape time: the composition root sets its function
        self.unconfirmed_peak = Gauge("acd_calls_unconfirmed_peak",
                                      "The most calls that waited for their ACK at once since start (to size "
                                      "sip: limits:)", registry=r)
        # Admission control (acd/sip/admission.py): the ceilings are read at scrape time (set_function).
        self.admission_admitted = Counter("acd_admission_admitted_total",
                                          "New calls (INVITEs outside a dialog) admission control let through",
                                          registry=r)
        self.admission_refused = Counter("acd_admission_refused_total",
                                         "New calls refused 503 for capacity, by reason (max_calls, rate, overload, "
                                         "priority, no_rtp_port)", ["reason"], registry=r)
        self.admission_resent = Counter("acd_admission_refusals_resent_total",
                                        "Retransmitted INVITEs of refused calls answered again from the refusal cache",
                                        registry=r)
        self.admission_max_calls = Gauge("acd_admission_max_calls", "The ceiling on calls in progress", registry=r)
        self.admission_max_rate = Gauge("acd_admission_max_new_calls_per_second",
                                        "The ceiling on new calls a second (0: none)", registry=r)
        self.admission_overloaded = Gauge("acd_admission_overloaded",
                                          "1 while the event loop lags past its limit and new calls are refused",
                                          registry=r)
        self.sip_receive_batch = Histogram("acd_sip_receive_batch_datagrams",
                                           "SIP datagrams read from the UDP socket at once (the receive backlog)",
                                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.event_loop_lag = Histogram("acd_event_loop_lag_seconds", "How late the event loop ran a 50 ms timer",
                                        buckets=LOOP_LAG_BUCKETS_SECONDS, registry=r)
        self.gc_pause = Histogram("acd_gc_pause_seconds", "Garbage collections of the SIP/ACD process (every thread "
                                  "stops meanwhile), by generation", ["generation"],
                                  buckets=LOOP_LAG_BUCKETS_SECONDS, registry=r)
        self.queue_answered = _Counter("acd_queue_answered_total", "Queued calls connected to an agent", ["queue"],
                                      registry=r)
        self.queue_answered_in_sl = _Counter("acd_queue_answered_within_service_level_total",
                                            "Queued calls answered within the queue's service-level time", ["queue"],
                                            registry=r)
        self.queue_abandoned = _Counter("acd_queue_abandoned_total", "Callers who hung up while queued", ["queue"],
                                       registry=r)
        self.queue_callbacks = _Counter("acd_queue_callbacks_total", "Callbacks requested", ["queue"], registry=r)
        self.queue_wait = _Histogram("acd_queue_wait_seconds", "Time from joining a queue to an agent answering",
                                    ["queue"], buckets=WAIT_BUCKETS_SECONDS, registry=r)
        self.handle_time = _Histogram("acd_handle_time_seconds", "Talk time with an agent", ["queue"],
                                     buckets=HANDLE_BUCKETS_SECONDS, registry=r)
        self.estimate_error = _Histogram("acd_wait_estimate_error_seconds",
                                        "First announced wait estimate minus the actual wait", ["queue"],
                                        buckets=ESTIMATE_ERROR_BUCKETS_SECONDS, registry=r)
        self.offers = _Counter("acd_offers_total", "Offers to agents, by result", ["queue", "result"], registry=r)
        self.rtp_sent = _Counter("acd_rtp_packets_sent_total", "RTP packets sent (prompts and music)", registry=r)
        self.rtp_received = _Counter("acd_rtp_packets_received_total", "RTP packets received", registry=r)
        self.rtp_late = _Counter("acd_rtp_frames_dropped_total", "Media frames skipped because a tick was late",
                                registry=r)
        # Per media leg at its end (acd.calls.media_figures): "received" is what we measured of the peer's
        # stream, "reported" what the peer's RTCP receiver reports said of ours.
        self.rtp_jitter = _Histogram("acd_rtp_jitter_seconds", "Interarrival jitter of a media leg at its end "
                                     "(RFC 3550 A.8), by direction (received, reported)", ["direction"],
                                     buckets=RTP_JITTER_BUCKETS_SECONDS, registry=r)
        self.rtp_lost = _Counter("acd_rtp_packets_lost_total", "RTP packets lost (RFC 3550 A.3), by direction "
                                 "(received: by us; reported: by the peer, from its RTCP)", ["direction"], registry=r)
        self.records_commit_delay = _Histogram(
            "acd_records_commit_delay_seconds",
            "Per records commit: how long its oldest event waited between happening and being on disk",
            buckets=COMMIT_DELAY_BUCKETS_SECONDS, registry=r)
        self.sip_connections_closed = _Counter(
            "acd_sip_connections_closed_total", "SIP stream connections the server closed or refused, by "
            "transport and reason (idle_timeout, partial_message_timeout, per_ip_limit...)", ["transport", "reason"],
            registry=r)
        # Read at scrape time from the transport's connection table (set_function), like the live gauges.
        self.sip_connections = Gauge("acd_sip_connections_open", "Open SIP stream connections", ["transport"],
                                     registry=r)
        self.srtp_auth_failures = _Counter("acd_srtp_auth_failures_total",
                                          "SRTP packets dropped: authentication, replay or length check failed",
                                          registry=r)
        self.media_workers_lost = Counter("acd_media_workers_lost_total",
                                          "Media worker processes that exited while the server ran (each is "
                                          "restarted; its calls end)", registry=r)
        self._view: Any = None
        self.registry.register(_LiveCollector(self))

    def attach(self, view: Any) -> None:
        """Read live gauges from this view (acd.calls.view.LiveView) at scrape time."""
        self._view = view


class _LiveCollector:
    """Gauges computed from the live view (acd.calls.view.LiveView) at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable:
        return []

    def collect(self) -> Iterable:
        view = self.metrics._view
        active = GaugeMetricFamily("acd_calls_active", "Calls in progress", labels=["trunk"])
        waiting = GaugeMetricFamily("acd_queue_waiting_calls", "Callers waiting in a queue now", labels=["queue"])
        longest = GaugeMetricFamily("acd_queue_longest_wait_seconds", "Longest current wait", labels=["queue"])
        agents = GaugeMetricFamily("acd_agents", "Logged-in agents by state", labels=["state"])
        paused = GaugeMetricFamily("acd_agents_paused", "Paused agents by reason", labels=["reason"])
        registered = GaugeMetricFamily("acd_agents_registered", "Agents with a live registration")
        unreachable = GaugeMetricFamily("acd_agents_unreachable",
                                        "Logged-in agents whose phone cannot be reached (offered no call)")
        parse = CounterMetricFamily("acd_sip_parse_errors", "Malformed SIP messages (answered 400 or dropped)")
        auth = CounterMetricFamily("acd_registrar_auth_failures", "Failed Digest authentications")
        families = [active, waiting, longest, agents, paused, registered, unreachable, parse, auth]
        if view is None:
            return families
        for trunk, count in sorted(Counter_(call.trunk for call in view.calls()).items()):
            active.add_metric([trunk], count)
        for queue in view.queues():
            waiting.add_metric([queue.queue], queue.waiting)
            longest.add_metric([queue.queue], queue.longest_wait_seconds)
        states = view.logged_in_states()
        for state, count in sorted(Counter_(state for state, _ in states).items()):
            agents.add_metric([state], count)
        for reason, count in sorted(Counter_(reason for _, reason in states if reason).items()):
            paused.add_metric([reason], count)
        agent_ids = view.agent_ids()
        if agent_ids:
            registered.add_metric([], sum(1 for agent_id in agent_ids if view.registered(agent_id)))
            unreachable.add_metric([], view.unreachable_agents())
            auth.add_metric([], view.auth_failures())
        parse.add_metric([], view.sip_parse_errors())
        return families
