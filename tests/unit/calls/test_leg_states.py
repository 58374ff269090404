"""The caller and agent leg lifecycles: the tables allow exactly the RFC 3261 moves, and end reasons
carry their metric label and their (stable) log text."""

import pytest

from acd.calls.leg_states import (AGENT_LEG_TRANSITIONS, CALLER_TRANSITIONS, AgentLegEvent, AgentLegState,
                                  CallerEvent, CallState, EndReason, LegStateError, next_agent_leg_state,
                                  next_caller_state)


def test_a_caller_leg_is_answered_confirmed_hung_up_and_ended():
    state = CallState.RINGING
    for event, expected in ((CallerEvent.ANSWER, CallState.ANSWERED), (CallerEvent.ACK, CallState.CONFIRMED),
                            (CallerEvent.HANG_UP, CallState.ENDING), (CallerEvent.END, CallState.ENDED)):
        state = next_caller_state(state, event)
        assert state is expected


def test_a_retransmitted_ack_keeps_the_caller_leg_confirmed():
    assert next_caller_state(CallState.CONFIRMED, CallerEvent.ACK) is CallState.CONFIRMED


def test_a_caller_leg_closing_at_shutdown_hears_a_goodbye_then_gets_our_bye():
    """Server shutdown: an answered call moves to CLOSING (last prompt, no flow), then ENDING with our BYE."""
    for answered in (CallState.ANSWERED, CallState.CONFIRMED):
        state = next_caller_state(answered, CallerEvent.CLOSE)
        assert state is CallState.CLOSING
        assert next_caller_state(state, CallerEvent.ACK) is CallState.CLOSING
        assert next_caller_state(state, CallerEvent.HANG_UP) is CallState.ENDING


def test_every_caller_state_but_ended_can_end():
    for state in CallState:
        if state is not CallState.ENDED:
            assert next_caller_state(state, CallerEvent.END) is CallState.ENDED


@pytest.mark.parametrize("state,event", [(CallState.RINGING, CallerEvent.HANG_UP), (CallState.RINGING, CallerEvent.ACK),
                                         (CallState.ENDED, CallerEvent.END), (CallState.ENDING, CallerEvent.ANSWER),
                                         (CallState.RINGING, CallerEvent.CLOSE), (CallState.CLOSING, CallerEvent.CLOSE)])
def test_a_move_the_caller_table_lacks_is_a_bug_named_in_the_error(state, event):
    with pytest.raises(LegStateError, match=f"call=c1 caller leg in state {state.value} cannot take {event.value}"):
        next_caller_state(state, event, "c1")


def test_an_agent_leg_rings_is_answered_and_hung_up():
    state = AgentLegState.CALLING
    for event, expected in ((AgentLegEvent.PROVISIONAL, AgentLegState.RINGING),
                            (AgentLegEvent.ANSWERED, AgentLegState.ANSWERED),
                            (AgentLegEvent.HANG_UP, AgentLegState.ENDING), (AgentLegEvent.END, AgentLegState.ENDED)):
        state = next_agent_leg_state(state, event)
        assert state is expected


def test_a_cancel_crossing_the_200_still_lets_the_agent_leg_be_answered_then_hung_up():
    """RFC 3261 §9.1: the 200 may arrive after our CANCEL; the call is up and must be ended with BYE."""
    state = next_agent_leg_state(AgentLegState.RINGING, AgentLegEvent.CANCEL)
    assert state is AgentLegState.CANCELLING
    state = next_agent_leg_state(state, AgentLegEvent.ANSWERED)
    assert next_agent_leg_state(state, AgentLegEvent.HANG_UP) is AgentLegState.ENDING


def test_an_answered_agent_leg_cannot_be_cancelled():
    with pytest.raises(LegStateError, match="agent leg in state answered cannot take cancel"):
        next_agent_leg_state(AgentLegState.ANSWERED, AgentLegEvent.CANCEL, "c1")


def test_the_tables_name_every_state():
    assert set(CALLER_TRANSITIONS) == set(CallState)
    assert set(AGENT_LEG_TRANSITIONS) == set(AgentLegState)
    assert CALLER_TRANSITIONS[CallState.ENDED] == {} and AGENT_LEG_TRANSITIONS[AgentLegState.ENDED] == {}


def test_end_reasons_keep_the_texts_logs_and_records_are_matched_on():
    assert EndReason.CALLER_HUNG_UP.describe() == "caller hung up"
    assert EndReason.CALLER_CANCELLED.describe() == "caller cancelled before answer"
    assert EndReason.TRANSFERRED.describe("2000") == "transferred to 2000"
    assert EndReason.TRANSFER_FAILED.describe("2000 failed (404)") == "transfer to 2000 failed (404)"
    assert EndReason.FLOW_COMPLETED.describe("hangup step end") == "hangup step end"
    assert EndReason.QUEUE_FAILED.describe("maximum wait reached") == "queue failed after transfer: maximum wait reached"
    assert EndReason.SERVER_SHUTDOWN.describe() == "server shutdown"


def test_end_reasons_carry_their_metric_label():
    assert {reason.result for reason in EndReason} <= {"completed", "caller_hangup", "agent_hangup", "cancelled",
                                                        "transferred", "callback", "failed", "shutdown",
                                                        "supervisor_hangup"}
    assert EndReason.FLOW_FAILED.result == "failed" and EndReason.FLOW_COMPLETED.result == "completed"
    assert EndReason.CALLBACK_REQUESTED.result == "callback"
    assert EndReason.SERVER_SHUTDOWN.result == "shutdown"
