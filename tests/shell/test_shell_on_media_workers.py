"""The whole shell suite again, with every harness on the media worker plane (ACD_SHELL_MEDIA_WORKERS=1):
the worker plane must behave as media in the call process does, call for call (about 15 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import MEDIA_WORKERS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(MEDIA_WORKERS, reason="this is the run on the worker plane")
def test_the_shell_suite_passes_on_the_media_worker_plane():
    env = dict(os.environ, ACD_SHELL_MEDIA_WORKERS="1")
    completed = subprocess.run([sys.executable, "-m", "pytest", "tests/shell", "-q", "-x", "-p", "no:cacheprovider"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
