"""`acd` command line: `acd serve` runs the server, `acd stop` drains and stops it, `acd check`
validates a config set."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .calls.stall_watch import StallWatch
from .config.admission import capacity_warnings
from . import log_output
from .heap import GcPauses, settle_heap
from .config.loader import ConfigInvalid, load_config

__all__ = ["main"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `acd` console script."""
    parser = argparse.ArgumentParser(prog="acd", description="SIP call-center server (IVR + ACD)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server on a config directory")
    serve.add_argument("--root", type=Path, default=Path("."),
                       help="directory holding conf/, dialplans/, ivr_flows/, sounds/ (default: .)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--log-file", type=Path, default=None,
                       help="also append the log to this file (reopened when logrotate moves it); the "
                            "fail2ban jail in conf/fail2ban/ reads it")
    serve.add_argument("--drain-seconds", type=_seconds, default=30.0,
                       help="on SIGTERM or `acd stop`, let calls in progress finish for up to this long before "
                            "ending them (default 30; 0 ends them at once)")
    serve.add_argument("--drain-min-seconds", type=_seconds, default=0.0,
                       help="behind a proxy that probes with OPTIONS (Kamailio in front of a cluster): keep "
                            "answering 503 for at least this long, even with no call left, so the proxy sees the "
                            "node go before it is gone (default 0; a little more than the proxy's probe interval)")
    serve.add_argument("--clock-start", type=_instant, default=None, metavar="ISO8601",
                       help="(tests and demos) run the server's clock from this instant, e.g. "
                            "2026-12-06T23:30:00+00:00: business hours, records and timers all follow it")
    stop = commands.add_parser("stop", help="ask the running server to drain its calls and exit; waits for it")
    stop.add_argument("--root", type=Path, default=Path("."))
    stop.add_argument("--timeout", type=_seconds, default=90.0,
                      help="seconds to wait for the server to exit (default 90)")
    check = commands.add_parser("check", help="validate a config directory; prints file:line: problem")
    check.add_argument("--root", type=Path, default=Path("."))
    sim = commands.add_parser("simulate", help="walk a flow without the network and print every step")
    sim.add_argument("flow", help="flow name (the `name:` in ivr_flows/*.yaml)")
    sim.add_argument("--root", type=Path, default=Path("."))
    sim.add_argument("--caller", default="5550100", help="caller ID (default 5550100)")
    sim.add_argument("--dialled", default="", help="dialled number, for flows that branch on it")
    sim.add_argument("--input", default="", help='comma-separated inputs: digits ("1", "1234#"), words ("billing"), '
                                                 '"-" for silence')
    sim.add_argument("--at", type=_instant, default=None, help="simulated time, ISO 8601 (e.g. 2026-11-25T10:00:00+00:00)")
    unlock = commands.add_parser("agent-unlock", help="clear an agent's lock after repeated failed logins")
    unlock.add_argument("user", help="the agent's extension")
    unlock.add_argument("--root", type=Path, default=Path("."))
    password = commands.add_parser("agent-password", help="print the password_ha1 lines for an agent in conf/agents.yaml")
    password.add_argument("--user", required=True, help="the agent's extension (SIP user name)")
    password.add_argument("--realm", default=None, help="digest realm (default: the one in conf/agents.yaml)")
    password.add_argument("--root", type=Path, default=Path("."))
    password.add_argument("--password", default=None, help="the password (default: asked for, not echoed)")
    report = commands.add_parser(
        "report", help="per-queue and per-agent KPIs from the call records",
        description="Per-queue and per-agent KPIs from the call records. Each call counts once, with its final "
                    "outcome; a callback that reached the customer counts as answered by the agent who took it, "
                    "and its wait is the time the caller spent in line until asking to be called back (the call "
                    "back is outbound, not queue time).")
    report.add_argument("--root", type=Path, default=Path("."))
    report.add_argument("--since", default=None,
                        help="start: 2026-11-01 (local midnight), ISO time, or POSIX seconds (default: today, from local midnight)")
    report.add_argument("--call", default=None, metavar="CALL-ID", help="print one call's whole story instead")
    report.add_argument("--until", default=None, help="end (default: now)")
    report.add_argument("--csv", type=Path, default=None, help="also write the figures to this CSV file")
    report.add_argument("--check", action="store_true",
                        help="compare the records of the server's current run with its live /metrics and "
                             "/api/queues counters; print every difference, exit 1 if any")
    customers = commands.add_parser("customers", help="the customer directory")
    customers_commands = customers.add_subparsers(dest="customers_command", required=True)
    customers_import = customers_commands.add_parser(
        "import", help="import customers from a CSV or JSON export",
        description="Import customers from a CRM or spreadsheet export (.csv with any of , ; tab | as "
                    "delimiter, UTF-8/UTF-16/cp1252; or .json). Common header names are recognised "
                    "(phone, mobile, full name, customer id...); other columns are ignored with a warning. "
                    "Exit status 1 if any row was rejected.")
    customers_import.add_argument("file", type=Path)
    customers_import.add_argument("--root", type=Path, default=Path("."))
    customers_import.add_argument("--map", action="append", default=[], type=_column_map_argument,
                                  metavar="COLUMN=FIELD,...",
                                  help="read the file's COLUMN as the directory FIELD (e.g. --map "
                                       "Telefono=phones,Nome=name); FIELD - ignores the column")
    customers_import.add_argument("--allow-rejects", action="store_true",
                                  help="exit 0 when some rows were imported, even if others were rejected")
    show = commands.add_parser("show", help="the running server's queues, agents or calls, as a table")
    show.add_argument("what", choices=["queues", "agents", "calls"])
    show.add_argument("--root", type=Path, default=Path("."))
    reload = commands.add_parser("reload", help="check the config, then ask the running server to reload it")
    reload.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.root)
    if args.command == "reload":
        return _reload(args.root)
    if args.command == "stop":
        return _stop(args.root, args.timeout)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "agent-unlock":
        return _agent_unlock(args)
    if args.command == "show":
        return _show(args)
    if args.command == "agent-password":
        return _agent_password(args)
    if args.command == "report":
        return _report(args)
    if args.command == "customers":
        return _customers_import(args)
    return _serve(args.root, args.log_level, args.drain_seconds, args.clock_start, args.log_file,
                  drain_min_seconds=args.drain_min_seconds)


def _column_map_argument(text: str) -> str:
    from .context.import_columns import parse_column_map

    try:
        parse_column_map([text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (e.g. 30 or 2.5)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more seconds")
    return value


def _instant(text: str) -> float:
    """An ISO 8601 date and time with its UTC offset, as POSIX seconds (argparse type)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time like 2026-11-25T10:00:00+00:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset: add one, e.g. {text}+00:00")
    return moment.timestamp()


def _check(root: Path) -> int:
    try:
        config = load_config(root)
    except ConfigInvalid as invalid:
        for error in invalid.errors:
            print(error, file=sys.stderr)
        print(f"{len(invalid.errors)} problem(s); the config was not accepted", file=sys.stderr)
        return 1
    print(f"config OK: {len(config.routes)} routes, {len(config.flows)} flows, {len(config.prompts)} prompts, "
          f"{len(config.trunks)} trunks")
    for warning in capacity_warnings(config):
        print(f"warning: {warning}")
    return 0


def _serve(root: Path, level: str, drain_seconds: float, clock_start: float | None = None,
           log_file: Path | None = None, *, drain_min_seconds: float = 0.0) -> int:
    log_output.configure(level, log_file)  # the line format fail2ban reads; lines written in batches
    log = logging.getLogger("acd")
    # A stop asked for while we start is kept, and carried out as soon as the reactor runs.
    early_stops: list[str] = []
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, lambda number, frame: early_stops.append(signal.Signals(number).name))
    try:
        config = load_config(root)
    except ConfigInvalid as invalid:
        for error in invalid.errors:
            log.error("config: %s", error)
        log.error("refusing to start: %d config problem(s); fix them (acd check --root %s) and start again",
                  len(invalid.errors), root)
        return 2
    from .instance import DataDirBusy, DataDirLock

    try:  # before anything in the data directory is opened: a second server must change nothing
        lock = DataDirLock(config.data_dir).acquire()
    except DataDirBusy as busy:
        log.error("refusing to start: %s", busy)
        return 4
    try:
        return _run_server(root, config, drain_seconds, clock_start, early_stops, log,
                           drain_min_seconds=drain_min_seconds)
    finally:
        lock.release()


def _run_server(root: Path, config, drain_seconds: float, clock_start: float | None, early_stops: list[str],
                log: logging.Logger, *, drain_min_seconds: float = 0.0) -> int:
    import time

    from twisted.internet import reactor

    from .app import build_server, config_applier, start_http
    from .reload import ConfigReloader, write_pid
    from .stop import remove_pid_file

    if clock_start is not None:
        offset = clock_start - time.time()
        reactor.seconds = lambda: time.time() + offset  # every timer, hours check and record follows it
        log.warning("the server's clock runs from %s (--clock-start), %+.0f s from the real time",
                    dt.datetime.fromtimestamp(clock_start, dt.timezone.utc).isoformat(), offset)
    write_pid(config.data_dir)
    # Media worker processes are reaped when they exit (Twisted installs this only with its own
    # signal handlers, which we do not use: see below).
    from twisted.internet.process import reapAllProcesses
    signal.signal(signal.SIGCHLD, lambda number, frame: reactor.callFromThread(reapAllProcesses))
    try:
        try:
            running = build_server(config, reactor, drain_seconds=drain_seconds, records_process=True,
                                   drain_min_seconds=drain_min_seconds)
        except Exception as error:  # binding failures: say which port and stop
            log.error("cannot start: %s", error)
            return 3
        settle_heap()  # garbage-collector pauses were the long tail of call setup (acd/heap.py)
        gc_pause = running.metrics.gc_pause
        GcPauses(lambda generation, seconds: gc_pause.labels(str(generation)).observe(seconds)).install()
        reloader = ConfigReloader(root, running.live, config_applier(running, reactor), reactor,
                                  calls_in_progress=lambda: len(running.calls.sessions))
        reloader.watch()
        try:
            start_http(running, reloader.reload, reactor)
        except Exception as error:  # binding failures: say which port and stop
            log.error("cannot start the HTTP API: %s", error)
            return 3
        reactor.callWhenRunning(running.admission_gate.start)  # the event-loop lag timer
        stall_watch = StallWatch()  # logs where the loop is when it stops for 250 ms or more
        running.admission_gate.on_tick = stall_watch.beat
        reactor.callWhenRunning(stall_watch.start)
        reactor.addSystemEventTrigger("before", "shutdown", stall_watch.stop)
        for warning in capacity_warnings(config):
            log.warning("config: %s", warning)
        signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reloader.reload, "SIGHUP"))
        # Twisted's own SIGTERM/SIGINT handlers stop the reactor at once; ours drain first (a second
        # signal ends every call at once). Handlers run between bytecodes: hand over to the reactor.
        shutdown = running.shutdown
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, lambda number, frame: reactor.callFromThread(
                shutdown.request, signal.Signals(number).name))
        for name in early_stops:
            reactor.callWhenRunning(shutdown.request, name)
        reactor.run(installSignalHandlers=False)
        return 0
    finally:
        remove_pid_file(config.data_dir)


def _stop(root: Path, timeout: float) -> int:
    from .stop import stop_server

    try:
        data_dir = load_config(root).data_dir
    except ConfigInvalid as invalid:
        data_dir = root / "data"
        print(f"the config has {len(invalid.errors)} problem(s) (acd check); looking for the server's pid in "
              f"{data_dir}", file=sys.stderr)
    return stop_server(data_dir, timeout=timeout, out=sys.stdout, err=sys.stderr)


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate

    config = _config_or_errors(args.root)
    if config is None:
        return 1
    now = args.at
    inputs = [token.strip().strip('"') for token in args.input.split(",") if token.strip()]
    directory = None
    if (config.data_dir / "customers.db").exists():
        from .context.directory import CustomerDirectory

        directory = CustomerDirectory(config.data_dir / "customers.db", default_country_code=config.country_code)
    try:
        simulate(config, args.flow, caller=args.caller, dialled=args.dialled, inputs=inputs, now=now,
                 directory=directory)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 1
    finally:
        if directory is not None:
            directory.close()
    return 0


def _agent_password(args: argparse.Namespace) -> int:
    import getpass

    from .config.agents import DEFAULT_REALM
    from .config.yaml_lines import ConfigError
    from .config.agents import load_agents
    from .sip.digest import compute_ha1

    realm = args.realm
    if realm is None:
        errors: list[ConfigError] = []
        realm = load_agents(args.root / "conf" / "agents.yaml", errors, []).realm if not errors else DEFAULT_REALM
    secret = args.password if args.password is not None else getpass.getpass(f"password for {args.user}: ")
    if len(secret) < 8:
        print("refusing a password shorter than 8 characters", file=sys.stderr)
        return 1
    print(f"    password_ha1:  # realm {realm}")
    print(f"      md5: {compute_ha1(args.user, realm, secret, 'MD5')}")
    print(f"      sha256: {compute_ha1(args.user, realm, secret, 'SHA-256')}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import run_report

    config = _config_or_errors(args.root)
    if config is None:
        return 1
    queues = config.agents.queues.items() if config.agents else []
    if args.call:
        return _call_story(_records_at(config), args.call)
    if args.check:
        return _report_check(config, {name: q.routing.abandon_grace_seconds for name, q in queues})
    since = args.since if args.since is not None else dt.date.today().isoformat()  # today, from local midnight
    levels = {name: q.routing.service_level_seconds for name, q in queues}
    return run_report(_records_at(config), since=since, until=args.until, csv_path=args.csv,
                      service_level_seconds=levels)


def _records_at(config) -> str | Path:
    """The records' location: the `store:` URL, or the SQLite file in the data directory."""
    from .store.location import records_location

    return records_location(config.store, config.data_dir)


def _call_story(db_path: str | Path, call_id: str) -> int:
    from .call_story import call_story, format_story
    from .store.location import describe, is_postgresql

    story = call_story(db_path, call_id) if is_postgresql(db_path) or Path(db_path).exists() else None
    if story is None:
        print(f"no call {call_id!r} in {describe(db_path)}", file=sys.stderr)
        return 1
    print(format_story(call_id, story))
    return 0


def _report_check(config, abandon_grace: dict[str, float]) -> int:
    from .reconcile import run_check

    base_url, token = _api_address(config)
    if base_url is None:
        print("acd report --check needs the HTTP API (http.port in conf/server.yaml) and its token file",
              file=sys.stderr)
        return 2
    return run_check(_records_at(config), base_url, token, abandon_grace=abandon_grace)


def _api_address(config) -> tuple[str | None, str]:
    """The running server's HTTP base URL and API token from its config, or (None, "") when the API
    is off or has no token yet."""
    token_path = config.data_dir / config.http.token_file
    if config.http.port == 0 or not token_path.exists():
        return None, ""
    host = "127.0.0.1" if config.http.listen in ("0.0.0.0", "") else config.http.listen
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.http.port}", token_path.read_text().strip()


def _customers_import(args: argparse.Namespace) -> int:
    from .context.directory import CustomerDirectory
    from .context.import_columns import parse_column_map
    from .context.importer import import_command

    try:
        column_map = parse_column_map(args.map)  # each --map is checked alone by argparse; here together
    except ValueError as error:
        print(f"acd customers import: {error}", file=sys.stderr)
        return 2
    config = _config_or_errors(args.root)
    if config is None:
        return 1
    config.data_dir.mkdir(parents=True, exist_ok=True)
    directory = CustomerDirectory(config.data_dir / "customers.db", default_country_code=config.country_code)
    try:
        return import_command(directory, args.file, out=sys.stdout, default_country_code=config.country_code,
                              column_map=column_map, allow_rejects=args.allow_rejects)
    finally:
        directory.close()


def _reload(root: Path) -> int:
    config = _config_or_errors(root)
    if config is None:
        print("not reloading: the running server keeps its config", file=sys.stderr)
        return 1
    answer = _post_api(config, "/api/reload")  # says what applied; SIGHUP when the API is off
    if answer is not None:
        status, body = answer
        if status == 200 and body.get("reloaded"):
            changes = body.get("changes") or ["no change"]
            print(f"reloaded: generation {body.get('generation')} in force; " + "; ".join(changes))
            return 0
        for problem in body.get("problems") or [body.get("message", f"HTTP {status}")]:
            print(problem, file=sys.stderr)
        print(f"the server refused the reload; generation {body.get('generation')} still in force", file=sys.stderr)
        return 1
    from .instance import lock_holder

    pid = lock_holder(config.data_dir)
    if not pid:
        print(f"no server to reload: no acd serve holds {config.data_dir}/acd.lock (is it running with this "
              "--root?)", file=sys.stderr)
        return 2
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as error:
        print(f"cannot signal the server (pid {pid}): {error}", file=sys.stderr)
        return 2
    print(f"config is valid; asked the server (pid {pid}) to reload (its log says what applied)")
    return 0


def _agent_unlock(args: argparse.Namespace) -> int:
    config = _config_or_errors(args.root)
    if config is None:
        return 1
    answer = _post_api(config, f"/api/agents/{args.user}/unlock")
    if answer is None:
        print("acd agent-unlock needs the running server's HTTP API (http.port), its token file, and the "
              "server running", file=sys.stderr)
        return 2
    status, body = answer
    if status != 200:
        print(f"the server refused: HTTP {status} {body.get('message', '')}", file=sys.stderr)
        return 1
    print(f"agent {args.user}: {body.get('result')}")
    return 0


def _config_or_errors(root: Path):
    """The checked config, or None after printing its `file:line` problems."""
    try:
        return load_config(root)
    except ConfigInvalid as invalid:
        for error in invalid.errors:
            print(error, file=sys.stderr)
        return None


def _show(args: argparse.Namespace) -> int:
    import time

    from .show import SHOWABLE

    config = _config_or_errors(args.root)
    if config is None:
        return 1
    path, render = SHOWABLE[args.what]
    answer = _post_api(config, path, method="GET")
    if answer is None:
        print(f"acd show needs the running server's HTTP API (http.port in conf/acd.yaml) and its token file "
              f"({config.data_dir / config.http.token_file}): is the server running with this --root?", file=sys.stderr)
        return 2
    status, body = answer
    if status != 200:
        print(f"the server refused: HTTP {status} {body.get('message', '') if isinstance(body, dict) else ''}",
              file=sys.stderr)
        return 1
    print(render(body, now=time.time()))
    return 0


def _post_api(config, path: str, method: str = "POST") -> tuple[int, Any] | None:
    """`method` (POST by default) `path` on the running server's API: (status, JSON body); None when
    the API is off, has no token yet, or cannot be reached."""
    import json
    import urllib.error
    import urllib.request

    base_url, token = _api_address(config)
    if base_url is None:
        return None
    request = urllib.request.Request(f"{base_url}{path}", method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, {}
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
