"""Kamailio playing a carrier (ITSP) for the e2e tests: `Carrier` runs tests/e2e/kamailio_carrier.cfg in
the foreground on a loopback port, restartable, with its control socket for `kamcmd`.

What the carrier does (see the cfg): a registrar that requires Digest auth for one account; a proxy
that challenges its customer's INVITEs with 407 and sends them to the "PSTN" (a SIPp UAS at
`pstn_port`); calls from the PSTN to the account's numbers (`ACCOUNT_DIDS`) go to the account's
registered Contact, with `Require: 100rel` added for the numbers in `PRACK_DIDS`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from acd.devtools.kamailio_front import kamcmd, stop_kamailio

from .harness import LOOPBACK, wait_until

__all__ = ["Carrier", "carrier_tools_installed", "ACCOUNT_USER", "ACCOUNT_PASSWORD", "REALM", "ACCOUNT_DIDS",
           "PRACK_DIDS"]

CONFIG = Path(__file__).with_name("kamailio_carrier.cfg")
ACCOUNT_USER, ACCOUNT_PASSWORD, REALM = "acd", "carrier-pw-7", "carrier.test"
ACCOUNT_DIDS = "^10[0-9][0-9]$"  # the numbers PSTN callers dial to reach the account (the demo's 10xx routes)
PRACK_DIDS = "^1010$"            # of those, the ones the carrier requires 100rel for (the demo's early media)


def carrier_tools_installed() -> bool:
    """True when Kamailio, kamcmd and SIPp are on PATH (scripts/setup installs them)."""
    return all(shutil.which(tool) for tool in ("kamailio", "kamcmd", "sipp"))


class Carrier:
    """A Kamailio process in the foreground (-DD -E) on 127.0.0.1:`port`, restartable; its registrar
    grants at most `max_expires_seconds`."""

    def __init__(self, workdir: Path, port: int, pstn_port: int, *, max_expires_seconds: int = 3600) -> None:
        self.workdir = workdir
        self.port = port
        self.pstn_port = pstn_port
        self.max_expires_seconds = max_expires_seconds
        self.socket = workdir / "ctl"
        self.process: subprocess.Popen | None = None
        self.runs = 0
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def target(self) -> str:
        """host:port, for SIPp."""
        return f"{LOOPBACK}:{self.port}"

    def start(self, digest_algorithm: str = "MD5") -> None:
        """Start Kamailio; its challenges use `digest_algorithm` (MD5 or SHA-256, RFC 8760)."""
        self.runs += 1
        log = open(self.workdir / f"kamailio-{self.runs}.log", "wb")
        self.process = subprocess.Popen(
            ["kamailio", "-f", str(CONFIG), "-DD", "-E", "-m", "32", "-M", "4", "-l", f"udp:{LOOPBACK}:{self.port}",
             "-Y", str(self.workdir), "-w", str(self.workdir), "-A", f'ACCOUNT_USER="{ACCOUNT_USER}"',
             "-A", f'ACCOUNT_PASSWORD="{ACCOUNT_PASSWORD}"', "-A", f'CARRIER_REALM="{REALM}"',
             "-A", f'PSTN_URI="sip:{LOOPBACK}:{self.pstn_port}"', "-A", f'CTL_SOCKET="unix:{self.socket}"',
             "-A", f'ACCOUNT_DIDS="{ACCOUNT_DIDS}"', "-A", f'PRACK_DIDS="{PRACK_DIDS}"',
             "-A", f"MAX_EXPIRES={self.max_expires_seconds}", "-A", f'DIGEST_ALGORITHM="{digest_algorithm}"'],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: self.socket.exists() and self._rpc("core.uptime") is not None, 10,
                   "Kamailio answers on its control socket")

    def stop(self) -> None:
        """Stop Kamailio (terminate, then kill after 5 s)."""
        stop_kamailio(self.process, self.socket)

    def _rpc(self, command: str) -> str | None:
        return kamcmd(self.socket, command)

    def contacts(self) -> list[str]:
        """The Contacts bound to the account now (kamcmd ul.dump)."""
        return re.findall(r"Address:\s*(\S+)", self._rpc("ul.dump") or "")

    def log(self) -> str:
        """Everything every run of Kamailio logged so far."""
        return "".join((self.workdir / f"kamailio-{run}.log").read_text(errors="replace")
                       for run in range(1, self.runs + 1))
