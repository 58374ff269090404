"""TrunkRegistrations on a Clock: the trunk's REGISTER goes to the SIP server, the challenge is
answered, the refresh fires at 85 % of the granted interval, and metrics follow the state."""

from twisted.internet.task import Clock

from acd.config.model import Trunk
from acd.config.trunk_accounts import TrunkRegistration
from acd.calls.trunk_registrations import TrunkRegistrations
from acd.metrics import Metrics
from acd.sip.digest_client import DigestCredentials
from tests.unit.sip.test_sip_registration import Registrar


class Sender:
    """Stands in for SipServer.send_tracked: keeps what was sent, with its continuation."""

    def __init__(self):
        self.sent = []

    def send_tracked(self, request, destination, transport, on_final):
        self.sent.append((request, destination, on_final))
        return ("branch", "REGISTER")


def _registrations(clock, sender, metrics, proxies=(("192.0.2.10", 5060),)):
    register = TrunkRegistration(credentials=DigestCredentials(username="acd", password="pw"),
                                 domain="carrier.example", proxies=proxies, expires_seconds=60)
    trunks = (Trunk(name="carrier", sources=(), register=register, outbound=proxies[0]), Trunk(name="plain", sources=()))
    return TrunkRegistrations(trunks=trunks, sender=sender, reactor=clock, metrics=metrics,
                              contact_host="198.51.100.1", contact_port=5060)


def _value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


def test_registers_refreshes_on_time_and_shows_in_the_snapshot():
    """Registered after the challenge; the snapshot and the gauge say so; 51 s later one refresh goes."""
    clock, sender, metrics, registrar = Clock(), Sender(), Metrics(), Registrar(grant=60)
    registrations = _registrations(clock, sender, metrics)
    registrations.start()
    for _ in range(2):
        request, destination, on_final = sender.sent[-1]
        on_final(registrar.answer(request, clock.seconds()))
    assert len(sender.sent) == 2 and _value(metrics, "acd_trunk_registered", trunk="carrier") == 1
    [carrier, plain] = registrations.snapshot()
    assert carrier["registration"]["registered"] and carrier["registration"]["expires_in_seconds"] == 60
    assert plain["registration"] is None
    clock.advance(50.9)
    assert len(sender.sent) == 2
    clock.advance(0.2)
    assert len(sender.sent) == 3 and "nc=00000002" in sender.sent[-1][0].headers.get("Authorization")


def test_a_timeout_counts_a_failure_and_a_lapse_clears_the_gauge():
    """The refresh gets no answer: failure counted by reason; at the expiry the gauge drops to 0."""
    clock, sender, metrics, registrar = Clock(), Sender(), Metrics(), Registrar(grant=60)
    registrations = _registrations(clock, sender, metrics)
    registrations.start()
    for _ in range(2):
        request, _destination, on_final = sender.sent[-1]
        on_final(registrar.answer(request, clock.seconds()))
    clock.advance(51.1)
    sender.sent[-1][2](None)  # Timer F fired
    assert _value(metrics, "acd_trunk_registration_failures_total", trunk="carrier", reason="timeout") == 1
    clock.advance(2.0)  # the retry (back-off 2 s) goes, and is not answered either
    assert len(sender.sent) == 4
    clock.advance(7.0)
    assert _value(metrics, "acd_trunk_registered", trunk="carrier") == 0
    registrations.stop()


def test_a_reload_starts_changed_registrations_keeps_unchanged_ones_and_drops_removed_ones():
    """Same register block: the same client, nothing sent; a new password: a new REGISTER at once;
    no register block any more: the trunk is forgotten and its late answers are ignored."""
    clock, sender, metrics, registrar = Clock(), Sender(), Metrics(), Registrar(grant=60)
    registrations = _registrations(clock, sender, metrics)
    registrations.start()
    client = registrations.clients["carrier"]
    registrations.reconfigure(registrations.trunks)
    assert registrations.clients["carrier"] is client and len(sender.sent) == 1
    carrier, plain = registrations.trunks
    changed = TrunkRegistration(credentials=DigestCredentials(username="acd", password="new"),
                                domain="carrier.example", proxies=carrier.register.proxies, expires_seconds=60)
    registrations.reconfigure((Trunk(name="carrier", sources=(), register=changed), plain))
    assert registrations.clients["carrier"] is not client and len(sender.sent) == 2
    registrations.reconfigure((plain,))
    sender.sent[-1][2](registrar.answer(sender.sent[-1][0], clock.seconds()))  # a late 401: ignored
    assert registrations.clients == {} and len(sender.sent) == 2
    assert [entry["registration"] for entry in registrations.snapshot()] == [None]
