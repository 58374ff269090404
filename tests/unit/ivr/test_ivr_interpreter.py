"""The IVR interpreter walks one call through a flow: events in, actions out, `now` passed in.

No sockets and no sleeping: time is the number each test passes, and the menu timeout is
fired with `run.handle_timers(run.next_deadline())`.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.ivr.events import (CallerHungUp, DigitReceived, FlowEnded, HangUp, MenuChoiceMade, PlaybackFinished,
                            PlayPrompts, StepEntered, StopPlayback)
from acd.ivr.flow import Flow, HangupStep, MenuStep, PlayStep
from acd.ivr.interpreter import FlowRun


def demo_flow(*, retries: int = 3, on_failure: str | None = "goodbye", timeout: float = 5.0) -> Flow:
    """The shipped demo's shape: welcome, a two-choice menu, then goodbye and a hangup step."""
    steps = [
        PlayStep(name="welcome", prompts=("welcome",), next="main_menu"),
        MenuStep(name="main_menu", prompts=("menu_main",), choices={"1": "sales", "2": "support"},
                 timeout_seconds=timeout, retries=retries, timeout_prompts=("menu_timeout",),
                 invalid_prompts=("menu_invalid",), on_failure=on_failure),
        PlayStep(name="sales", prompts=("sales",), next="goodbye"),
        PlayStep(name="support", prompts=("support", "digits/2"), next=None),
        PlayStep(name="goodbye", prompts=("goodbye",), next="end"),
        HangupStep(name="end"),
    ]
    return Flow(name="main", start="welcome", steps={step.name: step for step in steps})


def last_playback(actions) -> int:
    """The playback id of the last PlayPrompts in `actions` (what the shell reports back)."""
    return [a for a in actions if isinstance(a, PlayPrompts)][-1].playback_id


def finish_playback(run: FlowRun, actions, now: float):
    """Report the last PlayPrompts in `actions` as played."""
    return run.handle(PlaybackFinished(playback_id=last_playback(actions)), now)


def at_menu(**flow_options):
    """A run that has played the welcome and is now playing the menu prompt; returns (run, actions)."""
    run = FlowRun(demo_flow(**flow_options))
    actions = finish_playback(run, run.start(0.0), 1.0)
    assert actions[-1].prompts == ("menu_main",)
    return run, actions


def at_menu_waiting(**flow_options):
    """A run whose menu prompt has ended at t=2; it now waits for a digit until t=2+timeout."""
    run, actions = at_menu(**flow_options)
    assert finish_playback(run, actions, 2.0) == []
    return run


def test_start_enters_the_start_step_and_plays_its_prompts():
    run = FlowRun(demo_flow())
    assert run.start(0.0) == [StepEntered(flow="main", step="welcome"),
                              PlayPrompts(prompts=("welcome",), playback_id=1)]
    assert run.step_name == "welcome"
    assert run.path == ["welcome"]
    assert run.next_deadline() is None
    assert not run.finished


def test_play_step_goes_to_its_next_step_when_playback_finishes():
    run = FlowRun(demo_flow())
    run.start(0.0)
    assert run.handle(PlaybackFinished(playback_id=1), 1.0) == [
        StepEntered(flow="main", step="main_menu"), PlayPrompts(prompts=("menu_main",), playback_id=2)]
    assert run.step_name == "main_menu"


def test_stale_playback_ids_are_ignored():
    """A PlaybackFinished for an earlier (stopped) playback must not move the flow on."""
    run = FlowRun(demo_flow())
    run.start(0.0)
    assert run.handle(PlaybackFinished(playback_id=0), 0.5) == []
    assert run.handle(PlaybackFinished(playback_id=7), 0.5) == []
    assert run.step_name == "welcome"
    run.handle(PlaybackFinished(playback_id=1), 1.0)
    assert run.handle(PlaybackFinished(playback_id=1), 1.5) == []  # the welcome again: stale now
    assert run.step_name == "main_menu"
    assert run.next_deadline() is None


def test_playback_finished_twice_for_the_menu_prompt_starts_one_timeout():
    run, actions = at_menu()
    finish_playback(run, actions, 2.0)
    assert run.handle(PlaybackFinished(playback_id=last_playback(actions)), 3.0) == []
    assert run.next_deadline() == 7.0


def test_digits_during_a_play_step_are_ignored():
    run = FlowRun(demo_flow())
    run.start(0.0)
    assert run.handle(DigitReceived(digit="1"), 0.5) == []
    assert run.step_name == "welcome"


def test_valid_digit_during_the_menu_prompt_barges_in():
    """Barge-in: stop the prompt, record the choice, then the target step's own actions."""
    run, actions = at_menu()
    assert run.handle(DigitReceived(digit="1"), 1.5) == [
        StopPlayback(),
        MenuChoiceMade(step="main_menu", digit="1", next_step="sales"),
        StepEntered(flow="main", step="sales"),
        PlayPrompts(prompts=("sales",), playback_id=3),
    ]
    # The shell reports the stopped menu prompt as finished: it is stale and changes nothing.
    assert run.handle(PlaybackFinished(playback_id=2), 1.6) == []
    assert run.step_name == "sales"
    assert run.next_deadline() is None


def test_valid_digit_after_the_menu_prompt_needs_no_stop():
    run = at_menu_waiting()
    assert run.next_deadline() == 7.0
    assert run.handle(DigitReceived(digit="2"), 3.0) == [
        MenuChoiceMade(step="main_menu", digit="2", next_step="support"),
        StepEntered(flow="main", step="support"),
        PlayPrompts(prompts=("support", "digits/2"), playback_id=3),
    ]
    assert run.next_deadline() is None


def test_invalid_digit_plays_the_invalid_prompt_then_the_menu_again():
    run = at_menu_waiting()
    actions = run.handle(DigitReceived(digit="9"), 3.0)
    assert actions == [PlayPrompts(prompts=("menu_invalid", "menu_main"), playback_id=3)]
    assert run.next_deadline() is None  # no timeout while the prompt replays
    assert run.step_name == "main_menu"
    finish_playback(run, actions, 5.0)
    assert run.next_deadline() == 10.0


def test_invalid_digit_during_the_prompt_stops_it_first():
    run, _ = at_menu()
    assert run.handle(DigitReceived(digit="#"), 1.5) == [
        StopPlayback(), PlayPrompts(prompts=("menu_invalid", "menu_main"), playback_id=3)]


def test_menu_timeout_plays_the_timeout_prompt_then_the_menu_again():
    run = at_menu_waiting()
    deadline = run.next_deadline()
    assert run.handle_timers(deadline - 0.01) == []  # not yet due
    actions = run.handle_timers(deadline)
    assert actions == [PlayPrompts(prompts=("menu_timeout", "menu_main"), playback_id=3)]
    assert run.next_deadline() is None
    assert run.handle_timers(deadline + 100) == []  # fired once only
    finish_playback(run, actions, 10.0)
    assert run.next_deadline() == 15.0


def test_menu_without_feedback_prompts_replays_just_the_menu():
    flow = Flow(name="bare", start="menu", steps={
        "menu": MenuStep(name="menu", prompts=("menu_main",), choices={"1": "bye"}),
        "bye": HangupStep(name="bye")})
    run = FlowRun(flow)
    finish_playback(run, run.start(0.0), 1.0)
    assert run.handle_timers(run.next_deadline()) == [PlayPrompts(prompts=("menu_main",), playback_id=2)]


def test_handle_timers_without_a_deadline_does_nothing():
    run = FlowRun(demo_flow())
    run.start(0.0)
    assert run.handle_timers(1000.0) == []
    assert run.step_name == "welcome"


def fail_menu_once(run: FlowRun, kind: str, now: float):
    """One failed try at a waiting menu: a timeout or an invalid digit."""
    if kind == "timeout":
        return run.handle_timers(run.next_deadline())
    return run.handle(DigitReceived(digit="7"), now)


@pytest.mark.parametrize("kinds", [("timeout", "timeout", "timeout"), ("invalid", "timeout", "invalid"),
                                   ("invalid", "invalid", "invalid")])
def test_menu_goes_to_on_failure_after_its_tries(kinds):
    run = at_menu_waiting(retries=3)
    now = 2.0
    for kind in kinds[:-1]:
        actions = fail_menu_once(run, kind, now)
        assert len(actions) == 1 and isinstance(actions[0], PlayPrompts)
        now += 10
        finish_playback(run, actions, now)
    now += 1
    assert fail_menu_once(run, kinds[-1], now) == [
        StepEntered(flow="main", step="goodbye"), PlayPrompts(prompts=("goodbye",), playback_id=5)]
    assert run.path == ["welcome", "main_menu", "goodbye"]
    assert run.next_deadline() is None


def test_menu_with_one_try_fails_at_the_first_timeout():
    run = at_menu_waiting(retries=1)
    actions = run.handle_timers(run.next_deadline())
    assert actions[0] == StepEntered(flow="main", step="goodbye")


def test_menu_without_on_failure_hangs_up_when_tries_run_out():
    run = at_menu_waiting(retries=2, on_failure=None)
    finish_playback(run, run.handle_timers(run.next_deadline()), 10.0)
    actions = run.handle_timers(run.next_deadline())
    assert [type(a) for a in actions] == [HangUp, FlowEnded]
    assert "main_menu" in actions[0].reason
    assert actions[1] == FlowEnded(outcome="menu-failure at main_menu")
    assert run.finished
    assert run.next_deadline() is None


def test_invalid_digit_during_the_last_prompt_stops_it_then_hangs_up():
    run, _ = at_menu(retries=1, on_failure=None)
    assert [type(a) for a in run.handle(DigitReceived(digit="5"), 1.5)] == [StopPlayback, HangUp, FlowEnded]


def test_tries_start_again_when_the_menu_is_entered_again():
    flow = Flow(name="loop", start="menu", steps={
        "menu": MenuStep(name="menu", prompts=("menu_main",), choices={"1": "again"}, retries=2),
        "again": PlayStep(name="again", prompts=("sales",), next="menu")})
    run = FlowRun(flow)
    finish_playback(run, run.start(0.0), 1.0)
    finish_playback(run, run.handle_timers(run.next_deadline()), 10.0)  # try 1 of 2 failed
    actions = run.handle(DigitReceived(digit="1"), 11.0)
    actions = finish_playback(run, actions, 12.0)  # "again" played, back in the menu
    finish_playback(run, actions, 13.0)
    # A fresh menu visit: one timeout is one try of two again, not the last.
    assert run.handle_timers(run.next_deadline()) == [PlayPrompts(prompts=("menu_main",), playback_id=5)]
    assert run.path == ["menu", "again", "menu"]


def test_hangup_step_hangs_up_and_ends_the_flow():
    run = at_menu_waiting()
    actions = run.handle(DigitReceived(digit="1"), 3.0)
    actions = finish_playback(run, actions, 4.0)   # sales -> goodbye
    actions = finish_playback(run, actions, 5.0)   # goodbye -> end (hangup step)
    assert actions == [StepEntered(flow="main", step="end"), HangUp(reason="hangup step end", completed=True),
                       FlowEnded(outcome="completed")]
    assert run.finished
    assert run.path == ["welcome", "main_menu", "sales", "goodbye", "end"]


def test_hangup_step_as_start_ends_at_once():
    run = FlowRun(Flow(name="closed", start="end", steps={"end": HangupStep(name="end")}))
    assert [type(a) for a in run.start(0.0)] == [StepEntered, HangUp, FlowEnded]
    assert run.finished


def test_next_null_ends_the_call_after_the_prompts():
    run = at_menu_waiting()
    actions = run.handle(DigitReceived(digit="2"), 3.0)
    assert finish_playback(run, actions, 4.0) == [HangUp(reason="flow main ended after support", completed=True),
                                                  FlowEnded(outcome="completed")]
    assert run.finished
    assert run.path == ["welcome", "main_menu", "support"]


def test_caller_hang_up_ends_the_flow_with_no_other_action():
    run, _ = at_menu()
    assert run.handle(CallerHungUp(), 1.5) == [FlowEnded(outcome="caller hung up at main_menu")]
    assert run.finished
    assert run.next_deadline() is None


def test_caller_hang_up_while_waiting_cancels_the_menu_timeout():
    run = at_menu_waiting()
    run.handle(CallerHungUp(), 3.0)
    assert run.next_deadline() is None
    assert run.handle_timers(1000.0) == []


@pytest.mark.parametrize("event", [PlaybackFinished(playback_id=2), PlaybackFinished(playback_id=3),
                                   DigitReceived(digit="1"), CallerHungUp()])
def test_events_after_the_flow_ended_are_ignored(event):
    run, _ = at_menu()
    run.handle(CallerHungUp(), 1.5)
    assert run.handle(event, 2.0) == []
    assert run.handle_timers(1000.0) == []
    assert run.path == ["welcome", "main_menu"]


def test_start_after_the_caller_hung_up_does_not_enter_the_flow():
    """A caller gone before the shell started the flow must not get a second FlowEnded."""
    run = FlowRun(demo_flow())
    run.handle(CallerHungUp(), 0.0)
    assert run.start(1.0) == []
    assert run.path == []


def test_start_twice_does_not_enter_the_flow_again():
    run = FlowRun(demo_flow())
    run.start(0.0)
    assert run.start(1.0) == []
    assert run.path == ["welcome"]


def test_path_records_each_step_entered_in_order():
    run = at_menu_waiting()
    actions = run.handle_timers(run.next_deadline())
    finish_playback(run, actions, 10.0)
    actions = run.handle(DigitReceived(digit="1"), 11.0)
    actions = finish_playback(run, actions, 12.0)
    assert run.path == ["welcome", "main_menu", "sales", "goodbye"]


def test_dtmf_digit_event_refuses_a_non_digit():
    with pytest.raises(ValueError, match="not a DTMF digit"):
        DigitReceived(digit="x")


def test_unknown_event_type_is_a_bug_and_raises():
    run = FlowRun(demo_flow())
    run.start(0.0)
    with pytest.raises(TypeError, match="unknown IVR event"):
        run.handle(object(), 0.0)


# ---- property: any event sequence ---------------------------------------------------------------

events = st.one_of(
    st.builds(lambda i: ("playback", i), st.integers(min_value=-1, max_value=12)),
    st.just(("playback-current", None)),
    st.builds(lambda d: ("digit", d), st.sampled_from(sorted("0123456789*#ABCD"))),
    st.just(("timers", None)),
    st.just(("late", None)),
    st.just(("hangup", None)),
    st.just(("start", None)),
)


@settings(max_examples=300, deadline=None)
@given(script=st.lists(events, max_size=40), retries=st.integers(min_value=1, max_value=3),
       on_failure=st.sampled_from(["goodbye", None, "main_menu"]))
def test_any_event_sequence_never_raises_and_ends_exactly_once(script, retries, on_failure):
    run = FlowRun(demo_flow(retries=retries, on_failure=on_failure))
    now = 0.0
    emitted = run.start(now)
    for kind, value in script:
        now += 0.5
        if kind == "playback":
            actions = run.handle(PlaybackFinished(playback_id=value), now)
        elif kind == "playback-current":
            played = [a.playback_id for a in emitted if isinstance(a, PlayPrompts)]
            actions = run.handle(PlaybackFinished(playback_id=played[-1] if played else 0), now)
        elif kind == "digit":
            actions = run.handle(DigitReceived(digit=value), now)
        elif kind == "timers":
            deadline = run.next_deadline()
            now = max(now, deadline) if deadline is not None else now
            actions = run.handle_timers(now)
        elif kind == "late":
            actions = run.handle_timers(now + 1000.0)
        elif kind == "start":
            actions = run.start(now)
        else:
            actions = run.handle(CallerHungUp(), now)
        if run.finished:
            assert run.next_deadline() is None
        emitted += actions
    emitted += run.handle(CallerHungUp(), now + 1)  # the call always ends somehow
    ended = [a for a in emitted if isinstance(a, FlowEnded)]
    assert len(ended) == 1
    assert emitted[-1] == ended[0]  # nothing after the end
    assert run.finished
    assert len([a for a in emitted if isinstance(a, HangUp)]) <= 1
    assert all(name in run.flow.steps for name in run.path)
