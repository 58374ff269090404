"""Two network namespaces joined by a veth pair, for peers that will not talk over loopback.

baresip (libre) ignores loopback-only hosts: it needs an interface with a real address. A test
makes its own little network instead of using the machine's:

    with NetnsPair.create() as net:          # raises NetnsUnavailable (not root, no `ip`, ...)
        start_server(..., host=net.server_address, command_prefix=net.exec_in(net.server_ns))
        subprocess.Popen([*net.exec_in(net.peer_ns), "baresip", ...])

`server_ns` holds `server_address` (and its own 127.0.0.1), `peer_ns` holds `peer_address`; the
two /30 addresses exist only inside these namespaces, so nothing in them can reach, or be reached
from, any other host. Deleting a namespace deletes its end of the veth pair. Namespaces left by a
test process that was killed (SIGKILL skips finalizers) are deleted by the next `create()`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

PREFIX = "acd-e2e-"
SERVER_ADDRESS = "10.200.0.1"  # test addresses, private to the two namespaces (never routed)
PEER_ADDRESS = "10.200.0.2"
PREFIX_LENGTH = 30
IP_TIMEOUT_SECONDS = 10


class NetnsUnavailable(RuntimeError):
    """The namespaces could not be made (not root, no iproute2, no veth support); says why."""


def _ip(*args: str) -> None:
    try:
        completed = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {error}") from error
    if completed.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {completed.stderr.strip()}")


def _names() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=IP_TIMEOUT_SECONDS)
    return [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_stale() -> list[str]:
    """Delete this module's namespaces whose test process is gone; returns their names."""
    stale = []
    for name in _names():
        match = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if match and not _pid_alive(int(match.group(1))):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=IP_TIMEOUT_SECONDS)
            stale.append(name)
    return stale


@dataclass
class NetnsPair:
    """A server namespace and a peer namespace, a veth pair between them with test addresses."""

    server_ns: str
    peer_ns: str
    server_address: str = SERVER_ADDRESS
    peer_address: str = PEER_ADDRESS

    @classmethod
    def create(cls) -> NetnsPair:
        """Make both namespaces (loopback up in each) and the veth pair; NetnsUnavailable says why not."""
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (ip netns add)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
        delete_stale()
        pid = os.getpid()
        pair = cls(server_ns=f"{PREFIX}{pid}-srv", peer_ns=f"{PREFIX}{pid}-peer")
        server_link, peer_link = f"acd{pid}s", f"acd{pid}p"  # interface names: 15 characters at most
        try:
            _ip("netns", "add", pair.server_ns)
            _ip("netns", "add", pair.peer_ns)
            _ip("link", "add", server_link, "netns", pair.server_ns, "type", "veth",
                "peer", "name", peer_link, "netns", pair.peer_ns)
            for namespace, link, address in ((pair.server_ns, server_link, pair.server_address),
                                             (pair.peer_ns, peer_link, pair.peer_address)):
                _ip("-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", link)
                _ip("-n", namespace, "link", "set", link, "up")
                _ip("-n", namespace, "link", "set", "lo", "up")
        except NetnsUnavailable:
            pair.close()
            raise
        return pair

    def exec_in(self, namespace: str) -> tuple[str, ...]:
        """The command prefix that runs a program in `namespace` (`ip netns exec` execs it: same pid)."""
        return ("ip", "netns", "exec", namespace)

    def close(self) -> None:
        """Delete both namespaces (and with them the veth pair); safe to call twice. Stop the
        processes inside first: a namespace lives on, nameless, while a process still uses it."""
        existing = set(_names())
        for name in (self.server_ns, self.peer_ns):
            if name in existing:
                subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=IP_TIMEOUT_SECONDS)

    def __enter__(self) -> NetnsPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
