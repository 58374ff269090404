"""A local ACD cluster to try (issue 20), what `scripts/cluster` runs: a throwaway PostgreSQL, Kamailio
on 127.0.0.10 (conf/kamailio/kamailio.cfg) and `acd serve` nodes on 127.0.0.11, .12, .13 with the
shipped demo config, sharing the store (`store: postgresql://...`) and the Digest nonce secret.

Everything lives in a temporary directory that is removed at the end; Ctrl-C or SIGTERM drains the
nodes (their calls finish, for up to --drain-seconds), then stops Kamailio and PostgreSQL. A node
stopped meanwhile (kill it by the pid printed, to watch Kamailio move on) is not restarted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from .kamailio_front import KamailioFront
from .kamailio_front import unavailable_reason as kamailio_missing
from .pg_cluster import PgCluster
from .pg_cluster import unavailable_reason as postgresql_missing

__all__ = ["main", "node_config", "cluster_section_supported"]

REPO = Path(__file__).resolve().parents[2]
FRONT_HOST = "127.0.0.10"
NODE_HOSTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
# Kamailio probes every 2 s in the shipped config; a draining node answers 503 a little longer than that.
DRAIN_MIN_SECONDS = 3.0


def cluster_section_supported() -> bool:
    """True when this tree's config loader knows a `cluster:` section (the routing authority wired
    into the server, issue 20); without it each node routes its own calls."""
    from acd.config.model import Config

    return any(field.name == "cluster" for field in dataclasses.fields(Config))


def node_config(shipped: dict, *, host: str, sip_port: int, http_port: int, store: str, node_id: str,
                front: str, cluster: bool) -> dict:
    """The shipped conf/acd.yaml (as loaded) for one node: its own address for SIP, RTP and HTTP, the
    front door as the only trunk source, the shared store, and a `cluster:` section when `cluster`."""
    config = dict(shipped)
    config["sip"] = {**shipped.get("sip", {}), "listen": host, "port": sip_port, "public_address": host,
                     "transports": ["udp", "tcp"]}
    config["rtp"] = {**shipped.get("rtp", {}), "address": host}
    config["http"] = {**shipped.get("http", {}), "listen": host, "port": http_port}
    config["trunks"] = {name: {**trunk, "sources": [front]} for name, trunk in shipped.get("trunks", {}).items()}
    config["data_dir"] = "data"
    config["sounds_dir"] = str(REPO / shipped.get("sounds_dir", "sounds"))
    config["store"] = store
    if cluster:
        config["cluster"] = {"node_id": node_id}
    return config


def _node_root(root: Path, number: int, config: dict, secret: bytes) -> Path:
    node = root / f"node{number}"
    (node / "conf").mkdir(parents=True)
    for name in ("agents.yaml", "hours.yaml", "incidents.yaml", "customers.csv"):
        if (REPO / "conf" / name).exists():
            shutil.copy(REPO / "conf" / name, node / "conf" / name)
    shutil.copytree(REPO / "conf" / "lookups", node / "conf" / "lookups")
    for folder in ("dialplans", "ivr_flows"):
        shutil.copytree(REPO / folder, node / folder)
    (node / "conf" / "acd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (node / "data").mkdir()
    (node / "data" / "nonce.secret").write_bytes(secret)  # one secret: any node takes any node's nonce
    (node / "data" / "nonce.secret").chmod(0o600)
    return node


def _wait_listening(log: Path, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and "listening for SIP" in log.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, print where to point a softphone, run until Ctrl-C or SIGTERM, stop it all."""
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="Start a local ACD cluster to try: a throwaway PostgreSQL, Kamailio on 127.0.0.10 (the SIP front "
                    "door for trunks and agents' phones: conf/kamailio/kamailio.cfg) and up to three `acd serve` "
                    "nodes on 127.0.0.11-13 with the shipped demo config and `store: postgresql://...`. Prints "
                    "where to point a softphone; Ctrl-C or SIGTERM drains the nodes and stops everything. Needs "
                    "the Debian packages kamailio and postgresql (scripts/setup installs them).")
    parser.add_argument("--nodes", type=int, choices=(1, 2, 3), default=3, help="how many nodes (default 3)")
    parser.add_argument("--port", type=int, default=5060, help="SIP port of Kamailio and of every node (default 5060)")
    parser.add_argument("--http-port", type=int, default=8080, help="HTTP API port of every node (default 8080)")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="on stop, how long the nodes let calls in progress finish (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    args = parser.parse_args(argv)
    missing = kamailio_missing() or postgresql_missing()
    if missing:
        print(f"cannot start the cluster: {missing}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda number, frame: stop.set())
    root = Path(tempfile.mkdtemp(prefix="acd-cluster-"))
    root.chmod(0o755)
    database = PgCluster()
    front: KamailioFront | None = None
    nodes: list[tuple[str, subprocess.Popen]] = []
    try:
        database.start()
        store = database.create_database("acd")
        shipped = yaml.safe_load((REPO / "conf" / "acd.yaml").read_text())
        cluster = cluster_section_supported()
        secret = secrets.token_bytes(32)
        hosts = NODE_HOSTS[:args.nodes]
        for number, host in enumerate(hosts, start=1):
            config = node_config(shipped, host=host, sip_port=args.port, http_port=args.http_port, store=store,
                                 node_id=f"node{number}", front=FRONT_HOST, cluster=cluster)
            node = _node_root(root, number, config, secret)
            log = node / "server.log"
            with open(log, "wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "acd.cli", "serve", "--root", str(node), "--drain-seconds",
                     str(args.drain_seconds), "--drain-min-seconds", str(DRAIN_MIN_SECONDS)],
                    stdout=output, stderr=subprocess.STDOUT, cwd=node,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                                  os.environ.get("PYTHONPATH")]))})
            nodes.append((host, process))
            if not _wait_listening(log, process, 60):  # one at a time: the first creates the tables
                print(f"node{number} on {host} did not start; its log:\n{log.read_text(errors='replace')[-3000:]}",
                      file=sys.stderr)
                return 1
            print(f"node{number}: sip:{host}:{args.port}  http://{host}:{args.http_port}/  pid {process.pid}  "
                  f"log {log}")
        front = KamailioFront(root / "kamailio", FRONT_HOST, args.port, [(host, args.port) for host in hosts],
                              ping_interval_seconds=2, fr_timer_ms=2000).start()
        print(f"Kamailio: sip:{FRONT_HOST}:{args.port}  pid {front.process.pid}  log {front.log_path}  "
              f"(kamcmd -s unix:{front.socket} dispatcher.list)")
        print(f"PostgreSQL: {store}")
        if not cluster:
            print("note: this tree's config has no `cluster:` section yet: each node routes its own calls")
        print(f"\nPoint a softphone at sip:{FRONT_HOST}:{args.port} (UDP): register as 1001, 1002 or 1003, password "
              f"demo-<extension>-pw (realm example-acd), dial *45 to log in; callers dial 1000 (the demo IVR), e.g.\n"
              f"  {sys.executable} scripts/softphone.py call sip:1000@{FRONT_HOST}:{args.port} --dtmf 2\n"
              "Ctrl-C (or SIGTERM) drains the nodes and stops everything.")
        exited: set[int] = set()
        while not stop.wait(1.0):
            for number, (host, process) in enumerate(nodes, start=1):
                if number not in exited and process.poll() is not None:
                    exited.add(number)
                    print(f"node{number} on {host} exited ({process.returncode}); Kamailio sends its calls to the "
                          "others")
        print("stopping: draining the nodes ...")
        return 0
    finally:
        for _host, process in nodes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _host, process in nodes:
            try:
                process.wait(timeout=args.drain_seconds + 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if front is not None:
            front.stop()
        database.stop()
        if args.keep:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
