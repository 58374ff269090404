"""Our answers to a carrier's 401/407, checked by a real verifier: the server side of acd/sip/digest.py."""

import pytest

from acd.sip.digest import DigestAuthenticator, compute_ha1
from acd.sip.digest_client import DigestCredentials, answer_challenge, choose_challenge
from acd.sip.message import Headers

NOW = 1000.0


def _challenges(auth: DigestAuthenticator, header: str = "WWW-Authenticate") -> Headers:
    return Headers((header, value) for value in auth.challenge(NOW))


@pytest.mark.parametrize("algorithms", [("SHA-256", "MD5"), ("MD5",), ("SHA-256",)])
def test_the_first_usable_challenge_is_answered_and_the_verifier_accepts_it(algorithms):
    """RFC 8760: the top challenge we support wins; the answer passes the verifier, qop=auth with nc."""
    auth = DigestAuthenticator("carrier.example", b"s" * 16, algorithms=algorithms)
    credentials = DigestCredentials(username="acd", password="pw")
    challenge = choose_challenge(401, _challenges(auth), credentials)
    assert challenge.algorithm == algorithms[0] and challenge.answer_header == "Authorization"
    name, value = answer_challenge(challenge, credentials, method="REGISTER", uri="sip:carrier.example",
                                   cnonce="c1", nc=1)
    assert name == "Authorization" and "qop=auth, nc=00000001" in value
    lookup = lambda user, algorithm: compute_ha1(user, "carrier.example", "pw", algorithm)  # noqa: E731
    assert auth.verify("REGISTER", value, lookup, NOW + 0.1).ok


def test_a_407_is_answered_in_proxy_authorization():
    """§22.3: a proxy's challenge (Proxy-Authenticate) gets Proxy-Authorization."""
    auth = DigestAuthenticator("proxy.example", b"s" * 16, algorithms=("MD5",))
    challenge = choose_challenge(407, _challenges(auth, "Proxy-Authenticate"), DigestCredentials(username="a", password="b"))
    assert challenge.answer_header == "Proxy-Authorization"


def test_an_md5_ha1_skips_the_sha256_challenge_and_answers_md5():
    """An HA1 is bound to its algorithm: a 32-digit one answers the MD5 challenge, below SHA-256."""
    auth = DigestAuthenticator("carrier.example", b"s" * 16)
    ha1 = compute_ha1("acd", "carrier.example", "pw", "MD5")
    credentials = DigestCredentials(username="acd", ha1=ha1)
    challenge = choose_challenge(401, _challenges(auth), credentials)
    assert challenge.algorithm == "MD5"
    _name, value = answer_challenge(challenge, credentials, method="INVITE", uri="sip:5551@carrier.example",
                                    cnonce="c2", nc=1)
    assert auth.verify("INVITE", value, lambda u, a: ha1 if a == "MD5" else None, NOW).ok


def test_nothing_is_answered_for_another_realm_an_unknown_algorithm_or_auth_int_only():
    """No usable challenge → None: the caller reports a failure instead of sending a bad answer."""
    credentials = DigestCredentials(username="acd", password="pw", realm="carrier.example")
    headers = Headers([
        ("WWW-Authenticate", 'Digest realm="elsewhere", nonce="n1", qop="auth"'),
        ("WWW-Authenticate", 'Digest realm="carrier.example", nonce="n2", algorithm=SHA-512-256'),
        ("WWW-Authenticate", 'Digest realm="carrier.example", nonce="n3", qop="auth-int"'),
        ("WWW-Authenticate", 'Digest realm="carrier.example", nonce="n4", broken'),
        ("WWW-Authenticate", 'Basic realm="carrier.example"'),
    ])
    assert choose_challenge(401, headers, credentials) is None
    assert choose_challenge(403, headers, credentials) is None


def test_the_rfc2069_form_and_opaque_are_kept():
    """A challenge without qop gets the RFC 2069 answer; opaque comes back unchanged (RFC 7616 §3.4)."""
    headers = Headers([("WWW-Authenticate", 'Digest realm="r", nonce="n", opaque="xyz"')])
    credentials = DigestCredentials(username="u", password="p")
    _name, value = answer_challenge(choose_challenge(401, headers, credentials), credentials, method="REGISTER",
                                    uri="sip:r", cnonce="c")
    assert "qop" not in value and 'opaque="xyz"' in value and "algorithm=MD5" in value


@pytest.mark.parametrize("kwargs", [{"username": "u"}, {"username": "u", "password": "p", "ha1": "0" * 32},
                                    {"username": "u", "ha1": "xyz"}, {"username": "", "password": "p"}])
def test_credentials_refuse_impossible_settings(kwargs):
    """One of password or HA1; an HA1 is 32 or 64 hex digits."""
    with pytest.raises(ValueError):
        DigestCredentials(**kwargs)
