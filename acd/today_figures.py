"""The wallboard's figures "today": per agent and per queue, from the queue log of a period. Pure.

"Today" is never decided here nor by the server's clock: the wallboard sends the start of its own
local day (`since`) and the shell passes `until` (its clock's now). Figures count queue-log events
by their time in [since, until), as `acd report` does (acd/report.py):

- **Per queue**: offered = ENTERQUEUE, answered = CONNECT, abandoned = ABANDON, timed out =
  EXITWITHTIMEOUT, callbacks = CALLBACK (asked to be called back). Service level = answered within
  the queue's threshold (`service_level:` seconds per queue in conf/agents.yaml, default 20) /
  (answered + callers who left unanswered *after* the threshold: abandoned or timed out). A caller
  who hangs up before the threshold is counted apart (`abandoned_before_threshold`) and not in the
  service level: nobody could have answered in time (nor does a queue timeout shorter than the threshold). A callback is answered when the call back
  connects, with the wait the caller had in line until asking (its CONNECT holdtime); before that it
  is neither answered nor abandoned. A transfer to a queue is offered again there (a new ENTERQUEUE).
- **Per agent**: answered = CONNECT; AHT (average handle time) = mean over the agent's finished legs
  (COMPLETECALLER, COMPLETEAGENT, TRANSFER) of talk + the agent's own wrap-up; hold time = the time
  the agent's callers were held in line before this agent answered them (Asterisk's `holdtime` of
  CONNECT, what qpanel shows), in total and on average.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ["AgentToday", "QueueToday", "Today", "DEFAULT_SERVICE_LEVEL_SECONDS", "figures_today"]

# The routing engine's default threshold (acd/routing/config.py QueueConfig.service_level_seconds).
DEFAULT_SERVICE_LEVEL_SECONDS = 20.0
_FINISHED_TALK_FIELD = {"COMPLETECALLER": "data2", "COMPLETEAGENT": "data2", "TRANSFER": "data3"}
_LEFT_UNANSWERED = ("ABANDON", "EXITWITHTIMEOUT")  # data3: seconds waited


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueToday:
    """One queue's day so far."""

    queue: str
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    abandoned_before_threshold: int
    timed_out: int
    callbacks: int
    service_level_seconds: float
    service_level: float | None  # 0..1; None while nothing counts


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentToday:
    """One agent's day so far."""

    agent: str
    answered: int
    handled: int  # finished legs, the ones AHT averages
    talk_seconds: float
    wrap_up_seconds: float
    aht_seconds: float | None
    hold_seconds: float
    average_hold_seconds: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Today:
    """The figures of [since, until)."""

    since: float
    until: float
    queues: tuple[QueueToday, ...]
    agents: tuple[AgentToday, ...]


class _Queue:
    __slots__ = ("offered", "answered", "within", "abandoned", "short", "timed_out", "late", "callbacks")

    def __init__(self) -> None:
        self.offered = self.answered = self.within = self.abandoned = self.short = 0
        self.timed_out = self.late = self.callbacks = 0


class _Agent:
    __slots__ = ("answered", "handles", "talk", "wrap", "holds")

    def __init__(self) -> None:
        self.answered = 0
        self.handles: list[float] = []
        self.talk = self.wrap = 0.0
        self.holds: list[float] = []


def figures_today(queue_log: Iterable[Mapping], *, since: float, until: float,
                  wrap_ups: Mapping[tuple[str, str], float] | None = None,
                  service_level_seconds: Mapping[str, float] | None = None,
                  queues: Iterable[str] = (), agents: Iterable[str] = ()) -> Today:
    """Aggregate queue-log rows (dicts with at, call_id, queue, agent, event, data1..3) of
    [since, until), in time order; rows outside the period are skipped. `wrap_ups`: (call, agent) ->
    the agent's wrap-up seconds. `service_level_seconds`: queue -> threshold (others: the default).
    `queues` and `agents` are listed even without any event (zeros)."""
    wraps = wrap_ups or {}
    thresholds = service_level_seconds or {}
    by_queue: dict[str, _Queue] = {name: _Queue() for name in queues}
    by_agent: dict[str, _Agent] = {name: _Agent() for name in agents}
    entered: dict[tuple[str, str], float] = {}
    connected: dict[tuple[str, str], float] = {}
    for row in queue_log:
        at, event, call, queue, agent = row["at"], row["event"], row["call_id"], row["queue"] or "", row["agent"] or ""
        if not since <= at < until:
            continue
        threshold = float(thresholds.get(queue, DEFAULT_SERVICE_LEVEL_SECONDS))
        if event == "ENTERQUEUE":
            entered[(call, queue)] = at
            _tally(by_queue, queue, _Queue).offered += 1
        elif event == "CONNECT":
            connected[(call, agent)] = at
            held = _seconds(row.get("data1"), at - entered[(call, queue)] if (call, queue) in entered else None)
            tally = _tally(by_queue, queue, _Queue)
            tally.answered += 1
            tally.within += held is not None and held <= threshold
            person = _tally(by_agent, agent, _Agent)
            person.answered += 1
            person.holds.append(held or 0.0)
        elif event in _FINISHED_TALK_FIELD:
            if not agent:
                continue  # a transfer out of the line (no agent leg): nothing handled
            started = connected.get((call, agent))
            talk = _seconds(row.get(_FINISHED_TALK_FIELD[event]), at - started if started is not None else None) or 0.0
            wrap = float(wraps.get((call, agent)) or 0.0)
            person = _tally(by_agent, agent, _Agent)
            person.handles.append(talk + wrap)
            person.talk += talk
            person.wrap += wrap
        elif event in _LEFT_UNANSWERED:
            waited = _seconds(row.get("data3"), at - entered[(call, queue)] if (call, queue) in entered else None)
            tally = _tally(by_queue, queue, _Queue)
            if event == "ABANDON":
                tally.abandoned += 1
            else:
                tally.timed_out += 1
            if waited is not None and waited < threshold:
                tally.short += event == "ABANDON"
            else:
                tally.late += 1
        elif event == "CALLBACK":
            _tally(by_queue, queue, _Queue).callbacks += 1
    return Today(since=since, until=until, queues=tuple(
        _queue_today(name, by_queue[name], float(thresholds.get(name, DEFAULT_SERVICE_LEVEL_SECONDS)))
        for name in sorted(by_queue) if name), agents=tuple(
        _agent_today(name, by_agent[name]) for name in sorted(by_agent) if name))


def _queue_today(name: str, tally: _Queue, threshold: float) -> QueueToday:
    counted = tally.answered + tally.late
    return QueueToday(queue=name, offered=tally.offered, answered=tally.answered,
                      answered_within_threshold=tally.within, abandoned=tally.abandoned,
                      abandoned_before_threshold=tally.short, timed_out=tally.timed_out, callbacks=tally.callbacks,
                      service_level_seconds=threshold, service_level=tally.within / counted if counted else None)


def _agent_today(name: str, tally: _Agent) -> AgentToday:
    return AgentToday(agent=name, answered=tally.answered, handled=len(tally.handles), talk_seconds=tally.talk,
                      wrap_up_seconds=tally.wrap,
                      aht_seconds=sum(tally.handles) / len(tally.handles) if tally.handles else None,
                      hold_seconds=sum(tally.holds),
                      average_hold_seconds=sum(tally.holds) / len(tally.holds) if tally.holds else None)


def _tally(table: dict, key: str, kind: type):
    found = table.get(key)
    if found is None:
        found = table[key] = kind()
    return found


def _seconds(field: object, fallback: float | None) -> float | None:
    """A duration field of the queue log (decimal text), else the difference of event times."""
    try:
        return float(field) if field not in (None, "") else fallback
    except (TypeError, ValueError):
        return fallback
