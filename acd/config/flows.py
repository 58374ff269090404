"""Parsing and checking `ivr_flows/*.yaml` into `acd.ivr.flow` dataclasses.

A step is a mapping with exactly one kind key (`play`, `menu`, `collect`, `speech_menu`, `set`,
`branch`, `lookup`, `goto_flow`, `queue`, `transfer`, `record`, `hangup`) and that kind's options.
Checks within a flow: unknown keys, unknown target steps, unreachable steps, bad regexes, loops
without input. Checks across files (prompts, flows, queues, look-up sources, hours) are made by
`crosscheck_flows` once everything is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from ..ivr.conditions import COMPARISONS, AllOf, AnyOf, Compare, Condition, IsOpen, Not
from ..ivr.flow import (DEFAULT_RECORD_SILENCE_SECONDS, INPUT_STEPS, BranchStep, CollectStep, Flow, GotoFlowStep, HangupStep, LookupStep, MenuStep,
                        PlayStep, PromptItem, QueueStep, RecordStep, SayDigits, SayNumber, SetStep, SpeechMenuStep,
                        Step, TransferStep, step_targets)
from .checker import Checker, kind_of
from .yaml_lines import ConfigError, LineDict, LineList

__all__ = ["parse_flow", "STEP_KINDS", "PromptUse", "FlowReference"]

STEP_KINDS = ("play", "menu", "collect", "speech_menu", "set", "branch", "lookup", "goto_flow", "queue", "transfer",
              "record", "hangup")
DTMF_KEYS = set("0123456789*#")
COMMON_KEYS = {"event"}
# Comparisons made on text: a value YAML turned into another number would silently never match.
_TEXT_COMPARISONS = ("equals", "not_equals", "in", "starts_with", "matches")

PromptUse = tuple[str, int, str, str]          # (file, line, step, prompt)
FlowReference = tuple[str, int, str, str]      # (file, line, kind: flow|queue|lookup|hours|phrase, name)


def parse_flow(path: Path, document: Any, errors: list[ConfigError], prompt_uses: list[PromptUse],
               references: list[FlowReference]) -> tuple[str, Flow | None]:
    """The flow's name and the Flow, or None if it has errors (all of them are in `errors`)."""
    check = Checker(path, errors)
    top = check.mapping(document, 1, "a flow file")
    if top is None:
        return path.stem, None
    check.unknown_keys(top, {"name", "start", "steps", "description", "announce_before_answer"}, "flow")
    name = str(top.get("name", path.stem))
    announcement = _announcement(check, top, name, prompt_uses)
    steps_doc = check.mapping(top.get("steps"), top.line_of("steps"), f"flow {name!r} steps")
    if steps_doc is None:
        return name, None
    if not steps_doc:
        check.error(steps_doc.line, f"flow {name!r} has no steps")
        return name, None
    start = str(top.get("start", next(iter(steps_doc))))
    names = [str(step_name) for step_name in steps_doc]
    steps: dict[str, Step] = {}
    before = len(errors)
    for step_name, body in steps_doc.items():
        parser = _StepParser(check, str(step_name), body, steps_doc.line_of(step_name), prompt_uses, references)
        step = parser.parse()
        if step is None:
            continue
        steps[str(step_name)] = step
        for target, line in parser.target_lines:
            if target is not None and target not in names:
                check.error(line, f"step {step.name!r} goes to unknown step {target!r} (known: {', '.join(names)})")
    if start not in names:
        check.error(top.line_of("start"), f"flow {name!r} starts at unknown step {start!r} (known: {', '.join(names)})")
    if len(errors) > before:
        return name, None  # reachability is only worth checking once every step parsed
    reachable = _reachable(start, steps)
    for step in steps.values():
        if step.name not in reachable:
            check.error(step.line, f"step {step.name!r} is unreachable from start step {start!r}")
    for cycle in _loops_without_input(steps):
        first = steps[cycle[0]]
        check.error(first.line, f"steps {' -> '.join(cycle + [cycle[0]])} loop without waiting for input: a caller "
                                "would be stuck; add a menu, collect or speech_menu step to the loop, or end it")
    if len(errors) > before:
        return name, None
    return name, Flow(name=name, start=start, steps=steps, source=str(path), announce_before_answer=announcement)


def _announcement(check: Checker, top: LineDict, name: str, prompt_uses: list[PromptUse]) -> tuple[str, ...]:
    """`announce_before_answer: prompt` or `[prompts]`: file prompts only (early media plays before the
    flow, so there is no context to speak values from)."""
    if "announce_before_answer" not in top:
        return ()
    value, line = top["announce_before_answer"], top.line_of("announce_before_answer")
    items = list(value) if isinstance(value, LineList) else [value]
    lines = value.lines if isinstance(value, LineList) else [line]
    prompts = []
    for item, at in zip(items, lines):
        if isinstance(item, str) and item:
            prompts.append(item)
            prompt_uses.append((str(check.path), at, "announce_before_answer", item))
        else:
            check.error(at, f"flow {name!r} announce_before_answer: each item is a prompt name (a WAV file in "
                            f"sounds/ without .wav), not {kind_of(item)}")
    if not items:
        check.error(line, f"flow {name!r} announce_before_answer names no prompt: give a prompt name or a list of them")
    return tuple(prompts)


class _StepParser:
    """Parses one step body; collects its target lines, prompt uses and cross-file references."""

    def __init__(self, check: Checker, name: str, body: Any, line: int, prompt_uses: list[PromptUse],
                 references: list[FlowReference]) -> None:
        self.check = check
        self.name = name
        self.raw = body
        self.line = line
        self.prompt_uses = prompt_uses
        self.references = references
        self.target_lines: list[tuple[str | None, int]] = []
        self.body: LineDict = LineDict()

    def parse(self) -> Step | None:
        body = self.check.mapping(self.raw, self.line, f"step {self.name!r}")
        if body is None:
            return None
        self.body = body
        kinds = [k for k in STEP_KINDS if k in body]
        if len(kinds) != 1:
            self.check.error(self.line, f"step {self.name!r} must have exactly one of: {', '.join(STEP_KINDS)} "
                                        f"(found {kinds or 'none'})")
            return None
        before = len(self.check.errors)
        step = getattr(self, f"_{kinds[0]}")()
        return step if len(self.check.errors) == before else None

    # ---- helpers -------------------------------------------------------------------------------
    def _keys(self, kind: str, allowed: set[str]) -> None:
        self.check.unknown_keys(self.body, allowed | COMMON_KEYS | {kind}, f"{kind} step {self.name!r}")

    def _common(self) -> dict[str, Any]:
        return {"name": self.name, "line": self.line, "event": self.check.text(self.body, "event", f"step {self.name!r}")}

    def _target(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.check.error(self.body.line_of(key), f"{key} must name a step, not {value!r}")
            return None
        self.target_lines.append((str(value), self.body.line_of(key)))
        return str(value)

    def _targets_map(self, key: str, validate_key: Callable[[str], str | None]) -> dict[str, str]:
        mapping = self.check.mapping(self.body.get(key), self.body.line_of(key), f"step {self.name!r} {key}")
        result: dict[str, str] = {}
        if mapping is None:
            return result
        for option, target in mapping.items():
            problem = validate_key(str(option))
            if isinstance(option, bool):
                problem = f"{option!r} is how YAML reads an unquoted yes, no, on or off; quote it (\"yes\": step)"
            if problem:
                self.check.error(mapping.line_of(option), f"step {self.name!r} {key}: {problem}")
            elif not isinstance(target, str):
                self.check.error(mapping.line_of(option), f"step {self.name!r} {key} {option!r} must name a step")
            else:
                result[str(option)] = target
                self.target_lines.append((target, mapping.line_of(option)))
        return result

    def _prompts(self, key: str, *, required: bool = False) -> tuple[PromptItem, ...]:
        value = self.body.get(key)
        if value is None:
            if required:
                self.check.error(self.line, f"step {self.name!r} needs {key!r}: a prompt name or a list of them")
            return ()
        items = value if isinstance(value, LineList) else LineList([value])
        lines = value.lines if isinstance(value, LineList) else [self.body.line_of(key)]
        prompts: list[PromptItem] = []
        for item, line in zip(items, lines):
            if isinstance(item, str) and item:
                prompts.append(item)
                self.prompt_uses.append((str(self.check.path), line, self.name, item))
            elif isinstance(item, LineDict) and len(item) == 1 and next(iter(item)) in ("say_digits", "say_number"):
                kind, template = next(iter(item.items()))
                spoken = SayDigits(str(template)) if kind == "say_digits" else SayNumber(str(template))
                prompts.append(spoken)
                self.references.append((str(self.check.path), line, "spoken", kind))
            else:
                self.check.error(line, f"step {self.name!r} {key}: each prompt is a name, {{say_digits: \"{{var}}\"}} "
                                       f"or {{say_number: \"{{var}}\"}}, not {kind_of(item)}")
        if not prompts and required:
            self.check.error(self.body.line_of(key), f"step {self.name!r} {key} names no prompt")
        return tuple(prompts)

    def _changed_by_yaml(self, key: str, value: Any, written: str | None, line: int) -> bool:
        """An error (and True) when YAML read a plain number other than as written, where it is used as text:
        0123 is octal 83, +44 is 44, 1_000 is 1000, so a collected "0123" or a caller's "+44..." never match."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or written is None or written == str(value):
            return False
        self.check.error(line, f"step {self.name!r}: {key} {written} reads as {value!r} in YAML; "
                               f"quote it: {key} \"{written}\"")
        return True

    def _retries(self, **defaults: Any) -> dict[str, Any]:
        what = f"step {self.name!r}"
        return {"timeout_seconds": float(self.check.number(self.body, "timeout", 5.0, what, minimum=0.5)),
                "retries": int(self.check.number(self.body, "retries", 3, what, minimum=1, maximum=10, integer=True)),
                "on_failure": self._target("on_failure"), **defaults}

    # ---- one method per step kind ---------------------------------------------------------------
    def _play(self) -> Step:
        self._keys("play", {"next", "barge_in"})
        return PlayStep(prompts=self._prompts("play", required=True), next=self._target("next"),
                        barge_in=self.check.boolean(self.body, "barge_in", False, f"step {self.name!r}"), **self._common())

    def _menu(self) -> Step:
        self._keys("menu", {"choices", "timeout", "retries", "timeout_prompt", "invalid_prompt", "on_failure", "barge_in"})
        choices = self._targets_map("choices", lambda key: None if key in DTMF_KEYS else f"{key!r} is not a DTMF key (0-9, *, #)")
        if "choices" in self.body and not choices and isinstance(self.body.get("choices"), LineDict):
            self.check.error(self.body.line_of("choices"), f"menu {self.name!r} has no choices")
        return MenuStep(prompts=self._prompts("menu", required=True), choices=choices,
                        timeout_prompts=self._prompts("timeout_prompt"), invalid_prompts=self._prompts("invalid_prompt"),
                        barge_in=self.check.boolean(self.body, "barge_in", True, f"step {self.name!r}"),
                        **self._retries(), **self._common())

    def _collect(self) -> Step:
        self._keys("collect", {"into", "min_length", "max_length", "terminator", "timeout", "inter_digit_timeout",
                               "retries", "pattern", "mask", "timeout_prompt", "invalid_prompt", "next", "on_failure",
                               "barge_in"})
        what = f"collect step {self.name!r}"
        into = self.check.text(self.body, "into", what, required=True) or "digits"
        minimum = int(self.check.number(self.body, "min_length", 1, what, minimum=1, maximum=64, integer=True))
        maximum = int(self.check.number(self.body, "max_length", max(minimum, 16), what, minimum=1, maximum=64, integer=True))
        if minimum > maximum:
            self.check.error(self.body.line_of("min_length"), f"{what}: min_length {minimum} exceeds max_length {maximum}")
        terminator = self.body.get("terminator", "#")
        if terminator is not None and str(terminator) not in ("#", "*"):
            self.check.error(self.body.line_of("terminator"), f"{what}: terminator must be '#', '*' or null")
        pattern = self.check.text(self.body, "pattern", what)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.check.error(self.body.line_of("pattern"), f"{what}: pattern {pattern!r} is not a valid regular expression: {exc}")
        return CollectStep(prompts=self._prompts("collect", required=True), into=into, min_length=minimum,
                           max_length=max(minimum, maximum), terminator=None if terminator is None else str(terminator),
                           inter_digit_timeout_seconds=float(self.check.number(self.body, "inter_digit_timeout", 3.0, what, minimum=0.5)),
                           pattern=pattern, mask=self.check.boolean(self.body, "mask", False, what),
                           timeout_prompts=self._prompts("timeout_prompt"), invalid_prompts=self._prompts("invalid_prompt"),
                           next=self._target("next"), barge_in=self.check.boolean(self.body, "barge_in", True, what),
                           **self._retries(), **self._common())

    def _speech_menu(self) -> Step:
        self._keys("speech_menu", {"phrases", "choices", "min_confidence", "timeout", "max_utterance", "retries",
                                   "no_input_prompt", "no_match_prompt", "on_failure", "barge_in"})
        what = f"speech_menu step {self.name!r}"

        def phrase_problem(phrase: str) -> str | None:
            if not re.fullmatch(r"[a-z]+( [a-z]+)*", phrase):
                return f"phrase {phrase!r} must be lower-case words separated by single spaces"
            return None
        phrases = self._targets_map("phrases", phrase_problem)
        for phrase in phrases:
            self.references.append((str(self.check.path), self.body.line_of("phrases"), "phrase", phrase))
        if not phrases and isinstance(self.body.get("phrases"), LineDict):
            self.check.error(self.body.line_of("phrases"), f"{what} has no phrases")
        choices = self._targets_map("choices", lambda key: None if key in DTMF_KEYS else f"{key!r} is not a DTMF key") \
            if "choices" in self.body else {}
        return SpeechMenuStep(prompts=self._prompts("speech_menu", required=True), phrases=phrases, choices=choices,
                              min_confidence=float(self.check.number(self.body, "min_confidence", 0.5, what, maximum=1)),
                              max_utterance_seconds=float(self.check.number(self.body, "max_utterance", 4.0, what, minimum=1)),
                              no_input_prompts=self._prompts("no_input_prompt"),
                              no_match_prompts=self._prompts("no_match_prompt"),
                              barge_in=self.check.boolean(self.body, "barge_in", True, what),
                              **self._retries(), **self._common())

    def _set(self) -> Step:
        self._keys("set", {"next"})
        values = self.check.mapping(self.body.get("set"), self.body.line_of("set"), f"set step {self.name!r}")
        result = {}
        for variable, template in (values or {}).items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(variable)):
                self.check.error(values.line_of(variable), f"set step {self.name!r}: {variable!r} is not a variable name")
            elif isinstance(template, (LineDict, LineList)) or template is None:
                self.check.error(values.line_of(variable), f"set step {self.name!r}: {variable} must be text or a number")
            elif not self._changed_by_yaml(f"{variable}:", template, values.texts.get(variable),
                                           values.line_of(variable)):
                result[str(variable)] = str(template)
        return SetStep(values=result, next=self._target("next"), **self._common())

    def _branch(self) -> Step:
        self._keys("branch", {"otherwise"})
        cases_doc = self.body.get("branch")
        cases: list[tuple[Condition, str]] = []
        if not isinstance(cases_doc, LineList) or not cases_doc:
            self.check.error(self.body.line_of("branch"), f"branch step {self.name!r} needs a list of {{when: condition, goto: step}}")
        else:
            for case, line in zip(cases_doc, cases_doc.lines):
                item = self.check.mapping(case, line, f"branch step {self.name!r} case")
                if item is None:
                    continue
                self.check.unknown_keys(item, {"when", "goto"}, f"branch step {self.name!r} case")
                condition = self._condition(item.get("when"), item.line_of("when"))
                target = item.get("goto")
                if not isinstance(target, str):
                    self.check.error(item.line, f"branch step {self.name!r} case needs goto: a step name")
                elif condition is not None:
                    self.target_lines.append((target, item.line_of("goto")))
                    cases.append((condition, target))
        return BranchStep(cases=tuple(cases), otherwise=self._target("otherwise"), **self._common())

    def _condition(self, value: Any, line: int) -> Condition | None:
        item = self.check.mapping(value, line, f"branch step {self.name!r} condition")
        if item is None:
            return None
        shape = ("a condition is {var: name, <one of " + ", ".join(COMPARISONS)
                 + ">: value}, {open: hours}, {all: [...]}, {any: [...]} or {not: {...}}")
        if any(k in item for k in ("all", "any", "not", "open")) and len(item) != 1:
            self.check.error(item.line, shape)  # e.g. {open: hours, var: x}: the extra key would be ignored
            return None
        for combiner, build in (("all", AllOf), ("any", AnyOf)):
            if combiner in item:
                parts = item[combiner]
                if not isinstance(parts, LineList) or not parts:
                    self.check.error(item.line_of(combiner), f"{combiner}: needs a list of conditions")
                    return None
                inner = [self._condition(p, l) for p, l in zip(parts, parts.lines)]
                return None if None in inner else build(tuple(inner))
        if "not" in item:
            inner = self._condition(item["not"], item.line_of("not"))
            return None if inner is None else Not(inner)
        if "open" in item:
            self.references.append((str(self.check.path), item.line_of("open"), "hours", str(item["open"])))
            return IsOpen(str(item["open"]))
        operators = [k for k in item if k in COMPARISONS]
        if "var" not in item or len(operators) != 1 or len(item) != 2:
            self.check.error(item.line, shape)
            return None
        operator = operators[0]
        expected = item[operator]
        if operator == "matches":
            try:
                re.compile(str(expected))
            except re.error as exc:
                self.check.error(item.line_of(operator), f"matches {expected!r} is not a valid regular expression: {exc}")
                return None
        if operator == "in" and not isinstance(expected, LineList):
            self.check.error(item.line_of(operator), "in: needs a list of values")
            return None
        if operator in _TEXT_COMPARISONS:
            written = (list(zip(expected, expected.texts, expected.lines)) if isinstance(expected, LineList)
                       else [(expected, item.texts.get(operator), item.line_of(operator))])
            if any([self._changed_by_yaml(f"{operator}:", v, text, at) for v, text, at in written]):  # report each
                return None
        return Compare(str(item["var"]), operator, list(expected) if isinstance(expected, LineList) else expected)

    def _lookup(self) -> Step:
        self._keys("lookup", {"key", "into", "found", "not_found"})
        what = f"lookup step {self.name!r}"
        source = self.check.text(self.body, "lookup", what, required=True) or ""
        self.references.append((str(self.check.path), self.body.line_of("lookup"), "lookup", source))
        found = self._target("found")
        if "found" not in self.body:
            self.check.error(self.line, f"{what} needs found: the step after a match")
        not_found = self._target("not_found") if "not_found" in self.body else found
        return LookupStep(source=source, key=self.check.text(self.body, "key", what, required=True) or "",
                          into=self.check.text(self.body, "into", what, required=True) or "record",
                          found=found, not_found=not_found, **self._common())

    def _goto_flow(self) -> Step:
        self._keys("goto_flow", set())
        target = self.check.text(self.body, "goto_flow", f"step {self.name!r}", required=True) or ""
        self.references.append((str(self.check.path), self.body.line_of("goto_flow"), "flow", target))
        return GotoFlowStep(flow=target, **self._common())

    def _queue(self) -> Step:
        self._keys("queue", {"priority", "skills", "on_failure"})
        what = f"queue step {self.name!r}"
        queue = self.check.text(self.body, "queue", what, required=True) or ""
        self.references.append((str(self.check.path), self.body.line_of("queue"), "queue", queue))
        skills_doc = self.body.get("skills")
        skills: dict[str, int] = {}
        if skills_doc is not None and (mapping := self.check.mapping(skills_doc, self.body.line_of("skills"), f"{what} skills")):
            for skill, level in mapping.items():
                if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
                    self.check.error(mapping.line_of(skill), f"{what}: skill {skill} level must be 1-10, not {level!r}")
                else:
                    skills[str(skill)] = level
        return QueueStep(queue=queue, priority=int(self.check.number(self.body, "priority", 0, what, maximum=9, integer=True)),
                         skills=skills, on_failure=self._target("on_failure"), **self._common())

    def _transfer(self) -> Step:
        self._keys("transfer", set())
        if "transfer" in self.body:
            self._changed_by_yaml("transfer:", self.body["transfer"], self.body.texts.get("transfer"),
                                  self.body.line_of("transfer"))
        return TransferStep(target=self.check.text(self.body, "transfer", f"step {self.name!r}", required=True) or "",
                            **self._common())

    def _record(self) -> Step:
        self._keys("record", {"into", "kind", "max_seconds", "silence_seconds", "next"})
        what = f"record step {self.name!r}"
        kind = self.check.text(self.body, "kind", what) or "voicemail"
        if kind not in ("voicemail", "callback"):
            self.check.error(self.body.line_of("kind"), f"{what}: kind must be voicemail or callback")
        return RecordStep(prompts=self._prompts("record", required=True), into=self.check.text(self.body, "into", what) or "recording",
                          kind=kind, max_seconds=float(self.check.number(self.body, "max_seconds", 60, what, minimum=1, maximum=600)),
                          silence_seconds=float(self.check.number(self.body, "silence_seconds", DEFAULT_RECORD_SILENCE_SECONDS, what,
                                                                  minimum=0, maximum=60)),
                          next=self._target("next"), **self._common())

    def _hangup(self) -> Step:
        self._keys("hangup", set())
        return HangupStep(**{k: v for k, v in self._common().items()})


def _reachable(start: str, steps: dict[str, Step]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in steps:
            continue
        seen.add(name)
        todo.extend(t for t in step_targets(steps[name]) if t is not None)
    return seen


def _loops_without_input(steps: dict[str, Step]) -> list[list[str]]:
    """Cycles made only of steps that never wait for the caller (each reported once)."""
    graph = {name: [t for t in step_targets(step) if t in steps and not isinstance(steps[t], INPUT_STEPS)]
             for name, step in steps.items() if not isinstance(step, INPUT_STEPS)}
    cycles: list[list[str]] = []
    in_cycle: set[str] = set()
    finished: set[str] = set()
    for origin in graph:
        if origin in in_cycle or origin in finished:
            continue
        stack, path, on_path = [(origin, iter(graph[origin]))], [origin], {origin}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                finished.add(node)
                on_path.discard(path.pop())
            elif child in on_path:
                cycle = path[path.index(child):]
                if not in_cycle.intersection(cycle):
                    cycles.append(cycle)
                    in_cycle.update(cycle)
            elif child not in in_cycle and child not in finished and child in graph:
                stack.append((child, iter(graph[child])))
                path.append(child)
                on_path.add(child)
    return cycles
