"""Digest authentication (RFC 3261 §22, RFC 2617 §3.5, RFC 7616 §3.9.1, RFC 8760): vectors, round trips, failures."""

import pytest
from hypothesis import given, settings, strategies as st

from acd.sip.digest import (
    AuthResult, DigestAuthenticator, MAX_AUTHORIZATION_LENGTH, client_authorization, compute_ha1, compute_response,
    parse_digest_params,
)
from acd.sip.errors import RemoteProtocolError

REALM = "acd.example"
SECRET = b"test secret, not for production"
NOW = 1_700_000_000.0
PASSWORDS = {"1001": "s3cret-1001", "1002": "other"}


def lookup(username, algorithm):
    """The store as the authenticator sees it: HA1 per algorithm, never the password."""
    password = PASSWORDS.get(username)
    return None if password is None else compute_ha1(username, REALM, password, algorithm)


@pytest.fixture
def auth():
    return DigestAuthenticator(REALM, SECRET)


def answer(auth, *, now=NOW, index=0, username="1001", password="s3cret-1001", cnonce="0a4f113b", nc=1,
           uri="sip:acd.example", method="REGISTER"):
    """What a phone sends back for challenge number `index` (0: SHA-256, 1: MD5)."""
    challenge = auth.challenge(now)[index]
    return client_authorization(challenge, method=method, uri=uri, username=username, password=password,
                                cnonce=cnonce, nc=nc)


# Known vectors -------------------------------------------------------------------------------------

RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", '
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_example_response():
    """RFC 2617 §3.5: Mufasa / "Circle Of Life", qop=auth, MD5 gives 6629fae4..."""
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    response = compute_response(ha1, "GET", "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                qop="auth", nc="00000001", cnonce="0a4f113b")
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_example_header_parses_into_its_fields():
    scheme, params = parse_digest_params(RFC2617_AUTHORIZATION)
    assert scheme == "Digest"
    assert params["username"] == "Mufasa"
    assert params["qop"] == "auth" and params["nc"] == "00000001"
    assert params["response"] == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_example_with_a_nonce_we_did_not_issue_is_forged():
    """A correct response over somebody else's nonce is still refused: the nonce carries no valid MAC."""
    auth = DigestAuthenticator("testrealm@host.com", SECRET)
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    result = auth.verify("GET", RFC2617_AUTHORIZATION, lambda user, algorithm: ha1, NOW)
    assert result == AuthResult(ok=False, username="Mufasa", stale=False, reason="forged nonce")


@pytest.mark.parametrize("algorithm, expected", [
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
])
def test_rfc7616_example_responses(algorithm, expected):
    """RFC 7616 §3.9.1: Mufasa / "Circle of Life" at http-auth@example.org, both algorithms."""
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    response = compute_response(ha1, "GET", "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                                algorithm=algorithm, qop="auth", nc="00000001",
                                cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert response == expected


def test_ha1_refuses_an_unknown_algorithm():
    with pytest.raises(ValueError, match="SHA-512"):
        compute_ha1("u", "r", "p", "SHA-512")


# Challenges ----------------------------------------------------------------------------------------

def test_challenge_offers_sha256_first_then_md5_with_qop_auth(auth):
    """RFC 8760: one WWW-Authenticate per algorithm, the preferred (SHA-256) first."""
    values = auth.challenge(NOW)
    assert len(values) == 2
    parsed = [parse_digest_params(value) for value in values]
    assert [params["algorithm"] for _, params in parsed] == ["SHA-256", "MD5"]
    for scheme, params in parsed:
        assert scheme == "Digest"
        assert params["realm"] == REALM and params["qop"] == "auth"
        assert "stale" not in params


def test_stale_challenge_says_stale_true(auth):
    for value in auth.challenge(NOW, stale=True):
        assert parse_digest_params(value)[1]["stale"] == "true"


def test_nonces_differ_with_issue_time(auth):
    assert auth.make_nonce(NOW) != auth.make_nonce(NOW + 0.001)


# Round trips ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 1], ids=["SHA-256", "MD5"])
def test_round_trip_accepts_the_right_password(auth, index):
    result = auth.verify("REGISTER", answer(auth, index=index), lookup, NOW + 1)
    assert result == AuthResult(ok=True, username="1001", stale=False, reason="ok")


def test_rfc2069_form_without_qop_is_accepted(auth):
    """RFC 3261 §22.4 keeps RFC 2069 compatibility: response = H(HA1:nonce:HA2), no nc/cnonce."""
    nonce = auth.make_nonce(NOW)
    ha1 = compute_ha1("1001", REALM, "s3cret-1001")
    response = compute_response(ha1, "REGISTER", "sip:acd.example", nonce)
    header = f'Digest username="1001", realm="{REALM}", nonce="{nonce}", uri="sip:acd.example", response="{response}"'
    assert auth.verify("REGISTER", header, lookup, NOW).ok


def test_parameter_names_are_case_insensitive_and_token_or_quoted(auth):
    """Phones quote qop and algorithm, or capitalise names; RFC 3261 §25.1 auth-param allows both forms."""
    header = answer(auth, index=1).replace("username=", "UserName=").replace("qop=auth", 'QOP="auth"')
    header = header.replace("algorithm=MD5", 'Algorithm="md5"')
    assert auth.verify("REGISTER", header, lookup, NOW).ok


def test_quoted_values_may_hold_commas_and_escaped_quotes(auth):
    """A username with a comma and a quoted-pair survives parsing (RFC 3261 §25.1 quoted-string)."""
    PASSWORDS['a,b"c'] = "pw"
    try:
        header = answer(auth, username='a,b"c', password="pw")
        header = header.replace('username="a,b"c"', r'username="a,b\"c"')
        result = auth.verify("REGISTER", header, lookup, NOW)
        assert result.ok and result.username == 'a,b"c'
    finally:
        del PASSWORDS['a,b"c']


def test_algorithm_defaults_to_md5(auth):
    """RFC 7616 §3.4: no algorithm parameter means MD5."""
    header = answer(auth, index=1).replace(", algorithm=MD5", "")
    assert auth.verify("REGISTER", header, lookup, NOW).ok


# Failures ------------------------------------------------------------------------------------------

def test_wrong_password_is_refused_and_counts_as_failure(auth):
    result = auth.verify("REGISTER", answer(auth, password="guess"), lookup, NOW)
    assert result == AuthResult(ok=False, username="1001", stale=False, reason="wrong password")
    assert result.counts_as_failure


def test_unknown_user_is_refused(auth):
    result = auth.verify("REGISTER", answer(auth, username="9999"), lookup, NOW)
    assert (result.ok, result.reason, result.username) == (False, "unknown user", "9999")


def test_response_for_another_method_is_refused(auth):
    """HA2 covers the method: an INVITE's credentials do not authorise a REGISTER."""
    assert auth.verify("REGISTER", answer(auth, method="INVITE"), lookup, NOW).reason == "wrong password"


def test_expired_genuine_nonce_is_stale(auth):
    """A correct response over a nonce older than its lifetime asks for a retry (stale=true), not a password."""
    result = auth.verify("REGISTER", answer(auth), lookup, NOW + auth.nonce_lifetime_seconds + 1)
    assert result == AuthResult(ok=False, username="1001", stale=True, reason="stale nonce")
    assert not result.counts_as_failure


def test_nonce_is_still_fresh_at_the_end_of_its_lifetime(auth):
    assert auth.verify("REGISTER", answer(auth), lookup, NOW + auth.nonce_lifetime_seconds).ok


def test_expired_nonce_with_wrong_password_is_not_stale(auth):
    """RFC 7616 §3.3: stale=true only when the response itself is valid."""
    result = auth.verify("REGISTER", answer(auth, password="guess"), lookup, NOW + 10_000)
    assert (result.stale, result.reason) == (False, "wrong password")


def test_nonce_from_the_future_is_stale(auth):
    """Our clock stepped back after issuing it: ask for a fresh nonce rather than accept it."""
    assert auth.verify("REGISTER", answer(auth, now=NOW + 60), lookup, NOW).reason == "stale nonce"


def test_nonce_from_another_secret_is_forged(auth):
    other = DigestAuthenticator(REALM, b"another secret")
    result = auth.verify("REGISTER", answer(other), lookup, NOW)
    assert (result.ok, result.stale, result.reason) == (False, False, "forged nonce")


def test_nonce_with_a_flipped_character_is_forged(auth):
    header = answer(auth)
    nonce = parse_digest_params(header)[1]["nonce"]
    tampered = nonce[:3] + ("A" if nonce[3] != "A" else "B") + nonce[4:]
    assert auth.verify("REGISTER", header.replace(nonce, tampered), lookup, NOW).reason == "forged nonce"


@pytest.mark.parametrize("nonce", ["", "not base64 at all!", "QUJD", "é"])
def test_nonce_that_is_not_ours_in_shape_is_forged(auth, nonce):
    header = answer(auth)
    real = parse_digest_params(header)[1]["nonce"]
    assert auth.verify("REGISTER", header.replace(real, nonce), lookup, NOW).reason == "forged nonce"


def test_realm_mismatch_is_refused(auth):
    other = DigestAuthenticator("elsewhere", SECRET)
    assert auth.verify("REGISTER", answer(other), lookup, NOW).reason == "realm mismatch"


@pytest.mark.parametrize("change, reason", [
    (("algorithm=MD5", "algorithm=SHA-512-256"), "unsupported algorithm"),
    (("algorithm=MD5", "algorithm=MD5-sess"), "unsupported algorithm"),
    (("qop=auth", "qop=auth-int"), "unsupported qop"),
    (("Digest ", "Basic "), "unsupported scheme"),
])
def test_what_we_never_offer_is_refused(auth, change, reason):
    header = answer(auth, index=1).replace(*change)
    assert auth.verify("REGISTER", header, lookup, NOW).reason == reason


def test_replayed_response_is_refused_as_stale(auth):
    """A sniffed Authorization cannot register a second time; a genuine phone just gets a new nonce."""
    header = answer(auth)
    assert auth.verify("REGISTER", header, lookup, NOW).ok
    result = auth.verify("REGISTER", header, lookup, NOW + 1)
    assert (result.ok, result.stale, result.reason) == (False, True, "replayed response")


def test_reusing_a_nonce_with_a_higher_nc_is_accepted(auth):
    """RFC 7616 §3.4: a client may reuse a nonce with the next nonce-count."""
    assert auth.verify("REGISTER", answer(auth, nc=1), lookup, NOW).ok
    assert auth.verify("REGISTER", answer(auth, nc=2), lookup, NOW + 1).ok


def test_replay_memory_is_bounded():
    auth = DigestAuthenticator(REALM, SECRET, max_remembered_responses=3)
    for index in range(10):
        assert auth.verify("REGISTER", answer(auth, cnonce=f"c{index}"), lookup, NOW).ok
    assert len(auth._seen_responses) == 3


def test_replay_memory_forgets_responses_once_their_nonce_is_stale(auth):
    assert auth.verify("REGISTER", answer(auth, cnonce="first"), lookup, NOW).ok
    later = NOW + auth.nonce_lifetime_seconds + 1
    assert auth.verify("REGISTER", answer(auth, now=later, cnonce="second"), lookup, later).ok
    assert len(auth._seen_responses) == 1


# Malformed headers (400) ---------------------------------------------------------------------------

@pytest.mark.parametrize("mangle", [
    lambda h: h.replace(', uri="sip:acd.example"', ""),              # required parameter missing
    lambda h: h.replace(', nc=00000001', ""),                        # qop without nc
    lambda h: h.replace('cnonce="0a4f113b"', 'cnonce="0a4f113b", cnonce="x"'),   # repeated
    lambda h: h.replace("nc=00000001", "nc=1"),                      # nc is 8LHEX
    lambda h: h.replace('response="', 'response="zz'),               # response is hex
    lambda h: h.replace('username="1001"', 'username="1001'),        # unterminated quote
    lambda h: h.replace('username="1001",', 'username="1001";'),     # wrong separator
    lambda h: h + ", =x",                                            # parameter without a name
    lambda h: "",                                                    # no scheme at all
    lambda h: "Digest",                                              # scheme only
    lambda h: h + ', extra="' + "x" * MAX_AUTHORIZATION_LENGTH + '"',  # too long
], ids=["missing-uri", "qop-without-nc", "repeated", "short-nc", "non-hex-response", "open-quote",
        "semicolon", "nameless", "empty", "scheme-only", "too-long"])
def test_malformed_authorization_is_a_400(auth, mangle):
    with pytest.raises(RemoteProtocolError) as caught:
        auth.verify("REGISTER", mangle(answer(auth, index=1)), lookup, NOW)
    assert caught.value.status == 400


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_garbage_is_either_a_400_or_a_refusal(header):
    """Whatever arrives, verify answers with an AuthResult or a RemoteProtocolError, nothing else."""
    auth = DigestAuthenticator(REALM, SECRET)
    try:
        result = auth.verify("REGISTER", header, lookup, NOW)
    except RemoteProtocolError as error:
        assert error.status == 400
    else:
        assert not result.ok


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["username", "realm", "nonce", "uri", "response", "qop", "nc",
                                           "cnonce", "algorithm", "opaque"]),
                          st.text(alphabet='abc0123456789",\\= ', max_size=12)), max_size=10))
def test_garbage_parameters_are_either_a_400_or_a_refusal(pairs):
    header = "Digest " + ", ".join(f'{name}="{value}"' for name, value in pairs)
    auth = DigestAuthenticator(REALM, SECRET)
    try:
        assert not auth.verify("REGISTER", header, lookup, NOW).ok
    except RemoteProtocolError as error:
        assert error.status == 400


def test_auth_result_checks_itself():
    with pytest.raises(ValueError):
        AuthResult(ok=True, username=None, stale=False, reason="ok")
    with pytest.raises(ValueError):
        AuthResult(ok=False, username="x", stale=False, reason="ok")
