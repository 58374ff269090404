"""Every IVR step kind, driven through the pure interpreter: events in, actions out.

Time is the number each test passes (timeouts fire with `run.handle_timers(t)`); the shell is played by
the test, answering PlayPrompts, StartListening, LookUp, EnqueueCall and StartRecording with the
matching events and ids.
"""

import pytest

from acd.ivr.conditions import Compare, IsOpen
from acd.ivr.context import MASK, CallContext
from acd.ivr.events import (CallerHungUp, DigitReceived, DigitsCollected, EnqueueCall, FlowEnded, FlowEvent, HangUp,
                            LookUp, LookupFinished, MenuChoiceMade, PlaybackFinished, PlayPrompts, QueueFinished,
                            RecordingFinished, SpeechChoiceMade, SpeechNotRecognized, SpeechRecognized,
                            StartListening, StartRecording, StepEntered, StopListening, StopPlayback, StopRecording,
                            TransferCall)
from acd.ivr.flow import (BranchStep, CollectStep, Flow, GotoFlowStep, HangupStep, LookupStep, MenuStep, PlayStep,
                          QueueStep, RecordStep, SayDigits, SayNumber, SetStep, SpeechMenuStep, TransferStep)
from acd.ivr.hours import BusinessHours
from acd.ivr.interpreter import MAX_STEPS_WITHOUT_INPUT, SPEECH_RESULT_GRACE_SECONDS, FlowRun
from acd.ivr.spoken import digit_prompts, number_prompts

END = HangupStep(name="end")


def flow_of(*steps, name: str = "main") -> Flow:
    """A flow starting at the first step given (plus the shared `end` hangup step)."""
    table = {step.name: step for step in steps}
    table.setdefault("end", END)
    return Flow(name=name, start=steps[0].name, steps=table)


def playback(actions) -> PlayPrompts:
    """The last PlayPrompts among `actions`."""
    return [a for a in actions if isinstance(a, PlayPrompts)][-1]


def finish(run: FlowRun, actions, now: float):
    """Report the last PlayPrompts in `actions` as played."""
    return run.handle(PlaybackFinished(playback_id=playback(actions).playback_id), now)


def press(run: FlowRun, keys: str, now: float):
    """Press each key at `now`; the actions of all of them."""
    actions = []
    for key in keys:
        actions += run.handle(DigitReceived(digit=key), now)
    return actions


def of_type(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


# ---- play: barge-in and type-ahead ---------------------------------------------------------------

def menu_after_intro(*, intro_barge_in: bool, menu_barge_in: bool = True) -> Flow:
    return flow_of(
        PlayStep(name="intro", prompts=("welcome",), next="menu", barge_in=intro_barge_in),
        MenuStep(name="menu", prompts=("menu_main",), choices={"1": "sales"}, barge_in=menu_barge_in,
                 on_failure="end"),
        PlayStep(name="sales", prompts=("sales",), next="end"),
    )


def test_play_without_barge_in_ignores_digits_until_it_ends():
    run = FlowRun(menu_after_intro(intro_barge_in=False))
    run.start(0.0)
    assert press(run, "1", 0.5) == []
    assert run.step_name == "intro"


def test_play_with_barge_in_stops_the_prompt_and_the_digit_answers_the_next_menu():
    """Type-ahead: the digit that cut the welcome short is the menu choice too."""
    run = FlowRun(menu_after_intro(intro_barge_in=True))
    run.start(0.0)
    assert press(run, "1", 0.5) == [
        StopPlayback(),
        StepEntered(flow="main", step="menu"), PlayPrompts(prompts=("menu_main",), playback_id=2),
        StopPlayback(),
        MenuChoiceMade(step="menu", digit="1", next_step="sales"),
        StepEntered(flow="main", step="sales"), PlayPrompts(prompts=("sales",), playback_id=3),
    ]
    assert run.path == ["intro", "menu", "sales"]
    # Both stopped playbacks are reported finished later: stale, nothing moves.
    assert run.handle(PlaybackFinished(playback_id=1), 0.6) == []
    assert run.handle(PlaybackFinished(playback_id=2), 0.6) == []
    assert run.step_name == "sales"


def test_type_ahead_reaches_a_menu_behind_set_and_branch_steps():
    flow = flow_of(
        PlayStep(name="intro", prompts=("welcome",), next="mark", barge_in=True),
        SetStep(name="mark", values={"seen": "yes"}, next="route"),
        BranchStep(name="route", cases=((Compare("seen", "equals", "yes"), "menu"),), otherwise="end"),
        MenuStep(name="menu", prompts=("menu_main",), choices={"2": "end"}),
    )
    run = FlowRun(flow)
    run.start(0.0)
    actions = press(run, "2", 0.5)
    assert MenuChoiceMade(step="menu", digit="2", next_step="end") in actions
    assert run.finished


def test_type_ahead_into_a_menu_without_barge_in_is_dropped():
    """The digit stops the barge-in prompt, but a menu that refuses barge-in does not take it."""
    run = FlowRun(menu_after_intro(intro_barge_in=True, menu_barge_in=False))
    run.start(0.0)
    actions = press(run, "1", 0.5)
    assert actions == [StopPlayback(), StepEntered(flow="main", step="menu"),
                       PlayPrompts(prompts=("menu_main",), playback_id=2)]
    assert run.step_name == "menu"
    assert run.next_deadline() is None  # still prompting


def test_type_ahead_into_a_menu_whose_prompt_is_empty_is_not_lost():
    """A menu whose only prompt is a spoken value that renders empty waits at once; the digit counts."""
    flow = flow_of(
        PlayStep(name="intro", prompts=("welcome",), next="menu", barge_in=True),
        MenuStep(name="menu", prompts=(SayDigits("{nothing}"),), choices={"1": "sales"}),
        PlayStep(name="sales", prompts=("sales",), next="end"),
    )
    run = FlowRun(flow)
    run.start(0.0)
    actions = press(run, "1", 0.5)
    assert MenuChoiceMade(step="menu", digit="1", next_step="sales") in actions
    assert run.step_name == "sales"


def test_type_ahead_fills_the_first_digit_of_a_collect_step():
    flow = flow_of(
        PlayStep(name="intro", prompts=("welcome",), next="account", barge_in=True),
        CollectStep(name="account", prompts=("enter_account",), into="account", next="end"),
    )
    run = FlowRun(flow)
    run.start(0.0)
    actions = press(run, "4", 0.5)
    assert actions == [StopPlayback(), StepEntered(flow="main", step="account"),
                       PlayPrompts(prompts=("enter_account",), playback_id=2), StopPlayback()]
    assert run.next_deadline() == 0.5 + 3.0  # the inter-digit timeout runs from the barging digit
    actions = press(run, "2#", 1.0)
    assert actions[0] == DigitsCollected(step="account", variable="account", value="42", length=2, masked=False)
    assert run.context.get("account") == "42"


# ---- menu ---------------------------------------------------------------------------------------

def test_menu_without_barge_in_ignores_digits_during_its_prompt_and_takes_them_after():
    run = FlowRun(menu_after_intro(intro_barge_in=False, menu_barge_in=False))
    actions = finish(run, run.start(0.0), 1.0)
    assert press(run, "1", 1.5) == []
    assert run.step_name == "menu"
    assert finish(run, actions, 2.0) == []
    assert run.next_deadline() == 2.0 + 5.0
    assert press(run, "1", 3.0)[0] == MenuChoiceMade(step="menu", digit="1", next_step="sales")


# ---- collect ------------------------------------------------------------------------------------

def collect_flow(**options) -> Flow:
    settings = dict(name="account", prompts=("enter_account",), into="account", next="thanks", on_failure="sorry",
                    timeout_prompts=("menu_timeout",), invalid_prompts=("menu_invalid",))
    settings.update(options)
    return flow_of(CollectStep(**settings), PlayStep(name="thanks", prompts=("thank_you",), next="end"),
                   PlayStep(name="sorry", prompts=("goodbye",), next="end"))


def collecting(**options) -> FlowRun:
    """A collect step whose prompt ended at t=1: it waits for the first digit until t=1+timeout."""
    run = FlowRun(collect_flow(**options))
    assert finish(run, run.start(0.0), 1.0) == []
    return run


def test_collect_ends_at_the_terminator_which_is_not_stored():
    run = collecting()
    assert press(run, "123", 2.0) == []
    assert press(run, "#", 2.5) == [
        DigitsCollected(step="account", variable="account", value="123", length=3, masked=False),
        StepEntered(flow="main", step="thanks"), PlayPrompts(prompts=("thank_you",), playback_id=2),
    ]
    assert run.context.get("account") == "123"
    assert run.next_deadline() is None


def test_collect_with_star_terminator_stores_hash_as_a_digit():
    run = collecting(terminator="*")
    actions = press(run, "1#2*", 2.0)
    assert actions[0] == DigitsCollected(step="account", variable="account", value="1#2", length=3, masked=False)


def test_collect_ends_by_itself_at_max_length():
    run = collecting(max_length=4)
    assert press(run, "987", 2.0) == []
    actions = press(run, "6", 2.5)
    assert actions[0] == DigitsCollected(step="account", variable="account", value="9876", length=4, masked=False)
    assert run.step_name == "thanks"


def test_inter_digit_timeout_ends_the_input():
    run = collecting(inter_digit_timeout_seconds=2.0)
    press(run, "1", 2.0)
    press(run, "2", 3.0)
    assert run.next_deadline() == 5.0  # re-armed by each digit
    assert run.handle_timers(4.9) == []
    actions = run.handle_timers(5.0)
    assert actions[0] == DigitsCollected(step="account", variable="account", value="12", length=2, masked=False)


def test_first_digit_timeout_plays_the_timeout_prompt_then_the_prompt_again():
    run = collecting(timeout_seconds=4.0)
    assert run.next_deadline() == 5.0
    assert run.handle_timers(4.0) == []  # not due yet
    actions = run.handle_timers(5.0)
    assert actions == [PlayPrompts(prompts=("menu_timeout", "enter_account"), playback_id=2)]
    assert run.next_deadline() is None  # the timeout restarts when the prompt has played
    finish(run, actions, 7.0)
    assert run.next_deadline() == 11.0


@pytest.mark.parametrize("options, keys", [
    ({"min_length": 4}, "123#"),
    ({"pattern": "[0-9]{4}"}, "12*4#"),
    ({}, "#"),
], ids=["shorter-than-min_length", "pattern-mismatch", "nothing-before-terminator"])
def test_invalid_input_plays_the_invalid_prompt_and_asks_again(options, keys):
    run = collecting(**options)
    actions = press(run, keys, 2.0)
    assert actions == [PlayPrompts(prompts=("menu_invalid", "enter_account"), playback_id=2)]
    assert run.context.get("account") is None
    assert run.step_name == "account"


def test_digits_of_an_invalid_try_are_not_carried_into_the_next_one():
    run = collecting(min_length=3)
    actions = press(run, "12#", 2.0)
    finish(run, actions, 3.0)
    assert press(run, "345#", 4.0)[0].value == "345"


def test_retries_exhausted_go_to_on_failure():
    run = collecting(retries=2, min_length=4)
    actions = press(run, "1#", 2.0)
    finish(run, actions, 3.0)
    assert run.handle_timers(run.next_deadline()) == [
        StepEntered(flow="main", step="sorry"), PlayPrompts(prompts=("goodbye",), playback_id=3)]


def test_retries_exhausted_without_on_failure_hang_up():
    run = collecting(retries=1, on_failure=None)
    actions = run.handle_timers(run.next_deadline())
    assert actions == [HangUp(reason="menu account: no valid choice after 1 tries (timeout)"),
                       FlowEnded(outcome="menu-failure at account")]
    assert run.finished


def test_collect_with_barge_in_takes_digits_during_its_prompt():
    run = FlowRun(collect_flow(max_length=2))
    run.start(0.0)
    actions = press(run, "55", 0.5)
    assert actions[:2] == [StopPlayback(),
                           DigitsCollected(step="account", variable="account", value="55", length=2, masked=False)]


def test_collect_without_barge_in_ignores_digits_during_its_prompt():
    run = FlowRun(collect_flow(barge_in=False))
    run.start(0.0)
    assert press(run, "55#", 0.5) == []


def masked_pin_flow() -> Flow:
    return flow_of(
        PlayStep(name="intro", prompts=("billing",), next="pin"),
        CollectStep(name="pin", prompts=("enter_pin",), into="pin", min_length=4, max_length=4, mask=True,
                    invalid_prompts=("menu_invalid",), next="queue"),
        QueueStep(name="queue", queue="billing", priority=2, skills={"billing": 3}),
    )


def test_masked_collect_reports_only_the_length_and_hides_the_value():
    run = FlowRun(masked_pin_flow(), context=CallContext({"caller_id": "+4420"}))
    actions = finish(run, run.start(0.0), 1.0)
    finish(run, actions, 2.0)
    actions = press(run, "1234", 3.0)
    assert actions[0] == DigitsCollected(step="pin", variable="pin", value=None, length=4, masked=True)
    assert run.context.get("pin") == "1234"  # the flow itself can use it
    assert run.context.safe_view() == {"caller_id": "+4420", "pin": MASK}
    assert "1234" not in repr(actions)


def test_collecting_masked_is_true_only_while_the_masked_digits_are_collected():
    run = FlowRun(masked_pin_flow())
    actions = run.start(0.0)
    assert not run.collecting_masked  # the intro plays
    actions = finish(run, actions, 1.0)
    assert run.collecting_masked  # the PIN prompt (barge-in digits are PIN digits)
    finish(run, actions, 2.0)
    assert run.collecting_masked  # waiting for digits
    actions = press(run, "12#", 3.0)  # too short: invalid, asked again
    assert run.collecting_masked
    finish(run, actions, 4.0)
    press(run, "9876", 5.0)
    assert run.step_name == "queue"
    assert not run.collecting_masked


def test_caller_hanging_up_while_collecting_masked_ends_the_masked_window():
    run = FlowRun(masked_pin_flow())
    finish(run, run.start(0.0), 1.0)
    assert run.handle(CallerHungUp(), 1.5) == [FlowEnded(outcome="caller hung up at pin")]
    assert not run.collecting_masked


# ---- speech_menu --------------------------------------------------------------------------------

def speech_flow(**options) -> Flow:
    settings = dict(name="reason", prompts=("say_reason",),
                    phrases={"billing": "billing", "technical support": "support"},
                    choices={"1": "billing"}, min_confidence=0.6, timeout_seconds=5.0, max_utterance_seconds=4.0,
                    retries=3, no_input_prompts=("speech_no_input",), no_match_prompts=("speech_no_match",),
                    on_failure="agent")
    settings.update(options)
    return flow_of(SpeechMenuStep(**settings), PlayStep(name="billing", prompts=("billing",), next="end"),
                   PlayStep(name="support", prompts=("support",), next="end"),
                   PlayStep(name="agent", prompts=("all_busy",), next="end"))


def listening(**options) -> tuple[FlowRun, StartListening]:
    """A speech menu whose prompt ended at t=1: it listens now."""
    run = FlowRun(speech_flow(**options))
    actions = finish(run, run.start(0.0), 1.0)
    assert len(actions) == 1 and isinstance(actions[0], StartListening)
    return run, actions[0]


def test_speech_menu_listens_for_its_phrases_when_the_prompt_ends():
    run, listen = listening()
    assert listen == StartListening(listen_id=2, phrases=("billing", "technical support"), timeout_seconds=5.0,
                                    max_utterance_seconds=4.0, min_confidence=0.6)
    assert run.next_deadline() == 1.0 + 5.0 + 4.0 + SPEECH_RESULT_GRACE_SECONDS


@pytest.mark.parametrize("confidence", [0.6, 0.95])
def test_recognised_phrase_at_or_above_min_confidence_is_the_choice(confidence):
    run, listen = listening()
    actions = run.handle(SpeechRecognized(listen_id=listen.listen_id, phrase="technical support",
                                          confidence=confidence), 3.0)
    assert actions == [SpeechChoiceMade(step="reason", phrase="technical support", confidence=confidence,
                                        next_step="support"),
                       StepEntered(flow="main", step="support"), PlayPrompts(prompts=("support",), playback_id=3)]
    assert run.next_deadline() is None


@pytest.mark.parametrize("phrase, confidence", [("billing", 0.59), ("cancel my order", 0.99)],
                         ids=["below-min_confidence", "phrase-not-in-the-menu"])
def test_unusable_recognition_is_a_no_match(phrase, confidence):
    run, listen = listening()
    actions = run.handle(SpeechRecognized(listen_id=listen.listen_id, phrase=phrase, confidence=confidence), 3.0)
    assert actions == [PlayPrompts(prompts=("speech_no_match", "say_reason"), playback_id=3)]
    assert run.next_deadline() is None


@pytest.mark.parametrize("reason, prompt", [("no-input", "speech_no_input"), ("no-match", "speech_no_match")])
def test_not_recognised_plays_its_own_prompt_then_the_menu_again(reason, prompt):
    run, listen = listening()
    actions = run.handle(SpeechNotRecognized(listen_id=listen.listen_id, reason=reason), 6.0)
    assert actions == [PlayPrompts(prompts=(prompt, "say_reason"), playback_id=3)]
    assert finish(run, actions, 8.0)[0].listen_id == 4


def test_speech_retries_exhausted_go_to_on_failure():
    run, listen = listening(retries=2)
    actions = run.handle(SpeechNotRecognized(listen_id=listen.listen_id, reason="no-input"), 6.0)
    listen = finish(run, actions, 8.0)[0]
    assert run.handle(SpeechNotRecognized(listen_id=listen.listen_id, reason="no-match"), 9.0) == [
        StepEntered(flow="main", step="agent"), PlayPrompts(prompts=("all_busy",), playback_id=5)]


def test_dtmf_choice_while_listening_stops_listening():
    run, _ = listening()
    assert press(run, "1", 2.0) == [StopListening(), MenuChoiceMade(step="reason", digit="1", next_step="billing"),
                                    StepEntered(flow="main", step="billing"),
                                    PlayPrompts(prompts=("billing",), playback_id=3)]


def test_dtmf_key_not_in_the_speech_menu_is_a_no_match_try():
    run, _ = listening()
    assert press(run, "9", 2.0) == [StopListening(), PlayPrompts(prompts=("speech_no_match", "say_reason"),
                                                                 playback_id=3)]


def test_dtmf_choice_during_the_speech_prompt_barges_in():
    run = FlowRun(speech_flow())
    run.start(0.0)
    assert press(run, "1", 0.5)[:2] == [StopPlayback(), MenuChoiceMade(step="reason", digit="1", next_step="billing")]


def test_stale_listen_ids_are_ignored():
    run, listen = listening()
    assert run.handle(SpeechRecognized(listen_id=listen.listen_id + 1, phrase="billing", confidence=0.9), 2.0) == []
    actions = run.handle(SpeechNotRecognized(listen_id=listen.listen_id, reason="no-input"), 6.0)
    # The first listen's late answer arrives while the retry prompt plays, then while listening again.
    assert run.handle(SpeechRecognized(listen_id=listen.listen_id, phrase="billing", confidence=0.9), 6.5) == []
    finish(run, actions, 8.0)
    assert run.handle(SpeechRecognized(listen_id=listen.listen_id, phrase="billing", confidence=0.9), 8.5) == []
    assert run.step_name == "reason"


def test_no_answer_from_the_recogniser_by_the_safety_deadline_counts_as_no_input():
    run, listen = listening()
    deadline = run.next_deadline()
    assert run.handle_timers(deadline - 0.1) == []
    actions = run.handle_timers(deadline)
    assert actions == [StopListening(), PlayPrompts(prompts=("speech_no_input", "say_reason"), playback_id=3)]
    # The recogniser answers after all: too late.
    assert run.handle(SpeechRecognized(listen_id=listen.listen_id, phrase="billing", confidence=0.9), deadline) == []


# ---- set, branch ---------------------------------------------------------------------------------

def test_set_renders_templates_from_the_context():
    flow = flow_of(SetStep(name="prepare", values={"greeting": "Hello {caller_id}", "tier": "VIP",
                                                   "level": "{customer.tier}", "missing": "[{nope}]"}, next="end"))
    run = FlowRun(flow, context=CallContext({"caller_id": "+4420", "customer": {"tier": "gold"}}))
    run.start(0.0)
    assert run.context.values == {"caller_id": "+4420", "customer": {"tier": "gold"}, "greeting": "Hello +4420",
                                  "tier": "VIP", "level": "gold", "missing": "[]"}


def test_a_value_set_from_a_masked_variable_stays_masked():
    """Copying a PIN into another variable must not put it in front of the agent."""
    flow = flow_of(SetStep(name="copy", values={"secret": "{pin}", "note": "pin was {pin}"}, next="queue"),
                   QueueStep(name="queue", queue="billing"))
    context = CallContext()
    context.set("pin", "1234", masked=True)
    run = FlowRun(flow, context=context)
    enqueue = of_type(run.start(0.0), EnqueueCall)[0]
    assert enqueue.context == {"pin": MASK, "secret": MASK, "note": MASK}
    assert run.context.get("secret") == "1234"


def test_branch_goes_to_the_first_case_that_holds_else_otherwise():
    flow = flow_of(
        BranchStep(name="route", cases=((Compare("tier", "equals", "gold"), "gold"),
                                        (Compare("tier", "in", ["gold", "silver"]), "silver")),
                   otherwise="standard"),
        PlayStep(name="gold", prompts=("sales",), next="end"),
        PlayStep(name="silver", prompts=("support",), next="end"),
        PlayStep(name="standard", prompts=("goodbye",), next="end"))
    for tier, expected in (("gold", "gold"), ("silver", "silver"), ("bronze", "standard"), (None, "standard")):
        run = FlowRun(flow, context=CallContext({} if tier is None else {"tier": tier}))
        run.start(0.0)
        assert run.path == ["route", expected], tier


def test_branch_on_business_hours_uses_the_time_passed_in():
    london = BusinessHours(name="office", timezone="Europe/London", weekly={0: ((8 * 60, 18 * 60),)})
    flow = flow_of(BranchStep(name="hours", cases=((IsOpen("office"), "open"),), otherwise="closed"),
                   PlayStep(name="open", prompts=("menu_main",), next="end"),
                   PlayStep(name="closed", prompts=("closed",), next="end"))
    monday_0800_bst = 1780297200.0  # 2026-06-01 07:00 UTC
    for now, expected in ((monday_0800_bst, "open"), (monday_0800_bst - 1, "closed")):
        run = FlowRun(flow, calendars={"office": london})
        run.start(now)
        assert run.path[-1] == expected, now
    run = FlowRun(flow)  # no such calendar: closed
    run.start(monday_0800_bst)
    assert run.path[-1] == "closed"


def test_set_and_branch_loop_at_run_time_hangs_up_after_the_step_bound():
    flow = flow_of(SetStep(name="spin", values={"n": "x"}, next="check"),
                   BranchStep(name="check", cases=((Compare("n", "exists", True), "spin"),), otherwise="end"))
    run = FlowRun(flow)
    actions = run.start(0.0)
    assert len(of_type(actions, StepEntered)) == MAX_STEPS_WITHOUT_INPUT
    assert actions[-2:] == [HangUp(reason=f"flow main looped {MAX_STEPS_WITHOUT_INPUT} steps without input"),
                            FlowEnded(outcome="loop-without-input at check")]
    assert run.finished


def test_set_step_that_goes_to_itself_stops_after_the_step_bound():
    run = FlowRun(flow_of(SetStep(name="spin", values={}, next="spin")))
    actions = run.start(0.0)
    assert actions[-1] == FlowEnded(outcome="loop-without-input at spin")


def test_loop_through_a_play_step_with_nothing_to_say_stops_too():
    """A play step whose only prompt renders empty takes no time either: it must not recurse forever."""
    flow = flow_of(SetStep(name="spin", values={}, next="say"),
                   PlayStep(name="say", prompts=(SayNumber("{missing}"),), next="spin"))
    run = FlowRun(flow)
    actions = run.start(0.0)
    assert actions[-1] == FlowEnded(outcome="loop-without-input at say")
    assert len(of_type(actions, StepEntered)) == MAX_STEPS_WITHOUT_INPUT


# ---- lookup --------------------------------------------------------------------------------------

def lookup_flow() -> Flow:
    return flow_of(LookupStep(name="find", source="orders", key="{order}", into="record", found="found",
                              not_found="missing"),
                   PlayStep(name="found", prompts=("order_shipped",), next="end"),
                   PlayStep(name="missing", prompts=("order_unknown",), next="end"))


def test_lookup_found_stores_the_record_and_goes_to_found():
    run = FlowRun(lookup_flow(), context=CallContext({"order": "12345"}))
    actions = run.start(0.0)
    assert actions[-1] == LookUp(lookup_id=1, source="orders", key="12345", masked=False)
    assert run.handle(LookupFinished(lookup_id=1, record={"status": "shipped"}), 0.1)[0] == StepEntered(
        flow="main", step="found")
    assert run.context.get("record.status") == "shipped"


@pytest.mark.parametrize("error", [None, "source down"])
def test_lookup_not_found_goes_to_not_found(error):
    run = FlowRun(lookup_flow(), context=CallContext({"order": "999"}))
    run.start(0.0)
    assert run.handle(LookupFinished(lookup_id=1, record=None, error=error), 0.1)[0] == StepEntered(
        flow="main", step="missing")
    assert run.context.get("record") is None


def test_lookup_with_a_masked_key_is_flagged_and_stale_answers_are_ignored():
    context = CallContext()
    context.set("order", "4242", masked=True)
    run = FlowRun(lookup_flow(), context=context)
    assert run.start(0.0)[-1] == LookUp(lookup_id=1, source="orders", key="4242", masked=True)
    assert run.handle(LookupFinished(lookup_id=7, record={}), 0.1) == []
    assert run.step_name == "find"


# ---- goto_flow, queue, transfer, hangup ----------------------------------------------------------

def test_goto_flow_continues_in_the_other_flow_with_the_same_context():
    main = flow_of(SetStep(name="mark", values={"from": "main"}, next="to_billing"),
                   GotoFlowStep(name="to_billing", flow="billing"))
    billing = flow_of(PlayStep(name="intro", prompts=("billing",), next="ask"),
                      MenuStep(name="ask", prompts=("menu_main",), choices={"1": "end"}), name="billing")
    run = FlowRun(main, flows={"main": main, "billing": billing})
    actions = run.start(0.0)
    assert actions[-2:] == [StepEntered(flow="billing", step="intro"),
                            PlayPrompts(prompts=("billing",), playback_id=1)]
    finish(run, actions, 1.0)
    assert run.path == ["mark", "to_billing", "billing:intro", "billing:ask"]
    assert run.flow.name == "billing"
    assert run.context.get("from") == "main"
    assert press(run, "1", 2.0)[-1] == FlowEnded(outcome="completed")


def queue_flow(on_failure: str | None = "busy") -> Flow:
    return flow_of(QueueStep(name="queue", queue="billing", priority=2, skills={"billing": 3}, on_failure=on_failure),
                   PlayStep(name="busy", prompts=("all_busy",), next="end"))


def test_queue_step_enqueues_with_a_safe_context():
    context = CallContext({"caller_id": "+4420", "customer": {"tier": "gold"}})
    context.set("pin", "1234", masked=True)
    run = FlowRun(queue_flow(), context=context)
    assert run.start(0.0) == [StepEntered(flow="main", step="queue"),
                              EnqueueCall(queue="billing", priority=2, skills={"billing": 3},
                                          context={"caller_id": "+4420", "customer": {"tier": "gold"}, "pin": MASK})]
    assert press(run, "1", 1.0) == []  # digits in the queue are not the IVR's


def test_queue_failure_goes_to_on_failure():
    run = FlowRun(queue_flow())
    run.start(0.0)
    assert run.handle(QueueFinished(outcome="failed", reason="queue closed"), 1.0) == [
        StepEntered(flow="main", step="busy"), PlayPrompts(prompts=("all_busy",), playback_id=1)]


def test_queue_failure_without_on_failure_hangs_up():
    run = FlowRun(queue_flow(on_failure=None))
    run.start(0.0)
    assert run.handle(QueueFinished(outcome="failed"), 1.0) == [
        HangUp(reason="queue billing: could not queue"), FlowEnded(outcome="queue-failure at queue")]


@pytest.mark.parametrize("outcome", ["answered", "callback", "abandoned"])
def test_queue_outcomes_other_than_failed_end_the_flow_without_hanging_up(outcome):
    """An agent has the call (or the ACD let it go): the IVR must not hang up on it."""
    run = FlowRun(queue_flow())
    run.start(0.0)
    assert run.handle(QueueFinished(outcome=outcome), 30.0) == [FlowEnded(outcome=f"queue billing: {outcome}")]
    assert run.finished
    assert run.handle(QueueFinished(outcome="failed"), 31.0) == []


def test_queue_finished_outside_a_queue_step_is_ignored():
    run = FlowRun(queue_flow())
    run.start(0.0)
    run.handle(QueueFinished(outcome="failed"), 1.0)
    assert run.handle(QueueFinished(outcome="answered"), 1.5) == []
    assert not run.finished


def test_transfer_renders_its_target_and_ends_the_flow():
    run = FlowRun(flow_of(TransferStep(name="out", target="+44{branch}00")), context=CallContext({"branch": "20"}))
    assert run.start(0.0) == [StepEntered(flow="main", step="out"), TransferCall(target="+442000"),
                              FlowEnded(outcome="transferred to +442000")]
    assert run.finished


def test_hangup_step_hangs_up():
    run = FlowRun(flow_of(HangupStep(name="bye")))
    assert run.start(0.0) == [StepEntered(flow="main", step="bye"), HangUp(reason="hangup step bye", completed=True),
                              FlowEnded(outcome="completed")]


# ---- record ------------------------------------------------------------------------------------

def record_flow() -> Flow:
    return flow_of(RecordStep(name="voicemail", prompts=("leave_message", "beep_tone"), into="message",
                              kind="callback", max_seconds=30.0, next="thanks"),
                   PlayStep(name="thanks", prompts=("thank_you",), next="end"))


def test_record_starts_after_its_prompts_and_hash_stops_it():
    run = FlowRun(record_flow())
    actions = run.start(0.0)
    assert actions[-1] == PlayPrompts(prompts=("leave_message", "beep_tone"), playback_id=1)
    assert press(run, "#", 0.5) == []  # not recording yet
    assert finish(run, actions, 2.0) == [StartRecording(record_id=2, kind="callback", max_seconds=30.0, silence_seconds=5.0)]
    assert press(run, "5", 3.0) == []
    assert press(run, "#", 9.0) == [StopRecording()]
    assert run.handle(RecordingFinished(record_id=1, path="/stale.wav"), 9.1) == []
    assert run.handle(RecordingFinished(record_id=2, path="/rec/1.wav", seconds=6.94), 9.2) == [
        StepEntered(flow="main", step="thanks"), PlayPrompts(prompts=("thank_you",), playback_id=3)]
    assert run.context.get("message") == {"path": "/rec/1.wav", "seconds": 6.9}


# ---- events, spoken values -----------------------------------------------------------------------

def test_a_step_event_is_reported_right_after_the_step_is_entered():
    flow = flow_of(SetStep(name="mark", values={}, next="bye", event="call-started"),
                   HangupStep(name="bye", event="said-goodbye"))
    assert FlowRun(flow).start(0.0)[:5] == [
        StepEntered(flow="main", step="mark"), FlowEvent(name="call-started", flow="main", step="mark"),
        StepEntered(flow="main", step="bye"), FlowEvent(name="said-goodbye", flow="main", step="bye"),
        HangUp(reason="hangup step bye", completed=True)]


@pytest.mark.parametrize("value, prompts", [
    ("0", ["digits/0"]),
    ("7", ["digits/7"]),
    ("13", ["numbers/13"]),
    ("40", ["numbers/40"]),
    ("105", ["digits/1", "numbers/hundred", "digits/5"]),
    ("1234", ["digits/1", "numbers/thousand", "digits/2", "numbers/hundred", "numbers/30", "digits/4"]),
    ("1000000", ["digits/1", "numbers/million"]),
    ("999999999", ["digits/9", "numbers/hundred", "numbers/90", "digits/9", "numbers/million",
                   "digits/9", "numbers/hundred", "numbers/90", "digits/9", "numbers/thousand",
                   "digits/9", "numbers/hundred", "numbers/90", "digits/9"]),
    ("1000000000", ["digits/1"] + ["digits/0"] * 9),
    ("12.5", ["digits/1", "digits/2", "digits/5"]),
    ("-3", ["digits/3"]),
    ("abc", []),
    ("", []),
    ("²", []),
    ("١٢", []),
])
def test_say_number_prompt_names(value, prompts):
    assert number_prompts(value) == prompts


def test_say_digits_prompt_names_skip_everything_but_ascii_digits():
    assert digit_prompts("+44 (0)20-7") == ["digits/4", "digits/4", "digits/0", "digits/2", "digits/0", "digits/7"]
    assert digit_prompts("²١") == []


def test_spoken_values_resolve_from_the_context_when_played():
    flow = flow_of(PlayStep(name="say", prompts=("order_prefix", SayDigits("{order}"), SayNumber("{days}"), "days"),
                            next="end"))
    run = FlowRun(flow, context=CallContext({"order": "105", "days": 13}))
    assert run.start(0.0)[-1] == PlayPrompts(
        prompts=("order_prefix", "digits/1", "digits/0", "digits/5", "numbers/13", "days"), playback_id=1)


def test_play_step_with_nothing_to_say_moves_straight_on():
    flow = flow_of(PlayStep(name="say", prompts=(SayDigits("{unknown}"),), next="bye"), HangupStep(name="bye"))
    run = FlowRun(flow)
    assert run.start(0.0)[-1] == FlowEnded(outcome="completed")
    assert run.path == ["say", "bye"]
