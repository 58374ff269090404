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
    assert result == AuthResult(ok=False, username="Mufasa", stale=False, reason="forged-nonce")


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
    assert result == AuthResult(ok=False, username="1001", stale=False, reason="wrong-password")
    assert result.counts_as_failure


def test_unknown_user_is_refused(auth):
    result = auth.verify("REGISTER", answer(auth, username="9999"), lookup, NOW)
    assert (result.ok, result.reason, result.username) == (False, "unknown-user", "9999")


def test_response_for_another_method_is_refused(auth):
    """HA2 covers the method: an INVITE's credentials do not authorise a REGISTER."""
    assert auth.verify("REGISTER", answer(auth, method="INVITE"), lookup, NOW).reason == "wrong-password"


def test_expired_genuine_nonce_is_stale(auth):
    """A correct response over a nonce older than its lifetime asks for a retry (stale=true), not a password."""
    result = auth.verify("REGISTER", answer(auth), lookup, NOW + auth.nonce_lifetime_seconds + 1)
    assert result == AuthResult(ok=False, username="1001", stale=True, reason="stale-nonce")
    assert not result.counts_as_failure


def test_nonce_is_still_fresh_at_the_end_of_its_lifetime(auth):
    assert auth.verify("REGISTER", answer(auth), lookup, NOW + auth.nonce_lifetime_seconds).ok


def test_expired_nonce_with_wrong_password_is_not_stale(auth):
    """RFC 7616 §3.3: stale=true only when the response itself is valid."""
    result = auth.verify("REGISTER", answer(auth, password="guess"), lookup, NOW + 10_000)
    assert (result.stale, result.reason) == (False, "wrong-password")


def test_nonce_from_the_future_is_stale(auth):
    """Our clock stepped back after issuing it: ask for a fresh nonce rather than accept it."""
    assert auth.verify("REGISTER", answer(auth, now=NOW + 60), lookup, NOW).reason == "stale-nonce"


def test_nonce_from_another_secret_is_forged(auth):
    other = DigestAuthenticator(REALM, b"another secret")
    result = auth.verify("REGISTER", answer(other), lookup, NOW)
    assert (result.ok, result.stale, result.reason) == (False, False, "forged-nonce")


def test_nonce_with_a_flipped_character_is_forged(auth):
    header = answer(auth)
    nonce = parse_digest_params(header)[1]["nonce"]
    tampered = nonce[:3] + ("A" if nonce[3] != "A" else "B") + nonce[4:]
    assert auth.verify("REGISTER", header.replace(nonce, tampered), lookup, NOW).reason == "forged-nonce"


@pytest.mark.parametrize("nonce", ["", "not base64 at all!", "QUJD", "é"])
def test_nonce_that_is_not_ours_in_shape_is_forged(auth, nonce):
    header = answer(auth)
    real = parse_digest_params(header)[1]["nonce"]
    assert auth.verify("REGISTER", header.replace(real, nonce), lookup, NOW).reason == "forged-nonce"


def test_realm_mismatch_is_refused(auth):
    other = DigestAuthenticator("elsewhere", SECRET)
    assert auth.verify("REGISTER", answer(other), lookup, NOW).reason == "realm-mismatch"


@pytest.mark.parametrize("change, reason", [
    (("algorithm=MD5", "algorithm=SHA-512-256"), "unsupported-algorithm"),
    (("algorithm=MD5", "algorithm=MD5-sess"), "unsupported-algorithm"),
    (("qop=auth", "qop=auth-int"), "unsupported-qop"),
    (("Digest ", "Basic "), "unsupported-scheme"),
])
def test_what_we_never_offer_is_refused(auth, change, reason):
    header = answer(auth, index=1).replace(*change)
    assert auth.verify("REGISTER", header, lookup, NOW).reason == reason


def test_replayed_authorization_is_refused_as_stale(auth):
    """A sniffed Authorization cannot register a second time; a genuine phone just gets a new nonce."""
    header = answer(auth)
    assert auth.verify("REGISTER", header, lookup, NOW).ok
    result = auth.verify("REGISTER", header, lookup, NOW + 1)
    assert result == AuthResult(ok=False, username="1001", stale=True, reason="replayed-nonce")
    assert not result.counts_as_failure


def test_reusing_a_nonce_with_a_higher_nc_is_accepted(auth):
    """RFC 7616 §3.4: a client may reuse a nonce with the next nonce-count (phones do, for their next requests)."""
    challenge = auth.challenge(NOW)[0]
    for nc in (1, 2, 5):
        header = client_authorization(challenge, method="REGISTER", uri="sip:acd.example", username="1001",
                                      password="s3cret-1001", cnonce=f"c{nc}", nc=nc)
        assert auth.verify("REGISTER", header, lookup, NOW + nc).ok


@pytest.mark.parametrize("second_nc", [1, 2], ids=["same", "lower"])
def test_an_nc_not_above_the_last_one_is_a_replay_even_with_a_new_cnonce(auth, second_nc):
    """The nc must grow strictly for each use of a nonce; a new cnonce does not make an old count new."""
    challenge = auth.challenge(NOW)[0]

    def header(nc, cnonce):
        return client_authorization(challenge, method="REGISTER", uri="sip:acd.example", username="1001",
                                    password="s3cret-1001", cnonce=cnonce, nc=nc)

    assert auth.verify("REGISTER", header(2, "first"), lookup, NOW).ok
    result = auth.verify("REGISTER", header(second_nc, "second"), lookup, NOW)
    assert (result.ok, result.stale, result.reason) == (False, True, "replayed-nonce")
    assert auth.verify("REGISTER", header(3, "third"), lookup, NOW).ok


def test_a_nonce_without_qop_serves_once(auth):
    """RFC 2069 form has no nc: the nonce is single-use."""
    nonce = auth.make_nonce(NOW)
    ha1 = compute_ha1("1001", REALM, "s3cret-1001")
    response = compute_response(ha1, "REGISTER", "sip:acd.example", nonce)
    header = f'Digest username="1001", realm="{REALM}", nonce="{nonce}", uri="sip:acd.example", response="{response}"'
    assert auth.verify("REGISTER", header, lookup, NOW).ok
    assert auth.verify("REGISTER", header, lookup, NOW).reason == "replayed-nonce"


@pytest.mark.parametrize("first", [{"password": "guess"}, {"username": "9999"}], ids=["wrong-password", "unknown-user"])
def test_a_nonce_that_served_a_failure_serves_nothing_more(auth, first):
    """After a wrong password (or an unknown user) the nonce is burnt: even the right password with a
    higher nc only gets stale=true, so one challenge cannot feed a run of guesses ending in a login."""
    challenge = auth.challenge(NOW)[0]
    credentials = {"username": "1001", "password": "s3cret-1001"} | first
    failed = client_authorization(challenge, method="REGISTER", uri="sip:acd.example", cnonce="a", nc=1, **credentials)
    assert auth.verify("REGISTER", failed, lookup, NOW).counts_as_failure
    again = client_authorization(challenge, method="REGISTER", uri="sip:acd.example", username="1001",
                                 password="guess-2", cnonce="b", nc=2)
    assert auth.verify("REGISTER", again, lookup, NOW).reason == "wrong-password", "a wrong guess still counts"
    right = client_authorization(challenge, method="REGISTER", uri="sip:acd.example", username="1001",
                                 password="s3cret-1001", cnonce="c", nc=3)
    result = auth.verify("REGISTER", right, lookup, NOW)
    assert (result.ok, result.stale, result.reason) == (False, True, "replayed-nonce")
    assert auth.verify("REGISTER", answer(auth, now=NOW + 1), lookup, NOW + 1).ok, "a fresh nonce works"


def test_each_challenge_has_its_own_nonce_even_at_the_same_instant(auth):
    """Two phones challenged within one clock tick must not share a nonce (and its nc sequence)."""
    first = parse_digest_params(auth.challenge(NOW)[0])[1]["nonce"]
    second = parse_digest_params(auth.challenge(NOW)[0])[1]["nonce"]
    assert first != second
    assert auth.verify("REGISTER", answer(auth, cnonce="a"), lookup, NOW).ok
    assert auth.verify("REGISTER", answer(auth, cnonce="b"), lookup, NOW).ok


def test_a_nonce_issued_before_tracking_began_is_stale():
    """After a restart (same secret) or a reload, earlier nonces' uses are unknown: retry with a fresh one."""
    before = DigestAuthenticator(REALM, SECRET)
    header = answer(before)
    after = DigestAuthenticator(REALM, SECRET)
    after.challenge(NOW + 1)
    result = after.verify("REGISTER", header, lookup, NOW + 2)
    assert (result.stale, result.reason) == (True, "replayed-nonce")


def test_replay_memory_is_bounded_and_forgotten_nonces_are_stale():
    auth = DigestAuthenticator(REALM, SECRET, max_tracked_nonces=3)
    headers = [answer(auth, now=NOW + index, cnonce=f"c{index}") for index in range(10)]
    for index, header in enumerate(headers):
        assert auth.verify("REGISTER", header, lookup, NOW + index).ok
    assert len(auth.nonce_uses) == 3
    replay = auth.verify("REGISTER", headers[0], lookup, NOW + 10)
    assert (replay.stale, replay.reason) == (True, "replayed-nonce"), "forgetting a nonce never lets it be replayed"
    unused_but_older = client_authorization(auth.challenge(NOW + 5)[0], method="REGISTER", uri="sip:acd.example",
                                            username="1001", password="s3cret-1001", cnonce="x")
    assert auth.verify("REGISTER", unused_but_older, lookup, NOW + 10).reason == "replayed-nonce"
    assert auth.verify("REGISTER", answer(auth, now=NOW + 10), lookup, NOW + 10).ok, "newer nonces work"


def test_replay_memory_forgets_nonces_once_they_are_stale(auth):
    assert auth.verify("REGISTER", answer(auth, cnonce="first"), lookup, NOW).ok
    later = NOW + auth.nonce_lifetime_seconds + 1
    assert auth.verify("REGISTER", answer(auth, now=later, cnonce="second"), lookup, later).ok
    assert len(auth.nonce_uses) == 1


def test_default_nonce_lifetime_is_30_seconds(auth):
    assert auth.nonce_lifetime_seconds == 30
    assert auth.verify("REGISTER", answer(auth), lookup, NOW + 30).ok
    assert auth.verify("REGISTER", answer(auth), lookup, NOW + 30.5).reason == "stale-nonce"


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
