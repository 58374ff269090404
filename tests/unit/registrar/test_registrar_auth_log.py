"""The `auth failure:` / `auth retry:` line format (what the fail2ban filter reads): fields, quoting, reasons."""

import pytest

from acd.registrar.auth_log import MAX_LOGGED_USER_LENGTH, failure_line, retry_line


def test_failure_line_has_the_documented_fields_in_order():
    line = failure_line(source=("127.0.0.2", 5070), transport="udp", method="REGISTER", reason="wrong-password",
                        user="1001")
    assert line == 'auth failure: source=127.0.0.2:5070 transport=UDP method=REGISTER reason=wrong-password user="1001"'


def test_ipv6_sources_are_bracketed():
    line = failure_line(source=("2001:db8::7", 5060), transport="TLS", method="INVITE", reason="locked", user="1001")
    assert " source=[2001:db8::7]:5060 transport=TLS " in line


@pytest.mark.parametrize("user, shown", [
    ('a"b', r'"a\x22b"'), ("a b", r'"a\x20b"'), ("a\\b", r'"a\x5cb"'), ("a\nb", r'"a\x0ab"'), ("é", r'"\xc3\xa9"'),
    ("", '""'), ("1001@example.com", '"1001@example.com"'),
])
def test_the_user_name_is_quoted_with_anything_that_could_end_a_field_escaped(user, shown):
    line = retry_line(source=("10.0.0.1", 1), transport="UDP", method="REGISTER", reason="stale-nonce", user=user)
    assert line.endswith(f" user={shown}")


def test_a_long_user_name_is_cut():
    line = failure_line(source=("10.0.0.1", 1), transport="UDP", method="REGISTER", reason="unknown-user",
                        user="x" * 500)
    assert line.endswith(' user="' + "x" * MAX_LOGGED_USER_LENGTH + '..."')


def test_reasons_are_a_closed_list():
    with pytest.raises(ValueError, match="unknown auth failure reason"):
        failure_line(source=("10.0.0.1", 1), transport="UDP", method="REGISTER", reason="stale-nonce", user="u")
    with pytest.raises(ValueError):
        retry_line(source=("10.0.0.1", 1), transport="UDP", method="REGISTER", reason="wrong-password", user="u")
