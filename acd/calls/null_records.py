"""A RecordStore stand-in that keeps nothing: agents' own feature-code calls leave no call record."""

from __future__ import annotations

from typing import Any

__all__ = ["NullRecords"]


class NullRecords:
    """Accepts every RecordStore call and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
