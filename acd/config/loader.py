"""One loader for the whole config set (DESIGN: "Config is data").

`load_config(root)` reads `conf/acd.yaml`, `dialplans/*.yaml` and `ivr_flows/*.yaml` under `root`,
checks every cross-reference (flows named by routes, steps named by steps, prompt files), and
returns a `Config` or raises `ConfigInvalid` listing every `file:line: problem` it found.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from ..ivr.flow import Flow, HangupStep, MenuStep, PlayStep, Step
from ..media.wav import read_wav_pcm16_8k
from .model import Config, Route, RtpSettings, SipSettings, Trunk
from .yaml_lines import ConfigError, ConfigInvalid, LineDict, LineList, load_yaml_with_lines

__all__ = ["load_config", "ConfigError", "ConfigInvalid"]

STEP_KINDS = ("play", "menu", "hangup")
DTMF_KEYS = set("0123456789*#")
PROMPT_KEYS = ("play", "menu", "timeout_prompt", "invalid_prompt")
_UNUSABLE = object()  # a file that is missing or not YAML (its error is already listed)


class _Checker:
    """Collects errors for one file instead of stopping at the first."""

    def __init__(self, path: Path, errors: list[ConfigError]) -> None:
        self.path = path
        self.errors = errors

    def error(self, line: int, message: str) -> None:
        self.errors.append(ConfigError(self.path, line, message))

    def mapping(self, value: Any, line: int, what: str) -> LineDict | None:
        if not isinstance(value, LineDict):
            self.error(line, f"{what} must be a mapping (key: value lines), not {_kind(value)}")
            return None
        return value

    def unknown_keys(self, mapping: LineDict, allowed: set[str], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error(mapping.line_of(key), f"unknown key {key!r} in {what} (expected one of: {hint})")

    def number(self, mapping: LineDict, key: str, default: float, what: str, *, minimum: float = 0,
               integer: bool = False) -> float:
        value = mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.error(mapping.line_of(key), f"{what} {key} must be {'an integer' if integer else 'a number'}, not {value!r}")
            return default
        if value < minimum:
            self.error(mapping.line_of(key), f"{what} {key} must be at least {minimum}, not {value}")
            return default
        return value

    def prompts(self, mapping: LineDict, key: str, what: str, *, required: bool = False) -> tuple[str, ...]:
        value = mapping.get(key)
        if value is None:
            if required:
                self.error(mapping.line, f"{what} needs {key!r}: a prompt name or a list of them")
            return ()
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) and v for v in items):
            self.error(mapping.line_of(key), f"{what} {key} must be a prompt name or a list of prompt names")
            return ()
        return tuple(items)


def _kind(value: Any) -> str:
    return {str: "text", int: "a number", float: "a number", bool: "true/false", type(None): "empty",
            LineList: "a list", LineDict: "a mapping"}.get(type(value), type(value).__name__)


def load_config(root: Path | str) -> Config:
    """Load and check the config set under `root`; raises ConfigInvalid with every error found."""
    root = Path(root).resolve()
    errors: list[ConfigError] = []
    files: list[str] = []
    main_path = root / "conf" / "acd.yaml"
    settings = _load_file(main_path, errors, files)
    sip, rtp, trunks, data_dir, sounds_dir = _parse_main(main_path, settings, root, errors)
    prompts = _scan_prompts(sounds_dir)
    flows: dict[str, Flow] = {}
    broken_flows: set[str] = set()  # named by a flow file with errors: routes to them are not errors too
    prompt_uses: list[tuple[str, int, str, str]] = []
    flow_dir = root / "ivr_flows"
    for path in sorted(flow_dir.glob("*.yaml")) if flow_dir.is_dir() else []:
        document = _load_file(path, errors, files)
        if document is _UNUSABLE:
            broken_flows.add(path.stem)  # not YAML: its name is unknown, most likely the file's
        else:
            name, flow = _parse_flow(path, document, errors, prompt_uses)
            if flow is None:
                broken_flows.add(name)
            else:
                if flow.name in flows:
                    errors.append(ConfigError(path, document.line_of("name") if isinstance(document, LineDict) else 1,
                                              f"flow name {flow.name!r} is also used by {flows[flow.name].source}"))
                flows[flow.name] = flow
    routes: list[Route] = []
    plan_dir = root / "dialplans"
    for path in sorted(plan_dir.glob("*.yaml")) if plan_dir.is_dir() else []:
        document = _load_file(path, errors, files)
        if document is not _UNUSABLE:
            routes.extend(_parse_dialplan(path, document, flows, broken_flows, errors))
    if not routes and not errors:
        errors.append(ConfigError(plan_dir, 0, "no dialplan routes: add dialplans/<name>.yaml with a 'routes:' list"))
    _check_prompts(prompt_uses, prompts, errors)
    if errors:
        raise ConfigInvalid(errors)
    return Config(root=root, sip=sip, rtp=rtp, trunks=tuple(trunks), routes=tuple(routes), flows=flows,
                  prompts=prompts, data_dir=data_dir, files=tuple(files))


def _load_file(path: Path, errors: list[ConfigError], files: list[str]) -> Any:
    files.append(str(path))
    if not path.exists():
        errors.append(ConfigError(path, 0, "file is missing"))
        return _UNUSABLE
    try:
        return load_yaml_with_lines(path)
    except ConfigError as error:
        errors.append(error)
        return _UNUSABLE


def _parse_main(path: Path, document: Any, root: Path, errors: list[ConfigError]):
    check = _Checker(path, errors)
    sip, rtp, trunks = SipSettings(), RtpSettings(), []
    data_dir, sounds_dir = root / "data", root / "sounds"
    if document is _UNUSABLE:
        return sip, rtp, trunks, data_dir, sounds_dir
    top = check.mapping(document, 1, "conf/acd.yaml")
    if top is None:
        return sip, rtp, trunks, data_dir, sounds_dir
    check.unknown_keys(top, {"sip", "rtp", "trunks", "data_dir", "sounds_dir"}, "conf/acd.yaml")
    if "sip" in top and (section := check.mapping(top["sip"], top.line_of("sip"), "sip")) is not None:
        check.unknown_keys(section, {"listen", "port", "public_address", "transports"}, "sip")
        listen = str(section.get("listen", sip.listen))
        _check_ip(check, section, "listen", listen)
        port = int(check.number(section, "port", sip.port, "sip", integer=True))
        if not 0 < port < 65536:
            check.error(section.line_of("port"), f"sip port must be 1-65535, not {port}")
            port = SipSettings.port
        public = str(section.get("public_address", listen if listen not in ("0.0.0.0", "::") else "127.0.0.1"))
        if "public_address" in section:  # else derived from listen, already checked
            _check_ip(check, section, "public_address", public)
        transports = section.get("transports", ["udp", "tcp"])
        if not isinstance(transports, list) or not transports or any(t not in ("udp", "tcp") for t in transports):
            check.error(section.line_of("transports"), "sip transports must be a list of udp and/or tcp")
            transports = ["udp", "tcp"]
        sip = SipSettings(listen=listen, port=port, public_address=public, transports=tuple(transports))
    if "rtp" in top and (section := check.mapping(top["rtp"], top.line_of("rtp"), "rtp")) is not None:
        check.unknown_keys(section, {"address", "ports"}, "rtp")
        address = str(section.get("address", rtp.address))
        _check_ip(check, section, "address", address)
        low, high = rtp.port_min, rtp.port_max
        ports = section.get("ports", f"{low}-{high}")
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(ports))
        if not match or not (1024 <= int(match.group(1)) < int(match.group(2)) <= 65535):
            check.error(section.line_of("ports"), f"rtp ports must look like 20000-29999 (1024-65535, low < high), not {ports!r}")
        else:
            low, high = int(match.group(1)), int(match.group(2))
        rtp = RtpSettings(address=address, port_min=low, port_max=high)
    if "trunks" in top and (section := check.mapping(top["trunks"], top.line_of("trunks"), "trunks")) is not None:
        for name, body in section.items():
            trunk = check.mapping(body, section.line_of(name), f"trunk {name!r}")
            if trunk is None:
                continue
            check.unknown_keys(trunk, {"sources", "port"}, f"trunk {name!r}")
            sources = trunk.get("sources")
            if not isinstance(sources, list) or not sources:
                check.error(trunk.line_of("sources"), f"trunk {name!r} needs 'sources': a list of IP addresses or networks")
                continue
            networks = []
            for index, source in enumerate(sources):
                try:
                    networks.append(ipaddress.ip_network(str(source), strict=False))
                except ValueError:
                    check.error(sources.lines[index], f"trunk {name!r} source {source!r} is not an IP address or network (e.g. 192.0.2.10 or 192.0.2.0/24)")
            port = trunk.get("port")
            if port is not None and not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
                check.error(trunk.line_of("port"), f"trunk {name!r} port must be 1-65535, not {port!r}")
                port = None
            trunks.append(Trunk(name=str(name), sources=tuple(networks), port=port))
    if not trunks:
        check.error(top.line_of("trunks"), "no trunks: add 'trunks:' with at least one trunk and its 'sources' (nobody could call in)")
    data_dir = (root / str(top.get("data_dir", "data"))).resolve()
    sounds_dir = (root / str(top.get("sounds_dir", "sounds"))).resolve()
    if not sounds_dir.is_dir():
        check.error(top.line_of("sounds_dir"), f"sounds directory {sounds_dir} does not exist")
    return sip, rtp, trunks, data_dir, sounds_dir


def _check_ip(check: _Checker, section: LineDict, key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        check.error(section.line_of(key), f"{key} must be an IP address, not {value!r}")


def _scan_prompts(sounds_dir: Path) -> dict[str, Path]:
    if not sounds_dir.is_dir():
        return {}
    return {str(p.relative_to(sounds_dir).with_suffix("")): p for p in sorted(sounds_dir.rglob("*.wav"))}


def _parse_flow(path: Path, document: Any, errors: list[ConfigError],
                prompt_uses: list[tuple[str, int, str, str]]) -> tuple[str, Flow | None]:
    """The flow's name and the Flow, or None if it has errors.

    A step with errors does not hide the others: every step is still checked for unknown targets,
    and its prompts are added to `prompt_uses` as (file, line, step, prompt) to be checked later.
    """
    check = _Checker(path, errors)
    top = check.mapping(document, 1, "a flow file")
    if top is None:
        return path.stem, None
    check.unknown_keys(top, {"name", "start", "steps", "description"}, "flow")
    name = str(top.get("name", path.stem))
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
        step = _parse_step(check, str(step_name), body, steps_doc.line_of(step_name))
        if step is not None:
            steps[str(step_name)] = step
            for prompt, line in _prompt_lines(body):
                prompt_uses.append((str(path), line, step.name, prompt))
            for target, line in _target_lines(step, body):
                if target is not None and target not in names:
                    check.error(line, f"step {step.name!r} goes to unknown step {target!r} (known: {', '.join(names)})")
    if start not in names:
        check.error(top.line_of("start"), f"flow {name!r} starts at unknown step {start!r} (known: {', '.join(names)})")
    if len(errors) > before:
        return name, None  # unreachable steps are only worth reporting once every step parsed
    reachable = _reachable(start, steps)
    for step in steps.values():
        if step.name not in reachable:
            check.error(step.line, f"step {step.name!r} is unreachable from start step {start!r}")
    if len(errors) > before:
        return name, None
    return name, Flow(name=name, start=start, steps=steps, source=str(path))


def _parse_step(check: _Checker, name: str, body: Any, line: int) -> Step | None:
    step = check.mapping(body, line, f"step {name!r}")
    if step is None:
        return None
    kinds = [k for k in STEP_KINDS if k in step]
    if len(kinds) != 1:
        check.error(line, f"step {name!r} must have exactly one of: {', '.join(STEP_KINDS)} (found {kinds or 'none'})")
        return None
    kind = kinds[0]
    if kind == "play":
        check.unknown_keys(step, {"play", "next"}, f"play step {name!r}")
        prompts = check.prompts(step, "play", f"play step {name!r}", required=True)
        return PlayStep(name=name, prompts=prompts, next=_step_ref(check, step, "next"), line=line)
    if kind == "hangup":
        check.unknown_keys(step, {"hangup"}, f"hangup step {name!r}")
        return HangupStep(name=name, line=line)
    check.unknown_keys(step, {"menu", "choices", "timeout", "retries", "timeout_prompt", "invalid_prompt",
                              "on_failure"}, f"menu step {name!r}")
    prompts = check.prompts(step, "menu", f"menu step {name!r}", required=True)
    choices_doc = check.mapping(step.get("choices"), step.line_of("choices"), f"menu step {name!r} choices")
    choices: dict[str, str] = {}
    if choices_doc is not None:
        for key, target in choices_doc.items():
            digit = str(key)
            if digit not in DTMF_KEYS:
                check.error(choices_doc.line_of(key), f"menu {name!r} choice {key!r} is not a DTMF key (0-9, *, #)")
            elif not isinstance(target, str):
                check.error(choices_doc.line_of(key), f"menu {name!r} choice {digit} must name a step")
            else:
                choices[digit] = target
        if not choices_doc:
            check.error(choices_doc.line, f"menu {name!r} has no choices")
    timeout = check.number(step, "timeout", 5.0, f"menu {name!r}", minimum=0.5)
    retries = int(check.number(step, "retries", 3, f"menu {name!r}", minimum=1, integer=True))
    return MenuStep(name=name, prompts=prompts, choices=choices, timeout_seconds=float(timeout), retries=retries,
                    timeout_prompts=check.prompts(step, "timeout_prompt", f"menu {name!r}"),
                    invalid_prompts=check.prompts(step, "invalid_prompt", f"menu {name!r}"),
                    on_failure=_step_ref(check, step, "on_failure"), line=line)


def _step_ref(check: _Checker, step: LineDict, key: str) -> str | None:
    value = step.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        check.error(step.line_of(key), f"{key} must name a step, not {value!r}")
        return None
    return str(value)


def _targets(step: Step) -> list[str | None]:
    if isinstance(step, PlayStep):
        return [step.next]
    if isinstance(step, MenuStep):
        return list(step.choices.values()) + [step.on_failure]
    return []


def _target_lines(step: Step, body: LineDict) -> list[tuple[str | None, int]]:
    """The steps `step` goes to, each with the line that names it (`next:`, a choice, `on_failure:`)."""
    if isinstance(step, PlayStep):
        return [(step.next, body.line_of("next"))]
    if isinstance(step, MenuStep):
        choices = body.get("choices")
        named = [(target, choices.line_of(key)) for key, target in choices.items() if str(key) in step.choices] \
            if isinstance(choices, LineDict) else []
        return named + [(step.on_failure, body.line_of("on_failure"))]
    return []


def _prompt_lines(body: LineDict) -> list[tuple[str, int]]:
    """Every prompt a (checked) step body names, each with its line."""
    uses = []
    for key in PROMPT_KEYS:
        value = body.get(key)
        if isinstance(value, LineList):
            uses += [(item, line) for item, line in zip(value, value.lines) if isinstance(item, str) and item]
        elif isinstance(value, str) and value:
            uses.append((value, body.line_of(key)))
    return uses


def _reachable(start: str, steps: dict[str, Step]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in steps:
            continue
        seen.add(name)
        todo.extend(t for t in _targets(steps[name]) if t is not None)
    return seen


def _check_prompts(prompt_uses: list[tuple[str, int, str, str]], prompts: dict[str, Path],
                   errors: list[ConfigError]) -> None:
    checked: dict[str, str | None] = {}
    for source, line, step_name, prompt in prompt_uses:
        if prompt not in checked:
            path = prompts.get(prompt)
            if path is None:
                checked[prompt] = f"prompt {prompt!r} has no file sounds/{prompt}.wav"
            else:
                try:
                    read_wav_pcm16_8k(path)
                    checked[prompt] = None
                except (ValueError, OSError) as exc:
                    checked[prompt] = f"prompt {prompt!r}: {exc}"
        if checked[prompt]:
            errors.append(ConfigError(source, line, f"step {step_name!r}: {checked[prompt]}"))


def _parse_dialplan(path: Path, document: Any, flows: dict[str, Flow], broken_flows: set[str],
                    errors: list[ConfigError]) -> list[Route]:
    check = _Checker(path, errors)
    top = check.mapping(document, 1, "a dialplan file")
    if top is None:
        return []
    check.unknown_keys(top, {"routes", "description"}, "dialplan")
    entries = top.get("routes")
    if not isinstance(entries, LineList):
        check.error(top.line_of("routes"), "dialplan needs 'routes:', a list of {number or pattern, flow}")
        return []
    routes = []
    for index, entry in enumerate(entries):
        line = entries.lines[index]
        item = check.mapping(entry, line, "a route")
        if item is None:
            continue
        check.unknown_keys(item, {"number", "pattern", "flow", "answer_after_seconds"}, "route")
        before = len(errors)
        flow = item.get("flow")
        if not isinstance(flow, str):
            check.error(item.line, "route needs 'flow:' naming a flow in ivr_flows/")
        elif flow not in flows and flow not in broken_flows:
            check.error(item.line_of("flow"), f"route goes to unknown flow {flow!r} (known: {', '.join(sorted(flows)) or 'none'})")
        delay = float(check.number(item, "answer_after_seconds", 0.0, "route"))
        number = pattern = None
        if ("number" in item) == ("pattern" in item):
            check.error(item.line, "route needs exactly one of 'number' (exact) or 'pattern' (regular expression)")
        elif "number" in item:
            number = _route_text(check, item, "number")
        elif (text := _route_text(check, item, "pattern")) is not None:
            try:
                pattern = re.compile(text)
            except re.error as exc:
                check.error(item.line_of("pattern"), f"pattern {text!r} is not a valid regular expression: {exc}")
        if len(errors) == before and flow in flows:
            routes.append(Route(flow=flow, number=number, pattern=pattern, answer_after_seconds=delay,
                                source=f"{path}:{line}"))
    return routes


def _route_text(check: _Checker, item: LineDict, key: str) -> str | None:
    """A route's number or pattern as text. YAML reads some unquoted numbers as other integers
    (0123 is octal 83, +331 is 331, 1_000 is 1000), so an integer is taken only as it was written."""
    value = item[key]
    if isinstance(value, int) and not isinstance(value, bool) and item.texts.get(key) == str(value):
        return str(value)
    if isinstance(value, str) and value:
        return value
    written = item.texts.get(key)
    if value is None or value == "":
        check.error(item.line_of(key), f"route {key} is empty")
    elif written is None:
        check.error(item.line_of(key), f"route {key} must be text, not {_kind(value)}")
    else:
        check.error(item.line_of(key), f"route {key} {written} reads as {value!r} in YAML; quote it: {key}: \"{written}\"")
    return None
