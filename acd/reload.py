"""Live reload: the whole config set is checked again; if valid it replaces the old one at once.

Calls in progress keep the flows and prompts they started with (their IVR run holds them), so a
reload never disturbs them. An invalid set is refused with the same `file:line` messages as
`acd check`, and the running config keeps serving. Triggered by SIGHUP, by a change seen by the
file watcher, or by `acd reload`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from twisted.internet import task

from .calls.live_config import LiveConfig
from .calls.media_ports import MediaPorts
from .config.loader import ConfigInvalid, load_config
from .media.prompts import PromptLibrary

__all__ = ["ConfigReloader", "WATCH_INTERVAL_SECONDS"]

log = logging.getLogger("acd.reload")

# An operator saving a file expects the change live within a few seconds; polling mtimes of a few
# dozen files every 2 s costs nothing measurable.
WATCH_INTERVAL_SECONDS = 2.0
WATCHED_FOLDERS = ("conf", "dialplans", "ivr_flows")


class ConfigReloader:
    """Reloads `root` into the running server's LiveConfig and prompts. `reactor` provides IReactorTime;
    `calls_in_progress()` is only for the log line."""

    def __init__(self, root: Path, live: LiveConfig, media: MediaPorts, reactor,
                 calls_in_progress: Callable[[], int] = lambda: 0) -> None:
        self.root = Path(root)
        self.live = live
        self.media = media
        self.reactor = reactor
        self.calls_in_progress = calls_in_progress
        self._snapshot = self._scan()
        self._watch: task.LoopingCall | None = None

    def reload(self, why: str) -> bool:
        """Load, check and swap in the config; returns False (and keeps the old one) if it is invalid."""
        try:
            config = load_config(self.root)
        except ConfigInvalid as invalid:
            for error in invalid.errors:
                log.error("reload refused (%s): %s", why, error)
            log.error("reload refused (%s): %d problem(s); still serving config generation %d", why,
                      len(invalid.errors), self.live.generation)
            return False
        old = self.live.config
        if (config.sip, config.rtp) != (old.sip, old.rtp):
            log.warning("reload (%s): sip/rtp listener settings changed; they apply after a restart", why)
        prompts = PromptLibrary(config.prompts)
        prompts.preload()
        self.live.swap(config)
        self.media.prompts = prompts
        log.info("config reloaded (%s): generation %d, %d routes, %d flows, %d prompts; %d calls in progress keep "
                 "their flows", why, self.live.generation, len(config.routes), len(config.flows), len(config.prompts),
                 self.calls_in_progress())
        return True

    def watch(self, interval: float = WATCH_INTERVAL_SECONDS) -> None:
        """Poll the config folders and reload when a file changed."""
        self._watch = task.LoopingCall(self._check)
        self._watch.clock = self.reactor
        self._watch.start(interval, now=False)

    def _check(self) -> None:
        snapshot = self._scan()
        if snapshot != self._snapshot:
            self._snapshot = snapshot
            self.reload("files changed")

    def _scan(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        for folder in WATCHED_FOLDERS:
            base = self.root / folder
            if not base.is_dir():
                continue
            for path in base.rglob("*.yaml"):
                try:
                    seen[str(path)] = path.stat().st_mtime
                except OSError:
                    continue
        return seen


def pid_file(data_dir: Path) -> Path:
    """Where `acd serve` writes its pid, for `acd reload`."""
    return data_dir / "acd.pid"


def write_pid(data_dir: Path) -> None:
    """Record this process's pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pid_file(data_dir).write_text(f"{os.getpid()}\n")
