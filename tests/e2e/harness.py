"""End-to-end harness: the real server as a subprocess, SIPp as the peer, RTP sinks. 127.0.0.1 only.

Every process started here is bounded in time and killed by pid when the test ends.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SIPP_PCAPS = Path("/usr/share/sip-tester")
LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_DGRAM, both: bool = True) -> int:
    """A port free for UDP (and TCP when `both`) on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        if not both:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind((LOOPBACK, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found on 127.0.0.1")


def port_is_free(port: int) -> bool:
    """True when `port` can be bound on 127.0.0.1 for both UDP and TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def wait_until(predicate, timeout: float, what: str, *, interval: float = 0.05, server: AcdServer | None = None):
    """Poll `predicate` until it returns something truthy, and return that. After `timeout` seconds
    (or as soon as `server`, when given, has exited) fail with `what` and the server's log tail."""
    deadline = time.monotonic() + timeout
    while True:
        exited = server is not None and not server.alive()  # checked first: what it did before exiting counts
        value = predicate()
        if value:
            return value
        if exited:
            why = f"the server exited ({server.process.returncode})"
            break
        if time.monotonic() >= deadline:
            why = f"not after {timeout}s"
            break
        time.sleep(interval)
    tail = f"; server log tail:\n{server.log()[-3000:]}" if server is not None else ""
    raise AssertionError(f"{what} ({why}){tail}")


def log_shows_secret(log: str, digits: str) -> bool:
    """True when `digits` (a PIN, an account number) stand as a number of their own in a server log.
    Process ids, port numbers and Call-IDs may hold the same digits by chance and do not count."""
    return re.search(rf"\b{re.escape(digits)}\b", re.sub(r"pid \d+|ports? [\d-]+|:\d+", "", log)) is not None


def rtp_base() -> int:
    """A random even base for a 400-port RTP range below the kernel's ephemeral range (32768+), so
    SIPp's and the softphones' own sockets never fill it; the server skips ports already taken."""
    return random.randrange(12000, 32000, 2)


def write_config(root: Path, *, sip_port: int, rtp_base: int, trunk_sources: list[str] | None = None,
                 flows_from: Path = REPO, extra_files: dict[str, str] | None = None,
                 trunk_outbound: str | None = None, http_port: int = 0, main_extra: str = "",
                 rtp_ports: int = 400, sip_extra: str = "", trunk_extra: str = "",
                 rtp_workers: int | str | None = None, host: str = LOOPBACK, rtp_extra: str = "") -> None:
    """A config tree for one test server: the shipped demo dialplans, flows, queues and look-ups, on
    test ports, with office hours open around the clock (tests must not depend on the time of day).
    `extra_files` ({relative path: text}) adds or replaces files; `sip_extra` adds lines (indented
    two spaces) to the `sip:` block, e.g. transports, tcp limits, tls; `trunk_extra` adds settings to
    the trunk `test`, e.g. "srtp: required". `rtp_workers`: `rtp: workers:` (None: the default, auto);
    `rtp_extra` adds lines (indented two spaces) to the `rtp:` block, e.g. "symmetric: always".
    `host`: the address SIP, RTP and HTTP bind and advertise (a test address inside a network
    namespace the test made, see netns.py; 127.0.0.1 otherwise)."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    sources = trunk_sources or [LOOPBACK]
    (root / "conf" / "acd.yaml").write_text(
        "sip:\n"
        f"  listen: {host}\n  port: {sip_port}\n  public_address: {host}\n" + sip_extra +
        "rtp:\n"
        f"  address: {host}\n  ports: {rtp_base}-{rtp_base + rtp_ports - 1}\n"
        + (f"  workers: {rtp_workers}\n" if rtp_workers is not None else "") + rtp_extra +
        f"http:\n  listen: {host}\n  port: {http_port}\n"
        "trunks:\n"
        "  test:\n"
        f"    sources: [{', '.join(sources)}]\n"
        + (f"    outbound: \"{trunk_outbound}\"\n" if trunk_outbound else "")
        + "".join(f"    {line}\n" for line in trunk_extra.splitlines()) +
        "data_dir: data\n"
        f"sounds_dir: {flows_from / 'sounds'}\n" + main_extra
    )
    for folder in ("dialplans", "ivr_flows", "conf/lookups"):
        if (root / folder).exists():
            shutil.rmtree(root / folder)
        shutil.copytree(flows_from / folder, root / folder)
    for name in ("agents.yaml", "incidents.yaml"):
        shutil.copy(flows_from / "conf" / name, root / "conf" / name)
    (root / "conf" / "hours.yaml").write_text(
        "demo_hours:\n  timezone: UTC\n  weekly:\n    mon-sun: \"00:00-24:00\"\n"
        "office_hours:\n  timezone: UTC\n  weekly:\n    mon-sun: \"00:00-24:00\"\n")
    for relative, text in (extra_files or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


LOG_FLUSH_WAIT_SECONDS = 0.25  # acd.log_output.FLUSH_INTERVAL_SECONDS and a margin


@dataclass
class AcdServer:
    """A running `acd serve` subprocess and its log."""

    root: Path
    sip_port: int
    process: subprocess.Popen
    log_path: Path
    _log_file: object = field(repr=False, default=None)
    host: str = LOOPBACK

    @property
    def target(self) -> str:
        """host:port for SIPp."""
        return f"{self.host}:{self.sip_port}"

    def log(self) -> str:
        """Everything the server logged so far. `acd serve` writes its lines in batches every 0.1 s
        (acd/log_output.py): while it runs, this waits that long first, so a line for what just
        happened is there."""
        if self.process.poll() is None:
            time.sleep(LOG_FLUSH_WAIT_SECONDS)
        return self._read_log()

    def _read_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> re.Match:
        """Wait until the log matches `pattern` (regex) `count` times; returns the last of those
        matches. Fails with the log tail."""
        regex = re.compile(pattern)

        def found() -> re.Match | None:
            matches = list(regex.finditer(self._read_log()))
            return matches[count - 1] if len(matches) >= count else None

        times = f" {count} times" if count > 1 else ""
        return wait_until(found, timeout, f"server log has no /{pattern}/{times}", server=self)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()


def start_server(root: Path, *, sip_port: int, rtp_base: int, trunk_sources: list[str] | None = None,
                 log_level: str = "INFO", extra_files: dict[str, str] | None = None,
                 trunk_outbound: str | None = None, http_port: int = 0, main_extra: str = "",
                 rtp_ports: int = 400, serve_args: tuple[str, ...] = (), sip_extra: str = "",
                 trunk_extra: str = "", rtp_workers: int | str | None = None, host: str = LOOPBACK,
                 command_prefix: tuple[str, ...] = (), rtp_extra: str = "") -> AcdServer:
    """Write a config under `root` and start the server on it (`serve_args`: more `acd serve`
    options, e.g. ("--drain-seconds", "2")); waits until it listens. `host` as for write_config;
    `command_prefix` runs the server through another command, e.g. ("ip", "netns", "exec", name),
    which must exec it (the pid stays the server's, so stop() signals the server itself)."""
    write_config(root, sip_port=sip_port, rtp_base=rtp_base, trunk_sources=trunk_sources, extra_files=extra_files,
                 trunk_outbound=trunk_outbound, http_port=http_port, main_extra=main_extra, rtp_ports=rtp_ports,
                 sip_extra=sip_extra, trunk_extra=trunk_extra, rtp_workers=rtp_workers, host=host,
                 rtp_extra=rtp_extra)
    log_path = root / "server.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen([*command_prefix, sys.executable, "-m", "acd.cli", "serve", "--root", str(root),
                                "--log-level", log_level, *serve_args], stdout=log_file, stderr=subprocess.STDOUT,
                               cwd=root)
    server = AcdServer(root=root, sip_port=sip_port, process=process, log_path=log_path, _log_file=log_file,
                       host=host)
    try:
        server.wait_for_log(r"listening for SIP", timeout=20)
        if http_port:  # the API token file is written when the HTTP API starts, after the SIP ports
            server.wait_for_log(r"HTTP API on http://", timeout=20)
    except AssertionError:
        server.stop()
        raise
    return server


@dataclass
class SippResult:
    """What a SIPp run produced."""

    returncode: int
    stdout: str
    stderr: str
    errors: str

    def assert_ok(self, server: AcdServer | None = None) -> None:
        """Fail with SIPp's error log (and the server log tail) unless every call succeeded."""
        if self.returncode != 0:
            tail = server.log()[-4000:] if server else ""
            raise AssertionError(f"sipp exit {self.returncode}\nstderr:{self.stderr[-2000:]}\n"
                                 f"errors:{self.errors[-4000:]}\nserver log tail:\n{tail}")


def run_sipp(workdir: Path, target: str, *args: str, scenario: str | None = None, calls: int = 1,
             timeout: float = 30.0, service: str = "1000", rate: float | None = None, limit: int | None = None,
             keys: dict[str, str] | None = None, args_set: dict[str, str] | None = None) -> SippResult:
    """Run SIPp as a UAC against `target`, bounded by `-m`, `-timeout` and a process timeout."""
    workdir.mkdir(parents=True, exist_ok=True)
    local_port = free_port()  # free for TCP too: `-t t1` binds it for TCP (EADDRINUSE seen in CI)
    media_port = free_port(both=False)
    command = ["sipp", target, "-i", LOOPBACK, "-p", str(local_port), "-mp", str(media_port), "-s", service,
               "-m", str(calls), "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
               "-error_file", str(workdir / "errors.log"), "-max_retrans", "5"]
    if scenario:
        command += ["-sf", str(SCENARIOS / scenario)]
    if rate is not None:
        command += ["-r", str(rate)]
    if limit is not None:
        command += ["-l", str(limit)]
    for key, value in (keys or {}).items():
        command += ["-key", key, value]
    for name, value in (args_set or {}).items():
        command += ["-set", name, value]
    command += list(args)
    try:
        completed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout + 15)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"sipp did not finish within {timeout + 15}s: {' '.join(command)}") from expired
    errors_path = workdir / "errors.log"
    errors = errors_path.read_text(errors="replace") if errors_path.exists() else ""
    return SippResult(completed.returncode, completed.stdout, completed.stderr, errors)


def start_sipp(workdir: Path, target: str, scenario: str | Path, *, service: str = "3000", calls: int = 1,
               rate: float | None = None, timeout: float = 60.0, timeout_error: bool = True,
               args: tuple[str, ...] = ()) -> subprocess.Popen:
    """SIPp in the background (for callers that run while the test does other things); the caller
    waits for it and kills it in a finally block. `scenario` is a name in scenarios/ or a path."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = SCENARIOS / scenario if "/" not in str(scenario) else Path(scenario)
    command = ["sipp", target, "-sf", str(path), "-s", service, "-i", LOOPBACK, "-p", str(free_port()),
               "-mp", str(free_port(both=False)), "-m", str(calls), "-nostdin", "-timeout", f"{int(timeout)}s"]
    if timeout_error:
        command.append("-timeout_error")
    if rate is not None:
        command += ["-r", str(rate)]
    return subprocess.Popen(command + list(args), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class RtpSink:
    """A UDP socket on 127.0.0.1 that collects RTP packets in a background thread."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((LOOPBACK, 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.socket.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received(data)

    def received(self, data: bytes) -> None:
        """Keep one packet (runs on the sink's thread; subclasses may note more about it)."""
        self.packets.append(data)

    def close(self) -> None:
        """Stop collecting and close the socket."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.socket.close()


def sipp_available() -> bool:
    """True when the sipp binary is on PATH."""
    return shutil.which("sipp") is not None


def environment_note() -> str:
    """For skip messages."""
    return f"PATH={os.environ.get('PATH', '')}"
