"""Shared pieces of the e2e tests of a cluster behind Kamailio (issue 20): restartable `acd serve`
nodes on 127.0.0.11-13 sharing one PostgreSQL store and nonce secret, SIPp callers through the
front door, and what SIPp and the records say afterwards. Used by test_kamailio_front.py,
test_cluster_e2e.py and scripts/bench/cluster.py.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from acd.devtools.kamailio_front import KamailioFront
from acd.sip.digest import compute_ha1
from acd.store.pg_reader import PgReader

from .harness import LOOPBACK, SCENARIOS, AcdServer, free_port, rtp_base, start_server, wait_until

FRONT_HOST = "127.0.0.10"
NODE_HOSTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
REALM = "example-acd"


def support_agents_yaml(agent_ids: list[str], *, wrap_up: float = 0, ring_timeout: float = 5) -> str:
    """conf/agents.yaml for the demo IVR's support queue (key 2 of number 1000): `agent_ids` (password
    pw-<id>, skill english, queue support), support's callers wait when every agent is busy; sales and
    billing refuse (nobody there)."""
    lines = [f"realm: {REALM}", "digest_algorithms: [MD5, SHA-256]", "queues:",
             f"  support: {{strategy: longest-idle, wrap_up: {wrap_up}, ring_timeout: {ring_timeout}, "
             "when_no_agents: join, announce_every: 60, max_wait: 120}",
             "  sales: {when_no_agents: refuse}", "  billing: {when_no_agents: refuse}", "agents:"]
    for agent in agent_ids:
        lines += [f'  "{agent}":', "    password_ha1:", f"      md5: {compute_ha1(agent, REALM, f'pw-{agent}', 'MD5')}",
                  "    skills: {english: 5}", "    queues: {support: 0}"]
    return "\n".join(lines) + "\n"


class Node:
    """One `acd serve` of the cluster: restartable on the same address, port and data. `main_extra`:
    lines for conf/acd.yaml after `store:` (e.g. a `cluster:` section, `node_id` its name there); `files`: config files to add
    or replace (start_server's extra_files); `serve_args`: more `acd serve` options; `sip_extra`: lines
    for its `sip:` section (start_server's)."""

    def __init__(self, root: Path, host: str, url: str, secret: bytes, *, main_extra: str = "",
                 files: dict[str, str] | None = None, serve_args: tuple[str, ...] = (),
                 rtp_workers: int | str | None = 0, http_port: int = 0, node_id: str = "",
                 rtp_ports: int = 400, sip_extra: str = "") -> None:
        self.root, self.host, self.url, self.node_id = root, host, url, node_id
        self.sip_extra = sip_extra
        self.main_extra = f"store: {url}\n{main_extra}"
        self.files = dict(files or {})
        self.serve_args = serve_args
        self.rtp_workers = rtp_workers
        self.http_port = http_port
        self.port, self.rtp, self.rtp_ports = free_port(), rtp_base(), rtp_ports
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "data" / "nonce.secret").write_bytes(secret)  # one secret: any node takes any node's nonce
        self.server: AcdServer | None = None
        self.earlier_logs: list[str] = []  # each run rewrites server.log

    @property
    def uri(self) -> str:
        """As the dispatcher names it."""
        return f"sip:{self.host}:{self.port}"

    def start(self) -> None:
        """Start (again) and wait until it listens."""
        if self.server is not None:
            self.server.stop()
            self.earlier_logs.append(self.server.log())
        self.server = start_server(self.root, sip_port=self.port, rtp_base=self.rtp, rtp_ports=self.rtp_ports,
                                   host=self.host,
                                   rtp_workers=self.rtp_workers, trunk_sources=[FRONT_HOST, LOOPBACK],
                                   main_extra=self.main_extra, extra_files=self.files, serve_args=self.serve_args,
                                   http_port=self.http_port, sip_extra=self.sip_extra)

    def stop(self) -> None:
        """Stop the run going now: a second SIGTERM skips the drain (and its minimum), calls end at once."""
        if self.server is not None and self.server.alive():
            for _ in range(2):
                self.server.process.send_signal(signal.SIGTERM)
                time.sleep(0.1)
        if self.server is not None:
            self.server.stop()

    def log(self) -> str:
        """What every run logged."""
        return "".join(self.earlier_logs) + (self.server.log() if self.server is not None else "")


@contextmanager
def front_door(workdir: Path, nodes: list[Node], *, fr_timer_ms: int) -> Iterator[KamailioFront]:
    """The nodes started (the first alone: it makes the tables; the others find them) and Kamailio
    in front probing them every second, until it sees every node up; all stopped on exit."""
    front = KamailioFront(workdir, FRONT_HOST, free_port(), [(n.host, n.port) for n in nodes],
                          ping_interval_seconds=1, fr_timer_ms=fr_timer_ms)
    try:
        nodes[0].start()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(Node.start, nodes[1:]))
        front.start()
        wait_until(lambda: front.active_nodes() == {n.uri for n in nodes}, 10, "Kamailio sees every node up")
        yield front
    finally:
        front.stop()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(Node.stop, nodes))


def api(node: Node, path: str) -> object:
    """GET http://node/`path` of a node started with an `http_port` (JSON, with the node's API token)."""
    token = (node.root / "data" / "api.token").read_text().strip()
    request = urllib.request.Request(f"http://{node.host}:{node.http_port}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def answering_agents(workdir: Path, front: KamailioFront | AcdServer, port: int, *, scenario: str = "front_agent_hangs_up.xml",
                     timeout_seconds: int = 120) -> subprocess.Popen:
    """One SIPp on `port` answering the offers of every agent whose Contact names that port (their
    REGISTERs went through `front`), in the background."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(["sipp", front.target, "-sf", str(SCENARIOS / scenario), "-i", LOOPBACK, "-p", str(port),
                             "-mp", str(free_port(both=False)), "-m", "1000000", "-nostdin",
                             "-timeout", f"{timeout_seconds}s", "-trace_err",
                             "-error_file", str(workdir / "errors.log")],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def sipp_screen_counts(workdir: Path) -> tuple[int, int]:
    """(successful, failed) calls from the screen SIPp wrote at its end (-trace_screen)."""
    screens = sorted(workdir.glob("*_screen.log"))
    text = screens[-1].read_text(errors="replace") if screens else ""
    successful = re.findall(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", text)
    failed = re.findall(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", text)
    return (int(successful[-1]) if successful else -1, int(failed[-1]) if failed else -1)


def read_records(url: str, sql: str, *parameters) -> list[dict]:
    """Rows of a query on the shared store (`?` placeholders)."""
    reader = PgReader(url)
    try:
        return list(reader.query(sql, parameters))
    finally:
        reader.close()


def outcomes(url: str) -> dict[str, int]:
    """How many call records the shared store holds per outcome."""
    return {row["outcome"]: row["n"] for row in read_records(
        url, "SELECT COALESCE(outcome, 'open') AS outcome, COUNT(*) AS n FROM calls GROUP BY 1")}


def callers(workdir: Path, front: KamailioFront | AcdServer, *, calls: int, rate: float, talk_ms: int = 500,
            service: str = "1000", scenario: str | Path = "front_call.xml", timeout_seconds: int = 60,
            extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """SIPp callers through the front door (or straight to a node: `front` is anything with a `target`)
    into the demo IVR by default, in the background
    (-trace_screen; -trace_stat too, for the bench's per-second counts)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = SCENARIOS / scenario if "/" not in str(scenario) else Path(scenario)
    command = ["sipp", front.target, "-sf", str(path), "-s", service, "-i", LOOPBACK,
               "-p", str(free_port(both=False)), "-mp", str(free_port(both=False)), "-m", str(calls),
               "-r", str(rate), "-d", str(talk_ms), "-key", "rtp_port", str(free_port(both=False)), "-nostdin",
               "-timeout", f"{timeout_seconds}s", "-trace_screen", "-trace_err",
               "-error_file", str(workdir / "errors.log"), "-max_retrans", "5", *extra]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, timeout: float) -> int:
    """SIPp's exit code once it ends; killed and AssertionError when it runs past `timeout`."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
        raise AssertionError("SIPp callers did not finish in time") from None
