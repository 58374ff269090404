"""Server-sent events: the agent's screen pop and the wallboard's live feed.

`EventHub.publish(topic, event)` fans a JSON event out to every open `GET /api/events/{topic}`
stream (`agent-1001`, `wallboard`). Slow or gone readers are dropped, never waited for: a stream
must not hold a call back. Each stream gets a comment line every 15 s so proxies keep it open.
An event published with `retain=True` is also kept, until the topic's next event, and sent first to
every stream that opens meanwhile: the agent's desktop reconnecting after a server restart still
learns what the restart did to them (the restore happens before anyone can be connected).
`reactor` provides IReactorTime.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from twisted.internet import task
from twisted.web import server

__all__ = ["EventHub", "KEEPALIVE_SECONDS", "MAX_STREAMS"]

log = logging.getLogger("acd.events")

KEEPALIVE_SECONDS = 15.0
# Wallboards and agent desktops: a few hundred at most on one node; more is a leak or abuse.
MAX_STREAMS = 1000


class EventHub:
    """Topics → open SSE requests."""

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.streams: dict[str, set[server.Request]] = {}
        self.retained: dict[str, bytes] = {}
        self._keepalive = task.LoopingCall(self._ping)
        self._keepalive.clock = reactor

    def subscribe(self, topic: str, request: server.Request) -> bool:
        """Keep `request` open as an event stream; False when too many streams are open."""
        if sum(len(s) for s in self.streams.values()) >= MAX_STREAMS:
            return False
        request.setHeader(b"content-type", b"text/event-stream")
        request.setHeader(b"cache-control", b"no-cache")
        request.write(b": connected\n\n")
        if topic in self.retained:
            request.write(self.retained[topic])
        self.streams.setdefault(topic, set()).add(request)
        request.notifyFinish().addBoth(lambda _: self._drop(topic, request))
        if not self._keepalive.running:
            self._keepalive.start(KEEPALIVE_SECONDS, now=False)
        return True

    def publish(self, topic: str, event: dict[str, Any], *, retain: bool = False) -> None:
        """Send one event to every stream of a topic; `retain` keeps it for streams opened later,
        until the topic's next event."""
        if not retain and self.retained:
            self.retained.pop(topic, None)
        readers = self.streams.get(topic)
        if not readers and not retain:
            return
        data = f"event: {event.get('type', 'message')}\ndata: {json.dumps(event, default=str)}\n\n".encode()
        if retain:
            self.retained[topic] = data
        for request in list(readers or ()):
            try:
                request.write(data)
            except RuntimeError:  # a reader that went away mid-write: drop it, keep the others
                self._drop(topic, request)

    def _drop(self, topic: str, request: server.Request) -> None:
        readers = self.streams.get(topic)
        if readers is not None:
            readers.discard(request)
            if not readers:
                del self.streams[topic]
        if not self.streams and self._keepalive.running:
            self._keepalive.stop()

    def _ping(self) -> None:
        for topic, readers in list(self.streams.items()):
            for request in list(readers):
                try:
                    request.write(b": keep-alive\n\n")
                except RuntimeError:  # as in publish
                    self._drop(topic, request)
