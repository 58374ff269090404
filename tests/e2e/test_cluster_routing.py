"""Two `acd serve` nodes, one PostgreSQL, one contact centre (issue 20, `cluster:`): the routing
authority wired into the server.

Two nodes (127.0.0.11 and 127.0.0.12) share one PostgreSQL schema (the `pg_cluster` fixture) with
a 1 s routing lease; either may lead. A SIPp agent registers and logs in with the leader only; a
caller calls the follower: its caller is queued through the routing log, it offers the call to the
agent (the contact read from the shared bindings), the call connects and its record is in
PostgreSQL. Then the leader is killed -9: the survivor leads within 5 s and routes a new call to
the agent.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from acd.cluster.pg_log import PgRoutingLog
from acd.store.bindings_pg import PgBindingStore
from acd.store.pg_reader import PgReader

from .harness import SCENARIOS, free_port, rtp_base, run_sipp, start_server, wait_until
from .test_acd_calls import GOODBYE_FLOW, QUEUE_FLOW, SippAgents, agents_yaml

AGENT = "2001"
TAKEOVER_SECONDS = 5.0


def _records(url: str, sql: str, *parameters) -> list[dict]:
    reader = PgReader(url)
    try:
        return list(reader.query(sql, parameters))
    finally:
        reader.close()


def _node(root, host: str, node_id: str, url: str, cluster_extra: str = ""):
    files = {"conf/agents.yaml": agents_yaml([AGENT], wrap_up=0.5),
             "dialplans/acd.yaml": 'routes:\n  - {number: "3000", flow: queue_direct}\n'
                                   '  - {number: "3999", flow: goodbye_only}\n',
             "ivr_flows/queue_direct.yaml": QUEUE_FLOW, "ivr_flows/goodbye_only.yaml": GOODBYE_FLOW}
    main = f'store: "{url}"\ncluster:\n  node_id: {node_id}\n  lease_seconds: 1\n' + cluster_extra
    return start_server(root / node_id, sip_port=free_port(), rtp_base=rtp_base(), host=host, extra_files=files,
                        main_extra=main, http_port=free_port(both=False))


def _cluster_status(server) -> dict:
    token = (server.root / "data" / "api.token").read_text().strip()
    request = urllib.request.Request(f"http://{server.host}:{_http_port(server)}/api/cluster",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def _http_port(server) -> int:
    text = (server.root / "conf" / "acd.yaml").read_text()
    return int(re.search(r"http:\n  listen: \S+\n  port: (\d+)", text).group(1))


def _metric(server, name: str) -> float:
    with urllib.request.urlopen(f"http://{server.host}:{_http_port(server)}/metrics", timeout=5) as answer:
        found = re.search(rf"^{name} (\S+)$", answer.read().decode(), re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def test_two_nodes_route_as_one_and_the_survivor_leads_after_a_kill_9(pg_cluster, tmp_path):
    url = pg_cluster.create_schema(f"t_{uuid.uuid4().hex[:16]}")
    PgRoutingLog(url, "setup").connect().close()  # the tables made once: two starts at once race on
    PgBindingStore(url).close()  # CREATE TABLE IF NOT EXISTS (the records schema takes a lock itself)
    with ThreadPoolExecutor(2) as pool:  # both start at once (a start takes seconds); either may lead
        starting = [pool.submit(_node, tmp_path, host, name, url)
                    for host, name in (("127.0.0.11", "node-a"), ("127.0.0.12", "node-b"))]
    nodes = [future.result() for future in starting if future.exception() is None]
    agents = None
    try:
        assert len(nodes) == 2, [future.exception() for future in starting]
        statuses = wait_until(lambda: (found := [_cluster_status(n) for n in nodes])[0]["leader"] is not None
                              and found[0]["leader"] == found[1]["leader"] and found, 5, "one leader seen by both")
        leader, follower = sorted(nodes, key=lambda n: _cluster_status(n)["role"] != "leader")
        assert sorted(status["role"] for status in statuses) == ["follower", "leader"]
        assert _metric(leader, "acd_cluster_is_leader") == 1 and _metric(follower, "acd_cluster_is_leader") == 0
        assert _metric(leader, "acd_cluster_lease_epoch") == 1

        # The agent registers and logs in with the leader; the caller calls the follower, which hosts
        # the call: its events go to the leader through the inbox, it offers the agent (the contact
        # from the shared bindings) and bridges.
        quick = tmp_path / "agent_answers_1s.xml"  # the shipped agent talks 3 s: 1 s is enough here
        quick.write_text((SCENARIOS / "agent_answers.xml").read_text().replace(
            '<recv request="BYE" timeout="3000"', '<recv request="BYE" timeout="1000"'))
        agents = SippAgents(tmp_path / "agents", leader.target, [AGENT], max_calls=2, timeout=40, scenario=str(quick))
        agents.login.assert_ok(leader)
        leader.wait_for_log(rf"agent={AGENT} feature=login result=logged-in")
        follower.wait_for_log(rf"agent={AGENT} state logged_out -> available")  # in the follower's replica too
        run_sipp(tmp_path / "caller-1", follower.target, scenario="queue_caller.xml", service="3000",
                 timeout=20).assert_ok(follower)
        call_id = follower.wait_for_log(rf"call=(\S+) connected to agent={AGENT}").group(1)
        row = wait_until(lambda: _records(url, "SELECT agent, queue FROM calls WHERE call_id = ? "
                                               "AND ended_at IS NOT NULL", call_id) or None, 10,
                         "the connected call's record in PostgreSQL", server=follower)[0]
        assert (row["agent"], row["queue"]) == (AGENT, "loadtest")
        assert "connected to agent" not in leader.log()  # the leader only routed: the follower hosted the call
        routed = [_metric(follower, f"acd_cluster_routing_seconds_{part}") for part in ("count", "sum")]
        print(f"follower: {routed[0]:.0f} events through the leader, decisions back in "
              f"{routed[1] / routed[0] * 1000:.1f} ms on average")

        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        killed_at = time.monotonic()
        wait_until(lambda: _cluster_status(follower)["role"] == "leader", TAKEOVER_SECONDS, "the survivor to lead",
                   server=follower)
        print(f"takeover after kill -9 of the leader: {time.monotonic() - killed_at:.2f} s (lease 1 s)")
        assert _cluster_status(follower)["epoch"] == 2

        follower.wait_for_log(rf"agent={AGENT} state wrap_up -> available")  # the new leader's timer
        run_sipp(tmp_path / "caller-2", follower.target, scenario="queue_caller.xml", service="3000",
                 timeout=20).assert_ok(follower)
        follower.wait_for_log(rf"call=\S+ connected to agent={AGENT}", count=2)
    finally:
        if agents is not None:
            agents.stop()
        for node in nodes:
            node.stop()
    survivor = [node for node in nodes if node.process.returncode != -signal.SIGKILL]
    assert len(survivor) == 1 and "Traceback" not in survivor[0].log()  # the killed one's records child: EPIPE
