"""Kamailio as the cluster's front door, for `scripts/cluster` and the e2e tests: the shipped
`conf/kamailio/kamailio.cfg`, a dispatcher list written for the given nodes, one Kamailio in the
foreground (-DD -E) on `host:port`, and its state read back over its control socket (`kamcmd`).

The program comes from the Debian package `kamailio` (scripts/setup installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["KamailioFront", "NodeState", "CONFIG", "dispatcher_list", "kamcmd", "stop_kamailio", "unavailable_reason"]

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "kamailio" / "kamailio.cfg"
DISPATCHER_SET = 1


def unavailable_reason() -> str | None:
    """None when Kamailio and kamcmd are installed; otherwise what is missing (for a test skip)."""
    missing = [tool for tool in ("kamailio", "kamcmd") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not installed (Debian package kamailio: run scripts/setup)" if missing else None


def kamcmd(socket: Path, *command: str) -> str | None:
    """kamcmd's answer to `command` over Kamailio's control socket; None when it fails."""
    try:
        result = subprocess.run(["kamcmd", "-s", f"unix:{socket}", *command], capture_output=True, text=True,
                                timeout=5)
    except subprocess.TimeoutExpired:
        return None
    return result.stdout if result.returncode == 0 else None


def stop_kamailio(process: subprocess.Popen | None, socket: Path) -> None:
    """Stop a Kamailio started with -DD (SIGTERM, then SIGKILL after 5 s) and remove its control socket."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    socket.unlink(missing_ok=True)


def dispatcher_list(nodes: Sequence[tuple[str, int]]) -> str:
    """The dispatcher list file for `nodes` ((host, port) each, in order): set 1, no flags, priority 0."""
    lines = ["# setid destination flags priority attributes (written by acd.devtools.kamailio_front)"]
    lines += [f"{DISPATCHER_SET} sip:{host}:{port} 0 0 node={number}"
              for number, (host, port) in enumerate(nodes, start=1)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node as the dispatcher sees it: its URI and flags ("AP": active and probed; "IP": inactive)."""

    uri: str
    flags: str

    @property
    def active(self) -> bool:
        """True while new calls may go to this node."""
        return self.flags.startswith("A")


class KamailioFront:
    """One Kamailio process running the front-door config for `nodes`, with its files in `workdir`."""

    def __init__(self, workdir: Path, host: str, port: int, nodes: Sequence[tuple[str, int]], *,
                 ping_interval_seconds: int = 1, fr_timer_ms: int = 2000, algorithm: int = 0,
                 config: Path = CONFIG) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self.nodes = list(nodes)
        self.ping_interval_seconds = ping_interval_seconds
        self.fr_timer_ms = fr_timer_ms
        self.algorithm = algorithm
        self.config = config
        self.socket = workdir / "ctl"
        self.log_path = workdir / "kamailio.log"
        self.process: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def target(self) -> str:
        """host:port, for SIPp and softphones."""
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The kamailio command line (after `start` has written the dispatcher list)."""
        return ["kamailio", "-f", str(self.config), "-DD", "-E", "-m", "64", "-M", "8",
                "-l", f"udp:{self.host}:{self.port}", "-Y", str(self.workdir), "-w", str(self.workdir),
                "-A", f'DISPATCHER_LIST="{self.workdir / "dispatcher.list"}"',
                "-A", f'CTL_SOCKET="unix:{self.socket}"', "-A", f"DS_PING_INTERVAL={self.ping_interval_seconds}",
                "-A", f"FR_TIMER_MS={self.fr_timer_ms}", "-A", f'DS_ALGORITHM="{self.algorithm}"']

    def start(self, timeout: float = 10.0) -> "KamailioFront":
        """Write the dispatcher list and start Kamailio; return once its control socket answers.
        RuntimeError with the log tail when it does not start."""
        (self.workdir / "dispatcher.list").write_text(dispatcher_list(self.nodes))
        self.socket.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self.socket.exists() and self.rpc("core.uptime") is not None):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Kamailio did not start ({' '.join(self.command())}); log tail:\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop Kamailio (SIGTERM, then SIGKILL after 5 s)."""
        stop_kamailio(self.process, self.socket)

    def rpc(self, *command: str) -> str | None:
        """kamcmd's answer to `command` over the control socket; None when it fails."""
        return kamcmd(self.socket, *command)

    def node_states(self) -> list[NodeState]:
        """Every node with its dispatcher flags now (`kamcmd dispatcher.list`)."""
        found = re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", self.rpc("dispatcher.list") or "")
        return [NodeState(uri, flags) for uri, flags in found]

    def active_nodes(self) -> set[str]:
        """The URIs of the nodes new calls may go to now."""
        return {state.uri for state in self.node_states() if state.active}

    def log(self) -> str:
        """Everything Kamailio logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
