"""The shipped fail2ban filter and jail (conf/fail2ban/): the filter matches exactly the `auth failure:`
lines the server writes, takes the packet's address from them, and cannot be steered by a user name;
the jail parses with fail2ban's own reader. The e2e guessing test runs the filter on a real log."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from acd.log_output import LineFormatter
from acd.registrar.auth_log import FAILURE_REASONS, failure_line, retry_line

REPO = Path(__file__).resolve().parents[2]
FILTER = REPO / "conf" / "fail2ban" / "filter.d" / "acd-sip.conf"
JAIL = REPO / "conf" / "fail2ban" / "jail.d" / "acd-sip.conf"
# `acd serve`'s format (acd/log_output.py); the record's time is fixed so the lines are reproducible.
FORMAT = LineFormatter()

needs_fail2ban = pytest.mark.skipif(shutil.which("fail2ban-regex") is None,
                                    reason="fail2ban-regex (Debian package fail2ban) is installed by scripts/setup")


def line(level: int, message: str, name: str = "acd.registrar") -> str:
    record = logging.LogRecord(name, level, __file__, 1, "%s", (message,), None)
    record.created, record.msecs = 1_767_225_600.0, 123.0
    return FORMAT.format(record)


def matched_addresses(tmp_path: Path, lines: list[str]) -> list[str]:
    log = tmp_path / "acd.log"
    log.write_text("\n".join(lines) + "\n")
    done = subprocess.run(["fail2ban-regex", "-o", "ip", str(log), str(FILTER)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


@needs_fail2ban
def test_filter_matches_every_failure_reason_and_nothing_else(tmp_path):
    failures = [line(logging.WARNING, failure_line(source=(f"192.0.2.{n}", 5060 + n), transport="UDP",
                                                   method="REGISTER", reason=reason, user="1001"))
                for n, reason in enumerate(sorted(FAILURE_REASONS), 1)]
    others = [
        line(logging.INFO, retry_line(source=("198.51.100.1", 5060), transport="UDP", method="REGISTER",
                                      reason="stale-nonce", user="1001")),
        line(logging.INFO, retry_line(source=("198.51.100.2", 5060), transport="TCP", method="INVITE",
                                      reason="replayed-nonce", user="1001")),
        line(logging.INFO, "agent=1001 registered contact=sip:1001@198.51.100.3:5060 from 198.51.100.3:5060"),
        line(logging.WARNING, "account '1001' locked for 300 s after 30 failed authentications within 60 s"),
        # A message quoting a failure line elsewhere in a log line must not match.
        line(logging.WARNING, "rejected 400 from 198.51.100.4:5060: auth failure: source=198.51.100.5:1 "
                              'transport=UDP method=REGISTER reason=wrong-password user="1"', name="acd.sip"),
    ]
    assert matched_addresses(tmp_path, failures + others) == [f"192.0.2.{n}" for n in range(1, len(failures) + 1)]


@needs_fail2ban
def test_filter_takes_ipv6_and_tls_sources(tmp_path):
    text = line(logging.WARNING, failure_line(source=("2001:db8::7", 5061), transport="TLS", method="INVITE",
                                              reason="locked", user="1001"))
    assert matched_addresses(tmp_path, [text]) == ["2001:db8::7"]


@needs_fail2ban
def test_a_user_name_cannot_make_the_filter_ban_another_address(tmp_path):
    user = '1001" source=203.0.113.66:5060 transport=UDP method=REGISTER reason=wrong-password user="x'
    text = line(logging.WARNING, failure_line(source=("192.0.2.9", 5060), transport="UDP", method="REGISTER",
                                              reason="unknown-user", user=user))
    assert matched_addresses(tmp_path, [text]) == ["192.0.2.9"]


@pytest.mark.skipif(shutil.which("fail2ban-client") is None or not Path("/etc/fail2ban/jail.conf").exists(),
                    reason="fail2ban (Debian package) is installed by scripts/setup")
def test_jail_parses_with_fail2ban_and_uses_the_filter(tmp_path):
    """fail2ban's own config reader (-d: dump, start nothing) on the stock config plus our two files."""
    config = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", config, ignore=shutil.ignore_patterns("jail.d", "*.local"))
    (config / "jail.d").mkdir()
    shutil.copy(FILTER, config / "filter.d" / "acd-sip.conf")
    shutil.copy(JAIL, config / "jail.d" / "acd-sip.conf")
    log = tmp_path / "acd.log"
    log.write_text("")
    (config / "jail.d" / "zz-test.local").write_text(f"[acd-sip]\nlogpath = {log}\n")
    done = subprocess.run(["fail2ban-client", "-c", str(config), "-d"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    dump = done.stdout
    assert "['add', 'acd-sip', 'auto']" in dump
    assert "['set', 'acd-sip', 'maxretry', 10]" in dump and "['set', 'acd-sip', 'bantime', '1h']" in dump
    assert "auth failure: source=<ADDR>" in dump
    assert "'protocol', 'udp'" in dump and "'protocol', 'tcp'" in dump
