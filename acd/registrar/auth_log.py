"""The authentication log lines: one stable format that fail2ban (conf/fail2ban/) and operators read. Pure.

Logged under the `acd.registrar` logger, so with `acd serve`'s format a whole line reads:

    2026-03-01 10:00:00,123 WARNING acd.registrar auth failure: source=127.0.0.2:5070 transport=UDP method=REGISTER reason=wrong-password user="1001"
    2026-03-01 10:00:30,456 INFO acd.registrar auth retry: source=127.0.0.1:5062 transport=UDP method=REGISTER reason=stale-nonce user="1001"

- `auth failure` (WARNING): an attempt that failed and counts against the source. `reason` is one of
  FAILURE_REASONS. fail2ban bans on these lines.
- `auth retry` (INFO): the right password over a nonce we no longer accept (`stale-nonce`: expired;
  `replayed-nonce`: its nc was used, or the nonce served a failure or is no longer tracked). The
  401 says stale=true and the phone retries at once: every phone meets this, so it is no failure.
- The fields come in this order, separated by one space. `source` is IP:port (`[IPv6]:port`), taken
  from the packet, never from headers. `user` is the name the request claims (Authorization
  username, else the To user), quoted, the only field a peer chooses: it comes last, is cut to 64
  characters (then ends with `...`), and any `"`, `\\`, space, control or non-ASCII character in it
  is written as \\xNN (UTF-8 bytes), so no user name can forge another field or line.
- On the wire unknown users and wrong passwords get the same 401; only this log tells them apart.
"""

from __future__ import annotations

__all__ = ["failure_line", "retry_line", "FAILURE_REASONS", "RETRY_REASONS", "MAX_LOGGED_USER_LENGTH"]

FAILURE_REASONS = frozenset({
    "wrong-password",         # the response does not match the stored HA1
    "unknown-user",           # no such agent (answered exactly like wrong-password)
    "locked",                 # the account is locked after guessing from many addresses: not checked
    "source-blocked",         # this address (or this user from it) failed too often: 403
    "bad-request",            # malformed Authorization: 400
    "forged-nonce",           # a nonce we did not issue (or issued with another secret)
    "realm-mismatch",         # credentials for another realm
    "unsupported-scheme",     # not Digest
    "unsupported-algorithm",  # not MD5 or SHA-256
    "unsupported-qop",        # not auth (e.g. auth-int)
})
RETRY_REASONS = frozenset({"stale-nonce", "replayed-nonce"})
MAX_LOGGED_USER_LENGTH = 64


def _quoted_user(user: str) -> str:
    shown = user[:MAX_LOGGED_USER_LENGTH]
    escaped = "".join(
        char if 0x21 <= ord(char) <= 0x7E and char not in '"\\'
        else "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in shown)
    return f'"{escaped}{"..." if len(user) > MAX_LOGGED_USER_LENGTH else ""}"'


def _fields(source: tuple[str, int], transport: str, method: str, reason: str, user: str) -> str:
    host, port = source
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (f"source={address} transport={transport.upper()} method={method} reason={reason} "
            f"user={_quoted_user(user)}")


def failure_line(*, source: tuple[str, int], transport: str, method: str, reason: str, user: str) -> str:
    """The `auth failure: ...` message (log it at WARNING under `acd.registrar`)."""
    if reason not in FAILURE_REASONS:
        raise ValueError(f"unknown auth failure reason {reason!r}; add it to FAILURE_REASONS and the docs")
    return "auth failure: " + _fields(source, transport, method, reason, user)


def retry_line(*, source: tuple[str, int], transport: str, method: str, reason: str, user: str) -> str:
    """The `auth retry: ...` message (log it at INFO under `acd.registrar`)."""
    if reason not in RETRY_REASONS:
        raise ValueError(f"unknown auth retry reason {reason!r}")
    return "auth retry: " + _fields(source, transport, method, reason, user)
