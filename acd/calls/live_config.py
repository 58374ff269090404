"""LiveConfig: the config in force now, and the clients built from it, shared by the shell objects
that read them at the moment they need them. A reload swaps them here, in one place
(`acd.app.config_applier`)."""

from __future__ import annotations

from typing import Any

import logging

from ..config.memberships import Memberships, apply_memberships
from ..config.model import Config

__all__ = ["LiveConfig"]

log = logging.getLogger("acd")


class LiveConfig:
    """Implements the `ConfigSource` port; `generation` counts successful loads (1 at start).

    `config` is the loaded config with the runtime membership changes (`memberships`) laid over it
    (acd.config.memberships); `loaded` is the config as the files say."""

    def __init__(self, config: Config, crm: Any = None) -> None:
        self.loaded = config
        self.config = config
        self.crm = crm
        self.generation = 1
        self.memberships: Memberships = {}

    def effective(self, config: Config) -> Config:
        """`config` with the runtime membership changes applied (what `swap(config)` would put in force)."""
        return apply_memberships(config, self.memberships)[0]

    def swap(self, config: Config, crm: Any = None) -> None:
        """Put a newly loaded, checked config (and the CRM client built from it) in force."""
        effective, dropped = apply_memberships(config, self.memberships)
        for line in dropped:
            log.warning("reload: runtime membership change dropped: %s", line)
        self.loaded = config
        self.config = effective
        self.crm = crm
        self.generation += 1

    def set_membership(self, agent_id: str, queue: str, penalty: int | None) -> None:
        """Make `agent_id` a member of `queue` with `penalty`, or not a member (None), until restart."""
        self.memberships.setdefault(agent_id, {})[queue] = penalty
        self.config = apply_memberships(self.loaded, self.memberships)[0]
