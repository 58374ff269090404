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
import signal
import subprocess
import sys
import wave
from pathlib import Path

SOFTPHONE = Path(__file__).resolve().parents[2] / "scripts" / "softphone.py"


def run_softphone(*args: str, timeout: float = 40) -> dict:
    """Run `softphone.py *args`; return its JSON report plus "exit_code" and "stderr".

    Raises AssertionError (with the process's stderr) if it printed no JSON, and when it outlives
    `timeout` seconds (it is killed first). Give the softphone its own `--timeout` well below this
    one so it can hang up cleanly and still report.
    """
    cmd = [sys.executable, str(SOFTPHONE), *args]
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
