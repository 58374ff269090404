"""The middle test layer: the real server object graph, in process, on a fake reactor and network.

`ShellHarness` writes a config tree (the shipped demo, as `tests/e2e` does, plus `extra_files`),
loads it, and builds the server exactly as `acd serve` does (`build_server`, `ConfigReloader`,
`start_http`), but on `FakeReactor`: time moves only by `advance`, datagrams are handed between
the server's ports and scripted peers (`peers.py`) in memory. No sockets, no threads, no sleeps.

Tests assert on the wire (SIP messages and RTP the peers receive), on the HTTP API's JSON, on the
records database and on log lines. The ONLY methods that read the server's internal attributes
are in the "internal state" section at the end of the class (`flush_records`, `leaks`); re-point
them there when the shell's internals move.
"""

from __future__ import annotations

import os

import functools
import hashlib
import io
import json
import logging
import re
import sqlite3
import weakref
from pathlib import Path
from typing import Callable

from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from acd.app import build_server, config_applier, start_http
from acd.config.loader import load_config
from acd.media.prompts import PromptLibrary
from acd.reload import ConfigReloader
from tests.e2e.harness import write_config
from tests.shell.media_loopback import LoopbackWorkers

from .fake_reactor import FakeReactor
from .late_routing import LateRouting
from .peers import AgentPhone, Caller, SipPeer

__all__ = ["ShellHarness", "agents_yaml", "queue_files", "START_TIME", "SIP_PORT", "RTP_BASE", "HTTP_PORT", "LOCAL"]

LOCAL = "127.0.0.1"
SIP_PORT = 5060
RTP_BASE = 20000
HTTP_PORT = 8080
# A real date (2026-06-01 09:00 UTC), not 0: zero times are falsy and would hide `x or now` bugs.
START_TIME = 1_780_304_400.0
# ACD_SHELL_MEDIA_WORKERS=1: every harness runs its media on the worker plane (acd.calls.remote_media),
# with the worker on the fake reactor (tests/shell/media_loopback.py) instead of in the call process.
MEDIA_WORKERS = os.environ.get("ACD_SHELL_MEDIA_WORKERS", "") == "1"
FRAME = 0.02


@functools.lru_cache(maxsize=4)
def _frame_index(prompts: tuple[tuple[str, Path], ...]) -> dict[bytes, str]:
    """PCMU frame → the one prompt it belongs to (frames of several prompts are left out)."""
    library, owners = PromptLibrary(dict(prompts)), {}
    for name, _ in prompts:
        audio = library.encoded(name, "PCMU")
        for offset in range(0, len(audio), 160):
            owners.setdefault(audio[offset:offset + 160], set()).add(name)
    return {frame: names.pop() for frame, names in owners.items() if len(names) == 1}


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ShellHarness:
    """One server on a fake reactor, and the peers that talk to it."""

    def __init__(self, root: Path, *, extra_files: dict[str, str] | None = None, trunk_outbound: str | None = None,
                 rtp_ports: int = 400, main_extra: str = "", drain_seconds: float = 30.0,
                 start_time: float = START_TIME, trunk_extra: str = "", trunk_sources: list[str] | None = None,
                 sip_extra: str = "", media_workers: bool | None = None, rtp_extra: str = "") -> None:
        """`media_workers`: run media on the worker plane (default: ACD_SHELL_MEDIA_WORKERS); `rtp_extra`:
        lines for the `rtp:` block (write_config)."""
        media_workers = MEDIA_WORKERS if media_workers is None else media_workers
        self.root = Path(root)
        self.sip_address = (LOCAL, SIP_PORT)
        self.options = dict(extra_files=extra_files, trunk_outbound=trunk_outbound, rtp_ports=rtp_ports,
                            main_extra=main_extra, drain_seconds=drain_seconds, trunk_extra=trunk_extra,
                            trunk_sources=trunk_sources, sip_extra=sip_extra, media_workers=media_workers,
                            rtp_extra=rtp_extra)
        write_config(self.root, sip_port=SIP_PORT, rtp_base=RTP_BASE, trunk_outbound=trunk_outbound,
                     extra_files=extra_files, http_port=HTTP_PORT, main_extra=main_extra, rtp_ports=rtp_ports,
                     trunk_extra=trunk_extra, trunk_sources=trunk_sources, sip_extra=sip_extra,
                     rtp_workers=1 if media_workers else 0, rtp_extra=rtp_extra)
        self.capture = _LogCapture()
        self._logger = logging.getLogger("acd")
        self._old_level = self._logger.level
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self.capture)
        self.twisted_errors: list[str] = []
        globalLogPublisher.addObserver(self._observe_twisted)
        self.reactor = FakeReactor()
        self.reactor.advance(start_time)
        self.started = start_time
        self.peers: list[SipPeer] = []
        self._closed = False
        try:
            self.config = load_config(self.root)
            # Wired as `acd serve` wires it (acd/cli.py): these are the composition root's public APIs.
            self.media_workers = LoopbackWorkers(self.reactor, LOCAL) if media_workers else None
            self.running = build_server(self.config, self.reactor, drain_seconds=drain_seconds,
                                        start_media_worker=self.media_workers)
            self.reloader = ConfigReloader(self.root, self.running.live, config_applier(self.running, self.reactor),
                                           self.reactor,
                                           calls_in_progress=lambda: len(self.running.calls.sessions))
            start_http(self.running, self.reloader.reload, self.reactor)
        except BaseException:
            self.close()
            raise
        self.api_token = (self.config.data_dir / self.config.http.token_file).read_text().strip()
        self._site = next(p.factory for p in self.reactor.tcp_ports if p.port == HTTP_PORT)
        # The SipUdpProtocol build_server bound on the SIP port (found by port number): peers reach
        # it through the fake network; a test may also call its datagramReceived directly.
        self.sip_protocol = self.reactor.udp_ports[self.sip_address].protocol

    # ---- time --------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Seconds since the harness started."""
        return self.reactor.seconds() - self.started

    def advance(self, seconds: float, step: float = FRAME) -> None:
        """Let `seconds` pass in `step`s (the media clock ticks every 20 ms: one step per tick)."""
        end = self.reactor.seconds() + seconds
        while self.reactor.seconds() < end - 1e-9:
            self.reactor.advance(min(step, end - self.reactor.seconds()))
        self.reactor.advance(0)

    def advance_until(self, condition: Callable[[], bool], *, timeout: float, what: str = "the condition",
                      step: float = FRAME, fail: bool = True) -> float:
        """Advance until `condition()` holds; returns the seconds it took. Fails after `timeout`."""
        start = self.reactor.seconds()
        self.reactor.advance(0)
        while not condition():
            if self.reactor.seconds() - start >= timeout - 1e-9:
                if fail:
                    raise AssertionError(f"no {what} after {timeout}s (t+{self.now:.2f}); log tail:\n"
                                         + "\n".join(self.log_lines()[-12:]))
                return self.reactor.seconds() - start
            self.reactor.advance(step)
        return self.reactor.seconds() - start

    # ---- peers -------------------------------------------------------------------------------------
    def caller(self, *, user: str = "5551", port: int = 5070, host: str = LOCAL) -> Caller:
        """A trunk-side caller (127.0.0.1 is the demo trunk's source)."""
        peer = Caller(self, (host, port), (host, 40000 + port % 1000 * 2), user)
        self.peers.append(peer)
        return peer

    def answered_call(self, number: str = "1000", **caller_options):
        """A caller (options as `caller`) whose call to `number` was answered 200 and ACKed."""
        caller = self.caller(**caller_options)
        call = caller.invite(number)
        call.expect(200)
        call.ack()
        return caller, call

    def agent(self, extension: str, *, password: str | None = None, port: int | None = None) -> AgentPhone:
        """An agent's phone; demo agents' passwords are demo-<extension>-pw (README)."""
        port = port or 50000 + int(extension) % 1000 * 10
        peer = AgentPhone(self, (LOCAL, port), (LOCAL, port + 2), extension, password or f"demo-{extension}-pw")
        self.peers.append(peer)
        return peer

    def logged_in_agent(self, extension: str) -> AgentPhone:
        """An agent phone that registered and dialled *45."""
        phone = self.agent(extension)
        assert phone.register().status == 200
        phone.login()
        return phone

    def phone(self, address: tuple[str, int], user: str = "customer") -> SipPeer:
        """A plain phone at `address` (the customer reached through the trunk's outbound address)."""
        peer = SipPeer(self, address, (address[0], address[1] + 2), user)
        self.peers.append(peer)
        return peer

    # ---- public views: HTTP API, /metrics, records, logs -------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        """Call the HTTP API in process (`/api/...`); returns (status, JSON body)."""
        request = DummyRequest([part.encode() for part in path.strip("/").split("/")])
        request.method = method.encode()
        request.requestHeaders.addRawHeader(b"authorization", f"Bearer {self.api_token}".encode())
        request.content = io.BytesIO(json.dumps(body).encode() if body is not None else b"")
        resource = getChildForRequest(self._site.resource, request)
        output = resource.render(request)
        return request.responseCode or 200, json.loads(output)

    def events(self, topic: str) -> list[tuple[str, dict]]:
        """(type, data) of the events a `GET /api/events/{topic}` stream opened now receives at once
        (the retained one, if any); the stream is closed again."""
        request = DummyRequest([b"api", b"events", topic.encode()])
        request.method = b"GET"
        request.requestHeaders.addRawHeader(b"authorization", f"Bearer {self.api_token}".encode())
        resource = getChildForRequest(self._site.resource, request)
        resource.render(request)
        request.finish()
        text = b"".join(request.written).decode()
        return [(re.search(r"^event: (.*)$", block, re.M).group(1),
                 json.loads(re.search(r"^data: (.*)$", block, re.M).group(1)))
                for block in text.split("\n\n") if block.startswith("event:")]

    def event_stream(self, topic: str) -> Callable[[], list[tuple[str, dict]]]:
        """Open `GET /api/events/{topic}` now and keep it open; the function returned gives the (type,
        data) of every event the stream received so far."""
        request = DummyRequest([b"api", b"events", topic.encode()])
        request.method = b"GET"
        request.requestHeaders.addRawHeader(b"authorization", f"Bearer {self.api_token}".encode())
        getChildForRequest(self._site.resource, request).render(request)

        def received() -> list[tuple[str, dict]]:
            text = b"".join(request.written).decode()
            return [(re.search(r"^event: (.*)$", block, re.M).group(1),
                     json.loads(re.search(r"^data: (.*)$", block, re.M).group(1)))
                    for block in text.split("\n\n") if block.startswith("event:")]
        return received

    def agent_state(self, agent_id: str) -> str:
        """The agent's ACD state from GET /api/agents (`available`, `offered`, `on_call`, `wrap_up`,
        `paused`, `logged_out`)."""
        status, agents = self.api("GET", "/api/agents")
        assert status == 200, agents
        return next(a for a in agents if a["id"] == agent_id)["state"]

    def agent_info(self, agent_id: str) -> dict:
        """The agent's entry in GET /api/agents (registered, state, pause_reason, missed_offers...)."""
        status, agents = self.api("GET", "/api/agents")
        return next(a for a in agents if a["id"] == agent_id)

    def queue_waiting(self, queue: str) -> int:
        """Callers waiting in `queue`, from GET /api/queues (0 when the queue is not listed)."""
        status, queues = self.api("GET", "/api/queues")
        return next((q["waiting"] for q in queues if q["queue"] == queue), 0)

    def active_calls(self) -> list[dict]:
        """Customer calls in progress, as GET /api/calls lists them."""
        return self.api("GET", "/api/calls")[1]

    def active_call_ids(self) -> list[str]:
        """Call-IDs of the customer calls in progress (GET /api/calls)."""
        return [call["call_id"] for call in self.active_calls()]

    def metrics_text(self) -> str:
        """The Prometheus page."""
        request = DummyRequest([b"metrics"])
        resource = getChildForRequest(self._site.resource, request)
        output = resource.render(request)
        return output.decode() if isinstance(output, bytes) else b"".join(request.written).decode()

    def metric(self, name: str, **labels: str) -> float:
        """One sample of a metric (0 when absent)."""
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        for line in self.metrics_text().splitlines():
            match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
            if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
                return float(match.group(2))
        return 0.0

    def records(self, sql: str, *parameters) -> list[tuple]:
        """Rows from data/records.db after the writer caught up."""
        self.flush_records()
        with sqlite3.connect(self.config.data_dir / "records.db") as db:
            return db.execute(sql, parameters).fetchall()

    def call_record(self, call_id: str) -> dict:
        """The call's row in the `calls` table (the CDR), as a dict."""
        self.flush_records()
        with sqlite3.connect(self.config.data_dir / "records.db") as db:
            db.row_factory = sqlite3.Row
            row = db.execute("select * from calls where call_id = ?", (call_id,)).fetchone()
        assert row is not None, f"no call record for {call_id}"
        return dict(row)

    def queue_log(self, call_id: str | None = None) -> list[tuple[str, str, str]]:
        """(event, queue, agent) rows of the queue log, oldest first."""
        if call_id is None:
            return self.records("select event, queue, agent from queue_log order by id")
        return self.records("select event, queue, agent from queue_log where call_id = ? order by id", call_id)

    def log_lines(self) -> list[str]:
        """Every message the server logged under `acd` (INFO and up) since the harness started."""
        return [record.getMessage() for record in self.capture.records]

    def logged(self, pattern: str) -> list[re.Match]:
        """Log lines matching `pattern` (regex search)."""
        regex = re.compile(pattern)
        return [m for m in (regex.search(line) for line in self.log_lines()) if m]

    def prompts_heard(self, packets) -> list[str]:
        """The prompts whose audio these RTP packets carry, in the order heard (a prompt heard twice
        in a row counts once). Identified by their 20 ms PCMU frames; frames found in more than one
        prompt (silence) identify nothing."""
        index = _frame_index(tuple(sorted(self.config.prompts.items())))
        heard: list[str] = []
        for packet in packets:
            name = index.get(bytes(packet.payload))
            if name is not None and (not heard or heard[-1] != name):
                heard.append(name)
        return heard

    def bound_rtp_ports(self) -> list[int]:
        """RTP ports the server holds right now (from the fake reactor, not the server). A leg's RTCP
        port (its RTP port + 1, acd.calls.rtcp_port) is left out, unless it outlived its RTP port."""
        bound = {port for (host, port), udp in self.reactor.udp_ports.items() if port != SIP_PORT and not udp.closed}
        return sorted(port for port in bound if port % 2 == 0 or port - 1 not in bound)

    def bound_rtcp_ports(self) -> list[int]:
        """The RTCP ports (odd, one above an RTP port) the server holds right now."""
        bound = {port for (host, port), udp in self.reactor.udp_ports.items() if port != SIP_PORT and not udp.closed}
        return sorted(port for port in bound if port % 2 == 1 and port - 1 in bound)

    def signal(self, name: str = "SIGTERM") -> None:
        """What `acd serve`'s SIGTERM/SIGINT handler does (acd/cli.py): ask the server to stop, on the
        reactor's next turn (`RunningServer.shutdown`)."""
        self.reactor.callFromThread(self.running.shutdown.request, name)
        self.reactor.advance(0)

    @property
    def stopped(self) -> bool:
        """True once the server stopped the reactor (after a shutdown)."""
        return self.reactor.stopped

    def reload(self) -> bool:
        """POST /api/reload (what `acd reload` and SIGHUP do)."""
        status, body = self.api("POST", "/api/reload")
        return status == 200 and body["reloaded"]

    # ---- the end -----------------------------------------------------------------------------------
    def _observe_twisted(self, event: dict) -> None:
        if event.get("log_failure") is not None or event.get("isError"):
            self.twisted_errors.append(formatEvent(event) or repr(event.get("log_failure")))

    def problems(self) -> list[str]:
        """Bugs the harness saw: misuse of ports, tracebacks logged by the server, errors Twisted
        logged (an unhandled failure in a Deferred)."""
        found = list(self.reactor.network.errors) + self.twisted_errors
        for record in self.capture.records:
            if record.exc_info:
                found.append(f"{record.name}: {record.getMessage()}")
        return found

    def close(self) -> None:
        """Run the shutdown triggers (the records writer closes) and detach the log capture."""
        if self._closed:
            return
        self._closed = True
        self.reactor.fire_shutdown()
        globalLogPublisher.removeObserver(self._observe_twisted)
        self._logger.removeHandler(self.capture)
        self._logger.setLevel(self._old_level)

    def restart(self, *, crash: bool = False, after: float = 60.0,
                extra_files: dict[str, str] | None = None) -> "ShellHarness":
        """Stop this server and start a new one on the same root and data `after` seconds later (with
        `extra_files` replacing this one's, if given). Stopped cleanly (the shutdown triggers run, as
        on SIGTERM), or by `crash` (SIGKILL: no trigger runs; what the records writer committed
        stays). This harness's peers go with it: make new ones, at the same addresses, on the new one."""
        end = self.reactor.seconds()
        if crash:
            self.die()
        self.close()
        options = dict(self.options)
        if extra_files is not None:
            options["extra_files"] = extra_files
        return ShellHarness(self.root, start_time=end + after, **options)

    # ---- internal state: the ONLY methods that read the server's private attributes ---------------
    def flush_records(self) -> None:
        """Wait for the records writer thread to commit what is queued (`RunningServer.records`)."""
        assert self.running.records.flush(timeout=5), "records writer did not catch up"

    def die(self) -> None:
        """The process is killed: no shutdown trigger will run, and the records writer stops after
        committing what is queued (a real SIGKILL may lose those last items; tests want them kept).
        Reads `RunningServer.records`."""
        self.flush_records()
        self.reactor.triggers.clear()
        self.running.records.close()

    def late_routing(self) -> LateRouting:
        """From now on the routing decisions come back late, as a cluster's leader sends them
        (tests/shell/late_routing.py): the ACD's routing authority becomes a LateRouting around its
        own engine. Replaces `acd.routing` and attaches `acd._apply`, as AcdService does."""
        acd = self.running.acd
        late = LateRouting(acd.routing.engine, self.reactor)
        acd.routing = late
        late.attach(acd._apply)
        return late

    def _media_legs(self) -> int:
        """Legs paced in this process, or (worker plane) legs paced or bound on the worker and ports held."""
        if self.media_workers is None:
            return len(self.running.media.clock.legs)
        return self.running.media.legs_in_use() + sum(len(pipe.media.legs) + len(pipe.media.clock.legs)
                                                      for pipe in self.media_workers.pipes if not pipe.closed)

    def call_objects(self, call_id: str) -> list:
        """Weak references to a live call's session and its IVR runner (`calls.sessions`), to check
        they are freed when the call ends."""
        session = self.running.calls.sessions[call_id]
        return [weakref.ref(session), weakref.ref(session.ivr)]

    def leaks(self) -> dict[str, int]:
        """Per-call state still held by the shell; all zero once every call and offer has ended.

        Reads: `calls.{sessions, placed, invites}` (the CallTable), `acd.calls` (one QueuedCall per
        call the ACD holds) and `media.clock.legs` (on the worker plane: the worker's legs and ports).
        """
        running = self.running
        held = {"sessions": len(running.calls.sessions), "placed_legs": len(running.calls.placed),
                "placed_invites": len(running.calls.invites), "queued_calls": len(running.acd.calls),
                "media_legs": self._media_legs()}
        return {name: count for name, count in held.items() if count}


# ---- config snippets for extra_files ---------------------------------------------------------------
REALM = "example-acd"
DEMO_QUEUES = ("sales", "support", "billing")  # named by the shipped flows


def agents_yaml(queues: dict[str, str], agents: dict[str, str], *, extra: str = "") -> str:
    """A conf/agents.yaml with the demo realm, feature codes and passwords (demo-<ext>-pw).

    `queues`: name → inline YAML options, e.g. {"q": "{strategy: ring-all, ring_timeout: 5}"};
    `agents`: extension → inline queue memberships, e.g. {"1001": "{q: 0}"}. The demo flows' queues
    (sales, support, billing) are added, refusing callers, unless given."""
    lines = [f"realm: {REALM}", 'feature_codes: {login: "*45", logout: "*46", pause: "*47", unpause: "*48"}',
             'pause_reasons: {"1": lunch, "2": training}', "queues:"]
    queues = {**{name: "{when_no_agents: refuse}" for name in DEMO_QUEUES}, **queues}
    lines += [f"  {name}: {options}" for name, options in queues.items()]
    lines.append("agents:")
    for extension, memberships in agents.items():
        credentials = f"{extension}:{REALM}:demo-{extension}-pw".encode()
        lines += [f'  "{extension}":', f"    name: Agent {extension}", "    password_ha1:",
                  f"      md5: {hashlib.md5(credentials).hexdigest()}",
                  f"      sha256: {hashlib.sha256(credentials).hexdigest()}",
                  "    skills: {english: 5}", f"    queues: {memberships}"]
    return "\n".join(lines) + "\n" + extra


def queue_files(queues: dict[str, str], agents: dict[str, str], *, numbers: dict[str, str] | None = None,
                extra_files: dict[str, str] | None = None) -> dict[str, str]:
    """extra_files for a test: agents.yaml as `agents_yaml`, and one number per queue (3000, 3001, ...
    in the order given, or `numbers` {number: queue}) whose flow goes straight to the queue, and on
    failure plays all_busy and hangs up."""
    numbers = numbers or {str(3000 + index): queue for index, queue in enumerate(queues)}
    assert not set(numbers.values()) & set(DEMO_QUEUES), "the demo queues have their flows already"
    files = {"conf/agents.yaml": agents_yaml(queues, agents),
             "dialplans/tests.yaml": "routes:\n" + "".join(f'  - {{number: "{number}", flow: to_{queue}}}\n'
                                                           for number, queue in numbers.items())}
    for queue in set(numbers.values()):
        files[f"ivr_flows/to_{queue}.yaml"] = (
            f"name: to_{queue}\nsteps:\n  wait: {{queue: {queue}, on_failure: busy}}\n"
            "  busy: {play: all_busy, next: end, event: queue-failed}\n  end: {hangup: true}\n")
    files.update(extra_files or {})
    return files
