"""A per-file error collector with typed getters: every problem becomes `file:line: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .yaml_lines import ConfigError, LineDict, LineList

__all__ = ["Checker", "kind_of"]


def kind_of(value: Any) -> str:
    """How a YAML value reads to an operator ("a list", "text"...)."""
    return {str: "text", int: "a number", float: "a number", bool: "true/false", type(None): "empty",
            LineList: "a list", LineDict: "a mapping"}.get(type(value), type(value).__name__)


class Checker:
    """Collects errors for one file instead of stopping at the first."""

    def __init__(self, path: Path | str, errors: list[ConfigError]) -> None:
        self.path = path
        self.errors = errors

    def error(self, line: int, message: str) -> None:
        """Record one problem at a line."""
        self.errors.append(ConfigError(self.path, line, message))

    def mapping(self, value: Any, line: int, what: str) -> LineDict | None:
        """`value` if it is a mapping, else an error and None."""
        if not isinstance(value, LineDict):
            self.error(line, f"{what} must be a mapping (key: value lines), not {kind_of(value)}")
            return None
        return value

    def unknown_keys(self, mapping: LineDict, allowed: set[str], what: str) -> None:
        """An error for every key not in `allowed`, listing the allowed ones."""
        for key in mapping:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error(mapping.line_of(key), f"unknown key {key!r} in {what} (expected one of: {hint})")

    def number(self, mapping: LineDict, key: str, default: float, what: str, *, minimum: float = 0,
               maximum: float | None = None, integer: bool = False) -> float:
        """A number within bounds, or an error and `default`."""
        value = mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.error(mapping.line_of(key), f"{what} {key} must be {'an integer' if integer else 'a number'}, not {value!r}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.error(mapping.line_of(key), f"{what} {key} must be {bound}, not {value}")
            return default
        return value

    def boolean(self, mapping: LineDict, key: str, default: bool, what: str) -> bool:
        """true/false, or an error and `default`."""
        value = mapping.get(key, default)
        if not isinstance(value, bool):
            self.error(mapping.line_of(key), f"{what} {key} must be true or false, not {value!r}")
            return default
        return value

    def text(self, mapping: LineDict, key: str, what: str, *, required: bool = False) -> str | None:
        """A non-empty string (numbers are taken as written), or None."""
        value = mapping.get(key)
        if value is None:
            if required:
                self.error(mapping.line, f"{what} needs {key!r}")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
            self.error(mapping.line_of(key), f"{what} {key} must be text, not {kind_of(value)}")
            return None
        return str(value)
