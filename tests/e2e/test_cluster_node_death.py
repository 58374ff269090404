"""A real `acd serve` node killed -9 (issue 20: node loss wired into the server, acd/calls/cluster_life.py).

Two nodes (127.0.0.11 and .12) share one PostgreSQL schema, lease 1 s, node timeout 1 s. A SIPp
agent registers and logs in with the follower; a caller calls the leader, which hosts the call
and connects it to the agent. The leader is killed -9 mid-call: the survivor's /api/cluster shows
it dead within a few seconds, leads routing, the call's record in PostgreSQL is "interrupted"
(node = the dead one), the agent is available again on the survivor, and a new call through the
survivor reaches the agent.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from .harness import SCENARIOS, run_sipp, start_sipp, wait_until
from .test_acd_calls import SippAgents
from .test_cluster_routing import AGENT, _cluster_status, _http_port, _metric, _node, _records

NODE_TIMEOUT_SECONDS = 1
NOTICED_WITHIN_SECONDS = 6.0  # node timeout + a heartbeat interval + a claim, with generous room for a loaded CI


def _agent_state(server, agent_id: str) -> str:
    token = (server.root / "data" / "api.token").read_text().strip()
    request = urllib.request.Request(f"http://{server.host}:{_http_port(server)}/api/agents",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        body = json.loads(answer.read())
    return next(agent["state"] for agent in body if agent["id"] == agent_id)


def _member(server, node_id: str) -> dict:
    return next((m for m in _cluster_status(server).get("members", []) if m["node_id"] == node_id), {})


def test_a_node_killed_9_has_its_call_interrupted_and_its_agent_freed_by_the_survivor(pg_cluster, tmp_path):
    url = pg_cluster.create_schema(f"t_{uuid.uuid4().hex[:16]}")
    extra = f"  node_timeout_seconds: {NODE_TIMEOUT_SECONDS}\n"
    with ThreadPoolExecutor(2) as pool:  # both start at once (the tables are made under a lock); either may lead
        starting = [pool.submit(_node, tmp_path, host, name, url, extra)
                    for host, name in (("127.0.0.11", "node-a"), ("127.0.0.12", "node-b"))]
    nodes = [future.result() for future in starting if future.exception() is None]
    agents = caller = None
    try:
        assert len(nodes) == 2, [future.exception() for future in starting]
        wait_until(lambda: all(_cluster_status(n)["leader"] for n in nodes)
                   and len({_cluster_status(n)["leader"] for n in nodes}) == 1, 5, "one leader seen by both")
        leader, survivor = sorted(nodes, key=lambda n: _cluster_status(n)["role"] != "leader")
        dead_id, survivor_id = _cluster_status(leader)["node_id"], _cluster_status(survivor)["node_id"]
        wait_until(lambda: _member(survivor, dead_id).get("state") == "up", 5, "the leader seen up by the survivor")
        assert _metric(survivor, 'acd_cluster_members{state="up"}') == 2

        # The agent logs in with the survivor; the caller calls the leader, which hosts the call.
        talk = tmp_path / "agent_answers_2s.xml"  # the shipped agent talks 3 s: 2 s leaves room for the kill
        talk.write_text((SCENARIOS / "agent_answers.xml").read_text().replace(
            '<recv request="BYE" timeout="3000"', '<recv request="BYE" timeout="2000"'))
        agents = SippAgents(tmp_path / "agents", survivor.target, [AGENT], max_calls=2, timeout=40, scenario=str(talk))
        agents.login.assert_ok(survivor)
        leader.wait_for_log(rf"agent={AGENT} state logged_out -> available")
        caller = start_sipp(tmp_path / "caller-1", leader.target, "queue_caller.xml", timeout=30, timeout_error=False)
        call_id = leader.wait_for_log(rf"call=(\S+) connected to agent={AGENT}").group(1)
        wait_until(lambda: _records(url, "SELECT 1 FROM calls WHERE call_id = ? AND node = ? AND connected_at IS NOT "
                                         "NULL AND ended_at IS NULL", call_id, dead_id), 2,
                   "the connected call's open record in PostgreSQL", server=leader)

        leader.process.send_signal(signal.SIGKILL)  # mid-call: the agent talks 2 s
        leader.process.wait(timeout=10)
        killed = time.monotonic()
        wait_until(lambda: _member(survivor, dead_id).get("state") == "dead", NOTICED_WITHIN_SECONDS,
                   "the killed node dead on the survivor's /api/cluster", server=survivor)
        dead_after = time.monotonic() - killed
        row = wait_until(lambda: _records(url, "SELECT outcome, end_reason, node FROM calls WHERE call_id = ? "
                                               "AND ended_at IS NOT NULL", call_id), 5,
                         "the killed node's call closed in PostgreSQL", server=survivor)[0]
        closed_after = time.monotonic() - killed
        wait_until(lambda: _cluster_status(survivor)["role"] == "leader", 5, "the survivor to lead", server=survivor)
        wait_until(lambda: _agent_state(survivor, AGENT) == "available", 5, "the agent available on the survivor",
                   server=survivor)
        freed_after = time.monotonic() - killed
        print(f"kill -9 of the leader {dead_id}: dead on {survivor_id}'s /api/cluster after {dead_after:.2f} s, "
              f"its call's record interrupted after {closed_after:.2f} s, the agent available after "
              f"{freed_after:.2f} s (lease 1 s, node timeout {NODE_TIMEOUT_SECONDS} s)")
        assert (row["outcome"], row["node"]) == ("interrupted", dead_id)
        assert row["end_reason"].startswith(f"node {dead_id} stopped unexpectedly"), row
        assert _metric(survivor, 'acd_cluster_members{state="dead"}') == 1
        presence = _records(url, "SELECT state FROM agent_presence WHERE agent_id = ?", AGENT)
        assert presence == [{"state": "available"}]

        run_sipp(tmp_path / "caller-2", survivor.target, scenario="queue_caller.xml", service="3000",
                 timeout=20).assert_ok(survivor)
        survivor.wait_for_log(rf"call=\S+ connected to agent={AGENT}")
    finally:
        if caller is not None and caller.poll() is None:  # its call's node is gone: no BYE will come
            caller.kill()
            caller.wait(timeout=5)
        if agents is not None:
            agents.stop()
        for node in nodes:
            node.stop()
    survivors = [node for node in nodes if node.process.returncode != -signal.SIGKILL]
    assert len(survivors) == 1 and "Traceback" not in survivors[0].log()
    assert "left the cluster (stopped)" in survivors[0].log()  # a clean stop marks its row stopped
