"""Monitoring: supervisors listen to, whisper on and barge into bridged calls (issue 19).

Two ways in, one session type:
- **a supervisor's phone** dials the feature code and the agent's extension (`*60` listen, `*61`
  whisper, `*62` barge + `1001`): InboundCalls authenticates it (digest, like the agents' codes),
  refuses anyone whose account is not `role: supervisor` (403), and answers with a CallSession whose
  runner is a `MonitorRunner` here instead of an IVR: keys 4/5/6 switch listen/whisper/barge,
  hanging up leaves;
- **the API** (`POST /api/calls/{id}/monitor`): we call the supervisor's registered phone (an
  AgentLeg, as an offer is placed) and join it when it answers; `PATCH` switches, `DELETE` leaves.

The audio is mixed by the media plane (`Media.set_mix`, acd.calls.mix_room) by the `HEARING` table
of acd.calls.monitor_states; every session's start, mode changes and end are recorded with the call
(`Records.monitoring`: who, which call, when, how) and published on the wallboard's stream. A session
ends when the call is no longer bridged (checked every `WATCH_SECONDS`): the supervisor gets BYE.
One supervisor per call at a time. `reactor` provides IReactorTime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet import task

from ..ivr.events import CallerHungUp, DigitReceived
from ..registrar.path import AgentContact, agent_contact
from .agent_leg import AgentLeg, AgentLegState
from .leg_states import EndReason
from .monitor_states import (HEARING, MODE_DIGITS, MonitorEvent, MonitorState, next_monitor_state,
                             state_of_mode)
from .ports import ConfigSource, EventSink, Media, Records, Signalling
from .queued_call import QueuedCall

__all__ = ["Monitoring", "MonitorRunner", "MonitorSession", "RING_SECONDS", "WATCH_SECONDS"]

log = logging.getLogger("acd.monitor")

# How often sessions are checked against their call: a supervisor stays on at most this long after
# the call ended or was transferred (hearing silence meanwhile).
WATCH_SECONDS = 0.5
# How long the API lets a supervisor's phone ring: as long as an agent's offer may (the demo queues'
# ring_timeout is 15 s), twice over, for a supervisor who has to reach for it.
RING_SECONDS = 30.0


@dataclass(eq=False)
class MonitorSession:
    """One supervisor on one call."""

    call_id: str
    supervisor_id: str
    agent_id: str
    via: str                      # "phone" (feature code) or "api"
    state: MonitorState
    started_at: float
    mode: str | None = None
    leg: Any = None               # the supervisor's RTP leg
    caller_rtp: Any = None
    agent_rtp: Any = None
    end_call: Callable[[str], None] = lambda why: None  # hangs up the supervisor's phone
    ring_timer: Any = None        # the API's call to the supervisor gives up when it fires

    def stop_ringing(self) -> None:
        """The phone answered, or the session is over: the ring timer goes."""
        if self.ring_timer is not None and self.ring_timer.active():
            self.ring_timer.cancel()
        self.ring_timer = None

    def describe(self) -> dict[str, Any]:
        """As the API and the wallboard show it."""
        return {"call_id": self.call_id, "supervisor": self.supervisor_id, "agent": self.agent_id,
                "mode": self.mode, "state": self.state.value, "via": self.via, "started_at": self.started_at}


class _FlowRunStandIn:
    """What CallSession and the live view read of a flow run, for a supervisor's call (no IVR)."""

    context = None
    collecting_masked = False
    finished = False

    def __init__(self, name: str) -> None:
        self.step_name = "monitoring"
        self.flow = type("MonitorFlow", (), {"name": name})()


class MonitorRunner:
    """Stands in for the IvrRunner of a supervisor's own call: its answer joins the call, its keys
    switch the mode, its end leaves."""

    choices: list[str] = []

    def __init__(self, monitoring: "Monitoring", session: Any, supervisor_id: str, call_id: str, agent_id: str,
                 mode: str) -> None:
        self.monitoring = monitoring
        self.session = session
        self.supervisor_id = supervisor_id
        self.call_id = call_id
        self.agent_id = agent_id
        self.mode = mode
        self.flow_run = _FlowRunStandIn(f"monitor-{mode}")
        self.monitor: MonitorSession | None = None

    def start_after_caller_lookup(self) -> None:
        """The supervisor's call is answered: join the monitored call."""
        self.monitor = self.monitoring.phone_joined(self)

    start = start_after_caller_lookup

    def feed(self, event: Any) -> None:
        """A key switches the mode (4 listen, 5 whisper, 6 barge); the supervisor's hang-up leaves."""
        if self.monitor is None:
            return
        if isinstance(event, DigitReceived) and event.digit in MODE_DIGITS:
            self.monitoring.switch(self.monitor, MODE_DIGITS[event.digit], by=f"supervisor {self.supervisor_id} "
                                                                              f"key {event.digit}")
        elif isinstance(event, CallerHungUp):
            self.stop()

    def stop(self) -> None:
        """The supervisor's call is over."""
        if self.monitor is not None:
            self.monitoring.leave(self.monitor, "supervisor hung up")

    def release(self) -> None:
        """Drop references (as IvrRunner.release)."""
        self.session = None


class Monitoring:
    """Every monitoring session, by the monitored call's id."""

    def __init__(self, *, reactor, config: ConfigSource, media: Media, signalling: Signalling, records: Records,
                 events: EventSink, acd_calls: dict[str, QueuedCall],
                 contacts: Callable[[str], list[AgentContact]]) -> None:
        """`acd_calls`: the ACD's calls (AcdService.calls); `contacts(user)`: a user's registered phones."""
        self.reactor = reactor
        self.config = config
        self.media = media
        self.signalling = signalling
        self.records = records
        self.events = events
        self.acd_calls = acd_calls
        self.contacts = contacts
        self.sessions: dict[str, MonitorSession] = {}
        self._watch = task.LoopingCall(self._check_calls)
        self._watch.clock = reactor

    # ---- checks ------------------------------------------------------------------------------
    def is_supervisor(self, user: str) -> bool:
        """True when `user` is an account of conf/agents.yaml with `role: supervisor`."""
        agents = self.config.config.agents
        account = agents.agents.get(user) if agents is not None else None
        return account is not None and account.role == "supervisor"

    def call_of_agent(self, agent_id: str) -> str | None:
        """The call `agent_id` is talking on now (bridged), or None."""
        for call_id, queued in self.acd_calls.items():
            if queued.agent_id == agent_id and self._bridged_legs(queued) is not None:
                return call_id
        return None

    @staticmethod
    def _bridged_legs(queued: QueuedCall) -> tuple[Any, Any] | None:
        """The caller's and the agent's RTP legs of a connected call, or None when it is not bridged."""
        agent = queued.agent_leg
        if agent is None or queued.connected_at is None or agent.state is not AgentLegState.ANSWERED:
            return None
        if queued.session is not None:
            session = queued.session
            return (session.leg, agent.rtp) if session.active and session.bridged_to is agent.rtp else None
        customer = queued.customer_leg
        if customer is not None and customer.state is AgentLegState.ANSWERED:
            return customer.rtp, agent.rtp
        return None

    def refusal(self, call_id: str | None, supervisor_id: str) -> str | None:
        """Why `supervisor_id` may not monitor `call_id` now ("not-a-supervisor", "not-bridged",
        "already-monitored"), or None."""
        if not self.is_supervisor(supervisor_id):
            return "not-a-supervisor"
        queued = self.acd_calls.get(call_id) if call_id is not None else None
        if queued is None or self._bridged_legs(queued) is None:
            return "not-bridged"
        if call_id in self.sessions:
            return "already-monitored"
        return None

    # ---- a supervisor's phone (feature code) -------------------------------------------------
    def runner_for(self, supervisor_id: str, call_id: str, agent_id: str, mode: str) -> Callable[..., MonitorRunner]:
        """The `runner_for` of the CallSession a supervisor's feature-code call becomes."""
        def build(session: Any, flow: Any, context: Any, previous: Any) -> MonitorRunner:
            return MonitorRunner(self, session, supervisor_id, call_id, agent_id, mode)
        return build

    def phone_joined(self, runner: MonitorRunner) -> MonitorSession | None:
        """A supervisor's feature-code call was answered: join it to the call (or hang up when the call
        ended or someone else monitors it meanwhile)."""
        session = runner.session
        why = self.refusal(runner.call_id, runner.supervisor_id)
        if why is not None:
            log.info("call=%s supervisor=%s cannot monitor any more: %s; hanging up", runner.call_id,
                     runner.supervisor_id, why)
            session.hang_up(EndReason.FLOW_COMPLETED, why)
            return None
        monitor = MonitorSession(call_id=runner.call_id, supervisor_id=runner.supervisor_id, agent_id=runner.agent_id,
                                 via="phone", state=MonitorState.RINGING, started_at=self.reactor.seconds(),
                                 leg=session.leg,
                                 end_call=lambda why: session.hang_up(EndReason.FLOW_COMPLETED, why))
        self.sessions[runner.call_id] = monitor
        self._answered(monitor, runner.mode)
        return monitor

    # ---- the API -----------------------------------------------------------------------------
    def start(self, call_id: str, supervisor_id: str, mode: str, *, by: str = "API") -> str:
        """Call the supervisor's phone and join it to `call_id` in `mode` when it answers. Returns
        "calling", or why not: "not-a-supervisor", "not-bridged", "already-monitored",
        "not-registered", "no-rtp-port"."""
        state_of_mode(mode)  # ValueError for an unknown mode
        why = self.refusal(call_id, supervisor_id)
        if why is not None:
            return why
        contacts = self.contacts(supervisor_id)
        if not contacts:
            return "not-registered"
        queued = self.acd_calls[call_id]
        caller_rtp, _ = self._bridged_legs(queued)
        uri, destination, transport, route = agent_contact(contacts[0])
        sip = self.config.config.sip
        agents = self.config.config.agents
        account = agents.agents[supervisor_id]
        monitor = MonitorSession(call_id=call_id, supervisor_id=supervisor_id, agent_id=queued.agent_id or "",
                                 via="api", state=MonitorState.RINGING, started_at=self.reactor.seconds())
        placed = AgentLeg(signalling=self.signalling, media=self.media, reactor=self.reactor,
                          sip_address=(sip.public_address, sip.port), customer_call_id=call_id,
                          agent_id=supervisor_id, contact=uri, destination=destination, transport=transport,
                          codec=caller_rtp.codec, payload_type=caller_rtp.payload_type,
                          telephone_event_pt=caller_rtp.telephone_event_pt,
                          context_headers=(("X-ACD-Monitor", mode), ("X-ACD-Caller-Call-ID", call_id),
                                           ("X-ACD-Agent", queued.agent_id or "")),
                          on_answer=lambda leg: self._answered(monitor, mode),
                          on_failure=lambda leg, status: self._ended(monitor, MonitorEvent.FAILED,
                                                                     f"supervisor's phone answered {status}"),
                          on_hangup=lambda leg: self.leave(monitor, "supervisor hung up"),
                          on_hold=lambda leg, held: None, on_transfer=lambda leg, target: 501,
                          from_user="acd-monitor", srtp_policy=account.srtp, route=route)
        if not placed.start():
            return "no-rtp-port"
        placed.rtp.on_digit = lambda digit: self.key(monitor, digit)
        monitor.leg = placed.rtp
        monitor.end_call = lambda why: placed.cancel(why)
        self.sessions[call_id] = monitor
        log.info("call=%s calling supervisor=%s to %s (%s, by %s)", call_id, supervisor_id, mode, uri, by)
        self._record(monitor, "calling", mode)
        monitor.ring_timer = self.reactor.callLater(RING_SECONDS, self._ring_over, monitor)
        return "calling"

    def _ring_over(self, monitor: MonitorSession) -> None:
        monitor.ring_timer = None
        if monitor.state is MonitorState.RINGING:
            self._ended(monitor, MonitorEvent.FAILED, f"the supervisor's phone did not answer in {RING_SECONDS:.0f} s")

    def key(self, monitor: MonitorSession, digit: str) -> None:
        """A key on the supervisor's phone (API path): 4/5/6 switch the mode; others are ignored."""
        if digit in MODE_DIGITS:
            self.switch(monitor, MODE_DIGITS[digit], by=f"supervisor {monitor.supervisor_id} key {digit}")

    def change(self, call_id: str, mode: str, *, by: str = "API") -> str:
        """Switch the session on `call_id` to `mode`: "changed", "unchanged", "not-monitored" or "ringing"."""
        state_of_mode(mode)
        monitor = self.sessions.get(call_id)
        if monitor is None:
            return "not-monitored"
        if monitor.state is MonitorState.RINGING:
            return "ringing"
        return "changed" if self.switch(monitor, mode, by=by) else "unchanged"

    def stop(self, call_id: str, *, by: str = "API") -> str:
        """End the session on `call_id` (the supervisor's phone gets BYE): "left" or "not-monitored"."""
        monitor = self.sessions.get(call_id)
        if monitor is None:
            return "not-monitored"
        self.leave(monitor, f"ended by {by}")
        return "left"

    def describe(self) -> list[dict[str, Any]]:
        """Every session in progress, as the API shows them."""
        return [monitor.describe() for monitor in self.sessions.values()]

    # ---- moves -------------------------------------------------------------------------------
    def _answered(self, monitor: MonitorSession, mode: str) -> None:
        monitor.stop_ringing()
        queued = self.acd_calls.get(monitor.call_id)
        legs = self._bridged_legs(queued) if queued is not None else None
        if legs is None:
            self._ended(monitor, MonitorEvent.CALL_ENDED, "the call is no longer bridged")
            return
        monitor.caller_rtp, monitor.agent_rtp = legs
        monitor.state = next_monitor_state(monitor.state, MonitorEvent.ANSWERED, monitor.call_id, mode)
        monitor.mode = mode
        self.media.stop_sending(monitor.leg)  # the room sends to the supervisor from now on
        monitor.leg.stop()
        self._mix(monitor)
        log.info("call=%s supervisor=%s joined (%s, via %s) agent=%s", monitor.call_id, monitor.supervisor_id, mode,
                 monitor.via, monitor.agent_id)
        self._record(monitor, "start", mode)
        if not self._watch.running:
            self._watch.start(WATCH_SECONDS, now=False)

    def switch(self, monitor: MonitorSession, mode: str, *, by: str) -> bool:
        """Change the mode of a joined session; False when it already is in that mode or is over."""
        if monitor.state in (MonitorState.RINGING, MonitorState.ENDED) or monitor.mode == mode:
            return False
        monitor.state = next_monitor_state(monitor.state, MonitorEvent.SWITCH, monitor.call_id, mode)
        monitor.mode = mode
        self._mix(monitor)
        log.info("call=%s supervisor=%s switched to %s (%s)", monitor.call_id, monitor.supervisor_id, mode, by)
        self._record(monitor, "mode", mode)
        return True

    def leave(self, monitor: MonitorSession, why: str) -> None:
        """The supervisor leaves (hung up, or the API): the call's legs relay again."""
        self._ended(monitor, MonitorEvent.LEAVE, why)

    def _ended(self, monitor: MonitorSession, event: MonitorEvent, why: str) -> None:
        if monitor.state is MonitorState.ENDED:
            return
        monitor.stop_ringing()
        was_mixing = monitor.state is not MonitorState.RINGING
        monitor.state = next_monitor_state(monitor.state, event, monitor.call_id)
        if self.sessions.get(monitor.call_id) is monitor:
            del self.sessions[monitor.call_id]
        if was_mixing:
            self.media.set_mix(monitor.call_id, None)
        log.info("call=%s supervisor=%s monitoring ended: %s", monitor.call_id, monitor.supervisor_id, why)
        self._record(monitor, "end", monitor.mode or "", why)
        monitor.end_call(why)
        if not self.sessions and self._watch.running:
            self._watch.stop()

    def _mix(self, monitor: MonitorSession) -> None:
        roles = {"caller": monitor.caller_rtp, "agent": monitor.agent_rtp, "supervisor": monitor.leg}
        hearing = {roles[listener]: tuple(roles[source] for source in sources)
                   for listener, sources in HEARING[monitor.mode].items()}
        self.media.set_mix(monitor.call_id, hearing, (monitor.caller_rtp, monitor.agent_rtp))

    def _check_calls(self) -> None:
        """End sessions whose call is over or no longer bridged to the same legs."""
        for monitor in list(self.sessions.values()):
            if monitor.state is MonitorState.RINGING:
                continue
            queued = self.acd_calls.get(monitor.call_id)
            legs = self._bridged_legs(queued) if queued is not None else None
            if legs != (monitor.caller_rtp, monitor.agent_rtp):
                self._ended(monitor, MonitorEvent.CALL_ENDED, "the call ended or left the agent")

    def _record(self, monitor: MonitorSession, event: str, mode: str, detail: str = "") -> None:
        now = self.reactor.seconds()
        self.records.monitoring(monitor.call_id, supervisor=monitor.supervisor_id, agent=monitor.agent_id,
                                event=event, mode=mode, via=monitor.via, detail=detail, at=now)
        self.events.publish("wallboard", {"type": "monitoring", "event": event, **monitor.describe()})

