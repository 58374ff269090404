"""Shared helpers for the SIP core tests: the golden captures under tests/data/sip."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "sip"


def load(name: str) -> bytes:
    """The bytes of tests/data/sip/<name>.txt (CRLF line endings, exactly as on the wire)."""
    return (DATA / f"{name}.txt").read_bytes()


@pytest.fixture
def sip_data():
    """The `load` helper, as a fixture."""
    return load
