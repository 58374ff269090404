"""What a waiting caller hears over time, and caller priority from conf/agents.yaml (in process).

A queue `q` (number 3000) with announcements every 5 s; nobody is logged in unless a test says so,
so the caller at the head of the line has no wait estimate ("number 1", wait unknown).
"""

from __future__ import annotations

from .harness import queue_files

JOIN = "when_no_agents: join, announce_every: 5, max_wait: 600"


def harness_with(make_harness, options: str = "", *, agents=("1001",), extra: str = "", **files):
    queue = "{" + JOIN + (", " + options if options else "") + "}"
    result = queue_files({"q": queue}, {agent: "{q: 0}" for agent in agents})
    result["conf/agents.yaml"] = extra + result["conf/agents.yaml"]
    result.update(files)
    return make_harness(extra_files=result)


def announced(harness, call_id: str) -> list[str]:
    """The positions and hold messages the caller was given, in order (from the log)."""
    return [m.group(1) for m in harness.logged(rf"call={call_id} (announce position=\d+|hold message \S+)")]


def test_head_of_line_caller_with_nobody_staffed_is_told_number_1_once_then_hold_messages(make_harness):
    """Nobody logged in: "you are number 1" once on arrival, not every 5 s; after that the queue's hold
    messages (by default queue/please_hold, queue/thanks_for_holding) in turn between music."""
    harness = harness_with(make_harness)
    caller, call = harness.answered_call("3000")
    harness.advance(31)
    assert announced(harness, call.call_id) == [
        "announce position=1", "hold message queue/please_hold", "hold message queue/thanks_for_holding",
        "hold message queue/please_hold", "hold message queue/thanks_for_holding",
        "hold message queue/please_hold", "hold message queue/thanks_for_holding"]
    heard = harness.prompts_heard(call.rtp_received())
    assert heard.count("queue/you_are_number") == 1
    assert heard[:4] == ["queue/you_are_number", "digits/1", "queue/in_line", "moh"]
    assert "queue/please_hold" in heard and "queue/thanks_for_holding" in heard


def test_hold_messages_rotate_in_the_configured_order(make_harness):
    """hold_messages: [thank_you, queue/please_hold, queue/thanks_for_holding] are played one per
    announcement time, in turn, starting again after the last."""
    harness = harness_with(make_harness, "hold_messages: [thank_you, queue/please_hold, queue/thanks_for_holding]")
    caller, call = harness.answered_call("3000")
    harness.advance(21)
    assert announced(harness, call.call_id)[1:] == [
        "hold message thank_you", "hold message queue/please_hold", "hold message queue/thanks_for_holding",
        "hold message thank_you"]


def test_position_is_announced_again_when_it_changes(make_harness):
    """Two callers wait; the first hangs up: at its next announcement time the second hears
    "you are number 1", having heard "number 2" on arrival and hold messages meanwhile."""
    harness = harness_with(make_harness, "hold_messages: [thank_you]")
    first, first_call = harness.answered_call("3000")
    second, second_call = harness.answered_call("3000", port=5072)
    harness.advance(6)
    first_call.bye()
    harness.advance(8)
    assert announced(harness, second_call.call_id) == [
        "announce position=2", "hold message thank_you", "announce position=1"]
    heard = harness.prompts_heard(second_call.rtp_received())
    assert heard[:3] == ["queue/you_are_number", "digits/2", "queue/in_line"]
    last = len(heard) - 1 - heard[::-1].index("queue/you_are_number")
    assert heard[last:last + 3] == ["queue/you_are_number", "digits/1", "queue/in_line"]


def test_announce_position_always_repeats_it_and_never_plays_only_hold_messages(make_harness):
    """`always` keeps the old behaviour (the position every time, no hold messages); `never` says no
    position, only hold messages."""
    harness = harness_with(make_harness, "announce_position: always")
    caller, call = harness.answered_call("3000")
    harness.advance(11)
    assert announced(harness, call.call_id) == ["announce position=1"] * 3
    quiet = harness_with(make_harness, "announce_position: never, hold_messages: [thank_you]")
    caller, call = quiet.answered_call("3000")
    quiet.advance(11)
    assert announced(quiet, call.call_id) == ["hold message thank_you"] * 2


def test_empty_hold_messages_leave_the_music_playing(make_harness):
    """hold_messages: [] and nothing new to say: music only, never interrupted."""
    harness = harness_with(make_harness, "hold_messages: []")
    caller, call = harness.answered_call("3000")
    harness.advance(21)
    assert announced(harness, call.call_id) == ["announce position=1"]
    assert harness.prompts_heard(call.rtp_received())[3:] == ["moh"]


PRIORITY_FLOW = ("name: to_q_high\nsteps:\n  wait: {queue: q, priority: 1, on_failure: busy}\n"
                 "  busy: {play: all_busy, next: end}\n  end: {hangup: true}\n")
PRIORITY_ROUTES = 'routes:\n  - {number: "3000", flow: to_q}\n  - {number: "3001", flow: to_q_high}\n'


def test_priority_aging_from_the_config_and_a_reload_to_strict_tiers(make_harness):
    """priority_aging_seconds: 10: a priority-1 caller who arrived 30 s after a priority-0 caller is
    behind them (one level is worth only 10 s). Reloaded with `none` (strict tiers), the priority-1
    caller goes first: the agent who logs in is offered that call."""
    files = {"ivr_flows/to_q_high.yaml": PRIORITY_FLOW, "dialplans/tests.yaml": PRIORITY_ROUTES}
    harness = harness_with(make_harness, extra="priority_aging_seconds: 10\n", **files)
    low, low_call = harness.answered_call("3000")
    harness.advance(30)
    high, high_call = harness.answered_call("3001", port=5072)
    harness.advance(1)
    assert harness.logged(rf"call={high_call.call_id} waiting queue=q position=2")
    path = harness.root / "conf" / "agents.yaml"
    path.write_text(path.read_text().replace("priority_aging_seconds: 10", "priority_aging_seconds: none"))
    assert harness.reload()
    assert harness.logged(r"agents\.priority_aging_seconds 10\.0 -> None")
    phone = harness.logged_in_agent("1001")
    offer = phone.offer()
    assert offer.header("X-ACD-Caller-Call-ID") == high_call.call_id
