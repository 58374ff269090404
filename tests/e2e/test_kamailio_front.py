"""Kamailio in front of several `acd serve` nodes sharing one PostgreSQL store (issue 20): the shipped
conf/kamailio/kamailio.cfg on 127.0.0.10, nodes on 127.0.0.11-13 (loopback addresses of the root
network namespace: PostgreSQL, the session's throwaway cluster, listens on 127.0.0.1 there).

- Agents register through Kamailio (forked to every node, with a Path): the nodes' offers carry the
  Path as Route set, come through Kamailio and reach the phone behind it.
- A node killed with -9: Kamailio's OPTIONS probing marks it down, and calls placed from then on
  are all answered (each within 5 s, by the others).
- A phone behind NAT (a private Contact and Via): its offers go where its REGISTER came from.
- A rolling upgrade under 20 calls/s: each node in turn drains (SIGTERM: 503 to new INVITEs and to
  OPTIONS), exits, starts again and rejoins; SIPp counts 0 failed calls.

Each node has its own routing, or, when this tree's config knows a `cluster:` section, one routing
authority for all (`cluster: {node_id: nodeN}`); calls into the demo IVR need no agent.
The nodes take calls from Kamailio and, to place a caller on a chosen node, from 127.0.0.1 too.
"""

from __future__ import annotations

import re
import secrets
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from acd.devtools.kamailio_front import KamailioFront, unavailable_reason
from acd.devtools.local_cluster import cluster_section_supported
from acd.registrar.path import parse_path_values
from acd.sip.message import parse_message

from .front_cluster import front_door, FRONT_HOST, NODE_HOSTS, Node, callers, finish, outcomes, sipp_screen_counts
from .harness import LOOPBACK, SCENARIOS, free_port, run_sipp, wait_until
from .test_acd_calls import QUEUE_FLOW, agents_yaml

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

DRAIN_SECONDS = 4
# A draining node answers 503 this long at least, even with no call left: Kamailio probes every second.
DRAIN_MIN_SECONDS = 1.5
AGENT = "2001"
FILES = {"conf/agents.yaml": agents_yaml([AGENT], ring_timeout=5, wrap_up=0.5),
         "dialplans/front.yaml": 'routes:\n  - {number: "3000", flow: queue_direct}\n',
         "ivr_flows/queue_direct.yaml": QUEUE_FLOW}


def node(root: Path, host: str, url: str, secret: bytes, node_id: str) -> Node:
    """One node of this module's cluster: its own routing, or one routing authority when this tree's
    config knows `cluster:`; drains DRAIN_SECONDS at most and DRAIN_MIN_SECONDS at least."""
    cluster = f"cluster:\n  node_id: {node_id}\n" if cluster_section_supported() else ""
    return Node(root, host, url, secret, main_extra=cluster, files=FILES,
                serve_args=("--drain-seconds", str(DRAIN_SECONDS), "--drain-min-seconds", str(DRAIN_MIN_SECONDS)))


@pytest.fixture(scope="module")
def cluster(pg_cluster, tmp_path_factory):
    """Kamailio on 127.0.0.10 in front of three nodes on 127.0.0.11-13 (all probed and up), for the
    module: the tests run in file order (the kill -9 last) and each leaves every live node up."""
    url = pg_cluster.create_schema(f"front_{secrets.token_hex(6)}")
    root = tmp_path_factory.mktemp("front")
    secret = secrets.token_bytes(32)
    nodes = [node(root / f"node{n}", host, url, secret, f"node{n}") for n, host in enumerate(NODE_HOSTS, start=1)]
    with front_door(root / "kamailio", nodes, fr_timer_ms=2000) as front:
        yield front, nodes


def test_agent_registered_through_kamailio_gets_the_offers_of_every_node_through_it(cluster, tmp_path):
    front, nodes = cluster
    nodes = nodes[:2]
    answer_port = free_port(both=False)
    agent = subprocess.Popen(
        ["sipp", front.target, "-sf", str(SCENARIOS / "front_agent.xml"), "-i", LOOPBACK, "-p", str(answer_port),
         "-mp", str(free_port(both=False)), "-m", "2", "-nostdin", "-timeout", "30s"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        credentials = f"SEQUENTIAL\n{AGENT};[authentication username={AGENT} password=pw-{AGENT}]"
        login_csv, csv = tmp_path / "login.csv", tmp_path / "agent.csv"
        login_csv.write_text(f"{credentials};{free_port(both=False)}\n")  # a Contact no offer must go to
        csv.write_text(f"{credentials};{answer_port}\n")
        with ThreadPoolExecutor(len(nodes)) as pool:  # log in on each node (each routes on its own here)
            logins = list(pool.map(lambda node: run_sipp(tmp_path / f"login-{node.host}", node.server.target, "-inf",
                                                         str(login_csv), scenario="agents_login.xml", timeout=20),
                                   nodes))
        for node, login in zip(nodes, logins):
            login.assert_ok(node.server)
        run_sipp(tmp_path / "register", front.target, "-inf", str(csv), scenario="front_register.xml",
                 timeout=20).assert_ok()  # the 200 echoes the Path (the scenario checks it)
        for node in cluster[1]:  # forked to every node; the newest binding is the one offers use
            node.server.wait_for_log(rf"agent={AGENT} registered contact=sip:{AGENT}@{LOOPBACK}:{answer_port} "
                                     rf"from {re.escape(FRONT_HOST)}:")
        for node in nodes:  # a caller on each node: straight to the node, the offer through Kamailio
            run_sipp(tmp_path / f"caller-{node.host}", node.server.target, "-d", "1000",
                     scenario="front_call.xml", service="3000", keys={"rtp_port": str(free_port(both=False))},
                     timeout=20).assert_ok(node.server)
            node.server.wait_for_log(rf"connected to agent={AGENT}")
        assert agent.wait(timeout=15) == 0, agent.stderr.read().decode(errors="replace")[-2000:]
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=5)
    offers = re.findall(r"INVITE call-id \S+ from node (\S+) to sip:2001@127\.0\.0\.1:(\d+)", front.log())
    assert {host.rsplit(":", 1)[0] for host, _ in offers} == {node.host for node in nodes}, front.log()[-3000:]
    assert {port for _, port in offers} == {str(answer_port)}


def test_rolling_upgrade_under_20_calls_a_second_fails_no_call(cluster, tmp_path):
    """Node after node: SIGTERM (drain: 503), exit 0, start again, back in Kamailio's set; SIPp calls at
    20 a second from before the first drain until after the last rejoin (then SIGUSR1: no new call,
    exit when those in progress are done)."""
    front, nodes = cluster
    caller = callers(tmp_path / "rolling", front, calls=10_000, rate=20)
    started = time.monotonic()
    try:
        time.sleep(1)
        for node in nodes:
            old = node.server
            old.process.send_signal(signal.SIGTERM)
            wait_until(lambda: node.uri not in front.active_nodes(), 5, f"Kamailio sees {node.host} draining")
            assert old.process.wait(timeout=DRAIN_SECONDS + 10) == 0
            node.start()
            wait_until(lambda: node.uri in front.active_nodes(), 5, f"{node.host} back in Kamailio's set")
        upgraded_in = time.monotonic() - started
        time.sleep(1)
        caller.send_signal(signal.SIGUSR1)
        code = finish(caller, 30)
    finally:
        if caller.poll() is None:
            caller.kill()
    successful, failed = sipp_screen_counts(tmp_path / "rolling")
    print(f"rolling upgrade of {len(nodes)} nodes in {upgraded_in:.1f} s under 20 calls/s: "
          f"{successful} calls answered, {failed} failed; records: {outcomes(nodes[0].url)}")
    assert (code, failed) == (0, 0), (tmp_path / "rolling" / "errors.log").read_text()[-2000:]
    assert successful > 100
    for node in nodes:
        assert len(re.findall(r"shutdown requested \(SIGTERM\)", node.log())) == 1


def test_kill_9_of_a_node_new_calls_are_answered_by_the_others(cluster, tmp_path):
    front, nodes = cluster
    victim = nodes[1]
    victim.server.process.send_signal(signal.SIGKILL)
    victim.server.process.wait(timeout=5)
    killed_at = time.monotonic()
    caller = callers(tmp_path / "after-kill", front, calls=30, rate=10)
    marked_down = wait_until(lambda: victim.uri not in front.active_nodes() and time.monotonic(), 10,
                             "Kamailio marks the killed node down")
    code = finish(caller, 40)
    successful, failed = sipp_screen_counts(tmp_path / "after-kill")
    print(f"kill -9: node marked down {marked_down - killed_at:.1f} s after the kill; "
          f"calls placed after it: {successful} answered, {failed} failed")
    assert (code, successful, failed) == (0, 30, 0), (tmp_path / "after-kill" / "errors.log").read_text()[-2000:]
    assert marked_down - killed_at < 5


def test_a_phone_behind_nat_gets_the_offer_at_the_address_its_register_came_from(tmp_path):
    """Kamailio alone, a raw socket for the node: a REGISTER whose Via names a private address gets a
    Path with received= (nathelper's NAT test); the node's INVITE preloaded with that Path reaches the
    phone where its REGISTER came from, Request-URI still the private Contact, Record-Routed."""
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front = None
    try:
        node.bind((NODE_HOSTS[0], 0))
        phone.bind((LOOPBACK, 0))
        for sock in (node, phone):
            sock.settimeout(5)
        front = KamailioFront(tmp_path / "kamailio", FRONT_HOST, free_port(), [node.getsockname()],
                              ping_interval_seconds=30).start()
        phone.sendto(("REGISTER sip:{front} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK-r1;rport\r\n"
                      "From: <sip:2001@{front}>;tag=r1\r\nTo: <sip:2001@{front}>\r\nCall-ID: nat-reg@192.168.1.50\r\n"
                      "CSeq: 1 REGISTER\r\nContact: <sip:2001@192.168.1.50:5060>\r\nExpires: 600\r\n"
                      "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").format(front=front.target).encode(),
                     (front.host, front.port))
        register = received(node, "REGISTER")
        path = parse_path_values(register.headers.get_all("Path"))
        assert path == (f"<sip:{front.target};lr;received=sip:{LOOPBACK}:{phone.getsockname()[1]}>",)
        node_host, node_port = node.getsockname()
        node.sendto((f"INVITE sip:2001@192.168.1.50:5060 SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {node_host}:{node_port};branch=z9hG4bK-o1;rport\r\nRoute: {path[0]}\r\n"
                     f"From: <sip:acd@{node_host}:{node_port}>;tag=o1\r\nTo: <sip:2001@{node_host}>\r\n"
                     f"Call-ID: nat-offer@{node_host}\r\nCSeq: 1 INVITE\r\n"
                     f"Contact: <sip:acd@{node_host}:{node_port}>\r\n"
                     "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(), (front.host, front.port))
        offer = received(phone, "INVITE")
        assert offer.uri == "sip:2001@192.168.1.50:5060" and not offer.headers.get_all("Route")
        assert offer.headers.get_all("Record-Route") == [f"<sip:{front.target};lr>"]
    finally:
        if front is not None:
            front.stop()
        node.close()
        phone.close()


def received(sock: socket.socket, method: str):
    """The next `method` request on `sock` (Kamailio's 100 Trying and others skipped)."""
    while True:
        data, _ = sock.recvfrom(65535)
        if data.startswith(method.encode()):
            return parse_message(data)
