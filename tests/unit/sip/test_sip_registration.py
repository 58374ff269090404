"""The REGISTER client of a trunk: challenge answered, refresh at 85 %, back-off, failover. Time is
jumped with handle_timers(next_deadline()); the registrar's side is our own DigestAuthenticator."""

import pytest

from acd.sip.build import make_response
from acd.sip.digest import DigestAuthenticator, compute_ha1
from acd.sip.digest_client import DigestCredentials
from acd.sip.registration import (RegistrationClient, RegistrationDidFail, RegistrationDidLapse,
                                  RegistrationDidSucceed, RegistrationSettings, RegistrationState)

PRIMARY, BACKUP = ("192.0.2.10", 5060), ("192.0.2.11", 5060)
CONTACT = "<sip:acd@198.51.100.1:5060>"


def _client(proxies=(PRIMARY,), password="pw", **kwargs) -> RegistrationClient:
    settings = RegistrationSettings(user="acd", domain="carrier.example", proxies=proxies, contact=CONTACT,
                                    credentials=DigestCredentials(username="acd", password=password), **kwargs)
    return RegistrationClient(settings, cnonce_factory=lambda: "cn", call_id="reg-1@x", from_tag="ft")


class Registrar:
    """A registrar that challenges with qop=auth and grants `grant` seconds (Contact expires param)."""

    def __init__(self, grant=60):
        self.auth = DigestAuthenticator("carrier.example", b"k" * 16, algorithms=("MD5",), nonce_lifetime_seconds=300)
        self.grant = grant

    def answer(self, request, now):
        authorization = request.headers.get("Authorization")
        lookup = lambda user, algorithm: compute_ha1(user, "carrier.example", "pw", algorithm)  # noqa: E731
        if authorization is None or not (result := self.auth.verify("REGISTER", authorization, lookup, now)).ok:
            stale = authorization is not None and result.stale
            return make_response(request, 401, to_tag="rt", extra_headers=tuple(
                ("WWW-Authenticate", value) for value in self.auth.challenge(now, stale=stale)))
        return make_response(request, 200, to_tag="rt",
                             extra_headers=(("Contact", f"{CONTACT};expires={self.grant}"), ("Expires", "3600")))


def _exchange(client, registrar, now):
    """Deliver every queued REGISTER to the registrar and its answer back; returns how many went."""
    sent = 0
    while requests := client.requests_to_send():
        for outgoing in requests:
            sent += 1
            client.receive_response(registrar.answer(outgoing.request, now), now)
    return sent


def _events(client):
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    return events


def test_the_challenge_is_answered_and_the_granted_interval_is_read_from_our_contact():
    """REGISTER, 401, REGISTER with Authorization (CSeq+1, same Call-ID), 200 granting 60 s (the
    Contact's expires, not the Expires header); refresh due at 85 % of it."""
    client, registrar = _client(), Registrar(grant=60)
    client.start(100.0)
    first = client.requests_to_send()
    assert first[0].destination == PRIMARY and "Authorization" not in first[0].request.headers
    client.receive_response(registrar.answer(first[0].request, 100.0), 100.0)
    second = client.requests_to_send()[0].request
    assert second.headers.get("CSeq") == "2 REGISTER" and second.call_id == "reg-1@x"
    client.receive_response(registrar.answer(second, 100.2), 100.2)
    [event] = _events(client)
    assert isinstance(event, RegistrationDidSucceed) and event.expires_seconds == 60
    assert event.refresh_at == pytest.approx(100.2 + 51) and client.state is RegistrationState.REGISTERED
    assert client.registered(150.0) and client.next_deadline() == pytest.approx(151.2)


def test_the_refresh_reuses_the_nonce_with_the_next_nonce_count_and_stays_registered():
    """At the refresh deadline one REGISTER goes with nc=00000002: no new challenge round trip."""
    client, registrar = _client(), Registrar(grant=60)
    client.start(0.0)
    assert _exchange(client, registrar, 0.0) == 2
    client.handle_timers(client.next_deadline())
    [refresh] = client.requests_to_send()
    assert "nc=00000002" in refresh.request.headers.get("Authorization")
    client.receive_response(registrar.answer(refresh.request, 51.0), 51.0)
    assert client.registered(100.0) and client.failures == 0


def test_a_stale_or_unknown_nonce_on_refresh_is_answered_afresh():
    """A registrar that restarted (new nonce secret) challenges the refresh: one more round trip."""
    client, registrar = _client(), Registrar(grant=20)
    client.start(0.0)
    _exchange(client, registrar, 0.0)
    _events(client)
    restarted = Registrar(grant=20)
    restarted.auth = DigestAuthenticator("carrier.example", b"other-secret-123", algorithms=("MD5",))
    client.handle_timers(client.next_deadline())
    assert _exchange(client, restarted, 17.0) == 2
    assert [type(e) for e in _events(client)] == [RegistrationDidSucceed]


def test_a_wrong_password_is_a_failure_with_back_off_not_a_loop():
    """The answer to a fresh challenge is refused: auth-rejected, retry after 2 s, then 4 s."""
    client, registrar = _client(password="wrong"), Registrar()
    client.start(0.0)
    assert _exchange(client, registrar, 0.0) == 2
    [failure] = _events(client)
    assert isinstance(failure, RegistrationDidFail) and failure.reason == "auth-rejected"
    assert failure.retry_at == 2.0 and client.state is RegistrationState.FAILED
    client.handle_timers(2.0)
    _exchange(client, registrar, 2.0)
    assert _events(client)[-1].retry_at == pytest.approx(2.0 + 4.0)


def test_timeouts_fail_over_to_the_backup_at_once_then_back_off_capped():
    """No answer from the primary: the backup is tried at once; both silent: 2, 4, 8 ... s, at most 10."""
    client = _client(proxies=(PRIMARY, BACKUP), retry_max_seconds=10)
    client.start(0.0)
    delays, destinations, now = [], [], 0.0
    for _ in range(8):
        [outgoing] = client.requests_to_send()
        destinations.append(outgoing.destination)
        now += 32.0  # Timer F
        client.transaction_timed_out(now)
        failure = _events(client)[-1]
        delays.append(failure.retry_at - now)
        client.handle_timers(failure.retry_at)
        now = failure.retry_at
    assert destinations == [PRIMARY, BACKUP] * 4
    assert delays == [0.0, 2.0, 0.0, 4.0, 0.0, 8.0, 0.0, 10.0]


def test_a_503_fails_over_and_honours_retry_after():
    """5xx moves to the next proxy; Retry-After 30 delays the retry although a proxy is untried."""
    client = _client(proxies=(PRIMARY, BACKUP))
    client.start(0.0)
    [outgoing] = client.requests_to_send()
    client.receive_response(make_response(outgoing.request, 503, to_tag="x", extra_headers=(("Retry-After", "30"),)),
                            0.5)
    [failure] = _events(client)
    assert (failure.reason, failure.next_proxy, failure.retry_at) == ("server-error", BACKUP, 30.5)


def test_423_asks_again_with_min_expires():
    """Interval Too Brief: the next REGISTER asks for the registrar's Min-Expires (§10.3 step 7)."""
    client = _client(expires_seconds=30)
    client.start(0.0)
    [outgoing] = client.requests_to_send()
    client.receive_response(make_response(outgoing.request, 423, to_tag="x", extra_headers=(("Min-Expires", "120"),)),
                            0.1)
    [again] = client.requests_to_send()
    assert again.request.headers.get("Expires") == "120"


def test_a_binding_lapses_when_refreshes_keep_failing():
    """Registered for 20 s, then the registrar is silent: at the expiry the binding is reported lapsed."""
    client, registrar = _client(), Registrar(grant=20)
    client.start(0.0)
    _exchange(client, registrar, 0.0)
    _events(client)
    client.handle_timers(17.0)
    client.requests_to_send()
    client.transaction_timed_out(18.0)  # a TCP reset, say: the transaction fails early
    client.handle_timers(20.0)
    assert isinstance(_events(client)[-1], RegistrationDidLapse) and not client.registered(20.0)


def test_responses_to_other_cseqs_are_ignored():
    """A late answer to an older REGISTER does not move the client."""
    client = _client()
    client.start(0.0)
    [outgoing] = client.requests_to_send()
    stale = make_response(outgoing.request, 200, to_tag="x")
    stale.headers.set("CSeq", "99 REGISTER")
    client.receive_response(stale, 0.1)
    assert client.state is RegistrationState.REGISTERING and _events(client) == []


def test_the_transition_table_refuses_a_success_before_anything_was_sent():
    """STYLE 5: a step with no entry in TRANSITIONS is our bug, named with the state."""
    from acd.sip.errors import LocalProtocolError
    from acd.sip.registration import RegistrationStep
    client = _client()
    with pytest.raises(LocalProtocolError, match="succeeded is not possible in state unregistered"):
        client._move(RegistrationStep.SUCCEEDED)
