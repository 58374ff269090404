"""A routing engine's whole state as a JSON-able dict, for the routing log's snapshot entries.

Why pickle, and why it is safe enough here: the engine's state is a graph of private records that
share objects (an agent's index placements are the very lists its queues sort), and its queue
indexes hold compiled scoring closures. Pickle keeps the sharing; the closures are rebuilt from the
queue's config (`QueueIndex(config)`) instead of being stored. The bytes are read back only by
`_EngineUnpickler`, which can build nothing but the routing package's own classes and a few
containers, and only after the SHA-256 in the snapshot matched. A snapshot is only read by a node
running the same code (`format` names the layout; a change of it must change `FORMAT`).

An explicit JSON state schema of the engine would not need the allow-list; it needs a state
export in `acd/routing/` itself, left for when that package is open for change.
"""

from __future__ import annotations

import base64
import hashlib
import io
import pickle
from typing import Any

from acd.routing.config import RoutingConfig
from acd.routing.engine import RoutingEngine
from acd.routing.index import QueueIndex

__all__ = ["FORMAT", "SnapshotError", "dump_engine", "load_engine", "dump_config", "load_config"]

FORMAT = "acd-routing-engine/pickle-1"
_REBUILT_SLOTS = frozenset({"strategy", "score", "labels"})  # derived from the config: not stored
_ALLOWED_GLOBALS = {
    ("acd.cluster.snapshot", "_new_queue_index"),
    ("acd.cluster.snapshot", "_set_queue_index_state"),
    ("acd.cluster.snapshot", "_new_engine"),
    ("acd.cluster.snapshot", "_set_engine_state"),
    ("collections", "deque"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "list"),
    ("builtins", "dict"),
}


class SnapshotError(ValueError):
    """A snapshot that cannot be loaded: wrong format, damaged, or holding something not allowed."""


def _new_queue_index(config: Any) -> QueueIndex:
    return QueueIndex(config)


def _set_queue_index_state(index: QueueIndex, state: dict[str, Any]) -> None:
    for name, value in state.items():
        setattr(index, name, value)


def _new_engine(config: Any) -> RoutingEngine:
    return RoutingEngine(config)


def _set_engine_state(engine: RoutingEngine, state: dict[str, Any]) -> None:
    engine.__dict__.update(state)


class _EnginePickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is QueueIndex:
            state = {name: getattr(obj, name) for name in QueueIndex.__slots__ if name not in _REBUILT_SLOTS}
            state.pop("config")
            return _new_queue_index, (obj.config,), state, None, None, _set_queue_index_state
        if type(obj) is RoutingEngine:
            state = {name: value for name, value in vars(obj).items() if name != "_handlers"}
            return _new_engine, (obj._config,), state, None, None, _set_engine_state
        return NotImplemented


class _EngineUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or module.startswith("acd.routing."):
            return super().find_class(module, name)
        raise SnapshotError(f"a routing snapshot may not hold {module}.{name}")



def dump_engine(engine: RoutingEngine) -> dict[str, Any]:
    """The engine's state as a JSON-able dict (format, SHA-256, base64 bytes)."""
    buffer = io.BytesIO()
    _EnginePickler(buffer, protocol=5).dump(engine)
    data = buffer.getvalue()
    return {"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
            "data": base64.b64encode(data).decode("ascii")}


def load_engine(snapshot: Any) -> RoutingEngine:
    """The engine a dict from `dump_engine` holds; `SnapshotError` when it is not one."""
    engine = _load(snapshot)
    if type(engine) is not RoutingEngine:
        raise SnapshotError(f"routing snapshot holds a {type(engine).__name__}, not a RoutingEngine")
    return engine


def _load(snapshot: Any) -> Any:
    """What a dict from `dump_engine` or `dump_config` holds, checked and unpickled."""
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        found = snapshot.get("format") if isinstance(snapshot, dict) else type(snapshot).__name__
        raise SnapshotError(f"routing snapshot format {found!r} is not {FORMAT!r}: "
                            "replay the log from its start or run the same version on every node")
    try:
        data = base64.b64decode(snapshot["data"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise SnapshotError("routing snapshot has no valid base64 'data'") from None
    if hashlib.sha256(data).hexdigest() != snapshot.get("sha256"):
        raise SnapshotError("routing snapshot is damaged: its SHA-256 does not match its data")
    try:
        engine = _EngineUnpickler(io.BytesIO(data)).load()
    except SnapshotError:
        raise
    except Exception as error:  # any unpickling failure means the same thing: unusable snapshot
        raise SnapshotError(f"routing snapshot does not load: {error}") from None
    return engine


def dump_config(config: RoutingConfig) -> dict[str, Any]:
    """A routing config as a JSON-able dict, in the snapshot's form (a `Reconfigured` log entry)."""
    buffer = io.BytesIO()
    _EnginePickler(buffer, protocol=5).dump(config)
    data = buffer.getvalue()
    return {"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
            "data": base64.b64encode(data).decode("ascii")}


def load_config(dumped: Any) -> RoutingConfig:
    """The routing config a dict from `dump_config` holds; `SnapshotError` when it holds none."""
    config = _load(dumped)
    if type(config) is not RoutingConfig:
        raise SnapshotError(f"routing config entry holds a {type(config).__name__}, not a RoutingConfig")
    return config

