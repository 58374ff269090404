"""`sip: tcp:` (connection limits) and `sip: tls:` (certificate, key, version floor) in conf/acd.yaml:
defaults, values, and every mistake reported at its file and line with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from acd.config.loader import ConfigInvalid, load_config
from acd.config.model import StreamSettings
from tests.e2e.harness import write_config
from tests.tls_material import make_self_signed


def tree(root: Path, sip_extra: str = "", transports: str = "[udp, tcp]") -> Path:
    """A config tree whose `sip:` block gets `transports` and the YAML lines of `sip_extra`."""
    write_config(root, sip_port=5060, rtp_base=20000)
    path = root / "conf" / "acd.yaml"
    path.write_text(path.read_text().replace("rtp:\n", f"  transports: {transports}\n{sip_extra}rtp:\n", 1))
    return path


def errors(root: Path) -> list[tuple[int, str]]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config(root)
    assert all(error.path.endswith("conf/acd.yaml") for error in caught.value.errors)
    return [(error.line, error.message) for error in caught.value.errors]


def line_of(path: Path, needle: str) -> int:
    return next(number for number, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_defaults_without_the_blocks(tmp_path):
    """No `tcp:` block: the documented defaults; no `tls:` and no tls transport: the server starts."""
    tree(tmp_path)
    sip = load_config(tmp_path).sip
    assert sip.tcp == StreamSettings() and sip.tcp.idle_timeout_seconds == 120
    assert sip.tcp.partial_message_timeout_seconds == 20 and sip.tcp.max_connections_per_ip == 200
    assert sip.tcp.max_connections == 2048 and sip.tcp.max_message_bytes == 65535
    assert sip.tls.port == 5061 and "tls" not in sip.transports


def test_tcp_limits_are_read(tmp_path):
    tree(tmp_path, "  tcp:\n    idle_timeout_seconds: 30\n    partial_message_timeout_seconds: 2.5\n"
                   "    max_connections_per_ip: 7\n    max_connections: 70\n    max_message_bytes: 4096\n")
    assert load_config(tmp_path).sip.tcp == StreamSettings(30.0, 2.5, 7, 70, 4096)


@pytest.mark.parametrize("line, needle", [
    ("    idle_timeout_seconds: 0\n", "idle_timeout_seconds must be between 1"),
    ("    partial_message_timeout_seconds: fast\n", "partial_message_timeout_seconds must be a number"),
    ("    max_connections_per_ip: 1.5\n", "max_connections_per_ip must be an integer"),
    ("    max_message_bytes: 100000\n", "max_message_bytes must be between 1500 and 65535"),
    ("    idle_timeout: 30\n", "unknown key 'idle_timeout' in sip tcp"),
])
def test_a_bad_tcp_limit_names_its_line(tmp_path, line, needle):
    path = tree(tmp_path, "  tcp:\n" + line)
    [(number, message)] = errors(tmp_path)
    assert number == line_of(path, line.strip().split(":")[0]) and needle in message


def test_tls_with_a_matching_pair_loads(tmp_path):
    make_self_signed(tmp_path / "tls")
    tree(tmp_path, "  tls:\n    port: 5071\n    certificate: tls/acd.crt\n    private_key: tls/acd.key\n"
                   "    min_version: 1.3\n", transports="[udp, tcp, tls]")
    tls = load_config(tmp_path).sip.tls
    assert tls.port == 5071 and tls.certificate == (tmp_path / "tls" / "acd.crt").resolve()
    assert tls.min_version == "1.3"


def test_tls_block_is_not_checked_while_tls_is_off(tmp_path):
    """The demo config names data/tls/ files that scripts/setup makes: without tls on, they may be missing."""
    tree(tmp_path, "  tls:\n    certificate: data/tls/acd.crt\n    private_key: data/tls/acd.key\n")
    assert load_config(tmp_path).sip.tls.certificate.name == "acd.crt"


def test_tls_on_with_missing_files_says_to_run_setup(tmp_path):
    path = tree(tmp_path, "  tls:\n    certificate: nowhere/acd.crt\n    private_key: nowhere/acd.key\n",
                transports="[udp, tcp, tls]")
    [(number, message)] = errors(tmp_path)
    assert number == line_of(path, "certificate:") and "does not exist" in message and "scripts/setup" in message


def test_tls_on_without_a_tls_block_is_an_error(tmp_path):
    path = tree(tmp_path, transports="[udp, tls]")
    [(number, message)] = errors(tmp_path)
    assert number == line_of(path, "transports:") and "'certificate'" in message


def test_a_key_of_another_certificate_names_the_key_line(tmp_path):
    make_self_signed(tmp_path / "a")
    make_self_signed(tmp_path / "b")
    path = tree(tmp_path, "  tls:\n    certificate: a/acd.crt\n    private_key: b/acd.key\n",
                transports="[udp, tcp, tls]")
    [(number, message)] = errors(tmp_path)
    assert number == line_of(path, "private_key:") and "does not belong to certificate" in message


def test_a_file_that_is_not_pem_names_its_line(tmp_path):
    make_self_signed(tmp_path / "tls")
    (tmp_path / "tls" / "acd.crt").write_text("not a certificate\n")
    path = tree(tmp_path, "  tls:\n    certificate: tls/acd.crt\n    private_key: tls/acd.key\n",
                transports="[udp, tcp, tls]")
    [(number, message)] = errors(tmp_path)
    assert number == line_of(path, "certificate:") and "no PEM certificate" in message


def test_old_tls_versions_and_a_shared_port_are_refused(tmp_path):
    make_self_signed(tmp_path / "tls")
    path = tree(tmp_path, "  tls:\n    port: 5060\n    certificate: tls/acd.crt\n    private_key: tls/acd.key\n"
                          "    min_version: \"1.1\"\n", transports="[udp, tcp, tls]")
    found = errors(tmp_path)
    assert (line_of(path, "    port: 5060"), "sip tls port 5060 is the TCP port too: TLS needs its own (5061)") in found
    assert any(number == line_of(path, "min_version") and "RFC 8996" in message for number, message in found)
