"""Our account at a carrier, per trunk (conf/acd.yaml `trunks: NAME: register:`), and the trunk's
caller identity settings (`caller_id`, `trusted`).

    register:
      user: acd                        # the account's user name (also the Contact user)
      password: secret                 # or ha1: the 32 (MD5) or 64 (SHA-256) hex digits of H(user:realm:password)
      realm: carrier.example           # optional: only answer challenges of this realm
      domain: carrier.example          # the registrar's domain (Request-URI, To); default: the proxy's host
      proxy: 192.0.2.10:5060           # where REGISTERs go
      backup_proxies: [192.0.2.11:5060]  # tried in turn when the proxy does not answer or answers 5xx
      expires_seconds: 600             # asked for; the registrar may grant less

The same credentials answer the carrier's 401/407 on calls we place through the trunk (callbacks).

A trunk may also prove itself by Digest instead of (or besides) its source address: INVITEs from an
address no trunk lists are challenged with 407 when some trunk has

    auth:
      user: pbx-london
      password: secret                 # or ha1 (see above), computed with realm
      realm: acd.example               # default: the server's sip public_address
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..sip.digest_client import DigestCredentials
from .checker import Checker
from .yaml_lines import LineDict, LineList

__all__ = ["TrunkRegistration", "parse_address", "parse_register", "parse_caller_id", "parse_trunk_auth"]

Address = tuple[str, int]

_ADDRESS = re.compile(r"\s*([0-9.]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*")
# RFC 3261 §25.1 user characters that need no escaping, minus ';' and '?' (kept simple for caller IDs).
_CALLER_ID = re.compile(r"^\+?[0-9A-Za-z._~-]{1,64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkRegistration:
    """Registering at a carrier and answering its challenges (see the module docstring)."""

    credentials: DigestCredentials
    domain: str
    proxies: tuple[Address, ...]
    expires_seconds: int = 600

    @property
    def user(self) -> str:
        """The account's user name."""
        return self.credentials.username


def parse_address(text: object) -> Address | None:
    """'192.0.2.10:5060' or '[2001:db8::1]:5060' → (host, port); None when it is neither."""
    match = _ADDRESS.fullmatch(str(text))
    if match is None or not 0 < int(match.group(2)) < 65536:
        return None
    return match.group(1).strip("[]"), int(match.group(2))


def _address(check: Checker, value: object, line: int, what: str) -> Address | None:
    address = parse_address(value)
    if address is None:
        check.error(line, f"{what} must be IP:port (e.g. 192.0.2.10:5060), not {value!r}")
    return address


def _secret(check: Checker, section: LineDict, what: str, line: int) -> tuple[str | None, str | None] | None:
    """(password, ha1) with exactly one set, or None after an error."""
    password, ha1 = check.text(section, "password", what), check.text(section, "ha1", what)
    if (password is None) == (ha1 is None):
        check.error(line, f"{what} needs 'password' or 'ha1' (one of them): the account's secret")
        return None
    if ha1 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", ha1):
        check.error(section.line_of("ha1"), f"{what} ha1 must be 32 hex digits (MD5) or 64 (SHA-256) "
                                            f"of H(user:realm:password)")
        return None
    return password, ha1


def parse_trunk_auth(check: Checker, trunk: LineDict, name: str, default_realm: str) -> DigestCredentials | None:
    """The trunk's `auth:` block (how it proves itself by Digest), or None."""
    if "auth" not in trunk:
        return None
    what = f"trunk {name!r} auth"
    section = check.mapping(trunk["auth"], trunk.line_of("auth"), what)
    if section is None:
        return None
    check.unknown_keys(section, {"user", "password", "ha1", "realm"}, what)
    user = check.text(section, "user", what, required=True)
    secret = _secret(check, section, what, trunk.line_of("auth"))
    if user is None or secret is None:
        return None
    return DigestCredentials(username=user, password=secret[0], ha1=secret[1],
                             realm=check.text(section, "realm", what) or default_realm)


def parse_register(check: Checker, trunk: LineDict, name: str) -> TrunkRegistration | None:
    """The trunk's `register:` block, or None (absent, or wrong: then errors are recorded)."""
    if "register" not in trunk:
        return None
    what = f"trunk {name!r} register"
    section = check.mapping(trunk["register"], trunk.line_of("register"), what)
    if section is None:
        return None
    check.unknown_keys(section, {"user", "password", "ha1", "realm", "domain", "proxy", "backup_proxies",
                                 "expires_seconds"}, what)
    user = check.text(section, "user", what, required=True)
    realm = check.text(section, "realm", what)
    secret = _secret(check, section, what, trunk.line_of("register"))
    if secret is None:
        return None
    password, ha1 = secret
    if "proxy" not in section:
        check.error(trunk.line_of("register"), f"{what} needs 'proxy': the registrar's IP:port (e.g. 192.0.2.10:5060)")
        return None
    proxy = _address(check, section["proxy"], section.line_of("proxy"), f"{what} proxy")
    backups: list[Address] = []
    raw_backups = section.get("backup_proxies")
    if raw_backups is not None and not isinstance(raw_backups, LineList):
        check.error(section.line_of("backup_proxies"), f"{what} backup_proxies must be a list of IP:port")
    elif raw_backups is not None:
        for index, value in enumerate(raw_backups):
            address = _address(check, value, raw_backups.lines[index], f"{what} backup proxy")
            if address is not None:
                backups.append(address)
    expires = int(check.number(section, "expires_seconds", 600, what, minimum=10, maximum=86400, integer=True))
    if user is None or proxy is None:
        return None
    domain = check.text(section, "domain", what) or proxy[0]
    credentials = DigestCredentials(username=user, password=password, ha1=ha1, realm=realm)
    return TrunkRegistration(credentials=credentials, domain=domain, proxies=(proxy, *backups),
                             expires_seconds=expires)


def parse_caller_id(check: Checker, trunk: LineDict, name: str) -> str | None:
    """The trunk's `caller_id` (the From user of calls we place through it), or None."""
    value = check.text(trunk, "caller_id", f"trunk {name!r}")
    if value is not None and not _CALLER_ID.match(value):
        check.error(trunk.line_of("caller_id"), f"trunk {name!r} caller_id must be a number or SIP user "
                                                f"(digits, letters, + . _ ~ -), not {value!r}")
        return None
    return value
