"""`acd report`: call-center KPIs from the records database (acd/store/records.py).

Where each figure comes from, for the period [since, until):
- Queues and agents: the queue log, by event time. Each queue a call passes through counts it
  once (overflow and transfers are counted where they happened, as Asterisk's reports do).
  offered = ENTERQUEUE, answered = CONNECT, abandoned = ABANDON, callbacks = CALLBACK,
  timed out = EXITWITHTIMEOUT. ASA = mean CONNECT holdtime. Service level = answered within the
  queue's threshold / (answered + abandoned). Abandon rate = abandoned / offered.
  AHT = mean over finished agent legs (COMPLETECALLER, COMPLETEAGENT, TRANSFER) of calltime plus
  the CDR's wrap_up_seconds when recorded for that agent. Missed offers = RINGNOANSWER (rung out,
  or busy/declined by the agent: the API's `missed_offers` counts the same since login; an offer
  that never reached the phone is neither).
  A missing duration field falls back to the difference of event times.
- Calls: the CDRs of calls that arrived in the period, each call once with its final outcome.
  answered = an agent talked to the customer (`connected_at`). A callback is one call: its record
  gets the agent who took the call back, `connected_at` when the customer answered it and was
  bridged, talk and wrap-up, and the outcome of that conversation ("caller_hangup",
  "agent_hangup"), or "callback_failed" when the customer was not reached.
- Callbacks in the queue and agent figures: the call back writes CONNECT and COMPLETECALLER /
  COMPLETEAGENT like an inbound call, so it is answered once in its queue and handled once by its
  agent, talk and wrap-up included. Its wait (ASA, service level) is the time the caller spent in
  line until asking to be called back, as most contact-centre reports count it: the call back is
  an outbound call, not queue time.
- Pause time: the agent_states history, paused intervals clipped to the period, by reason. A row
  that only notes the phone's reachability ("phone unreachable: ...") continues the pause before it.
- IVR and satisfaction: the CDRs of calls that arrived in the period. Containment = answered calls
  that never reached a queue and ended "completed" / answered calls. Drop-off = the last IVR step
  of calls that ended "caller_hangup" without queueing. Satisfaction = survey answers 1-5.

Rates are fractions (0..1) in the dataclasses and the CSV, percentages in the text.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

from .store.records import open_for_reading

__all__ = ["Report", "CallSummary", "QueueKpis", "AgentKpis", "PauseTime", "IvrContainment", "IvrDropOff", "Satisfaction",
           "build_report", "format_report", "write_csv", "parse_when", "run_report"]

_FINISHED = ("COMPLETECALLER", "COMPLETEAGENT", "TRANSFER")  # an agent leg is over
# Which of data1..data3 holds a finished leg's calltime (talk seconds).
_TALK_FIELD = {"COMPLETECALLER": 1, "COMPLETEAGENT": 1, "TRANSFER": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueKpis:
    queue: str
    offered: int
    answered: int
    answered_within_sl: int
    abandoned: int
    timed_out: int
    callbacks: int
    service_level_seconds: float
    abandon_rate: float | None  # abandoned / offered
    asa_seconds: float | None  # average speed of answer
    aht_seconds: float | None  # average handle time: talk + wrap-up
    service_level: float | None  # answered within SL / (answered + abandoned)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentKpis:
    agent: str
    calls: int  # connected
    missed: int  # offers rung out or declined (RINGNOANSWER)
    talk_seconds: float
    wrap_up_seconds: float
    aht_seconds: float | None
    paused_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSummary:
    calls: int  # customer calls arrived
    queued: int  # reached a queue
    answered: int  # an agent talked to the customer (callbacks included)
    callbacks_requested: int
    callbacks_answered: int  # the customer was reached and talked to an agent
    outcomes: tuple[tuple[str, int], ...]  # final outcome -> calls ("in progress" while not ended)


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseTime:
    agent: str
    reason: str
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrContainment:
    answered: int
    contained: int
    rate: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrDropOff:
    flow: str
    step: str
    hangups: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Satisfaction:
    scope: str  # "queue" or "agent"
    name: str
    surveys: int  # calls with at least one valid answer
    average: float  # over every answer
    by_question: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    since: float
    until: float
    queues: tuple[QueueKpis, ...]
    agents: tuple[AgentKpis, ...]
    pauses: tuple[PauseTime, ...]
    ivr: IvrContainment
    ivr_drop_off: tuple[IvrDropOff, ...]
    satisfaction: tuple[Satisfaction, ...]
    calls: CallSummary = CallSummary(calls=0, queued=0, answered=0, callbacks_requested=0, callbacks_answered=0,
                                     outcomes=())


def build_report(db_path: str | Path, since: float, until: float | None = None, *,
                 service_level_seconds: dict[str, float] | None = None, default_sl: float = 20.0,
                 now: float | None = None) -> Report:
    """KPIs for [since, until); `until=None` means up to `now` (default: the current time)."""
    if until is None:
        until = now if now is not None else dt.datetime.now().timestamp()
    db = open_for_reading(db_path)
    try:
        log_rows = list(db.query("SELECT * FROM queue_log WHERE at >= ? AND at < ? ORDER BY at, id", [since, until]))
        wraps = {(r["call_id"], r["agent"]): r["wrap_up_seconds"] for r in db.query(
            "SELECT call_id, agent, wrap_up_seconds FROM calls WHERE wrap_up_seconds IS NOT NULL AND call_id IN "
            "(SELECT call_id FROM queue_log WHERE at >= ? AND at < ?)", [since, until])}
        calls = list(db.query("SELECT * FROM calls WHERE arrived_at >= ? AND arrived_at < ?", [since, until]))
        last_steps = list(db.query(
            "SELECT s.flow, s.step FROM ivr_steps AS s JOIN calls AS c ON c.call_id = s.call_id "
            "WHERE c.arrived_at >= ? AND c.arrived_at < ? AND c.outcome = 'caller_hangup' AND c.queued_at IS NULL "
            "AND s.id = (SELECT MAX(id) FROM ivr_steps WHERE call_id = s.call_id)", [since, until]))
        states = list(db.query(
            "SELECT id, agent_id, state, reason, at FROM agent_states WHERE at >= ? AND at < ? UNION ALL "
            "SELECT id, agent_id, state, reason, at FROM (SELECT id, agent_id, state, reason, at, ROW_NUMBER() "
            "OVER (PARTITION BY agent_id ORDER BY at DESC, id DESC) AS n FROM agent_states WHERE at < ?) AS last "
            "WHERE n = 1 ORDER BY agent_id, at, id", [since, until, since]))  # each agent's state at `since` too
    finally:
        db.close()
    pauses = _pauses(states, since, until)
    wraps.update(wrap_ups(states, until))
    queues, agents = _queue_and_agent_kpis(log_rows, wraps, pauses, service_level_seconds or {}, default_sl)
    answered = [c for c in calls if c["answered_at"] is not None]
    contained = sum(1 for c in answered if c["queued_at"] is None and c["outcome"] == "completed")
    drops: dict[tuple[str, str], int] = defaultdict(int)
    for row in last_steps:
        drops[(row["flow"], row["step"])] += 1
    return Report(
        since=since, until=until, calls=_call_summary(calls), queues=queues, agents=agents,
        pauses=tuple(PauseTime(agent=a, reason=r, seconds=s) for (a, r), s in sorted(pauses.items())),
        ivr=IvrContainment(answered=len(answered), contained=contained, rate=_ratio(contained, len(answered))),
        ivr_drop_off=tuple(IvrDropOff(flow=f, step=s, hangups=n)
                           for (f, s), n in sorted(drops.items(), key=lambda item: (-item[1], item[0]))),
        satisfaction=_satisfaction(calls),
    )


def _call_summary(calls: list[dict]) -> CallSummary:
    outcomes: dict[str, int] = defaultdict(int)
    for call in calls:
        outcomes[call["outcome"] or "in progress"] += 1
    requested = [c for c in calls if c["callback_requested_at"] is not None]
    return CallSummary(calls=len(calls), queued=sum(1 for c in calls if c["queued_at"] is not None),
                       answered=sum(1 for c in calls if c["connected_at"] is not None),
                       callbacks_requested=len(requested),
                       callbacks_answered=sum(1 for c in requested if c["connected_at"] is not None),
                       outcomes=tuple(sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))))


class _QueueTally:
    __slots__ = ("offered", "answered", "abandoned", "timed_out", "callbacks", "holds", "handles")

    def __init__(self) -> None:
        self.offered = self.answered = self.abandoned = self.timed_out = self.callbacks = 0
        self.holds: list[float] = []
        self.handles: list[float] = []


class _AgentTally:
    __slots__ = ("calls", "missed", "talk", "wrap", "handles")

    def __init__(self) -> None:
        self.calls = self.missed = 0
        self.talk = self.wrap = 0.0
        self.handles: list[float] = []


_LEFT_QUEUE = {"ABANDON": "abandoned", "EXITWITHTIMEOUT": "timed_out", "CALLBACK": "callbacks"}


def _queue_and_agent_kpis(rows: list[dict], wraps: dict[tuple[str, str], float], pauses: dict[tuple[str, str], float],
                          sl_by_queue: dict[str, float], default_sl: float):
    entered: dict[tuple[str, str], float] = {}  # (call, queue) -> ENTERQUEUE time
    connected: dict[tuple[str, str], float] = {}  # (call, agent) -> CONNECT time
    queues: dict[str, _QueueTally] = defaultdict(_QueueTally)
    agents: dict[str, _AgentTally] = defaultdict(_AgentTally)
    for row in rows:
        event, call, queue, agent, at = row["event"], row["call_id"], row["queue"], row["agent"], row["at"]
        data = (row["data1"], row["data2"], row["data3"])
        if event == "ENTERQUEUE":
            entered[(call, queue)] = at
            queues[queue].offered += 1
        elif event == "CONNECT":
            connected[(call, agent)] = at
            queues[queue].answered += 1
            agents[agent].calls += 1
            hold = _seconds(data[0], at, entered.get((call, queue)))
            if hold is not None:
                queues[queue].holds.append(hold)
        elif event in _FINISHED:
            talk = _seconds(data[_TALK_FIELD[event]], at, connected.get((call, agent))) or 0.0
            wrap = wraps.get((call, agent)) or 0.0
            queues[queue].handles.append(talk + wrap)
            tally = agents[agent]
            tally.handles.append(talk + wrap)
            tally.talk += talk
            tally.wrap += wrap
        elif event in _LEFT_QUEUE:
            setattr(queues[queue], _LEFT_QUEUE[event], getattr(queues[queue], _LEFT_QUEUE[event]) + 1)
        elif event == "RINGNOANSWER":
            agents[agent].missed += 1
    queue_kpis = []
    for name in sorted(queues.keys() - {""}):
        q = queues[name]
        sl = float(sl_by_queue.get(name, default_sl))
        within = sum(1 for hold in q.holds if hold <= sl)
        queue_kpis.append(QueueKpis(
            queue=name, offered=q.offered, answered=q.answered, answered_within_sl=within, abandoned=q.abandoned,
            timed_out=q.timed_out, callbacks=q.callbacks, service_level_seconds=sl,
            abandon_rate=_ratio(q.abandoned, q.offered), asa_seconds=_mean(q.holds), aht_seconds=_mean(q.handles),
            service_level=_ratio(within, q.answered + q.abandoned)))
    paused: dict[str, float] = defaultdict(float)
    for (agent, _reason), seconds in pauses.items():
        paused[agent] += seconds
    agent_kpis = []
    for name in sorted((agents.keys() | paused.keys()) - {""}):
        a = agents.get(name) or _AgentTally()
        agent_kpis.append(AgentKpis(agent=name, calls=a.calls, missed=a.missed, talk_seconds=a.talk,
                                    wrap_up_seconds=a.wrap, aht_seconds=_mean(a.handles),
                                    paused_seconds=paused.get(name, 0.0)))
    return tuple(queue_kpis), tuple(agent_kpis)


WRAP_UP_SUFFIX = " ended"  # the routing core's reason for on_call -> wrap_up: "<call id> ended"


def wrap_ups(states: list[dict], until: float) -> dict[tuple[str, str], float]:
    """Each agent's own wrap-up per call, from the agent state history: (call, agent) -> seconds from
    entering wrap-up (reason "<call id> ended") to the agent's next state. The CDR has one wrap-up
    field, which a blind transfer's second agent overwrites; the history keeps both agents'."""
    found: dict[tuple[str, str], float] = {}
    for agent_id, rows in _by_agent(states).items():
        for row, following in zip(rows, rows[1:] + [None]):
            reason = row["reason"] or ""
            if row["state"] != "wrap_up" or not reason.endswith(WRAP_UP_SUFFIX):
                continue
            end = following["at"] if following is not None else until
            found[(reason[:-len(WRAP_UP_SUFFIX)], agent_id)] = max(0.0, end - row["at"])
    return found


def _by_agent(states: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in states:
        grouped[row["agent_id"]].append(row)
    return grouped


REACHABILITY_PREFIXES = ("phone unreachable", "phone reachable")  # the shell's reachability rows


def _pauses(states: list[dict], since: float, until: float) -> dict[tuple[str, str], float]:
    """Seconds in state "paused" per (agent, reason), each interval clipped to [since, until). A
    reachability row (same state, reason "phone unreachable: ...") keeps the reason of the pause
    it interrupts."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    reason = ""
    for index, row in enumerate(states):
        if row["state"] != "paused":
            continue
        previous = states[index - 1] if index else None
        continues = (previous is not None and previous["agent_id"] == row["agent_id"]
                     and previous["state"] == "paused" and (row["reason"] or "").startswith(REACHABILITY_PREFIXES))
        if not continues:
            reason = row["reason"] or ""
        following = states[index + 1] if index + 1 < len(states) else None
        end = following["at"] if following is not None and following["agent_id"] == row["agent_id"] else until
        seconds = min(end, until) - max(row["at"], since)
        if seconds > 0:
            totals[(row["agent_id"], reason)] += seconds
    return dict(totals)


def _satisfaction(calls: list[dict]) -> tuple[Satisfaction, ...]:
    answers: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    surveyed: dict[tuple[str, str], int] = defaultdict(int)
    for call in calls:
        valid = _survey_answers(call["survey"])
        if not valid:
            continue
        for scope in ("queue", "agent"):
            if call[scope]:
                answers[(scope, call[scope])] += valid
                surveyed[(scope, call[scope])] += 1
    result = []
    for (scope, name), pairs in sorted(answers.items()):
        by_question: dict[str, list[int]] = defaultdict(list)
        for question, score in pairs:
            by_question[question].append(score)
        result.append(Satisfaction(scope=scope, name=name, surveys=surveyed[(scope, name)],
                                   average=_mean([score for _, score in pairs]),
                                   by_question=tuple((k, _mean(v)) for k, v in sorted(by_question.items()))))
    return tuple(result)


def _survey_answers(text: str | None) -> list[tuple[str, int]]:
    """The (question, score) pairs of a survey JSON object; anything but an integer 1-5 is skipped."""
    if not text:
        return []
    try:
        survey = json.loads(text)
    except ValueError:
        return []
    if not isinstance(survey, dict):
        return []
    return [(str(k), v) for k, v in sorted(survey.items())
            if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5]


def _seconds(field: str, at: float, start: float | None) -> float | None:
    try:
        return float(field)
    except (TypeError, ValueError):
        return at - start if start is not None else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- output ---------------------------------------------------------------------------------


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="minutes")


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(headers: list[str], rows: Iterable[list], labels: int = 1, empty: str = "(none)") -> list[str]:
    """Aligned columns: the first `labels` left-aligned, the figures right-aligned."""
    rows = [[str(cell) for cell in row] for row in rows]
    if not rows:
        return [f"  {empty}"]
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]
    return ["  " + "  ".join(cell.ljust(w) if i < labels else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(line, widths))).rstrip() for line in [headers, *rows]]


def format_report(report: Report) -> str:
    """The report as text tables, one section per KPI family."""
    r = report
    c = r.calls
    lines = [f"ACD report {_when(r.since)} to {_when(r.until)}", "",
             f"Calls: {c.calls} arrived, {c.queued} queued, answered {c.answered} of {c.queued} queued by an agent "
             f"(callbacks: {c.callbacks_requested} requested, {c.callbacks_answered} answered)"]
    lines += _table(["outcome", "calls"], [[outcome, count] for outcome, count in c.outcomes])
    lines += ["", "Queues"]
    lines += _table(["queue", "offered", "answered", "abandoned", "abandon rate", "ASA s", "AHT s", "SL", "SL s",
                     "callbacks", "timed out"],
                    [[q.queue, q.offered, q.answered, q.abandoned, _pct(q.abandon_rate), _num(q.asa_seconds),
                      _num(q.aht_seconds), _pct(q.service_level), _num(q.service_level_seconds, 0), q.callbacks,
                      q.timed_out] for q in r.queues])
    lines += ["  (ASA: average wait of answered calls; AHT: talk + wrap-up; SL: answered within SL s /",
              "   (answered + abandoned); abandon rate: abandoned / offered)"]
    lines += ["", "Agents"]
    lines += _table(["agent", "calls", "missed", "AHT s", "talk s", "wrap-up s", "paused s"],
                    [[a.agent, a.calls, a.missed, _num(a.aht_seconds), _num(a.talk_seconds, 0),
                      _num(a.wrap_up_seconds, 0), _num(a.paused_seconds, 0)] for a in r.agents])
    lines += ["", "Pause time by reason"]
    lines += _table(["agent", "reason", "seconds"], [[p.agent, p.reason, _num(p.seconds, 0)] for p in r.pauses],
                    labels=2)
    lines += ["", f"IVR containment: {r.ivr.contained} of {r.ivr.answered} answered calls ({_pct(r.ivr.rate)})",
              "", "IVR drop-off (caller hung up at step)"]
    lines += _table(["flow", "step", "hang-ups"], [[d.flow, d.step, d.hangups] for d in r.ivr_drop_off],
                    labels=2)
    lines += ["", "Satisfaction (1-5)"]
    questions = sorted({q for s in r.satisfaction for q, _ in s.by_question})
    lines += _table(["scope", "name", "surveys", "average", *questions],
                    [[s.scope, s.name, s.surveys, _num(s.average, 2),
                      *[_num(dict(s.by_question).get(q), 2) for q in questions]] for s in r.satisfaction],
                    labels=2)
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("section", "name", "detail", "metric", "value")


def csv_rows(report: Report) -> list[tuple]:
    """The report in long form: one (section, name, detail, metric, value) row per figure."""
    r = report
    rows: list[tuple] = [("period", "", "", "since", r.since), ("period", "", "", "until", r.until)]
    rows += [("calls", "", "", field, getattr(r.calls, field)) for field in CallSummary.__slots__
             if field != "outcomes"]
    rows += [("calls", "outcome", outcome, "calls", count) for outcome, count in r.calls.outcomes]
    for q in r.queues:
        rows += [("queue", q.queue, "", field, getattr(q, field)) for field in QueueKpis.__slots__ if field != "queue"]
    for a in r.agents:
        rows += [("agent", a.agent, "", field, getattr(a, field)) for field in AgentKpis.__slots__ if field != "agent"]
    rows += [("agent_pause", p.agent, p.reason, "seconds", p.seconds) for p in r.pauses]
    rows += [("ivr", "", "", field, getattr(r.ivr, field)) for field in IvrContainment.__slots__]
    rows += [("ivr_drop_off", d.flow, d.step, "hangups", d.hangups) for d in r.ivr_drop_off]
    for s in r.satisfaction:
        section = f"satisfaction_{s.scope}"
        rows += [(section, s.name, "", "surveys", s.surveys), (section, s.name, "", "average", s.average)]
        rows += [(section, s.name, question, "average", value) for question, value in s.by_question]
    return rows


def write_csv(report: Report, path: str | Path) -> None:
    """One CSV file in long form (`CSV_COLUMNS`): every section in one file that a spreadsheet
    pivot or `csv.DictReader` can filter by `section`; an empty value means "no data"."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in csv_rows(report):
            writer.writerow([*row[:4], "" if row[4] is None else row[4]])


def parse_when(text: str) -> float:
    """`2026-11-01`, `2026-11-01T08:00`, `2026-11-01T08:00+01:00` (local time when no offset) or
    POSIX seconds, to POSIX seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (use e.g. 2026-11-01 or 2026-11-01T08:00)") from None


def run_report(db_path: str | Path, *, since: str, until: str | None = None, csv_path: str | Path | None = None,
               service_level_seconds: dict[str, float] | None = None, default_sl: float = 20.0,
               out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """What `acd report` does: print the text report, and write the CSV when asked. Exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        report = build_report(db_path, parse_when(since), parse_when(until) if until else None,
                              service_level_seconds=service_level_seconds, default_sl=default_sl)
    except (ValueError, FileNotFoundError) as error:
        print(f"acd report: {error}", file=err)
        return 1
    out.write(format_report(report))
    if csv_path is not None:
        write_csv(report, csv_path)
        print(f"CSV written to {csv_path}", file=err)
    return 0
