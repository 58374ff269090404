"""A supervisor's monitoring of a bridged call: its modes, who hears whom in each, and its lifecycle.

Pure (no I/O): the shell (acd.calls.monitoring) asks `next_monitor_state` for each move and mixes
media by `HEARING`. The legal moves are data, as in `leg_states`; a move with no entry raises
`MonitorStateError` naming the call, the state and the event, which the shell answers (a mode
change for a session that is gone, a second leave) before it ever becomes a bug.

    RINGING --answered(mode)--> LISTENING | WHISPERING | BARGING      (the API calls the supervisor)
    LISTENING <--switch--> WHISPERING <--switch--> BARGING             (DTMF 4/5/6, PATCH)
    any --leave / call_ended / failed--> ENDED

A supervisor's own phone dialling the feature code starts answered, in the mode the code names.
"""

from __future__ import annotations

import enum

__all__ = ["HEARING", "MODES", "MODE_DIGITS", "MonitorEvent", "MonitorState", "MonitorStateError",
           "MONITOR_TRANSITIONS", "next_monitor_state", "state_of_mode"]


class MonitorStateError(Exception):
    """A monitoring session was asked for a move its state does not allow."""


class MonitorState(enum.Enum):
    """Where a supervisor's monitoring of one call is."""

    RINGING = "ringing"          # we call the supervisor's phone (API); nothing mixed yet
    LISTENING = "listen"         # hears caller and agent; nobody hears the supervisor
    WHISPERING = "whisper"       # hears both; only the agent hears the supervisor
    BARGING = "barge"            # all three talk
    ENDED = "ended"


class MonitorEvent(enum.Enum):
    """What moves a monitoring session."""

    ANSWERED = "answered"        # the supervisor's phone answered (or dialled in)
    SWITCH = "switch"            # a new mode (DTMF or API)
    LEAVE = "leave"              # the supervisor hung up, or the API's DELETE
    CALL_ENDED = "call_ended"    # the monitored call is over (or no longer bridged)
    FAILED = "failed"            # the supervisor's phone could not be reached


MODES = ("listen", "whisper", "barge")
# While monitoring, a key on the supervisor's phone switches the mode (Asterisk ChanSpy's habit of
# number keys for modes; 4-5-6 sit in one row).
MODE_DIGITS = {"4": "listen", "5": "whisper", "6": "barge"}

# Who hears whom in each mode: listener role -> the roles it hears. Nobody hears themselves.
HEARING: dict[str, dict[str, tuple[str, ...]]] = {
    "listen": {"caller": ("agent",), "agent": ("caller",), "supervisor": ("caller", "agent")},
    "whisper": {"caller": ("agent",), "agent": ("caller", "supervisor"), "supervisor": ("caller", "agent")},
    "barge": {"caller": ("agent", "supervisor"), "agent": ("caller", "supervisor"),
              "supervisor": ("caller", "agent")},
}

_MODE_STATES = {"listen": MonitorState.LISTENING, "whisper": MonitorState.WHISPERING,
                "barge": MonitorState.BARGING}
_ENDS = {MonitorEvent.LEAVE: MonitorState.ENDED, MonitorEvent.CALL_ENDED: MonitorState.ENDED}
_TALKING = {MonitorEvent.SWITCH: None, **_ENDS}  # None: the state of the mode asked for

MONITOR_TRANSITIONS: dict[MonitorState, dict[MonitorEvent, MonitorState | None]] = {
    MonitorState.RINGING: {MonitorEvent.ANSWERED: None, MonitorEvent.FAILED: MonitorState.ENDED, **_ENDS},
    MonitorState.LISTENING: dict(_TALKING),
    MonitorState.WHISPERING: dict(_TALKING),
    MonitorState.BARGING: dict(_TALKING),
    MonitorState.ENDED: {},
}


def state_of_mode(mode: str) -> MonitorState:
    """The state a mode name is ("listen" -> LISTENING); ValueError for anything else."""
    try:
        return _MODE_STATES[mode]
    except KeyError:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}") from None


def next_monitor_state(state: MonitorState, event: MonitorEvent, call_id: str, mode: str | None = None) -> MonitorState:
    """The state after `event` (ANSWERED and SWITCH take the `mode`); MonitorStateError when not allowed."""
    moves = MONITOR_TRANSITIONS[state]
    if event not in moves:
        raise MonitorStateError(f"call={call_id}: monitoring in state {state.value} cannot take {event.value}")
    target = moves[event]
    if target is None:
        if mode is None:
            raise MonitorStateError(f"call={call_id}: {event.value} needs a mode ({', '.join(MODES)})")
        target = state_of_mode(mode)
    return target
