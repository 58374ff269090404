"""A supervisor's commands on a call in progress (REST API): hang it up, or transfer it to a queue or
a dialplan number, wherever it is (IVR, waiting in a queue, ringing an agent, talking to one).

Transfers go through the same paths as the rest of the server: a caller moved to a queue runs a
one-step flow whose only step is that queue (so "no agents" and the queue's limits apply as for
any caller, and a refusal ends the call politely), a caller moved to a number runs that number's
flow. A call talking to an agent is taken from the agent the way the agent's own blind transfer
(REFER) takes it, and the agent's leg gets BYE. Every command is logged with the call and who.
"""

from __future__ import annotations

import logging
from typing import Any

from ..ivr.flow import Flow, HangupStep, QueueStep
from .leg_states import EndReason

__all__ = ["CallControl", "transfer_flow"]

log = logging.getLogger("acd.call")


def transfer_flow(queue: str) -> Flow:
    """The flow a caller transferred to `queue` runs: that queue, and goodbye if it refuses the call."""
    return Flow(name=f"transfer-to-{queue}", start="queue", source="(transfer by a supervisor)",
                steps={"queue": QueueStep(name="queue", queue=queue, on_failure="end"),
                       "end": HangupStep(name="end")})


class CallControl:
    """Hang-up and transfer by call id. `calls` is the CallTable, `acd` the AcdService, `config` the
    LiveConfig; each method returns what happened as a short id the API turns into its answer."""

    def __init__(self, *, calls: Any, acd: Any, config: Any) -> None:
        self.calls = calls
        self.acd = acd
        self.config = config

    def hang_up(self, call_id: str, *, by: str = "API") -> str:
        """End the caller's call now (BYE). "hung-up" or "unknown-call"."""
        session = self.calls.sessions.get(call_id)
        if session is None or not session.active:
            return "unknown-call"
        log.info("call=%s hung up by %s", call_id, by)
        session.hang_up(EndReason.SUPERVISOR_HUNG_UP, by)
        return "hung-up"

    def transfer(self, call_id: str, target: str, *, by: str = "API") -> str:
        """Move the caller to queue `target`, or to the flow of dialplan number `target`. Returns
        "transferred", "unknown-call" or "unknown-target"."""
        session = self.calls.sessions.get(call_id)
        if session is None or not session.active or session.ivr is None:
            return "unknown-call"
        config = self.config.config
        queue = target if config.agents is not None and target in config.agents.queues else None
        route = None if queue is not None else config.route_for(target)
        if queue is None and route is None:
            return "unknown-target"
        queued = self.acd.calls.get(call_id)
        if queued is not None:
            if queued.agent_leg is not None and queued.connected_at is not None:
                leg = queued.agent_leg
                if self.acd.connections.agent_transfer(leg, target) != 200:
                    return "unknown-call"
                leg.hang_up(f"call transferred by {by}")
                log.info("call=%s taken from agent=%s and transferred to %s by %s", call_id, leg.agent_id, target, by)
                return "transferred"
            self.acd.leave_queue(queued, f"transferred to {target} by {by}", target=target)
        session.transfer_target = target
        self.acd.records.set_field(call_id, "transfer_target", target)
        flow = transfer_flow(queue) if queue is not None else config.flows[route.flow]
        log.info("call=%s transferred by %s to %s (flow %s)", call_id, by, target, flow.name)
        session.run_flow(flow)
        return "transferred"
