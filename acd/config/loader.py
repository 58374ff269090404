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

from ..ivr.flow import Flow
from ..ivr.spoken import NUMBER_PROMPTS
from ..media.wav import read_wav_pcm16_8k
from .checker import Checker, kind_of
from .admission import parse_admission
from .agents import load_agents
from .cluster_settings import parse_cluster
from .extras import load_hours, load_incidents, load_lookups
from .flows import FlowReference, PromptUse, parse_flow
from .dtmf_mode import dtmf_mode
from .model import Config, HttpSettings, Route, RtpSettings, SipSettings, Trunk
from .session_timers import parse_session_timer
from .sip_streams import parse_stream_settings, parse_tls_settings
from .sip_limits import parse_sip_limits, parse_timer_t1
from .yaml_lines import ConfigError, ConfigInvalid, LineDict, LineList, load_yaml_with_lines
from .srtp_policy import srtp_policy
from .symmetric_setting import parse_symmetric_rtp
from .trunk_accounts import parse_caller_id, parse_register, parse_trunk_auth
from ..store.location import check_postgresql_url

__all__ = ["load_config", "ConfigError", "ConfigInvalid", "DIRECTORY_SOURCES"]

# Look-up sources served by the customer directory (acd customers import): by account number, a PIN
# check ("{customer.id}:{pin}"), and orders by order id.
DIRECTORY_SOURCES = frozenset({"customer_account", "customer_pin", "orders"})

_UNUSABLE = object()  # a file that is missing or not YAML (its error is already listed)


def load_config(root: Path | str) -> Config:
    """Load and check the config set under `root`; raises ConfigInvalid with every error found."""
    root = Path(root).resolve()
    errors: list[ConfigError] = []
    files: list[str] = []
    main_path = root / "conf" / "acd.yaml"
    settings = _load_file(main_path, errors, files)
    sip, rtp, trunks, data_dir, sounds_dir = _parse_main(main_path, settings, root, errors)
    http = _parse_http(main_path, settings, errors)
    crm = _parse_crm(main_path, settings, errors)
    country_code = "44"
    if isinstance(settings, LineDict) and "country_code" in settings:
        country_code = str(settings["country_code"])
        if not re.fullmatch(r"[1-9][0-9]{0,2}", country_code):
            errors.append(ConfigError(main_path, settings.line_of("country_code"),
                                      f"country_code must be 1-3 digits without + (44, 1, 34), not {country_code!r}"))
    store = _parse_store(main_path, settings, errors)
    cluster = parse_cluster(main_path, settings, errors, store)
    prompts = _scan_prompts(sounds_dir)
    flows: dict[str, Flow] = {}
    broken_flows: set[str] = set()  # named by a flow file with errors: routes to them are not errors too
    prompt_uses: list[PromptUse] = []
    references: list[FlowReference] = []
    calendars = load_hours(root / "conf" / "hours.yaml", errors, files)
    agents = load_agents(root / "conf" / "agents.yaml", errors, files, prompt_uses)
    queues = agents.queues
    lookups = load_lookups(root / "conf" / "lookups", errors, files)
    incidents = load_incidents(root / "conf" / "incidents.yaml", errors, files, prompt_uses, references)
    flow_dir = root / "ivr_flows"
    for path in sorted(flow_dir.glob("*.yaml")) if flow_dir.is_dir() else []:
        document = _load_file(path, errors, files)
        if document is _UNUSABLE:
            broken_flows.add(path.stem)  # not YAML: its name is unknown, most likely the file's
        else:
            name, flow = parse_flow(path, document, errors, prompt_uses, references)
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
    for queue_name, settings in queues.items():
        if settings.survey_flow and settings.survey_flow not in flows and settings.survey_flow not in broken_flows:
            errors.append(ConfigError(root / "conf" / "agents.yaml", 0, f"queue {queue_name!r}: survey_flow "
                                      f"{settings.survey_flow!r} is not a flow (known: {', '.join(sorted(flows))})"))
    _check_references(references, flows, broken_flows, queues, lookups, calendars, prompts, prompt_uses, errors)
    _check_prompts(prompt_uses, prompts, errors)
    if errors:
        raise ConfigInvalid(errors)
    return Config(root=root, sip=sip, rtp=rtp, trunks=tuple(trunks), routes=tuple(routes), flows=flows,
                  prompts=prompts, data_dir=data_dir, files=tuple(files), calendars=calendars, queues=queues,
                  lookups=lookups, agents=agents, http=http, country_code=country_code, incidents=incidents, store=store,
                  cluster=cluster, **crm)


def _parse_store(path: Path, settings: Any, errors: list[ConfigError]) -> str | None:
    """`store:`: absent (SQLite files in data_dir) or `postgresql://user@host:port/database`."""
    if not isinstance(settings, LineDict) or settings.get("store") in (None, ""):
        return None
    problem = check_postgresql_url(str(settings["store"]))
    if problem is not None:
        errors.append(ConfigError(path, settings.line_of("store"), f"store {problem}"))
        return None
    return str(settings["store"])


def _check_references(references: list[FlowReference], flows: dict[str, Flow], broken_flows: set[str],
                      queues: dict, lookups: dict, calendars: dict, prompts: dict, prompt_uses: list[PromptUse],
                      errors: list[ConfigError]) -> None:
    """Names a flow uses that live in other files: flows, queues, look-up sources, hours, number prompts."""
    known = {"flow": (set(flows) | broken_flows, "flow", "ivr_flows/<name>.yaml"),
             "queue": (set(queues), "queue", "conf/agents.yaml under queues:"),
             "lookup": (set(lookups) | DIRECTORY_SOURCES, "look-up source",
                        "conf/lookups/<name>.yaml (built in: " + ", ".join(sorted(DIRECTORY_SOURCES)) + ")"),
             "hours": (set(calendars), "business hours", "conf/hours.yaml")}
    spoken_checked: set[str] = set()
    for path, line, kind, name in references:
        if kind == "spoken":
            # say_digits needs digits/0-9 only; say_number needs the numbers/ prompts as well.
            needed = [p for p in NUMBER_PROMPTS if name == "say_number" or p.startswith("digits/")]
            prompt_uses.extend((path, line, "(spoken value)", p) for p in needed if p not in spoken_checked)
            spoken_checked.update(needed)
            continue
        if kind not in known:
            continue
        names, label, where = known[kind]
        if name not in names:
            listed = ", ".join(sorted(n for n in names if n)) or "none"
            errors.append(ConfigError(path, line, f"unknown {label} {name!r} (known: {listed}); define it in {where}"))


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
    check = Checker(path, errors)
    sip, rtp, trunks = SipSettings(), RtpSettings(), []
    data_dir, sounds_dir = root / "data", root / "sounds"
    if document is _UNUSABLE:
        return sip, rtp, trunks, data_dir, sounds_dir
    top = check.mapping(document, 1, "conf/acd.yaml")
    if top is None:
        return sip, rtp, trunks, data_dir, sounds_dir
    check.unknown_keys(top, {"sip", "rtp", "http", "trunks", "data_dir", "sounds_dir", "country_code", "crm", "store",
                            "cluster"},
                       "conf/acd.yaml")
    if "sip" in top and (section := check.mapping(top["sip"], top.line_of("sip"), "sip")) is not None:
        check.unknown_keys(section, {"listen", "port", "public_address", "transports", "tcp", "tls",
                                     "timer_t1_seconds", "limits", "admission", "session_timer"}, "sip")
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
        if not isinstance(transports, list) or not transports or any(t not in ("udp", "tcp", "tls") for t in transports):
            check.error(section.line_of("transports"), "sip transports must be a list of udp, tcp and/or tls")
            transports = ["udp", "tcp"]
        tls = parse_tls_settings(check, section, root, enabled="tls" in transports, sip_port=port,
                                 tcp_enabled="tcp" in transports)
        limits = parse_sip_limits(check, section["limits"], section.line_of("limits")) if "limits" in section \
            else sip.limits
        sip = SipSettings(listen=listen, port=port, public_address=public, transports=tuple(transports),
                          tcp=parse_stream_settings(check, section), tls=tls,
                          timer_t1_seconds=parse_timer_t1(check, section, sip.timer_t1_seconds), limits=limits,
                          admission=parse_admission(check, section),
                          session_timer=parse_session_timer(check, section))
    if "rtp" in top and (section := check.mapping(top["rtp"], top.line_of("rtp"), "rtp")) is not None:
        check.unknown_keys(section, {"address", "ports", "workers", "symmetric", "rtcp_interval_seconds"}, "rtp")
        address = str(section.get("address", rtp.address))
        _check_ip(check, section, "address", address)
        low, high = rtp.port_min, rtp.port_max
        ports = section.get("ports", f"{low}-{high}")
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(ports))
        if not match or not (1024 <= int(match.group(1)) < int(match.group(2)) <= 65535):
            check.error(section.line_of("ports"), f"rtp ports must look like 20000-29999 (1024-65535, low < high), not {ports!r}")
        else:
            low, high = int(match.group(1)), int(match.group(2))
        workers = section.get("workers", rtp.workers)
        if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 16):
            check.error(section.line_of("workers"), f"rtp workers must be auto or a number of media worker processes "
                                                    f"0-16 (0: media in the call process), not {workers!r}")
            workers = rtp.workers
        rtcp_interval = check.number(section, "rtcp_interval_seconds", rtp.rtcp_interval_seconds, "rtp", maximum=3600)
        rtp = RtpSettings(address=address, port_min=low, port_max=high, workers=workers,
                          symmetric=parse_symmetric_rtp(check, section, rtp.symmetric),
                          rtcp_interval_seconds=rtcp_interval)
    if "trunks" in top and (section := check.mapping(top["trunks"], top.line_of("trunks"), "trunks")) is not None:
        for name, body in section.items():
            trunk = check.mapping(body, section.line_of(name), f"trunk {name!r}")
            if trunk is None:
                continue
            check.unknown_keys(trunk, {"sources", "port", "outbound", "srtp", "dtmf", "register", "caller_id",
                                       "trusted", "auth"}, f"trunk {name!r}")
            identified_otherwise = "auth" in trunk or "register" in trunk  # by Digest, or its registrar's address
            sources = trunk.get("sources", LineList() if identified_otherwise else None)
            if not isinstance(sources, list) or not (sources or identified_otherwise):
                check.error(trunk.line_of("sources"), f"trunk {name!r} needs 'sources': a list of IP addresses or networks, "
                                                        f"or 'auth:' (Digest credentials) or 'register:'")
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
            outbound = None
            if "outbound" in trunk:
                match = re.fullmatch(r"\s*([0-9.]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*", str(trunk["outbound"]))
                if match is None or not 0 < int(match.group(2)) < 65536:
                    check.error(trunk.line_of("outbound"), f"trunk {name!r} outbound must be IP:port (e.g. 192.0.2.10:5060), "
                                                           f"not {trunk['outbound']!r}")
                else:
                    outbound = (match.group(1).strip("[]"), int(match.group(2)))
            register = parse_register(check, trunk, str(name))
            if outbound is None and register is not None:
                outbound = register.proxies[0]  # a registering trunk's calls go out through its registrar
            if not sources and register is not None:  # ... and come in from its registrars
                networks = [ipaddress.ip_network(host) for host, _port in register.proxies]
            trunks.append(Trunk(name=str(name), sources=tuple(networks), port=port, outbound=outbound,
                                srtp=srtp_policy(check, trunk, f"trunk {name!r}"), register=register,
                                dtmf=dtmf_mode(check, trunk, f"trunk {name!r}"),
                                caller_id=parse_caller_id(check, trunk, str(name)),
                                trusted=check.boolean(trunk, "trusted", False, f"trunk {name!r}"),
                                auth=parse_trunk_auth(check, trunk, str(name), sip.public_address)))
    if not trunks:
        check.error(top.line_of("trunks"), "no trunks: add 'trunks:' with at least one trunk and its 'sources' (nobody could call in)")
    data_dir = (root / str(top.get("data_dir", "data"))).resolve()
    sounds_dir = (root / str(top.get("sounds_dir", "sounds"))).resolve()
    if not sounds_dir.is_dir():
        check.error(top.line_of("sounds_dir"), f"sounds directory {sounds_dir} does not exist")
    return sip, rtp, trunks, data_dir, sounds_dir


def _parse_http(path: Path, document: Any, errors: list[ConfigError]) -> HttpSettings:
    if not isinstance(document, LineDict) or "http" not in document:
        return HttpSettings()
    check = Checker(path, errors)
    section = check.mapping(document["http"], document.line_of("http"), "http")
    if section is None:
        return HttpSettings()
    check.unknown_keys(section, {"listen", "port", "token_file", "web_session_idle_seconds",
                                 "web_session_max_seconds"}, "http")
    listen = str(section.get("listen", "127.0.0.1"))
    _check_ip(check, section, "listen", listen)
    port = int(check.number(section, "port", 8080, "http", maximum=65535, integer=True))
    idle = float(check.number(section, "web_session_idle_seconds", 1800, "http", minimum=60, maximum=86400))
    longest = float(check.number(section, "web_session_max_seconds", 43200, "http", minimum=60, maximum=7 * 86400))
    return HttpSettings(listen=listen, port=port, token_file=str(section.get("token_file", "api.token")),
                        web_session_idle_seconds=idle, web_session_max_seconds=longest)


def _parse_crm(path: Path, document: Any, errors: list[ConfigError]) -> dict[str, Any]:
    """`crm: {lookup_url, webhook_url, timeout_seconds}`: the external CRM (all optional)."""
    if not isinstance(document, LineDict) or "crm" not in document:
        return {}
    check = Checker(path, errors)
    section = check.mapping(document["crm"], document.line_of("crm"), "crm")
    if section is None:
        return {}
    check.unknown_keys(section, {"lookup_url", "webhook_url", "timeout_seconds"}, "crm")
    urls = {}
    for key in ("lookup_url", "webhook_url"):
        url = check.text(section, key, "crm")
        if url is not None and not re.match(r"https?://[^/\s]+", url):
            check.error(section.line_of(key), f"crm {key} must be an http:// or https:// URL, not {url!r}")
            url = None
        urls[f"crm_{key}"] = url
    timeout = float(check.number(section, "timeout_seconds", 1.0, "crm", minimum=0.1, maximum=10))
    return {**urls, "crm_timeout_seconds": timeout}


def _check_ip(check: Checker, section: LineDict, key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        check.error(section.line_of(key), f"{key} must be an IP address, not {value!r}")


def _scan_prompts(sounds_dir: Path) -> dict[str, Path]:
    if not sounds_dir.is_dir():
        return {}
    return {str(p.relative_to(sounds_dir).with_suffix("")): p for p in sorted(sounds_dir.rglob("*.wav"))}


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
    check = Checker(path, errors)
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
        check.unknown_keys(item, {"number", "pattern", "flow", "answer_after_seconds", "record"}, "route")
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
                                record=check.boolean(item, "record", False, "route"), source=f"{path}:{line}"))
    return routes


def _route_text(check: Checker, item: LineDict, key: str) -> str | None:
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
        check.error(item.line_of(key), f"route {key} must be text, not {kind_of(value)}")
    else:
        check.error(item.line_of(key), f"route {key} {written} reads as {value!r} in YAML; quote it: {key}: \"{written}\"")
    return None
