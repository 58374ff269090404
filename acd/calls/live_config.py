"""LiveConfig: the config in force now, shared by the shell objects that read it at the moment they
need it. A reload swaps `config` here, in one place (acd/reload.py)."""

from __future__ import annotations

from ..config.model import Config

__all__ = ["LiveConfig"]


class LiveConfig:
    """Implements the `ConfigSource` port; `generation` counts successful loads (1 at start)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.generation = 1

    def swap(self, config: Config) -> None:
        """Put a newly loaded, checked config in force."""
        self.config = config
        self.generation += 1
