"""Live reload: the whole config set is checked again; if valid it goes live at once, everywhere.

One path for every trigger (the file watcher, SIGHUP, `acd reload`, `POST /api/reload`):
load and check the files (`file:line` errors, as `acd check`), refuse what only a restart can
apply (listener settings, data directory), then hand the config to the composition root's
`apply` (acd/app.py `config_applier`): routing engine, prompts, CRM client and the live config
swap together. Calls in progress keep the flows and prompts they started with (their IVR run
holds them); waiting callers keep their place. A refused reload changes nothing and the running
config keeps serving.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twisted.internet import task

from .calls.live_config import LiveConfig
from .config.changes import describe_changes, restart_required
from .config.loader import ConfigInvalid, load_config
from .config.model import Config

__all__ = ["ConfigReloader", "ReloadOutcome", "WATCH_INTERVAL_SECONDS"]

log = logging.getLogger("acd.reload")

# An operator saving a file expects the change live within a few seconds; polling mtimes of a few
# dozen files every 2 s costs nothing measurable.
WATCH_INTERVAL_SECONDS = 2.0
WATCHED_FOLDERS = ("conf", "dialplans", "ivr_flows")


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: `applied`, the generation in force afterwards, the changes it made or the
    problems that refused it."""

    applied: bool
    generation: int
    changes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.applied


class ConfigReloader:
    """Reloads `root` into the running server. `apply(config)` puts a checked config in force and may
    raise ValueError (before changing anything) to refuse it; `reactor` provides IReactorTime;
    `calls_in_progress()` is only for the log line."""

    def __init__(self, root: Path, live: LiveConfig, apply: Callable[[Config], None], reactor,
                 calls_in_progress: Callable[[], int] = lambda: 0) -> None:
        self.root = Path(root)
        self.live = live
        self.apply = apply
        self.reactor = reactor
        self.calls_in_progress = calls_in_progress
        self._snapshot = self._scan()
        self._watch: task.LoopingCall | None = None

    def reload(self, why: str) -> ReloadOutcome:
        """Load, check and apply the config; a refused one keeps the running config."""
        try:
            config = load_config(self.root)
        except ConfigInvalid as invalid:
            return self._refused(why, [str(error) for error in invalid.errors])
        old = self.live.config
        restart = restart_required(old, config)
        if restart:
            return self._refused(why, [f"{change}: needs a restart (acd stop, then acd serve), or undo it"
                                       for change in restart])
        changes = describe_changes(old, config)
        try:
            self.apply(config)
        except ValueError as error:
            return self._refused(why, [str(error)])
        log.info("config reloaded (%s): generation %d, %d routes, %d flows, %d prompts; %d calls in progress keep "
                 "their flows; %s", why, self.live.generation, len(config.routes), len(config.flows),
                 len(config.prompts), self.calls_in_progress(), "; ".join(changes) or "no change")
        return ReloadOutcome(True, self.live.generation, changes=tuple(changes))

    def _refused(self, why: str, problems: list[str]) -> ReloadOutcome:
        for problem in problems:
            log.error("reload refused (%s): %s", why, problem)
        log.error("reload refused (%s): %d problem(s); still serving config generation %d", why, len(problems),
                  self.live.generation)
        return ReloadOutcome(False, self.live.generation, problems=tuple(problems))

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
