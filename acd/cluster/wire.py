"""The routing log's one wire format: engine events, decisions and log entries as JSON-able dicts.

Rules of this file:
- An event or decision is `{"type": <class name>, <every field>...}`; levels (skill -> level pairs)
  travel as `[[name, level], ...]`, tuples as lists, agent states as their string value. Encoding
  writes every field; decoding demands exactly those fields (a missing or unknown one is an error
  naming it), so a node running other code cannot be silently misread.
- Decoding raises only `WireFormatError` (a `ValueError`) naming the type and field; an event whose
  own checks refuse it is reported the same way, with the event's message.
- Numbers must be finite: PostgreSQL `jsonb` has no NaN or infinity.
- `TimersDue` is the log's record of one `handle_timers(now)` call: the engine's other input;
  `Reconfigured` of one `reconfigure(config, now)` call (the config in `snapshot.dump_config`'s form).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from acd.routing import decisions as dec
from acd.routing import events as ev
from acd.routing.agent_states import AgentState
from acd.routing.errors import RoutingError

__all__ = [
    "WireFormatError",
    "TimersDue",
    "Reconfigured",
    "EVENT_TYPES",
    "DECISION_TYPES",
    "encode_event",
    "decode_event",
    "encode_decision",
    "decode_decision",
    "encode_decisions",
    "decode_decisions",
]


class WireFormatError(ValueError):
    """A routing-log payload that does not decode: says which type and field, and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimersDue:
    """The leader called the engine's `handle_timers(now)`: replicas do the same at the entry's time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconfigured:
    """The leader put a new routing config in force (`routing`: `snapshot.dump_config`'s dict):
    replicas do the same at the entry's time, so every engine changes config at the same point."""

    routing: dict


EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    ev.AgentLoggedIn, ev.AgentLoggedOut, ev.AgentPauseRequested, ev.AgentReadyRequested,
    ev.AgentReachable, ev.AgentUnreachable, ev.CallArrived, ev.CallEnded, ev.CallbackRequested,
    ev.CallChanged, ev.OfferAnswered, ev.OfferDeclined, ev.OfferFailed, TimersDue, Reconfigured,
)}
DECISION_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    dec.Offer, dec.OfferCancelled, dec.CallWaiting, dec.CallRefused, dec.CallConnected,
    dec.CallOverflowed, dec.CallbackOffered, dec.AgentStateChanged, dec.AgentReachabilityChanged,
    dec.QueueRemoved,
)}
STATE_FIELDS = frozenset({"previous", "state"})  # AgentState-valued fields of decisions


def _plain(value: Any, where: str) -> Any:
    """A field value as JSON-able data: tuples to lists, enums to their value, finite numbers."""
    if isinstance(value, AgentState):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(item, where) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise WireFormatError(f"{where} is {value!r}: only finite numbers fit the routing log")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(item, f"{where}.{key}") for key, item in value.items()}
    raise WireFormatError(f"{where} holds a {type(value).__name__}, which the routing log cannot carry")


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(item) for item in value)
    return value


def _encode(obj: Any) -> dict[str, Any]:
    name = type(obj).__name__
    data: dict[str, Any] = {"type": name}
    for field in dataclasses.fields(obj):
        data[field.name] = _plain(getattr(obj, field.name), f"{name}.{field.name}")
    return data


def _decode(data: Any, types: dict[str, type], what: str) -> Any:
    if not isinstance(data, dict):
        raise WireFormatError(f"a routing {what} must be a JSON object, got {type(data).__name__}")
    name = data.get("type")
    cls = types.get(name) if isinstance(name, str) else None
    if cls is None:
        raise WireFormatError(f"unknown routing {what} type {name!r} (known: {', '.join(sorted(types))})")
    names = [field.name for field in dataclasses.fields(cls)]
    missing = [field for field in names if field not in data]
    if missing:
        raise WireFormatError(f"{name} lacks field {missing[0]!r}")
    unknown = sorted(set(data) - set(names) - {"type"})
    if unknown:
        raise WireFormatError(f"{name} has unknown field {unknown[0]!r}")
    values = {}
    for field in names:
        value = _tupled(data[field])
        if field in STATE_FIELDS and what == "decision":
            try:
                value = AgentState(value)
            except ValueError:
                raise WireFormatError(f"{name}.{field}: {value!r} is not an agent state") from None
        values[field] = value
    try:
        return cls(**values)
    except RoutingError as error:
        raise WireFormatError(f"{name} refused: {error}") from None
    except TypeError as error:
        raise WireFormatError(f"{name}: {error}") from None


def encode_event(event: Any) -> dict[str, Any]:
    """An engine event (or `TimersDue`) as a JSON-able dict."""
    if type(event).__name__ not in EVENT_TYPES:
        raise WireFormatError(f"not a routing event: {type(event).__name__}")
    return _encode(event)


def decode_event(data: Any) -> Any:
    """The event a dict from `encode_event` holds; `WireFormatError` when it holds none."""
    return _decode(data, EVENT_TYPES, "event")


def encode_decision(decision: dec.Decision) -> dict[str, Any]:
    """An engine decision as a JSON-able dict."""
    if type(decision).__name__ not in DECISION_TYPES:
        raise WireFormatError(f"not a routing decision: {type(decision).__name__}")
    return _encode(decision)


def decode_decision(data: Any) -> dec.Decision:
    """The decision a dict from `encode_decision` holds; `WireFormatError` when it holds none."""
    return _decode(data, DECISION_TYPES, "decision")


def encode_decisions(decisions: list[dec.Decision]) -> list[dict[str, Any]]:
    """A decision list, in order."""
    return [encode_decision(decision) for decision in decisions]


def decode_decisions(data: Any) -> list[dec.Decision]:
    """A decision list from `encode_decisions`."""
    if not isinstance(data, list):
        raise WireFormatError(f"routing decisions must be a JSON list, got {type(data).__name__}")
    return [decode_decision(item) for item in data]
