"""LiveConfig: the config in force now, and the clients built from it, shared by the shell objects
that read them at the moment they need them. A reload swaps them here, in one place
(`acd.app.config_applier`)."""

from __future__ import annotations

from typing import Any

from ..config.model import Config

__all__ = ["LiveConfig"]


class LiveConfig:
    """Implements the `ConfigSource` port; `generation` counts successful loads (1 at start)."""

    def __init__(self, config: Config, crm: Any = None) -> None:
        self.config = config
        self.crm = crm
        self.generation = 1

    def swap(self, config: Config, crm: Any = None) -> None:
        """Put a newly loaded, checked config (and the CRM client built from it) in force."""
        self.config = config
        self.crm = crm
        self.generation += 1
