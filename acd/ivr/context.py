"""The call's context: what we know about the caller and what they chose, typed and said.

Values are plain data (strings, numbers, dicts for records such as `customer`). Names marked
masked (a PIN) are never rendered into anything that is logged: `safe_view()` and `describe()` show
`****` instead, and the interpreter reports only their length.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CallContext", "MASK"]

MASK = "****"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


class CallContext:
    """Variables of one call, with dotted access into records (`{customer.tier}`)."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.masked: set[str] = set()

    def get(self, name: str) -> Any:
        """The value at a dotted name, or None."""
        current: Any = self.values
        for part in name.split("."):
            if isinstance(current, dict) and part in current:
                current = current[part]
            else:
                return None
        return current

    def set(self, name: str, value: Any, *, masked: bool = False) -> None:
        """Set a top-level variable; `masked` keeps it out of every log and record."""
        self.values[name] = value
        if masked:
            self.masked.add(name)
        else:
            self.masked.discard(name)

    def is_masked(self, name: str) -> bool:
        """True if the dotted name is, or lies under, a masked variable."""
        return name.split(".", 1)[0] in self.masked

    def render(self, template: str) -> str:
        """Replace `{name}` placeholders with values (unknown names render empty)."""
        def value(match: re.Match) -> str:
            found = self.get(match.group(1))
            return "" if found is None else str(found)
        return _PLACEHOLDER.sub(value, template)

    def render_safe(self, template: str) -> str:
        """Like `render`, but masked values show as ****: for logs."""
        def value(match: re.Match) -> str:
            if self.is_masked(match.group(1)):
                return MASK
            found = self.get(match.group(1))
            return "" if found is None else str(found)
        return _PLACEHOLDER.sub(value, template)

    def safe_view(self) -> dict[str, Any]:
        """A copy of the values with masked ones replaced: what may be logged or sent to an agent."""
        return {k: (MASK if k in self.masked else v) for k, v in self.values.items()}


def placeholders(template: str) -> list[str]:
    """The variable names a template refers to."""
    return _PLACEHOLDER.findall(template)
