"""An ended call leaves no reference cycle: its session and IVR runner are freed by reference counting
the moment the call is over, not by a later garbage-collector pass (whose walks over thousands of
such calls stopped the reactor for 0.4-0.8 s at 700 calls/s, issue 16)."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture
def no_collector():
    """The cyclic garbage collector is off for the test: only reference counting frees objects."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_call_the_caller_hangs_up_is_freed_without_the_collector(harness, no_collector):
    caller, call = harness.answered_call("1000")
    harness.advance(0.5)
    call.rfc4733_digit("1")  # barge-in: the menu takes it, the sales prompt plays
    harness.advance(0.5)
    freed = harness.call_objects(call.call_id)
    call.bye()
    harness.advance(0.1)
    assert [ref() for ref in freed] == [None, None]


def test_a_call_the_flow_hangs_up_is_freed_without_the_collector(harness, no_collector):
    """The caller presses nothing: the menu times out three times, the flow says goodbye and sends BYE."""
    caller, call = harness.answered_call("1000")
    freed = harness.call_objects(call.call_id)
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=90)
    call.respond(bye, 200)
    harness.advance(0.1)
    assert [ref() for ref in freed] == [None, None]
