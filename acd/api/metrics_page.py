"""`GET /metrics`: the Prometheus text exposition of one registry (no token: scrapers sit on a trusted
network; bind the HTTP listener accordingly)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from twisted.web import resource, server

__all__ = ["MetricsResource"]


class MetricsResource(resource.Resource):
    """Serves `registry` in the Prometheus text format."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: server.Request) -> bytes:  # noqa: N802 - Twisted API
        """The current values."""
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.registry)
