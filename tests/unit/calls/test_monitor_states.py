"""The monitoring state machine and who hears whom in each mode."""

from __future__ import annotations

import pytest

from acd.calls.monitor_states import (HEARING, MODE_DIGITS, MODES, MONITOR_TRANSITIONS, MonitorEvent, MonitorState,
                                      MonitorStateError, next_monitor_state, state_of_mode)


def test_listen_whisper_barge_hearing_table() -> None:
    """Listen: nobody hears the supervisor; whisper: only the agent; barge: everyone. The supervisor
    always hears both parties, the parties always hear each other, nobody hears themselves."""
    heard_supervisor = {mode: {who for who, sources in HEARING[mode].items() if "supervisor" in sources}
                        for mode in MODES}
    assert heard_supervisor == {"listen": set(), "whisper": {"agent"}, "barge": {"caller", "agent"}}
    for mode in MODES:
        assert set(HEARING[mode]["supervisor"]) == {"caller", "agent"}
        assert "agent" in HEARING[mode]["caller"] and "caller" in HEARING[mode]["agent"]
        assert all(listener not in sources for listener, sources in HEARING[mode].items())


def test_a_session_rings_joins_switches_and_leaves() -> None:
    """API path: ringing, answered in whisper, switched to barge then listen, left."""
    state = MonitorState.RINGING
    state = next_monitor_state(state, MonitorEvent.ANSWERED, "c1", "whisper")
    assert state is MonitorState.WHISPERING
    state = next_monitor_state(state, MonitorEvent.SWITCH, "c1", "barge")
    assert state is MonitorState.BARGING
    state = next_monitor_state(state, MonitorEvent.SWITCH, "c1", "listen")
    assert state is MonitorState.LISTENING
    assert next_monitor_state(state, MonitorEvent.LEAVE, "c1") is MonitorState.ENDED


@pytest.mark.parametrize("state", [MonitorState.LISTENING, MonitorState.WHISPERING, MonitorState.BARGING])
def test_the_call_ending_ends_every_joined_session(state: MonitorState) -> None:
    assert next_monitor_state(state, MonitorEvent.CALL_ENDED, "c1") is MonitorState.ENDED


def test_moves_the_table_does_not_allow_raise_naming_call_and_state() -> None:
    """A switch before the phone answered, anything after the end, a failure once joined: errors."""
    with pytest.raises(MonitorStateError, match="call=c9.*ringing.*switch"):
        next_monitor_state(MonitorState.RINGING, MonitorEvent.SWITCH, "c9", "barge")
    with pytest.raises(MonitorStateError, match="ended"):
        next_monitor_state(MonitorState.ENDED, MonitorEvent.LEAVE, "c9")
    with pytest.raises(MonitorStateError, match="failed"):
        next_monitor_state(MonitorState.LISTENING, MonitorEvent.FAILED, "c9")
    with pytest.raises(MonitorStateError, match="needs a mode"):
        next_monitor_state(MonitorState.LISTENING, MonitorEvent.SWITCH, "c9")
    with pytest.raises(ValueError, match="mode must be one of"):
        next_monitor_state(MonitorState.LISTENING, MonitorEvent.SWITCH, "c9", "shout")


def test_modes_keys_and_states_agree() -> None:
    """Keys 4/5/6 name the three modes; each mode has a state; only ENDED is final."""
    assert sorted(MODE_DIGITS.values()) == sorted(MODES)
    assert {state_of_mode(mode).value for mode in MODES} == set(MODES)
    assert [state for state, moves in MONITOR_TRANSITIONS.items() if not moves] == [MonitorState.ENDED]
