"""Fixtures for the in-process shell tests: a harness per test, checked and closed at teardown."""

from __future__ import annotations

import copy
import functools
import socket
from pathlib import Path

import pytest

import acd
from acd.config import loader, yaml_lines
from acd.context.directory import CustomerDirectory
from acd.media import prompts

from .harness import ShellHarness

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    """These tests must import the `acd` of the tree they live in (run with PYTHONPATH=<tree>)."""
    if Path(acd.__file__).resolve().parents[1] != REPO:
        raise pytest.UsageError(f"tests/shell imports acd from {acd.__file__}, not from {REPO}: "
                                f"run with PYTHONPATH={REPO}")


def _fresh_copy(value):
    """A copy of a parsed YAML document: new containers (dict/list subclasses keep their class and
    their attributes, e.g. LineDict.lines), shared immutable scalars. ~5x faster than deepcopy."""
    if isinstance(value, dict):
        copied = type(value)((key, _fresh_copy(item)) for key, item in value.items())
    elif isinstance(value, list):
        copied = type(value)(_fresh_copy(item) for item in value)
    else:
        return value
    for name, attribute in getattr(value, "__dict__", {}).items():
        setattr(copied, name, copy.copy(attribute))
    return copied


class _MemoisedYaml:
    """The yaml module, with `load` memoised by (text, Loader) and a fresh copy handed out each time."""

    def __init__(self, real) -> None:
        self._real = real
        self._parsed: dict = {}

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def load(self, text, Loader):  # noqa: N803 - yaml's API
        key = (text, Loader)
        if key not in self._parsed:
            self._parsed[key] = self._real.load(text, Loader=Loader)
        return _fresh_copy(self._parsed[key])


# Memoised once per process; switched on around each test of this directory only (other tests in
# the same session see the real functions).
_READ_WAV = functools.lru_cache(maxsize=None)(prompts.read_wav_pcm16_8k)
_ENCODERS = {codec: functools.lru_cache(maxsize=None)(encode) for codec, encode in prompts._ENCODERS.items()}
_YAML = _MemoisedYaml(yaml_lines.yaml)


@pytest.fixture(autouse=True)
def _fast_start(monkeypatch):
    """Start-up costs paid once per session instead of once per server (0.45 s of 0.5 s), by
    memoising pure work only; the object graph and its config are the same:
    - reading and G.711 encoding of the 82 prompts (the sounds/ files do not change during a run);
    - YAML parsing of the same demo files (pure; each server gets its own copy);
    - the customer directory's decoy PIN hash (PBKDF2, 600,000 rounds): fewer rounds, through the
      `pin_iterations` parameter the directory documents for tests (build_server cannot pass it)."""
    monkeypatch.setattr(yaml_lines, "yaml", _YAML)
    monkeypatch.setattr(prompts, "read_wav_pcm16_8k", _READ_WAV)
    monkeypatch.setattr(loader, "read_wav_pcm16_8k", _READ_WAV)
    for codec, encode in _ENCODERS.items():
        monkeypatch.setitem(prompts._ENCODERS, codec, encode)
    monkeypatch.setitem(CustomerDirectory.__init__.__kwdefaults__, "pin_iterations", 1_000)


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch):
    """Nothing here may open a socket: the network is the fake one."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test in tests/shell tried to open a real socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "socketpair", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def _made() -> list[ShellHarness]:
    return []


@pytest.fixture
def make_harness(tmp_path, _made):
    """Build a harness (keyword arguments as ShellHarness); each one is checked and closed after the test."""
    made = _made

    def make(**options) -> ShellHarness:
        harness = ShellHarness(tmp_path / f"acd{len(made)}", **options)
        made.append(harness)
        return harness

    yield make
    problems = [problem for harness in made for problem in harness.problems()]
    for harness in made:
        harness.close()
    assert not problems, "the server misbehaved:\n" + "\n".join(problems)


@pytest.fixture
def restart_harness(make_harness, _made):
    """`restart_harness(harness, **options)`: `harness.restart(**options)`, the new harness checked
    and closed after the test like the others."""
    def restart(harness: ShellHarness, **options) -> ShellHarness:
        again = harness.restart(**options)
        _made.append(again)
        return again

    return restart


@pytest.fixture
def harness(make_harness) -> ShellHarness:
    """The shipped demo config (numbers 1000/1001, queues sales/support/billing, agents 1001-1003)."""
    return make_harness()
