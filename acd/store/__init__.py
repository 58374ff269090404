"""Persistence (the shell side): SQLite through sqlite-utils. The pure cores never import this."""

from .bindings_store import BindingStore

__all__ = ["BindingStore"]
