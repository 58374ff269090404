"""Fixtures for end-to-end tests: a server per module on free ports, SIPp available."""

from __future__ import annotations

import pytest

from .harness import AcdServer, free_port, rtp_base, sipp_available, start_server


def pytest_collection_modifyitems(config, items):
    """End-to-end tests need SIPp; say so clearly instead of failing obscurely."""
    if sipp_available():
        return
    skip = pytest.mark.skip(reason="sipp is not installed: run scripts/setup")
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def acd_server(tmp_path_factory) -> AcdServer:
    """The demo config served on free ports; stopped when the module's tests are done."""
    root = tmp_path_factory.mktemp("acd")
    server = start_server(root, sip_port=free_port(), rtp_base=rtp_base())
    yield server
    server.stop()
