"""Network namespaces of a test's own: two joined by a veth pair, for peers that will not talk
over loopback; or one with nothing but its loopback, for a test that wants 127.0.0.0/8 to itself.

baresip (libre) ignores loopback-only hosts: it needs an interface with a real address. A test
makes its own little network instead of using the machine's:

    with NetnsPair.create() as net:          # raises NetnsUnavailable (not root, no `ip`, ...)
        start_server(..., host=net.server_address, command_prefix=net.exec_in(net.server_ns))
        subprocess.Popen([*net.exec_in(net.peer_ns), "baresip", ...])

`server_ns` holds `server_address` (and its own 127.0.0.1), `peer_ns` holds `peer_address`; the
two /30 addresses exist only inside these namespaces, so nothing in them can reach, or be reached
from, any other host. Deleting a namespace deletes its end of the veth pair.

    with LoopbackNetns.create("cluster") as ns:   # NetnsUnavailable too
        subprocess.run([*ns.exec_in(), sys.executable, "-m", "pytest", ...])

`LoopbackNetns` has `lo` up and no other interface: the processes started in it (and their
children, which inherit it) have 127.0.0.0/8 to themselves and reach no address of the machine.
own_netns.py runs a whole test in one.

Namespaces left by a test process that was killed (SIGKILL skips finalizers) are deleted by the
next `create()`, once the processes still running in them are killed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
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


def pids_in(name: str) -> list[int]:
    """The processes running in namespace `name` now (`ip netns pids`); [] when there is no such namespace."""
    listing = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                             timeout=IP_TIMEOUT_SECONDS)
    return [int(pid) for pid in listing.stdout.split() if pid.isdigit()]


def _kill_inside(name: str) -> list[int]:
    """SIGKILL every process still in namespace `name` (a test's own: the test started them all)."""
    killed = []
    for pid in pids_in(name):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


def _delete(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=IP_TIMEOUT_SECONDS)


def _check_available() -> None:
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("the `ip` command (iproute2) is not installed")


def delete_stale() -> list[str]:
    """Delete this module's namespaces whose test process is gone, killing what still runs in
    them first (else a namespace lives on, nameless); returns their names."""
    stale = []
    for name in _names():
        match = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_inside(name)
            _delete(name)
            stale.append(name)
    return stale


@dataclass
class LoopbackNetns:
    """One namespace with its loopback up and no other interface, named after this process."""

    name: str

    @classmethod
    def create(cls, label: str) -> LoopbackNetns:
        """Make it (`label`: letters, digits, _); NetnsUnavailable says why not."""
        _check_available()
        delete_stale()
        namespace = cls(f"{PREFIX}{os.getpid()}-{label}")
        namespace.close()  # one this process left (same name)
        try:
            _ip("netns", "add", namespace.name)
            _ip("-n", namespace.name, "link", "set", "lo", "up")
        except NetnsUnavailable:
            namespace.close()
            raise
        return namespace

    def exec_in(self) -> tuple[str, ...]:
        """The command prefix that runs a program in it (`ip netns exec` execs it: same pid)."""
        return ("ip", "netns", "exec", self.name)

    def close(self) -> list[int]:
        """Kill (SIGKILL) whatever still runs in it, then delete it; safe to call twice. Returns
        the pids killed: none when the test stopped everything it started."""
        if self.name not in _names():
            return []
        killed = _kill_inside(self.name)
        _delete(self.name)
        return killed

    def __enter__(self) -> LoopbackNetns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        _check_available()
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
                _delete(name)

    def __enter__(self) -> NetnsPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
