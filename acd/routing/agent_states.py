"""The agent state machine: named states, named triggers, and the legal transitions as data.

Rules of this file:
- `TRANSITIONS[state][trigger]` is the next state. A trigger with no entry is illegal in that
  state and `next_agent_state` raises `IllegalAgentTransition` naming agent, trigger and state.
- Only the engine drives triggers; the shell never sets a state. Double booking is impossible
  by construction: `OFFER` exists only from `AVAILABLE`, and an agent record holds one call.
- PAUSE and LOG_OUT while `ON_CALL` keep the state: the engine records them as pending and
  applies them when the call and its wrap-up are over ("pause after this call").
- `state_diagram()` renders the table as Mermaid for `acd/routing/README.md`, so the picture
  cannot drift from the code.
"""

from __future__ import annotations

import enum

from .errors import IllegalAgentTransition

__all__ = ["AgentState", "Trigger", "TRANSITIONS", "next_agent_state", "state_diagram"]


class AgentState(enum.Enum):
    """Where an agent is, in call-center words."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    OFFERED = "offered"  # ringing: one offer outstanding to this agent
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # timed after-call work
    PAUSED = "paused"  # with a reason code

    # Members are singletons: identity hashing keeps the hot-path dict lookups in C
    # (Enum's own __hash__ is Python code and showed up in the benchmark profile).
    __hash__ = object.__hash__


class Trigger(enum.Enum):
    """What can happen to an agent."""

    LOG_IN = "log_in"
    LOG_IN_PAUSED = "log_in_paused"
    LOG_OUT = "log_out"
    OFFER = "offer"
    ANSWER = "answer"
    MISS = "miss"  # ring-no-answer or decline
    AUTO_PAUSE = "auto_pause"  # the Nth consecutive miss
    WITHDRAW = "withdraw"  # offer cancelled without the agent's fault
    HANG_UP = "hang_up"  # to wrap-up, which ends at once when the queue has zero seconds
    WRAP_UP_END = "wrap_up_end"
    PAUSE = "pause"
    READY = "ready"  # resume from pause, or end wrap-up early

    __hash__ = object.__hash__


S, T = AgentState, Trigger

TRANSITIONS: dict[AgentState, dict[Trigger, AgentState]] = {
    S.LOGGED_OUT: {T.LOG_IN: S.AVAILABLE, T.LOG_IN_PAUSED: S.PAUSED},
    S.AVAILABLE: {T.OFFER: S.OFFERED, T.PAUSE: S.PAUSED, T.LOG_OUT: S.LOGGED_OUT},
    S.OFFERED: {
        T.ANSWER: S.ON_CALL,
        T.MISS: S.AVAILABLE,
        T.AUTO_PAUSE: S.PAUSED,
        T.WITHDRAW: S.AVAILABLE,
        T.PAUSE: S.PAUSED,
        T.LOG_OUT: S.LOGGED_OUT,
    },
    S.ON_CALL: {
        T.HANG_UP: S.WRAP_UP,
        T.PAUSE: S.ON_CALL,
        T.LOG_OUT: S.ON_CALL,
    },
    S.WRAP_UP: {
        T.WRAP_UP_END: S.AVAILABLE,
        T.READY: S.AVAILABLE,
        T.PAUSE: S.PAUSED,
        T.LOG_OUT: S.LOGGED_OUT,
    },
    S.PAUSED: {T.READY: S.AVAILABLE, T.PAUSE: S.PAUSED, T.LOG_OUT: S.LOGGED_OUT},
}

del S, T


def next_agent_state(agent_id: str, state: AgentState, trigger: Trigger) -> AgentState:
    """Return the state after `trigger`, or raise `IllegalAgentTransition`."""
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise IllegalAgentTransition(
            f"agent {agent_id}: {trigger.value} is not allowed while {state.value}",
            agent_id=agent_id,
            trigger=trigger.value,
            state=state.value,
        ) from None


def state_diagram() -> str:
    """Render `TRANSITIONS` as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", "    [*] --> logged_out"]
    for state, edges in TRANSITIONS.items():
        for trigger, target in edges.items():
            lines.append(f"    {state.value} --> {target.value}: {trigger.value}")
    return "\n".join(lines)
