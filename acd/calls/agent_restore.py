"""Agents' ACD state across a restart: who is logged back in, in which state, and what they are told.

At start-up the records say where each agent was when the last run ended (`AgentPresence`, written
on every state change). `plan_restore` decides, without I/O:
- an agent no longer in conf/agents.yaml, or with no queues there, is logged out;
- an agent whose phone registration expired while the server was down is logged out: no call
  could be offered to them;
- a change asked for during a call is applied, the call being over (pause or log out after it);
- a paused agent stays paused with the same reason;
- anyone else (available, ringing, on a call, in wrap-up) comes back available: calls do not
  survive a restart, so there is nothing left to ring, talk or wrap up.
`AcdService.restore_agents` carries the plan out through the routing engine, so the records, the
queue log and the events follow as for any login; `notice` is the SIP MESSAGE text for the phone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from ..registrar.path import agent_contact
from ..sip.build import build_message
from .ports import EventSink, Signalling

if TYPE_CHECKING:
    from ..config.agents import AgentConfig
    from ..config.model import SipSettings
    from ..registrar.path import AgentContact
    from ..store.presence import AgentPresence

__all__ = ["RestoredAgent", "plan_restore", "restore_summary", "tell_restored", "WHY_EXPIRED", "WHY_UNCONFIGURED",
           "WHY_NO_QUEUES", "WHY_LOGOUT_AFTER_CALL", "WHY_REFUSED"]

log = logging.getLogger("acd.acd")

WHY_EXPIRED = "binding expired while the server was down"
WHY_UNCONFIGURED = "no longer configured"
WHY_NO_QUEUES = "no queues configured"
WHY_LOGOUT_AFTER_CALL = "logged out after the call"
WHY_REFUSED = "the routing engine refused the login"

# What the phone's screen says for each reason (a MESSAGE is read at a glance).
_SHORT = {WHY_EXPIRED: "registration expired", WHY_LOGOUT_AFTER_CALL: "as asked during your last call"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoredAgent:
    """One agent of the last run: the state they had, the state they are in now, and why."""

    agent_id: str
    previous: str
    previous_pause_reason: str | None
    state: str  # "available", "paused" or "logged_out"
    pause_reason: str | None
    why: str

    @property
    def changed(self) -> bool:
        """True when the restart changed the agent's state (or pause reason)."""
        return (self.state, self.pause_reason) != (self.previous, self.previous_pause_reason)

    def describe(self) -> str:
        """For the start-up summary: "1001 available (was on_call)", "1002 paused (lunch)", "1003 (why)"."""
        if self.state == "logged_out":
            return f"{self.agent_id} ({self.why})"
        return f"{self.agent_id} {self.outcome()}"

    def outcome(self) -> str:
        """"available (was on_call)", "paused (lunch)", "logged out (why)"."""
        if self.state == "logged_out":
            return f"logged out ({self.why})"
        detail = [self.pause_reason] if self.state == "paused" else []
        if self.previous != self.state:
            detail.append(f"was {self.previous}")
        return self.state + (f" ({', '.join(detail)})" if detail else "")

    def notice(self) -> str | None:
        """The text to send to the agent's phone, or None when the restart changed nothing for them."""
        if not self.changed:
            return None
        if self.state == "logged_out":
            return f"ACD restarted: you were logged out: {_SHORT.get(self.why, self.why)}"
        if self.state == "paused":
            return f"ACD restarted: you are paused ({self.pause_reason})"
        return "ACD restarted: you are available again"

    def logged_out(self, why: str) -> "RestoredAgent":
        """The same agent, logged out for `why` (the engine refused the planned login)."""
        return RestoredAgent(agent_id=self.agent_id, previous=self.previous,
                             previous_pause_reason=self.previous_pause_reason, state="logged_out", pause_reason=None,
                             why=why)


def plan_restore(agents: Iterable["AgentPresence"], configured: Mapping[str, "AgentConfig"],
                 bound: Callable[[str], bool]) -> list[RestoredAgent]:
    """What becomes of each agent logged in when the last run ended. `configured`: the agents of
    conf/agents.yaml now; `bound(agent_id)`: the agent's phone has a live registration."""
    plan = []
    for agent in agents:
        if not agent.logged_in:
            continue
        previous_reason = agent.pause_reason if agent.state == "paused" else None
        state, reason = "available", None
        why = "restored" if agent.state == "available" else "calls do not survive a restart"
        config = configured.get(agent.agent_id)
        if config is None:
            state, why = "logged_out", WHY_UNCONFIGURED
        elif not config.queues:
            state, why = "logged_out", WHY_NO_QUEUES
        elif not bound(agent.agent_id):
            state, why = "logged_out", WHY_EXPIRED
        elif agent.pending == "logout" and agent.state in ("on_call", "wrap_up"):
            state, why = "logged_out", WHY_LOGOUT_AFTER_CALL
        elif agent.pending == "pause" and agent.state in ("on_call", "wrap_up") and agent.pending_reason:
            state, reason, why = "paused", agent.pending_reason, "paused after the call"
        elif agent.state == "paused":
            state, reason, why = "paused", agent.pause_reason or "paused", "restored"
        plan.append(RestoredAgent(agent_id=agent.agent_id, previous=agent.state,
                                  previous_pause_reason=previous_reason, state=state, pause_reason=reason, why=why))
    return plan


def restore_summary(ending: str, plan: Iterable[RestoredAgent]) -> str:
    """One line: "restored 2 agent(s) after a crash: 1001 available (was on_call), 1002 paused (lunch);
    logged out: 1003 (binding expired while the server was down)"."""
    plan = list(plan)
    back = [agent.describe() for agent in plan if agent.state != "logged_out"]
    out = [agent.describe() for agent in plan if agent.state == "logged_out"]
    line = f"restored {len(back)} agent(s) after {ending}" + (f": {', '.join(back)}" if back else "")
    return line + (f"; logged out: {', '.join(out)}" if out else "")


def tell_restored(restored: RestoredAgent, ending: str, now: float, *, events: EventSink, signalling: Signalling,
                  contacts: list[AgentContact], sip: "SipSettings") -> None:
    """An "agent-restored" event on the agent's stream (kept for a desktop that reconnects) and the
    wallboard's; a SIP MESSAGE to the agent's phone (first contact) when the restart changed their state."""
    event = {"type": "agent-restored", "agent": restored.agent_id, "after": ending, "state": restored.state,
             "pause_reason": restored.pause_reason, "previous": restored.previous,
             "previous_pause_reason": restored.previous_pause_reason, "changed": restored.changed,
             "reason": restored.why, "at": now}
    events.publish(f"agent-{restored.agent_id}", event, retain=True)
    events.publish("wallboard", event)
    text = restored.notice()
    if text is None:
        return
    if not contacts:
        log.info("agent=%s not told by SIP MESSAGE: no registered contact", restored.agent_id)
        return
    contact, destination, transport, route = agent_contact(contacts[0])
    message = build_message(uri=contact, from_user="acd", to_user=restored.agent_id,
                            local=(sip.public_address, sip.port), text=text, route=route)
    signalling.send_out_of_dialog(message, destination, transport, f"agent={restored.agent_id} MESSAGE")
    log.info("agent=%s told by SIP MESSAGE to %s: %r", restored.agent_id, contact, text)
