"""Persistence (the shell side): SQLite through sqlite-utils, or PostgreSQL through psycopg when
`store:` says so (interfaces.py: one Protocol per concern; backends.py opens them). The pure cores
never import this."""

from .bindings_store import BindingStore

__all__ = ["BindingStore"]
