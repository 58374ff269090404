"""The external CRM: an HTTP look-up at call start and webhooks out (call started, queued, answered,
ended). Twisted's HTTP client at the edge; a CRM that is down or slow never holds a call: the
look-up gives up after its timeout and the call goes on with what is known; webhooks are fire and
forget, each bounded by the same timeout. `reactor` provides IReactorTime and IReactorTCP.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from twisted.internet import defer
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

__all__ = ["CrmClient", "MAX_CRM_RESPONSE_BYTES"]

log = logging.getLogger("acd.crm")

# A customer record is a few KiB; anything bigger is not what we asked for.
MAX_CRM_RESPONSE_BYTES = 65_536


@implementer(IBodyProducer)
class _JsonBody:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.body = json.dumps(payload, default=str).encode()
        self.length = len(self.body)

    def startProducing(self, consumer):  # noqa: N802 - Twisted API
        consumer.write(self.body)
        return defer.succeed(None)

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted API
        pass

    def stopProducing(self) -> None:  # noqa: N802 - Twisted API
        pass


class CrmClient:
    """`lookup_url` is a template (`{caller_id}`, `{dialled}` are URL-encoded); either URL may be None."""

    def __init__(self, reactor, *, lookup_url: str | None, webhook_url: str | None, timeout_seconds: float) -> None:
        self.reactor = reactor
        self.lookup_url = lookup_url
        self.webhook_url = webhook_url
        self.timeout_seconds = timeout_seconds
        self.agent = Agent(reactor, connectTimeout=timeout_seconds)
        self.failures = 0
        self.webhooks_sent = 0

    def lookup(self, values: dict[str, Any]) -> defer.Deferred:
        """The CRM's JSON object for this caller, or None (not found, error, timeout) — never an errback."""
        if not self.lookup_url:
            return defer.succeed(None)
        url = self.lookup_url.format_map(_Quoted(values))
        started = self.reactor.seconds()
        request = self.agent.request(b"GET", url.encode(), Headers({b"accept": [b"application/json"]}))
        request.addCallback(self._read_json)
        request.addTimeout(self.timeout_seconds, self.reactor)

        def failed(failure) -> None:
            self.failures += 1
            # A timeout cancels the request; the client may wrap that (ResponseNeverReceived), so
            # the elapsed time is what tells a timeout from a refusal.
            if failure.check(defer.TimeoutError, defer.CancelledError) or \
                    self.reactor.seconds() - started >= self.timeout_seconds * 0.95:
                log.warning("crm look-up timed out after %.1fs (%s); the call goes on without it",
                            self.timeout_seconds, url)
            else:
                log.warning("crm look-up failed (%s): %s; the call goes on without it", url, failure.getErrorMessage())
            return None

        def done(record):
            log.info("crm look-up %s in %.0f ms: %s", url, (self.reactor.seconds() - started) * 1000,
                     "found" if record else "nothing")
            return record

        return request.addCallbacks(done, failed)

    @staticmethod
    def _read_json(response) -> defer.Deferred:
        if response.code == 404:
            return defer.succeed(None)
        if response.code != 200:
            raise ValueError(f"HTTP {response.code}")
        if response.length not in (None, -1) and isinstance(response.length, int) and response.length > MAX_CRM_RESPONSE_BYTES:
            raise ValueError(f"response of {response.length} bytes is too large")

        def parse(body: bytes):
            if len(body) > MAX_CRM_RESPONSE_BYTES:
                raise ValueError("response too large")
            record = json.loads(body)
            if not isinstance(record, dict):
                raise ValueError("response is not a JSON object")
            return record

        return readBody(response).addCallback(parse)

    def post_event(self, event: dict[str, Any]) -> None:
        """POST one call event as JSON to the webhook URL; failures are logged and counted, never raised."""
        if not self.webhook_url:
            return
        request = self.agent.request(b"POST", self.webhook_url.encode(),
                                     Headers({b"content-type": [b"application/json"]}), _JsonBody(event))
        request.addTimeout(self.timeout_seconds, self.reactor)

        def sent(response):
            self.webhooks_sent += 1
            return readBody(response)

        def failed(failure) -> None:
            self.failures += 1
            log.warning("webhook %s for call=%s failed: %s", event.get("type"), event.get("call_id"),
                        failure.getErrorMessage())

        request.addCallback(sent).addErrback(failed)


class _Quoted(dict):
    """format_map source that URL-encodes values and leaves unknown names empty."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__({k: urllib.parse.quote(str(v), safe="") for k, v in values.items() if v is not None})

    def __missing__(self, key: str) -> str:
        return ""
