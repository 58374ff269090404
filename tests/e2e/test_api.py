"""The REST API over real HTTP: bearer token, agent state changes, queues, calls, reload."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from .harness import LOOPBACK, free_port, rtp_base, start_server


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("acd-api")
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(root, sip_port=free_port(), rtp_base=rtp_base(), http_port=http_port)
    server.wait_for_log(r"HTTP API on http://127\.0\.0\.1:\d+/api")
    server.http_port = http_port
    server.token = (root / "data" / "api.token").read_text().strip()
    yield server
    server.stop()


def call(server, method: str, path: str, body: dict | None = None, token: str | None = "default"):
    request = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {server.token if token == 'default' else token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_requests_without_the_token_are_refused(api_server):
    """No token or a wrong one: 401 with the stable error id."""
    for token in (None, "wrong"):
        status, body = call(api_server, "GET", "/api/agents", token=token)
        assert status == 401 and body["error_id"] == "unauthorized"


def test_agent_login_pause_with_reason_ready_and_logout(api_server):
    """An agent goes logged out → available → paused (lunch) → available → logged out by API."""
    status, agents = call(api_server, "GET", "/api/agents")
    assert status == 200 and {a["id"] for a in agents} == {"1001", "1002", "1003", "9001"}  # 9001: the demo supervisor
    assert all(a["state"] == "logged_out" for a in agents)
    assert call(api_server, "POST", "/api/agents/1002/login") == (200, {"id": "1002", "result": "logged-in"})
    assert call(api_server, "POST", "/api/agents/1002/pause", {"reason": "lunch"})[0] == 200
    bob = next(a for a in call(api_server, "GET", "/api/agents")[1] if a["id"] == "1002")
    assert bob["state"] == "paused" and bob["pause_reason"] == "lunch"
    assert call(api_server, "POST", "/api/agents/1002/ready")[0] == 200
    assert call(api_server, "POST", "/api/agents/1002/logout")[0] == 200
    status, body = call(api_server, "POST", "/api/agents/1002/pause", {"reason": "lunch"})
    assert status == 409 and body["error_id"] == "invalid-agent-state"
    api_server.wait_for_log(r"agent=1002 state available -> paused \(lunch\)|agent=1002 state \S+ -> paused")


def test_bad_requests_name_the_problem(api_server):
    """Unknown agent 404 no-such-agent; pause without a reason 400 invalid-request; unknown path 404."""
    status, body = call(api_server, "POST", "/api/agents/9999/login")
    assert status == 404 and body["error_id"] == "no-such-agent"
    call(api_server, "POST", "/api/agents/1003/login")
    status, body = call(api_server, "POST", "/api/agents/1003/pause", {})
    assert status == 400 and body["error_id"] == "invalid-request"
    status, body = call(api_server, "GET", "/api/nothing")
    assert status == 404 and body["error_id"] == "not-found"


def test_queues_calls_and_reload(api_server):
    """Live queue figures and calls are listed; POST /api/reload reloads a valid config."""
    status, queues = call(api_server, "GET", "/api/queues")
    assert status == 200 and {q["queue"] for q in queues} == {"sales", "support", "billing"}
    assert call(api_server, "GET", "/api/calls") == (200, [])
    assert call(api_server, "POST", "/api/reload") == (200, {"reloaded": True, "generation": 2, "changes": []})
    status, config = call(api_server, "GET", "/api/config")
    assert status == 200 and config["generation"] == 2 and config["server_time"] > 0
    api_server.wait_for_log(r"config reloaded \(API\)")


def test_agent_unlock_command_reaches_the_running_server(api_server):
    """`acd agent-unlock USER` goes through the API; an agent with no lock is "not-locked"."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "acd.cli", "agent-unlock", "1001", "--root", str(api_server.root)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "agent 1001: not-locked", done.stderr
    api_server.wait_for_log(r"account '1001' unlocked by an operator")


def test_openapi_is_valid_and_every_documented_operation_is_served(api_server):
    """acd/api/openapi.yaml passes the OpenAPI validator, every path and method it documents reaches a
    handler of the running server (never "no endpoint"), and what GET /api/agents and /api/queues
    return carries only documented fields."""
    import yaml
    from openapi_spec_validator import validate

    from .harness import REPO

    spec = yaml.safe_load((REPO / "acd" / "api" / "openapi.yaml").read_text())
    validate(spec)
    examples = {"agent_id": "1001", "action": "ready", "call_id": "no-such-call", "topic": "no-such-topic",
                "queue": "no-such-queue"}
    for path, operations in spec["paths"].items():
        concrete = path.format(**examples)
        for method in operations:
            if method == "post" and concrete == "/api/reload":
                continue  # a reload is exercised by test_queues_calls_and_reload
            status, body = call(api_server, method.upper(), concrete, {} if method in ("post", "patch") else None)
            assert not str(body.get("message", "") if isinstance(body, dict) else "").startswith("no endpoint"), (
                method, concrete, status, body)
    schemas = spec["components"]["schemas"]
    for path, schema in (("/api/agents", "Agent"), ("/api/queues", "Queue")):
        status, items = call(api_server, "GET", path)
        documented = set(schemas[schema]["properties"])
        assert status == 200 and items
        for item in items:
            assert set(item) <= documented, (path, set(item) - documented)
