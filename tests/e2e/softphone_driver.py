"""Run scripts/softphone.py (a PJSUA2 softphone) from tests and read what it reports.

    result = run_softphone("call", "sip:1000@127.0.0.1:5060", "--hangup-after", "2")
    assert result["answered"] and result["exit_code"] == 0

Each run is a separate process (PJSUA2 allows one library instance per process, and a crash in
it must not take pytest down). It is bounded in time and killed, with its children, on expiry.
"""
from __future__ import annotations

import array
import json
import math
import os
import re
import signal
import subprocess
import sys
import wave
from pathlib import Path

SOFTPHONE = Path(__file__).resolve().parents[2] / "scripts" / "softphone.py"


def run_softphone(*args: str, timeout: float = 40, command_prefix: tuple[str, ...] = ()) -> dict:
    """Run `softphone.py *args`; return its JSON report plus "exit_code" and "stderr".
    `command_prefix` runs it through another command, e.g. ("ip", "netns", "exec", name).

    Raises AssertionError (with the process's stderr) if it printed no JSON, and when it outlives
    `timeout` seconds (it is killed first). Give the softphone its own `--timeout` well below this
    one so it can hang up cleanly and still report.
    """
    cmd = [*command_prefix, sys.executable, str(SOFTPHONE), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        raise AssertionError(
            f"softphone still running after {timeout}s, killed: {' '.join(args)}\n"
            f"--- stdout ---\n{out.decode(errors='replace')}\n"
            f"--- stderr (tail) ---\n{_tail(err)}") from None
    except BaseException:
        _kill(proc)
        proc.communicate()
        raise
    text = out.decode(errors="replace").strip()
    try:
        result = json.loads(text.splitlines()[-1]) if text else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        raise AssertionError(
            f"softphone printed no JSON (exit {proc.returncode}): {' '.join(args)}\n"
            f"--- stdout ---\n{text}\n--- stderr (tail) ---\n{_tail(err)}")
    result["exit_code"] = proc.returncode
    result["stderr"] = err.decode(errors="replace")
    return result


def _kill(proc: subprocess.Popen) -> None:
    """Kill the softphone by pid (its own session/process group), never by name."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()


def _tail(err: bytes, lines: int = 60) -> str:
    return "\n".join(err.decode(errors="replace").splitlines()[-lines:])


def audio_rms_of_wav(path: str | os.PathLike) -> float:
    """Root-mean-square of all samples of a 16-bit PCM WAV (0.0 for silence, max 32767).

    The softphone's recorder writes 16-bit mono PCM WAV at its bridge clock rate (8000 Hz by default).
    """
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit samples, expected 16-bit PCM")
        frames = w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


class SoftphoneProcess:
    """`softphone.py *args` running in the background (e.g. `agent`, which must be up before the
    call reaches it). Its stderr is collected by a thread; `wait_for_stderr` waits for a line
    such as "REGISTERED 200" and `result()` waits for the end and returns what `run_softphone`
    returns. Always call `result()` or `kill()` (a `with` block does the latter on error).
    `command_prefix` as for `run_softphone`."""

    def __init__(self, *args: str, command_prefix: tuple[str, ...] = ()) -> None:
        import threading

        self.args = args
        self.proc = subprocess.Popen([*command_prefix, sys.executable, str(SOFTPHONE), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._err = bytearray()
        self._out = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            with self._lock:
                self._err += chunk

    @property
    def stderr(self) -> str:
        with self._lock:
            return self._err.decode(errors="replace")

    def wait_for_stderr(self, pattern: str, timeout: float = 10.0) -> "re.Match":
        """Wait for a regex in the stderr so far; AssertionError (with the tail) on timeout/exit."""
        import re
        import time

        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.stderr)
            if match:
                return match
            if self.proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited {self.proc.returncode}" if self.proc.poll() is not None \
                    else f"not after {timeout}s"
                raise AssertionError(f"softphone stderr has no /{pattern}/ ({state}): "
                                     f"{' '.join(self.args)}\n{_tail(self._err)}")
            time.sleep(0.02)

    def result(self, timeout: float = 40) -> dict:
        """Wait for the process to end; its JSON report plus "exit_code" and "stderr"."""
        try:
            self._out = self.proc.stdout.read() if self._wait(timeout) else b""
        finally:
            if self.proc.poll() is None:
                self.kill()
                raise AssertionError(f"softphone still running after {timeout}s, killed: "
                                     f"{' '.join(self.args)}\n{_tail(self._err)}")
        self._reader.join(5)
        text = self._out.decode(errors="replace").strip()
        try:
            result = json.loads(text.splitlines()[-1]) if text else None
        except json.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            raise AssertionError(
                f"softphone printed no JSON (exit {self.proc.returncode}): {' '.join(self.args)}\n"
                f"--- stdout ---\n{text}\n--- stderr (tail) ---\n{_tail(self._err)}")
        result["exit_code"] = self.proc.returncode
        result["stderr"] = self.stderr
        return result

    def _wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        _kill(self.proc)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> "SoftphoneProcess":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except Exception:
                pass
