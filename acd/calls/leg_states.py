"""The lifecycles of the shell's two kinds of call legs, as transition tables, and why calls end.

A caller's leg (CallSession, we are the UAS) and an agent's leg (AgentLeg, we are the UAC) move
through named states; the legal moves are data (`{state: {event: next state}}`), as in
`acd/sip/transactions.py` and `acd/routing/agent_states.py`. A move with no entry raises
`LegStateError` naming the leg, the state and the event: a bug, never peer input (peer input that
does not fit a state is answered by the leg before it asks to move). `EndReason` replaces the
free-text reasons that were matched by prefix: each carries its metric label and log text.

    caller leg (RFC 3261 §13.3, UAS)            agent leg (RFC 3261 §13.2, UAC)
    RINGING --answer--> ANSWERED --ack--> CONFIRMED    CALLING --provisional--> RINGING
       |                   |                 |          CALLING/RINGING --cancel--> CANCELLING
       |                   +---hang_up-------+--> ENDING   CALLING/RINGING/CANCELLING --answered--> ANSWERED
       |                   +---close---------+--> CLOSING --hang_up--> ENDING   (a goodbye, then BYE)
       +--------------------- end (any) --------------> ENDED   ANSWERED --hang_up--> ENDING; any --end--> ENDED
"""

from __future__ import annotations

import enum

__all__ = ["AgentLegEvent", "AgentLegState", "AGENT_LEG_TRANSITIONS", "CallerEvent", "CallState",
           "CALLER_TRANSITIONS", "EndReason", "LegStateError", "next_agent_leg_state", "next_caller_state"]


class LegStateError(Exception):
    """A leg was asked to make a move its state does not allow (a bug in the shell)."""


class CallState(enum.Enum):
    """Where an inbound call is."""

    RINGING = "ringing"        # 180 or 183 sent (early media may play), or about to answer; answer pending
    ANSWERED = "answered"      # 200 sent, waiting for ACK (media already runs)
    CONFIRMED = "confirmed"    # ACK received
    CLOSING = "closing"        # the server is stopping: a last prompt, then our BYE (no flow, no queue)
    ENDING = "ending"          # our BYE sent
    ENDED = "ended"


class CallerEvent(enum.Enum):
    """What moves a caller's leg."""

    ANSWER = "answer"          # we send 200 OK
    ACK = "ack"                # the caller's ACK arrived
    HANG_UP = "hang_up"        # we send BYE
    CLOSE = "close"            # we play a goodbye before our BYE (server shutdown)
    END = "end"                # the call is over (BYE either way, CANCEL, failure)


CALLER_TRANSITIONS: dict[CallState, dict[CallerEvent, CallState]] = {
    CallState.RINGING: {CallerEvent.ANSWER: CallState.ANSWERED, CallerEvent.END: CallState.ENDED},
    CallState.ANSWERED: {CallerEvent.ACK: CallState.CONFIRMED, CallerEvent.HANG_UP: CallState.ENDING,
                         CallerEvent.CLOSE: CallState.CLOSING, CallerEvent.END: CallState.ENDED},
    CallState.CONFIRMED: {CallerEvent.ACK: CallState.CONFIRMED, CallerEvent.HANG_UP: CallState.ENDING,
                          CallerEvent.CLOSE: CallState.CLOSING, CallerEvent.END: CallState.ENDED},
    CallState.CLOSING: {CallerEvent.ACK: CallState.CLOSING, CallerEvent.HANG_UP: CallState.ENDING,
                        CallerEvent.END: CallState.ENDED},
    CallState.ENDING: {CallerEvent.END: CallState.ENDED},
    CallState.ENDED: {},
}


class AgentLegState(enum.Enum):
    """Where the offer to an agent (or a callback to a customer) is."""

    CALLING = "calling"
    RINGING = "ringing"
    ANSWERED = "answered"
    CANCELLING = "cancelling"
    ENDING = "ending"
    ENDED = "ended"


class AgentLegEvent(enum.Enum):
    """What moves an agent's leg."""

    PROVISIONAL = "provisional"  # 180/183 received
    ANSWERED = "answered"        # 2xx received (and ACKed)
    CANCEL = "cancel"            # we send CANCEL
    HANG_UP = "hang_up"          # we send BYE
    END = "end"                  # final failure, BYE either way, timeout


AGENT_LEG_TRANSITIONS: dict[AgentLegState, dict[AgentLegEvent, AgentLegState]] = {
    AgentLegState.CALLING: {AgentLegEvent.PROVISIONAL: AgentLegState.RINGING,
                            AgentLegEvent.ANSWERED: AgentLegState.ANSWERED,
                            AgentLegEvent.CANCEL: AgentLegState.CANCELLING, AgentLegEvent.END: AgentLegState.ENDED},
    AgentLegState.RINGING: {AgentLegEvent.PROVISIONAL: AgentLegState.RINGING,
                            AgentLegEvent.ANSWERED: AgentLegState.ANSWERED,
                            AgentLegEvent.CANCEL: AgentLegState.CANCELLING, AgentLegEvent.END: AgentLegState.ENDED},
    # CANCEL crossed the 200 (RFC 3261 §9.1): the call is up, then hung up at once.
    AgentLegState.CANCELLING: {AgentLegEvent.PROVISIONAL: AgentLegState.CANCELLING,
                               AgentLegEvent.ANSWERED: AgentLegState.ANSWERED, AgentLegEvent.END: AgentLegState.ENDED},
    AgentLegState.ANSWERED: {AgentLegEvent.HANG_UP: AgentLegState.ENDING, AgentLegEvent.END: AgentLegState.ENDED},
    AgentLegState.ENDING: {AgentLegEvent.END: AgentLegState.ENDED},
    AgentLegState.ENDED: {},
}


def next_caller_state(state: CallState, event: CallerEvent, call_id: str = "") -> CallState:
    """The caller leg's state after `event`; LegStateError if the table has no such move."""
    try:
        return CALLER_TRANSITIONS[state][event]
    except KeyError:
        raise LegStateError(f"call={call_id} caller leg in state {state.value} cannot take {event.value}") from None


def next_agent_leg_state(state: AgentLegState, event: AgentLegEvent, call_id: str = "") -> AgentLegState:
    """The agent leg's state after `event`; LegStateError if the table has no such move."""
    try:
        return AGENT_LEG_TRANSITIONS[state][event]
    except KeyError:
        raise LegStateError(f"call={call_id} agent leg in state {state.value} cannot take {event.value}") from None


class EndReason(enum.Enum):
    """Why a caller's call ended: (metric label `result`, log and record text with `{detail}`)."""

    CALLER_HUNG_UP = ("caller_hangup", "caller hung up")
    CALLER_CANCELLED = ("cancelled", "caller cancelled before answer")
    AGENT_HUNG_UP = ("agent_hangup", "agent hung up")
    TRANSFERRED = ("transferred", "transferred to {detail}")
    TRANSFER_FAILED = ("failed", "transfer to {detail}")
    CALLBACK_REQUESTED = ("callback", "callback requested")
    FLOW_COMPLETED = ("completed", "{detail}")
    FLOW_FAILED = ("failed", "{detail}")
    NO_ACK = ("failed", "no ACK for 200 OK")
    QUEUE_FAILED = ("failed", "queue failed after transfer: {detail}")
    HUNG_UP = ("failed", "hung up")
    SERVER_SHUTDOWN = ("shutdown", "server shutdown")
    SUPERVISOR_HUNG_UP = ("supervisor_hangup", "hung up by {detail}")
    MEDIA_LOST = ("failed", "media lost: {detail}")
    SESSION_EXPIRED = ("failed", "session expired: {detail}")  # RFC 4028: no refresh in time
    NO_USABLE_ANSWER = ("failed", "no usable answer in the ACK: {detail}")  # to our offer in the 200
    NO_PRACK = ("failed", "no PRACK for our reliable {detail}")  # RFC 3262 §3: the INVITE got 500

    @property
    def result(self) -> str:
        """The low-cardinality label for metrics and the record's outcome."""
        return self.value[0]

    def describe(self, detail: str = "") -> str:
        """The text logged and recorded (stable: log-watching tools and tests match it)."""
        return self.value[1].format(detail=detail)
