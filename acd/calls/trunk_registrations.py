"""TrunkRegistrations: keeps every trunk with a `register:` block registered at its carrier.

The protocol is acd/sip/registration.py (pure); this shell sends its REGISTERs through the SIP
server, hands back their final responses or timeouts, keeps one IDelayedCall for the earliest
deadline of all trunks (STYLE 2), and turns the client's events into log lines and metrics
(`acd_trunk_registered{trunk}`, `acd_trunk_registration_failures_total{trunk,reason}`).
`reactor` provides IReactorTime.

A reload (`reconfigure`) keeps the registrations whose `register:` block is unchanged, starts the
new or changed ones at once and drops the removed ones (their binding at the carrier lapses by
itself: no REGISTER with Expires 0 is sent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..sip.message import Request, Response
from ..sip.registration import (RegistrationClient, RegistrationDidFail, RegistrationDidLapse,
                                RegistrationDidSucceed, RegistrationSettings)

if TYPE_CHECKING:
    from ..config.model import Trunk
    from ..metrics import Metrics

__all__ = ["TrunkRegistrations", "TrackedSender"]

log = logging.getLogger("acd.trunks")


class TrackedSender(Protocol):
    """Sends an out-of-dialog request whose final response (None: timeout) goes to `on_final`."""

    def send_tracked(self, request: Request, destination: tuple[str, int], transport: str,
                     on_final: Callable[[Response | None], None]) -> tuple: ...


def _where(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class TrunkRegistrations:
    """One RegistrationClient per registering trunk, driven on the reactor."""

    def __init__(self, *, trunks: tuple["Trunk", ...], sender: TrackedSender, reactor, metrics: "Metrics",
                 contact_host: str, contact_port: int) -> None:
        self.sender = sender
        self.reactor = reactor
        self.metrics = metrics
        self.contact_host, self.contact_port = contact_host, contact_port
        self.trunks: tuple["Trunk", ...] = ()
        self.clients: dict[str, RegistrationClient] = {}
        self._timer = None
        self._update(trunks)

    def _update(self, trunks: tuple["Trunk", ...]) -> list[str]:
        """Clients for `trunks`; returns the names of the new or changed ones (not started yet)."""
        old = {trunk.name: trunk.register for trunk in self.trunks}
        self.trunks = trunks
        fresh = []
        for trunk in trunks:
            register = trunk.register
            if register is None or (trunk.name in self.clients and old.get(trunk.name) == register):
                continue
            settings = RegistrationSettings(
                user=register.user, domain=register.domain, proxies=register.proxies,
                contact=f"<sip:{register.user}@{self.contact_host}:{self.contact_port}>",
                credentials=register.credentials, expires_seconds=register.expires_seconds)
            self.clients[trunk.name] = RegistrationClient(settings)
            self.metrics.trunk_registered.labels(trunk.name).set(0)
            fresh.append(trunk.name)
        wanted = {trunk.name for trunk in trunks if trunk.register is not None}
        for name in [name for name in self.clients if name not in wanted]:
            del self.clients[name]
            self.metrics.trunk_registered.labels(name).set(0)
            log.info("trunk=%s no longer registers (removed from the config)", name)
        return fresh

    def reconfigure(self, trunks: tuple["Trunk", ...]) -> None:
        """A reloaded config: register the new and changed trunks now, forget the removed ones."""
        self._start(self._update(trunks))

    def start(self) -> None:
        """Send every trunk's first REGISTER."""
        self._start(list(self.clients))

    def _start(self, names: list[str]) -> None:
        now = self.reactor.seconds()
        for name in names:
            client = self.clients[name]
            log.info("trunk=%s registering as %s@%s at %s", name, client.settings.user, client.settings.domain,
                     _where(client.proxy))
            client.start(now)
        self._pump()

    def stop(self) -> None:
        """Stop refreshing (the server is stopping)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every trunk and its registration state, for GET /api/trunks."""
        now = self.reactor.seconds()
        out = []
        for trunk in self.trunks:
            client = self.clients.get(trunk.name)
            entry: dict[str, Any] = {"name": trunk.name, "outbound": _where(trunk.outbound) if trunk.outbound else None,
                                     "caller_id": trunk.caller_id, "trusted": trunk.trusted, "registration": None}
            if client is not None:
                entry["registration"] = {
                    "state": client.state.value, "registered": client.registered(now),
                    "aor": f"sip:{client.settings.user}@{client.settings.domain}", "proxy": _where(client.proxy),
                    "expires_in_seconds": round(client.expires_at - now, 1) if client.registered(now) else None,
                    "granted_seconds": client.granted_seconds, "last_status": client.last_status,
                    "last_failure": client.last_reason or None, "consecutive_failures": client.failures,
                }
            out.append(entry)
        return out

    # ---- driving the clients -----------------------------------------------------------------
    def _on_final(self, name: str, client: RegistrationClient, response: Response | None) -> None:
        if self.clients.get(name) is not client:
            return  # an answer for a registration a reload replaced or removed
        now = self.reactor.seconds()
        if response is None:
            client.transaction_timed_out(now)
        else:
            client.receive_response(response, now)
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        now = self.reactor.seconds()
        for client in self.clients.values():
            deadline = client.next_deadline()
            if deadline is not None and deadline <= now:
                client.handle_timers(now)
        self._pump()

    def _pump(self) -> None:
        for name, client in self.clients.items():
            for outgoing in client.requests_to_send():
                log.debug("trunk=%s REGISTER cseq=%s to %s", name, outgoing.request.headers.get("CSeq"),
                          _where(outgoing.destination))
                self.sender.send_tracked(outgoing.request, outgoing.destination, "UDP",
                                         lambda response, name=name, client=client:
                                         self._on_final(name, client, response))
            while (event := client.next_event()) is not None:
                self._report(name, client, event)
        self._rearm()

    def _report(self, name: str, client: RegistrationClient, event) -> None:
        if isinstance(event, RegistrationDidSucceed):
            self.metrics.trunk_registered.labels(name).set(1)
            log.info("trunk=%s registered at %s status=%s expires=%ss round_trip=%.1fms next_refresh_in=%.1fs",
                     name, _where(event.proxy), client.last_status, event.expires_seconds,
                     event.round_trip_seconds * 1000, event.refresh_at - self.reactor.seconds())
        elif isinstance(event, RegistrationDidFail):
            self.metrics.trunk_registration_failures.labels(name, event.reason).inc()
            log.warning("trunk=%s registration at %s failed: %s (status=%s); retry in %.1fs at %s", name,
                        _where(event.proxy), event.reason, event.status if event.status is not None else "none",
                        event.retry_at - self.reactor.seconds(), _where(event.next_proxy))
        elif isinstance(event, RegistrationDidLapse):
            self.metrics.trunk_registered.labels(name).set(0)
            log.warning("trunk=%s registration at %s lapsed: calls to us through this carrier fail until it "
                        "registers again", name, _where(event.proxy))

    def _rearm(self) -> None:
        deadlines = [d for d in (c.next_deadline() for c in self.clients.values()) if d is not None]
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if deadlines:
            self._timer = self.reactor.callLater(max(0.0, min(deadlines) - self.reactor.seconds()), self._on_timer)
