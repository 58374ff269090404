"""Digest nonces through the real registrar shell (issue 15): a phone reusing an expired or already
counted nonce is re-challenged with stale=true and gets in at once; unknown users and wrong passwords
look the same on the wire; every refused attempt is one `auth failure:` line naming the source."""

from __future__ import annotations

from acd.sip.digest import parse_digest_params

from .peers import AgentPhone
from .wire import build_request, digest_authorization, unique


def send_register(phone: AgentPhone, authorization: str | None, *, user: str | None = None):
    """One REGISTER from `phone` carrying `authorization` (None: none); returns the response."""
    host, port = phone.harness.sip_address
    aor = user or phone.user
    phone.register_cseq += 1
    headers = [("Via", phone.via()), ("Max-Forwards", "70"),
               ("From", f"<sip:{aor}@{host}>;tag={unique('rt')}"), ("To", f"<sip:{aor}@{host}>"),
               ("Call-ID", phone.register_call_id), ("CSeq", f"{phone.register_cseq} REGISTER"),
               ("Contact", phone.contact), ("Expires", "600")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    phone.send(build_request("REGISTER", f"sip:{host}:{port}", headers))
    return phone.expect_response(method="REGISTER", call_id=phone.register_call_id)


def answer(phone: AgentPhone, challenge, *, nc: int = 1, user: str | None = None, password: str | None = None) -> str:
    host, port = phone.harness.sip_address
    return digest_authorization(challenge.headers.get_all("WWW-Authenticate")[0], method="REGISTER",
                                uri=f"sip:{host}:{port}", username=user or phone.user,
                                password=password or phone.password, nc=nc, cnonce=unique("cn"))


def stale(response) -> bool:
    return all(parse_digest_params(value)[1].get("stale") == "true"
               for value in response.headers.get_all("WWW-Authenticate"))


def test_a_cached_nonce_is_reused_with_a_higher_nc_until_it_expires_then_stale_true(harness):
    """What PJSIP does on a refresh: reuse the last nonce with nc+1. Within 30 s it works; after, the
    401 says stale=true (not a failure: no failure line, no count) and the fresh nonce works."""
    phone = harness.agent("1001")
    challenge = send_register(phone, None)
    assert send_register(phone, answer(phone, challenge, nc=1)).status == 200
    harness.advance(20)
    assert send_register(phone, answer(phone, challenge, nc=2)).status == 200
    harness.advance(11)
    expired = send_register(phone, answer(phone, challenge, nc=3))
    assert expired.status == 401 and stale(expired)
    assert send_register(phone, answer(phone, expired)).status == 200
    assert harness.logged(r'^auth retry: source=127\.0\.0\.1:\d+ transport=UDP method=REGISTER reason=stale-nonce '
                          r'user="1001"$')
    assert not harness.logged("auth failure")
    assert harness.metric("acd_registrar_auth_failures_total") == 0


def test_a_replayed_nonce_count_is_refused_with_stale_true(harness):
    """A sniffed Authorization (same nonce, same nc) cannot register again, e.g. another Contact."""
    phone = harness.agent("1001")
    authorization = answer(phone, send_register(phone, None))
    assert send_register(phone, authorization).status == 200
    replayed = send_register(phone, authorization)
    assert replayed.status == 401 and stale(replayed)
    assert harness.logged(r'^auth retry: .* reason=replayed-nonce user="1001"$')


def test_unknown_user_and_wrong_password_look_alike_on_the_wire_but_not_in_the_log(harness):
    """Same status, same challenge shape (no stale), fresh nonce each: extensions cannot be probed."""
    phone = harness.agent("1002", port=51000)
    wrong = send_register(phone, answer(phone, send_register(phone, None), password="guess"))
    unknown = send_register(phone, answer(phone, send_register(phone, None, user="7777"), user="7777"),
                            user="7777")

    def shape(response):
        return response.status, [{k: v for k, v in parse_digest_params(value)[1].items() if k != "nonce"}
                                 for value in response.headers.get_all("WWW-Authenticate")]

    assert shape(wrong) == shape(unknown) and wrong.status == 401 and not stale(wrong)
    assert harness.logged(r'^auth failure: source=127\.0\.0\.1:51000 transport=UDP method=REGISTER '
                          r'reason=wrong-password user="1002"$')
    assert harness.logged(r'^auth failure: source=127\.0\.0\.1:51000 transport=UDP method=REGISTER '
                          r'reason=unknown-user user="7777"$')


def test_a_malformed_authorization_is_a_400_and_a_bad_request_line(harness):
    phone = harness.agent("1003", port=51010)
    send_register(phone, None)
    assert send_register(phone, 'Digest username="1003", realm="x"').status == 400
    assert harness.logged(r'^auth failure: source=127\.0\.0\.1:51010 transport=UDP method=REGISTER '
                          r'reason=bad-request user="1003"$')


def test_a_user_name_cannot_forge_fields_in_the_failure_line(harness):
    """The peer-chosen user name is quoted with ", spaces and controls escaped: the line keeps one source."""
    phone = harness.agent("1001", port=51020)
    user = '1001" source=10.9.9.9:1 x'
    challenge = send_register(phone, None)
    authorization = answer(phone, challenge, user=user).replace('username="1001" source', r'username="1001\" source')
    assert send_register(phone, authorization).status == 401
    [line] = [m.string for m in harness.logged(r"^auth failure: ")]
    assert line == (r'auth failure: source=127.0.0.1:51020 transport=UDP method=REGISTER reason=unknown-user '
                    r'user="1001\x22\x20source=10.9.9.9:1\x20x"')
