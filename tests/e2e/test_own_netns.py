"""own_netns.py: a test run in a network namespace of its own sees only its loopback, and the
machine's 127.0.0.1 is not its 127.0.0.1 (a port listening outside is closed inside). One inner
pytest, about a second."""

from __future__ import annotations

import os
import socket

import pytest

from .own_netns import inside_own_netns, run_inside_own_netns

PORT_VARIABLE = "ACD_TEST_OUTSIDE_PORT"  # the port listening on the machine's 127.0.0.1


def test_a_test_in_its_own_namespace_cannot_reach_the_machines_loopback(request, monkeypatch):
    if not inside_own_netns():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            monkeypatch.setenv(PORT_VARIABLE, str(listener.getsockname()[1]))
            run_inside_own_netns(request, timeout_seconds=60)
        return
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    with socket.socket() as probe:
        probe.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", int(os.environ[PORT_VARIABLE])))
