"""The composition root (STYLE 11): builds the whole server from a Config, in one readable place."""

from __future__ import annotations

import logging
import random
import secrets
import socket
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

from twisted.internet import threads
from twisted.web import resource, server, static

from .api.events import EventHub
from .api.metrics_page import MetricsResource
from .api.rest import ApiResource
from .api.sign_in import SignIn
from .api.web_pages import LoginResource, LogoutResource, page
from .api.web_sessions import SessionTable
from .calls.acd_service import AcdService, routing_config_from
from .calls.admission_gate import AdmissionGate
from .calls.call_control import CallControl
from .calls.call_table import CallTable
from .calls.cluster_life import ClusterLife, end_hosted_calls
from .calls.cluster_routing import ClusterRouting
from .calls.inbound import InboundCalls
from .calls.ivr_runner import IvrServices
from .calls.live_config import LiveConfig
from .calls.leg_states import EndReason
from .calls.media_ports import MediaPorts
from .calls.monitoring import Monitoring
from .calls.remote_media import RemoteMediaPorts, worker_count
from .calls.registrar_service import RegistrarService
from .calls.request_gate import RequestGate
from .calls.shutdown import DEFAULT_DRAIN_SECONDS, GracefulShutdown
from .calls.sip_server import SipServer
from .calls.stream_transports import listen_sip_streams
from .calls.trunk_registrations import TrunkRegistrations
from .calls.udp_batch import listen_sip_udp
from .calls.view import LiveView
from .calls.webhooks import CrmWebhooks
from .config.model import Config
from .context.crm import CrmClient
from .context.directory import CustomerDirectory
from .media.prompts import PromptLibrary
from .metrics import Metrics
from .registrar.path import AgentContact
from .sip.endpoint import SipEndpoint
from .sip.transactions import TimerConfig
from .speech.recognizer import RecognizerCache
from .store.presence import PreviousRun
from .store.backends import open_record_store
from .store.location import records_location
from .store.interfaces import CallRecords
from .store.agent_calls import agent_calls_since
from .store.today_records import today_from_records

__all__ = ["RunningServer", "build_server"]

log = logging.getLogger("acd")


@dataclass
class RunningServer:
    """The object graph `build_server` wired, and its listening ports."""

    live: LiveConfig
    sip: SipServer
    media: "MediaPorts | RemoteMediaPorts"
    acd: AcdService
    calls: CallTable
    view: LiveView
    events: EventHub
    metrics: Metrics
    records: CallRecords
    registrar: RegistrarService | None
    shutdown: GracefulShutdown
    udp_port: object | None
    tcp_port: object | None
    http_port: object | None = None
    tls_port: object | None = None
    admission_gate: AdmissionGate | None = None  # its lag timer starts once the reactor runs (acd serve)
    monitoring: Monitoring | None = None  # supervisors on calls (listen, whisper, barge)
    trunk_registrations: TrunkRegistrations | None = None  # REGISTERs to carriers (trunks with `register:`)
    cluster: ClusterRouting | None = None  # this node's routing cluster (`cluster:`), None for one node


# The default 208 KiB receive buffer holds ~20 ms of SIP at 800 calls/s: a GC pause or a busy tick
# overflows it and every dropped datagram becomes a 500 ms retransmission (scripts/bench/README.md).
SIP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024


# A SIP message over UDP may be as large as a datagram (RFC 3261 §18.1.1 only asks for congestion
# care above the MTU); Twisted's default read size, 8,192 bytes, cut larger ones into a 400.
SIP_MAX_DATAGRAM_BYTES = 65_535


def _grow_receive_buffer(port) -> None:
    try:
        port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SIP_RECEIVE_BUFFER_BYTES)
    except OSError as error:
        log.warning("could not enlarge the SIP receive buffer: %s", error)


def api_token(config: Config) -> str:
    """The API's bearer token, from the token file in the data directory (made on first start)."""
    path = config.data_dir / config.http.token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or not path.read_text().strip():
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
        log.info("made a new API token in %s", path)
    return path.read_text().strip()


def start_http(running: RunningServer, reload, reactor):
    """Serve the REST API, /metrics and the wallboard on the HTTP port (None when the port is 0)."""
    config = running.live.config
    if config.http.port == 0:
        return None
    root = resource.Resource()
    control = CallControl(calls=running.calls, acd=running.acd, config=running.live)
    # Web sign-in (agent desktop, supervisors): sessions in memory, the calls of the day read off the reactor.
    sign_in = SignIn(sessions=SessionTable(idle_seconds=config.http.web_session_idle_seconds,
                                           max_seconds=config.http.web_session_max_seconds),
                     accounts=running.view.agents_config)
    records_at = records_location(config.store, config.data_dir)

    def history(agent_id: str, since: float):
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), agent_calls_since, records_at,
                                         agent_id, since)

    def today(since: float):
        """The wallboard's figures since `since` up to now (this reactor's clock), read off the reactor."""
        agents = running.view.agents_config()
        queues = agents.queues if agents is not None else {}
        arguments = dict(since=since, until=reactor.seconds(), queues=list(queues),
                         agents=list(agents.agents) if agents is not None else [],
                         service_level_seconds={name: q.routing.service_level_seconds for name, q in queues.items()})
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(),
                                         lambda: today_from_records(records_at, **arguments))

    def unlock(user: str) -> bool:
        return sign_in.unlock(user) | (running.registrar is not None and running.registrar.unlock(user))

    root.putChild(b"api", ApiResource(view=running.view, desk=running.acd, events=running.events,
                                      token=api_token(config), reload=reload, control=control,
                                      monitor=running.monitoring,
                                      unlock=unlock, sign_in=sign_in, history=history, today=today,
                                      trunks=running.trunk_registrations.snapshot
                                      if running.trunk_registrations is not None else None,
                                      cluster=running.cluster.status_dict if running.cluster is not None else None))
    root.putChild(b"login", LoginResource(sign_in, reactor))
    root.putChild(b"logout", LogoutResource(sign_in, reactor))
    root.putChild(b"agent", page("agent.html"))
    root.putChild(b"metrics", MetricsResource(running.metrics.registry))
    root.putChild(b"wallboard", static.File(str(Path(__file__).parent / "api" / "wallboard.html"),
                                            defaultType="text/html"))
    port = reactor.listenTCP(config.http.port, server.Site(root), interface=config.http.listen)
    log.info("HTTP API on http://%s:%s/api (token in %s), metrics on /metrics, wallboard on /wallboard?token=..., "
             "agent desktop on /agent (sign in at /login)",
             config.http.listen, config.http.port,
             config.data_dir / config.http.token_file)
    running.http_port = port
    return port


def crm_client(config: Config, reactor) -> CrmClient | None:
    """The CRM client for `config` (None when no CRM URL is configured)."""
    if not (config.crm_lookup_url or config.crm_webhook_url):
        return None
    return CrmClient(reactor, lookup_url=config.crm_lookup_url, webhook_url=config.crm_webhook_url,
                     timeout_seconds=config.crm_timeout_seconds)


def config_applier(running: RunningServer, reactor) -> Callable[[Config], None]:
    """The one way a reloaded config goes live: everything that may refuse it (routing config, prompt
    files) is built first and raises ValueError with nothing changed; then the live config, the CRM
    client, the prompts and the routing engine switch together."""

    def apply(config: Config) -> None:
        routing = routing_config_from(running.live.effective(config))
        prompts = PromptLibrary(config.prompts)
        prompts.preload()
        old = running.live.config
        same_crm = (old.crm_lookup_url, old.crm_webhook_url, old.crm_timeout_seconds) == \
            (config.crm_lookup_url, config.crm_webhook_url, config.crm_timeout_seconds)
        running.live.swap(config, crm=running.live.crm if same_crm else crm_client(config, reactor))
        running.media.prompts = prompts
        running.acd.reconfigure(routing)
        if running.registrar is not None and running.registrar.digest_settings(old) != \
                running.registrar.digest_settings(config):
            running.registrar.reconfigure()
        if running.trunk_registrations is not None:
            running.trunk_registrations.reconfigure(config.trunks)
        running.events.publish("wallboard", {"type": "config-reloaded", "generation": running.live.generation})

    return apply


def _restore_agents(previous: PreviousRun, acd: AcdService) -> None:
    """Log the start and put the last run's agents back (the SIP ports are bound: phones can be told)."""
    stopped = f" (stopped at {previous.stopped_at:.3f})" if previous.ending == "a clean stop" else ""
    log.info("starting after %s%s; %d call(s) left open, %d agent(s) were logged in", previous.ending, stopped,
             previous.open_calls, len(previous.agents))
    if previous.agents:
        acd.restore_agents(previous.agents, ending=previous.ending)


def _media_plane(config: Config, reactor, *, prompts: PromptLibrary, rng: random.Random | None,
                 metrics: Metrics, start_media_worker: Callable | None) -> MediaPorts | RemoteMediaPorts:
    """RTP in media worker processes (`rtp: workers:`), or in this process when it is 0."""
    workers = worker_count(config.rtp.workers)
    rtp = config.rtp
    if workers == 0:
        return MediaPorts(reactor, address=rtp.address, port_min=rtp.port_min, port_max=rtp.port_max,
                          prompts=prompts, rng=rng, metrics=metrics, symmetric=rtp.symmetric,
                          rtcp_interval_seconds=rtp.rtcp_interval_seconds)
    level = logging.getLevelName(logging.getLogger("acd.media").getEffectiveLevel())
    media = RemoteMediaPorts(reactor, address=rtp.address, port_min=rtp.port_min, port_max=rtp.port_max,
                             prompts=prompts, workers=workers, rng=rng, metrics=metrics, log_level=level,
                             start_worker=start_media_worker, symmetric=rtp.symmetric,
                             rtcp_interval_seconds=rtp.rtcp_interval_seconds)
    reactor.addSystemEventTrigger("after", "shutdown", media.stop)
    return media


def _end_calls_without_media(calls: CallTable) -> Callable[[list[str], str], None]:
    """Calls whose media was lost (a worker died, a port could not be bound): each ends (BYE),
    recorded as failed with `why`, rather than going on in silence."""
    def end(call_ids: list[str], why: str) -> None:
        for call_id in call_ids:
            session = calls.sessions.get(call_id)
            if session is not None:
                session.hang_up(EndReason.MEDIA_LOST, why)
            placed = calls.placed.get(call_id)
            if placed is not None:
                placed.hang_up(f"media lost: {why}")
    return end


def build_server(config: Config, reactor, *, rng: random.Random | None = None,
                 drain_seconds: float = DEFAULT_DRAIN_SECONDS,
                 start_media_worker: Callable | None = None, records_process: bool = False,
                 drain_min_seconds: float = 0.0) -> RunningServer:
    """Build and wire the whole shell, then bind its SIP transports. `reactor` provides IReactorTime,
    IReactorUDP, IReactorTCP, IReactorThreads and IReactorCore's stop (tests pass a Clock-based fake),
    and IReactorProcess when `rtp: workers:` asks for media worker processes.
    `drain_seconds`: how long a stop lets calls in progress finish (`RunningServer.shutdown`);
    `drain_min_seconds`: how long it answers 503 at least, for a probing front proxy.
    `start_media_worker`: how a media worker is started (tests: one on their fake reactor).
    `records_process`: the records writer runs in a child process (`acd serve`), not a thread."""
    prompts = PromptLibrary(config.prompts)
    metrics = Metrics()
    # Media workers first: they start (a Python start-up, ~0.3 s) while the prompts load and the
    # stores open, so they are ready when SIP listens. Calls made before are not lost either: their
    # commands wait in the pipe.
    media = _media_plane(config, reactor, prompts=prompts, rng=rng, metrics=metrics,
                         start_media_worker=start_media_worker)
    count = prompts.preload()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    node_id = config.cluster.node_id if config.cluster is not None else None  # each call's record names its node
    records = open_record_store(records_location(config.store, config.data_dir), in_process=not records_process,
                                schedule=reactor.callLater, commit_delay_observer=metrics.records_commit_delay.observe,
                                node=node_id)
    previous = records.start_run(at=reactor.seconds())
    records.close_interrupted(at=reactor.seconds())  # in a cluster: this node's own calls only
    # "during": after every "before" trigger (a drain of the calls in progress) has finished, so the
    # mark means the run ended on the normal path; "after" closes the writer once it is written.
    reactor.addSystemEventTrigger("during", "shutdown", lambda: records.stop_run(at=reactor.seconds()))
    reactor.addSystemEventTrigger("after", "shutdown", records.close)
    directory = CustomerDirectory(config.data_dir / "customers.db", default_country_code=config.country_code)
    live = LiveConfig(config, crm=crm_client(config, reactor))
    events = EventHub(reactor)
    webhooks = CrmWebhooks(live, reactor)
    calls = CallTable()
    media.on_media_lost = _end_calls_without_media(calls)
    endpoint = SipEndpoint(local_host=config.sip.public_address, local_port=config.sip.port,
                           transport_ports={"TLS": config.sip.tls.port},
                           timers=TimerConfig(t1=config.sip.timer_t1_seconds))
    sip = SipServer(endpoint=endpoint, config=live, reactor=reactor, metrics=metrics, calls=calls)
    registrar = RegistrarService(signalling=sip, config=live, reactor=reactor) if config.agents else None

    cluster = None
    if config.cluster is not None:  # several nodes route as one (acd/calls/cluster_routing.py)
        cluster = ClusterRouting(conninfo=config.store, settings=config.cluster, config=routing_config_from(config),
                                 reactor=reactor)
        cluster.register_metrics(metrics.registry)
        cluster.life = ClusterLife(conninfo=config.store, settings=config.cluster, records=records, reactor=reactor,
                                   address=f"{config.sip.public_address}:{config.sip.port}", clock=cluster.clock,
                                   end_hosted_calls=lambda why, at: end_hosted_calls(acd, calls, records, why, at))
        cluster.life.register_metrics(metrics.registry)
        reactor.addSystemEventTrigger("after", "shutdown", cluster.stop)

    def contacts(agent_id: str) -> list[AgentContact]:
        found = registrar.contacts(agent_id, reactor.seconds()) if registrar is not None else []
        return found if found or cluster is None else cluster.contacts(agent_id)

    acd = AcdService(reactor=reactor, config=live, signalling=sip, media=media, events=events, records=records,
                     webhooks=webhooks, metrics=metrics, contacts=contacts, directory=directory, routing=cluster)
    if cluster is not None:
        # The routing log holds the agents; on an empty log, only the node that begins it restores them
        # (on the reactor, once it runs: the SIP ports are bound by then).
        cluster.on_first_leader = lambda: _restore_agents(previous, acd)
        cluster.start()
    ivr = IvrServices(reactor=reactor, config=live, metrics=metrics, recognizers=RecognizerCache(),
                      directory=directory, enqueue=acd.enqueue)
    monitoring = Monitoring(reactor=reactor, config=live, media=media, signalling=sip, records=records, events=events,
                            acd_calls=acd.calls, contacts=contacts)
    inbound = InboundCalls(signalling=sip, media=media, config=live, records=records, webhooks=webhooks,
                           metrics=metrics, reactor=reactor, calls=calls, ivr=ivr, agents=acd,
                           authenticator=registrar, on_call_ended=acd.caller_left, monitoring=monitoring)
    sip.set_handlers(call_setup=inbound, registrar=registrar)
    if registrar is not None:
        reactor.addSystemEventTrigger("after", "shutdown", registrar.store.close)  # PostgreSQL: queued writes in
        registrar.watch_bindings(acd.phone_changed)  # reachability: an agent's phone came or went
    metrics.unconfirmed_calls.set_function(lambda: inbound.unconfirmed.total)
    metrics.unconfirmed_peak.set_function(lambda: inbound.unconfirmed.peak)

    def agent_hosts(now: float) -> set[str]:
        agents = live.config.agents
        return {destination[0] for agent_id in (agents.agents if agents is not None else ())
                for destination in (contact.destination for contact in contacts(agent_id))}

    admission = AdmissionGate(server=sip, config=live, calls=calls, metrics=metrics, reactor=reactor)
    gate = RequestGate(server=admission, config=live, agent_hosts=agent_hosts, metrics=metrics, reactor=reactor)
    view = LiveView(reactor=reactor, config=live, calls=calls, acd=acd, contacts=contacts,
                    counters=lambda: endpoint.counters,
                    auth_failures=lambda: registrar.auth_failures if registrar is not None else 0)
    metrics.attach(view)
    shutdown = GracefulShutdown(reactor=reactor, calls=calls, acd=acd, config=live,
                                admission=cluster.life.admission(sip) if cluster is not None else sip,
                                flush_records=records.flush, stop=reactor.stop, drain_seconds=drain_seconds,
                                min_drain_seconds=drain_min_seconds)
    udp_port = tcp_port = None
    if "udp" in config.sip.transports:
        udp_port = listen_sip_udp(reactor, config.sip.port, gate, interface=config.sip.listen,
                                  max_packet_bytes=SIP_MAX_DATAGRAM_BYTES,
                                  observe_batch=metrics.sip_receive_batch.observe)
        _grow_receive_buffer(udp_port)
    tcp_port, tls_port = listen_sip_streams(config, reactor, gate, in_use=sip.connection_in_use, metrics=metrics)
    log.info("listening for SIP on %s:%s (%s); RTP on %s ports %s-%s; %d prompts loaded; %d routes, %d flows",
             config.sip.listen, config.sip.port, "+".join(config.sip.transports), config.rtp.address,
             config.rtp.port_min, config.rtp.port_max, count, len(config.routes), len(config.flows))
    if cluster is None:
        _restore_agents(previous, acd)
    trunk_registrations = TrunkRegistrations(trunks=config.trunks, sender=sip, reactor=reactor, metrics=metrics,
                                             contact_host=config.sip.public_address, contact_port=config.sip.port)
    trunk_registrations.start()  # the SIP ports are bound: carriers' answers can come back
    reactor.addSystemEventTrigger("before", "shutdown", trunk_registrations.stop)
    return RunningServer(live=live, sip=sip, media=media, acd=acd, calls=calls, view=view, events=events,
                         metrics=metrics, records=records, registrar=registrar, shutdown=shutdown,
                         udp_port=udp_port, tcp_port=tcp_port, tls_port=tls_port, admission_gate=admission,
                         monitoring=monitoring, trunk_registrations=trunk_registrations, cluster=cluster)
