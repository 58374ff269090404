"""The composition root (STYLE 11): builds the whole server from a Config, in one readable place."""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path
from dataclasses import dataclass

from twisted.web import resource, server, static

from .api.rest import ApiResource
from .api.metrics_page import MetricsResource
from .calls.registrar_service import RegistrarService
from .calls.sip_server import SipServer
from .calls.transports import SipTcpFactory, SipUdpProtocol
from .config.model import Config
from .media.prompts import PromptLibrary
from .speech.recognizer import RecognizerCache
from .context.directory import CustomerDirectory
from .store.records import RecordStore

__all__ = ["RunningServer", "build_server"]

log = logging.getLogger("acd")


@dataclass
class RunningServer:
    """What `build_server` started: the SIP server and its listening ports."""

    sip: SipServer
    udp_port: object | None
    tcp_port: object | None
    http_port: object | None = None


# The default 208 KiB receive buffer holds ~20 ms of SIP at 800 calls/s: a GC pause or a busy tick
# overflows it and every dropped datagram becomes a 500 ms retransmission (scripts/bench/README.md).
SIP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024


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


def start_http(config: Config, sip: SipServer, reload, reactor):
    """Serve the REST API on the HTTP port (None when the port is 0)."""
    if config.http.port == 0:
        return None
    root = resource.Resource()
    root.putChild(b"api", ApiResource(sip, api_token(config), reload))
    root.putChild(b"metrics", MetricsResource(sip.metrics.registry))
    root.putChild(b"wallboard", static.File(str(Path(__file__).parent / "api" / "wallboard.html"),
                                            defaultType="text/html"))
    port = reactor.listenTCP(config.http.port, server.Site(root), interface=config.http.listen)
    log.info("HTTP API on http://%s:%s/api (token in %s), metrics on /metrics, wallboard on /wallboard?token=...",
             config.http.listen, config.http.port,
             config.data_dir / config.http.token_file)
    return port


def build_server(config: Config, reactor) -> RunningServer:
    """Load prompts, create the SIP server and bind its transports. `reactor` provides IReactorTime,
    IReactorUDP and IReactorTCP."""
    prompts = PromptLibrary(config.prompts)
    count = prompts.preload()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    records = RecordStore(config.data_dir / "records.db")
    records.close_interrupted(at=reactor.seconds())
    reactor.addSystemEventTrigger("after", "shutdown", records.close)
    directory = CustomerDirectory(config.data_dir / "customers.db", default_country_code=config.country_code)
    sip = SipServer(config=config, reactor=reactor, prompts=prompts, recognizers=RecognizerCache(), records=records,
                    directory=directory)
    sip.registrar = RegistrarService(server=sip, config=config, reactor=reactor)
    udp_port = tcp_port = None
    if "udp" in config.sip.transports:
        udp_port = reactor.listenUDP(config.sip.port, SipUdpProtocol(sip), interface=config.sip.listen)
        _grow_receive_buffer(udp_port)
    if "tcp" in config.sip.transports:
        tcp_port = reactor.listenTCP(config.sip.port, SipTcpFactory(sip), interface=config.sip.listen)
    log.info("listening for SIP on %s:%s (%s); RTP on %s ports %s-%s; %d prompts loaded; %d routes, %d flows",
             config.sip.listen, config.sip.port, "+".join(config.sip.transports), config.rtp.address,
             config.rtp.port_min, config.rtp.port_max, count, len(config.routes), len(config.flows))
    return RunningServer(sip=sip, udp_port=udp_port, tcp_port=tcp_port)
