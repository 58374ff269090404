"""YAML loading that remembers line numbers, so every config error can name its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["LineDict", "LineList", "load_yaml_with_lines", "ConfigError", "ConfigInvalid"]


class ConfigError(Exception):
    """One problem in one config file: `file:line: message`."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


class ConfigInvalid(Exception):
    """A config set was refused as a whole; `errors` lists every problem found."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class LineDict(dict):
    """A mapping from YAML; `line` is where it starts, `lines[key]` where each key is (1-based)."""

    line: int = 0
    lines: dict[Any, int]
    texts: dict[Any, str]  # the source text of each plain (unquoted) scalar value, e.g. "0123" for 83

    def line_of(self, key: Any) -> int:
        """The line of `key`, or of the mapping itself when the key is absent."""
        return self.lines.get(key, self.line)


class LineList(list):
    """A sequence from YAML; `line` is where it starts, `lines[i]` where each item is."""

    line: int = 0
    lines: list[int]
    texts: list[str | None]  # the source text of each plain (unquoted) scalar item, None for the others


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        mapping = LineDict()
        mapping.line = node.start_mark.line + 1
        mapping.lines = {}
        mapping.texts = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark) from None
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.lines[key] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.ScalarNode) and value_node.style is None:
                mapping.texts[key] = value_node.value
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LineList:  # type: ignore[override]
        sequence = LineList(self.construct_object(child, deep=True) for child in node.value)
        sequence.line = node.start_mark.line + 1
        sequence.lines = [child.start_mark.line + 1 for child in node.value]
        sequence.texts = [child.value if isinstance(child, yaml.ScalarNode) and child.style is None else None
                          for child in node.value]
        return sequence

    def construct_yaml_timestamp(self, node: yaml.ScalarNode):  # type: ignore[override]
        # An unquoted 2026-02-30 looks like a date to YAML, which then fails to build it with a bare
        # ValueError (no line); make it a YAML error at the value's line.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time ({exc})", node.start_mark) from None


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _LineLoader.construct_yaml_timestamp)


def load_yaml_with_lines(path: Path) -> Any:
    """Parse one YAML file; syntax errors become a ConfigError with the line of the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, 0, f"cannot read file: {exc}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError(path, line, f"YAML syntax: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, 0, f"YAML syntax: {exc}") from None
