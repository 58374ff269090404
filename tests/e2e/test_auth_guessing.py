"""Password guessing against the real server over real UDP (issue 15): an attacker that changes its
address every 3 guesses locks the account within 30 failures and never gets a 200, not even with the
right password; the agent's own phone keeps registering; `acd agent-unlock` clears the lock; and the
shipped fail2ban filter matches every failure line of the log file the server wrote."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import free_port, rtp_base, start_server
from .test_registrar import RegisteringPhone

REPO = Path(__file__).resolve().parents[2]
FILTER = REPO / "conf" / "fail2ban" / "filter.d" / "acd-sip.conf"
USER, PASSWORD = "1001", "demo-1001-pw"
FAILURE = re.compile(r"^\S+ \S+ WARNING acd\.registrar auth failure: source=(\S+):(\d+) transport=UDP "
                     r"method=REGISTER reason=(\S+) user=\"(.*)\"$", re.M)


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def fail2ban_matches(log_path: Path) -> list[str]:
    """The address fail2ban-regex takes from each line the shipped filter matches, in log order."""
    done = subprocess.run(["fail2ban-regex", "-o", "ip", str(log_path), str(FILTER)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


@pytest.fixture
def server(tmp_path):
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port,
                          serve_args=("--log-file", str(tmp_path / "data" / "acd.log")))
    yield server
    server.stop()


def test_guessing_from_rotating_addresses_is_locked_out_but_the_agent_is_not(server):
    agent = RegisteringPhone(server.sip_port, USER)  # the agent's own phone, on 127.0.0.1
    phones = [agent]
    try:
        assert status(agent.register_with_password(PASSWORD)) == 200
        statuses = []
        for index in range(12):  # 36 guesses, 3 per address: under every per-address limit
            attacker = RegisteringPhone(server.sip_port, USER, host=f"127.0.0.{index + 2}")
            phones.append(attacker)
            statuses += [status(attacker.register_with_password(f"guess-{index}-{n}")) for n in range(3)]
        assert 200 not in statuses and set(statuses) == {401}, statuses
        log = server.wait_for_log(r"account '1001' locked for 300 s after 30 failed authentications").string
        failures = FAILURE.findall(log)
        assert len([f for f in failures if f[2] == "wrong-password"]) == 30, "locked at the 30th failure"
        assert [f for f in failures if f[2] == "locked"], "later guesses are not even checked"

        thief = RegisteringPhone(server.sip_port, USER, host="127.0.0.30")
        phones.append(thief)
        assert status(thief.register_with_password(PASSWORD)) == 401, "the right password is not confirmed"
        assert status(agent.register_with_password(PASSWORD)) == 200, "the agent's own phone keeps working"

        unlock = subprocess.run([sys.executable, "-m", "acd.cli", "agent-unlock", USER, "--root", str(server.root)],
                                capture_output=True, text=True, timeout=30)
        assert unlock.returncode == 0 and unlock.stdout.strip() == "agent 1001: unlocked", unlock.stderr
        roaming = RegisteringPhone(server.sip_port, USER, host="127.0.0.31")
        phones.append(roaming)
        assert status(roaming.register_with_password(PASSWORD)) == 200, "unlocked: a new address gets in"
    finally:
        for phone in phones:
            phone.close()

    log_file = server.root / "data" / "acd.log"
    failures = FAILURE.findall(log_file.read_text())
    assert len(failures) == 37 and {f[3] for f in failures} == {USER}
    assert {f[0] for f in failures} == {f"127.0.0.{n}" for n in range(2, 14)} | {"127.0.0.30"}
    if shutil.which("fail2ban-regex") is None:
        pytest.skip("fail2ban-regex (Debian package fail2ban, installed by scripts/setup) is not installed")
    assert fail2ban_matches(log_file) == [f[0] for f in failures], "each failure line matched once, nothing else"
