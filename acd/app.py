"""The composition root (STYLE 11): builds the whole server from a Config, in one readable place."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .calls.registrar_service import RegistrarService
from .calls.sip_server import SipServer
from .calls.transports import SipTcpFactory, SipUdpProtocol
from .config.model import Config
from .media.prompts import PromptLibrary
from .speech.recognizer import RecognizerCache

__all__ = ["RunningServer", "build_server"]

log = logging.getLogger("acd")


@dataclass
class RunningServer:
    """What `build_server` started: the SIP server and its listening ports."""

    sip: SipServer
    udp_port: object | None
    tcp_port: object | None


def build_server(config: Config, reactor) -> RunningServer:
    """Load prompts, create the SIP server and bind its transports. `reactor` provides IReactorTime,
    IReactorUDP and IReactorTCP."""
    prompts = PromptLibrary(config.prompts)
    count = prompts.preload()
    sip = SipServer(config=config, reactor=reactor, prompts=prompts, recognizers=RecognizerCache())
    sip.registrar = RegistrarService(server=sip, config=config, reactor=reactor)
    udp_port = tcp_port = None
    if "udp" in config.sip.transports:
        udp_port = reactor.listenUDP(config.sip.port, SipUdpProtocol(sip), interface=config.sip.listen)
    if "tcp" in config.sip.transports:
        tcp_port = reactor.listenTCP(config.sip.port, SipTcpFactory(sip), interface=config.sip.listen)
    log.info("listening for SIP on %s:%s (%s); RTP on %s ports %s-%s; %d prompts loaded; %d routes, %d flows",
             config.sip.listen, config.sip.port, "+".join(config.sip.transports), config.rtp.address,
             config.rtp.port_min, config.rtp.port_max, count, len(config.routes), len(config.flows))
    return RunningServer(sip=sip, udp_port=udp_port, tcp_port=tcp_port)
