"""The imperative shell: Twisted transports, one CallSession per call, timers from the reactor.

Wired in one place, `acd/app.py` (the composition root); every object gets the narrow ports it uses
(`ports.py`) by constructor, and only the root imports `sip_server`:

- `transports` (UDP), `stream_transports` (TCP, TLS with `tls_context`: connection limits and reuse)
  -> `sip_server.SipServer` (drives the sans-IO endpoint; the Signalling port)
  -> `inbound.InboundCalls` (new INVITEs, feature codes, INFO) -> `session.CallSession` (+ `ivr_runner`)
- `acd_service.AcdService` (the routing engine's shell; `QueuedCall` per call, `queue_wait` for what
  waiting callers hear) -> `connections.Connections` -> `offers.OfferDialer` -> `agent_leg.AgentLeg`
  AcdService feeds a routing authority (`routing_authority`: `LocalRouting` in process, or
  `cluster_routing.ClusterRouting` for a node of a routing cluster, `cluster:`).
- `leg_states` (caller and agent leg transition tables, EndReason), `media_ports` + `rtp_leg` (RTP),
  `registrar_service`, `call_table`, `live_config`, `webhooks`, `queue_log`
- `view.LiveView`: the read-only view the REST API, wallboard and metrics use.
- `shutdown.GracefulShutdown`: SIGTERM drains (SipServer refuses new calls 503), then ends what is left
  (AcdService.release_all, CallSession.close) and stops the reactor.
"""
