"""Run one test in a network namespace of its own: the test runs again, in a new pytest started in
a fresh namespace (netns.LoopbackNetns: `lo` up, no other interface), so every process it starts
(its session fixtures' too, e.g. the throwaway PostgreSQL) runs there, on the namespace's
127.0.0.0/8, and nothing reaches, or is reached from, the machine's addresses.

    def test_x(request):
        if not inside_own_netns():
            run_inside_own_netns(request, timeout_seconds=240)  # passes, skips or fails as it did there
            return
        front = request.getfixturevalue("front")   # the fixtures that start processes: inside only
        ...

The outer run takes no fixture that starts a process; the inner pytest (`-p no:xdist`, its own
--basetemp in the outer one's, the outer's --postgresql) runs the test's node id with INSIDE
naming the namespace in its environment. Its output is printed (pytest shows it with a failure),
its result read from its JUnit XML. Past the timeout its process group is killed; in any case
whatever still runs in the namespace is killed and the namespace deleted.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

import pytest

from .netns import LoopbackNetns, NetnsUnavailable

INSIDE = "ACD_E2E_NETNS"  # environment variable: the namespace the inner pytest runs in
TERM_GRACE_SECONDS = 10  # after the timeout: SIGTERM to the inner pytest's group, SIGKILL after this


def inside_own_netns() -> bool:
    """True in the inner pytest (INSIDE set); then asserts that the namespace has only `lo`."""
    name = os.environ.get(INSIDE)
    if not name:
        return False
    interfaces = [interface for _, interface in socket.if_nameindex()]
    assert interfaces == ["lo"], (f"{INSIDE}={name} says this runs in a namespace of its own, but it sees the "
                                  f"interfaces {interfaces}: unset {INSIDE}, the test makes its namespace itself")
    return True


def run_inside_own_netns(request: pytest.FixtureRequest, *, timeout_seconds: float) -> None:
    """Run the requesting test again in a fresh namespace; pass when it passed there, skip when it
    skipped (namespaces unavailable: skip too, saying why), fail with its output otherwise."""
    try:
        namespace = LoopbackNetns.create(re.sub(r"\W", "_", request.node.name.removeprefix("test_"))[:20])
    except NetnsUnavailable as error:
        pytest.skip(f"the test runs in a network namespace of its own, and none could be made: {error}")
    junit = request.getfixturevalue("tmp_path") / "inside.xml"
    # The inner basetemp beside the outer tmp_path, not in it: unix socket paths (Kamailio's control
    # socket in the inner tmp_path) must stay under 104 characters.
    basetemp = request.getfixturevalue("tmp_path_factory").mktemp("inside")
    command = [*namespace.exec_in(), sys.executable, "-m", "pytest", request.node.nodeid, "-p", "no:xdist",
               "-p", "no:cacheprovider", "-rA", f"--rootdir={request.config.rootpath}",
               f"--basetemp={basetemp}", f"--junitxml={junit}",
               f"--postgresql={request.config.getoption('--postgresql')}"]
    started = time.monotonic()
    try:
        code, timed_out = _run(command, {**os.environ, INSIDE: namespace.name}, request.config.rootpath,
                               timeout_seconds)
    finally:
        leftover = namespace.close()
    print(f"[own_netns] {namespace.name}: inner pytest exit code {code} after {time.monotonic() - started:.1f} s"
          + (f"; killed what it left running: pids {leftover}" if leftover else ""))
    assert not timed_out, f"the test ran past {timeout_seconds:g} s in namespace {namespace.name}: killed"
    outcome, message = _outcome(junit)
    if outcome == "skipped":
        pytest.skip(f"inside namespace {namespace.name}: {message}")
    assert outcome == "passed" and code == 0, (
        f"the test {outcome} in namespace {namespace.name} (pytest exit code {code}; its output is in the "
        f"captured stdout): {message}")


def _run(command: list[str], env: dict[str, str], cwd: os.PathLike, timeout_seconds: float) -> tuple[int, bool]:
    """(exit code, timed out) of `command` in a process group of its own, its output printed as it comes."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", start_new_session=True)
    printer = threading.Thread(target=lambda: [print(line, end="") for line in process.stdout], daemon=True)
    printer.start()
    timed_out = False
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if process.poll() is None:  # past the grace, or the outer run interrupted
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        printer.join(timeout=5)
    return process.returncode, timed_out


def _signal_group(group: int, number: int) -> None:
    try:
        os.killpg(group, number)
    except ProcessLookupError:
        pass


def _outcome(junit: os.PathLike) -> tuple[str, str]:
    """("passed" | "skipped" | "failed" | "error" | "not run", message) of the one test in the JUnit XML."""
    try:
        case = ElementTree.parse(junit).find(".//testcase")
    except (OSError, ElementTree.ParseError) as error:
        return "not run", f"no JUnit XML: {error}"
    if case is None:
        return "not run", "no test case in the JUnit XML (not collected?)"
    for kind in ("failure", "error", "skipped"):
        found = case.find(kind)
        if found is not None:
            return {"failure": "failed"}.get(kind, kind), found.get("message", "")
    return "passed", ""
