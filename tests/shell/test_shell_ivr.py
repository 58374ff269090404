"""The demo IVR driven in process: DTMF by SIP INFO and by RFC 4733, prompts heard on the RTP stream.

Demo `main` flow (number 1000): welcome (barge-in) → menu 1 sales, 2 support, 3 order status,
4 spoken reason. Queues refuse callers while no agent is logged in (`when_no_agents: refuse`).
"""

from __future__ import annotations


def test_info_digit_during_the_welcome_prompt_chooses_from_the_menu(harness):
    """Keys may be pressed during the welcome prompt (barge-in): 2 → support, and the caller hears
    the support prompt right after the welcome was cut short."""
    caller, call = harness.answered_call()
    harness.advance(0.5)
    call.info_digit("2")
    call.expect(200, method="INFO")
    harness.advance(1.5)
    assert harness.logged(rf"call={call.call_id} menu=main_menu choice=2 next=support")
    assert harness.prompts_heard(call.rtp_received()) == ["welcome", "support"]


def test_rfc4733_digit_chooses_from_the_menu_once_per_key_press(harness):
    """A key press as RFC 4733 telephone-events (three updates, end sent three times) is one digit."""
    caller, call = harness.answered_call()
    harness.advance(3.5)
    call.rfc4733_digit("1")
    harness.advance(0.5)
    digits = harness.logged(rf"call={call.call_id} dtmf digit=(\S) via=rfc4733")
    assert [m.group(1) for m in digits] == ["1"]
    assert harness.logged(rf"call={call.call_id} menu=main_menu choice=1 next=sales")


def test_invalid_key_plays_the_invalid_prompt_and_the_menu_again(harness):
    """9 is no choice: menu_invalid, then the menu prompt from the start."""
    caller, call = harness.answered_call()
    harness.advance(3.5)
    call.info_digit("9")
    harness.advance(2)
    assert harness.prompts_heard(call.rtp_received()) == ["welcome", "menu_main", "menu_invalid"]
    harness.advance(1.5)
    assert harness.prompts_heard(call.rtp_received()) == ["welcome", "menu_main", "menu_invalid", "menu_main"]


def test_queue_with_no_agent_logged_in_plays_all_busy_then_goodbye_and_hangs_up(harness):
    """Demo sales refuses callers while nobody is logged in: the flow's on_failure plays all_busy,
    then goodbye, and the server hangs up with BYE; the record says the flow completed."""
    caller, call = harness.answered_call()
    harness.advance(0.3)
    call.info_digit("1")
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=12)
    call.respond(bye, 200)
    assert harness.prompts_heard(call.rtp_received()) == ["welcome", "sales", "all_busy", "goodbye"]
    assert harness.logged(r"refused by queue sales: .*no-agents-logged-in")
    harness.advance(0.1)
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "completed" and record["agent"] is None
    assert harness.leaks() == {} and harness.bound_rtp_ports() == []


def test_order_status_self_service_reads_the_order_back(harness):
    """3 → order number by INFO digits and # → look-up → "order 1 2 3 4 5 has shipped, 3 days",
    goodbye, hang-up: the whole self-service path heard on the wire, no agent involved."""
    caller, call = harness.answered_call()
    harness.advance(0.3)
    call.info_digit("3")
    harness.advance(0.5)
    for digit in "12345#":
        call.info_digit(digit)
        harness.advance(0.2)
    bye = caller.expect_request("BYE", call_id=call.call_id, timeout=15)
    call.respond(bye, 200)
    heard = harness.prompts_heard(call.rtp_received())
    assert heard == ["welcome", "enter_order", "order_prefix", "digits/1", "digits/2", "digits/3", "digits/4",
                     "digits/5", "order_shipped", "digits/3", "days", "goodbye"]
    assert harness.logged(rf"call={call.call_id} collect=order_status into=order_number digits=12345 length=5")


def test_keys_sent_after_hanging_up_are_refused_481_and_reach_no_menu(harness):
    """INFO after the caller's own BYE is answered 481: the dialog is gone, nothing reaches the IVR."""
    caller, call = harness.answered_call()
    call.bye()
    call.expect(200, method="BYE")
    call.info_digit("1")
    caller.expect_response(481, method="INFO")
    assert not harness.logged(r"dtmf digit=1")


TRANSFER_FILES = {
    "dialplans/transfer.yaml": 'routes:\n  - {number: "4000", flow: transfer_out}\n',
    "ivr_flows/transfer_out.yaml": 'name: transfer_out\nsteps:\n  hello: {play: thank_you, next: out}\n'
                                   '  out: {transfer: "5559999", event: sent-away}\n'}


def test_transfer_step_refers_the_caller_and_hangs_up_once_the_transfer_succeeds(make_harness):
    """A flow's transfer step sends REFER (Refer-To the target at our address) to the trunk; a 100
    NOTIFY changes nothing, the final 200 NOTIFY makes us hang up with BYE."""
    harness = make_harness(extra_files=TRANSFER_FILES)
    caller, call = harness.answered_call("4000")
    refer = caller.expect_request("REFER", call_id=call.call_id, timeout=2)
    assert refer.headers.get("Refer-To") == "<sip:5559999@127.0.0.1:5060>"
    assert refer.headers.get("Referred-By")
    call.respond(refer, 202)
    call.notify_transfer("SIP/2.0 100 Trying")
    call.expect(200, method="NOTIFY")
    harness.advance(0.5)
    assert not caller.requests("BYE")
    call.notify_transfer("SIP/2.0 200 OK")
    call.expect(200, method="NOTIFY")
    call.respond(caller.expect_request("BYE", call_id=call.call_id), 200)
    harness.advance(0.1)
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "transferred" and record["end_reason"] == "transferred to 5559999"


def test_transfer_refused_by_the_trunk_ends_the_call(make_harness):
    """The trunk answers our REFER 603: we hang up and record the refusal."""
    harness = make_harness(extra_files=TRANSFER_FILES)
    caller, call = harness.answered_call("4000")
    refer = caller.expect_request("REFER", call_id=call.call_id, timeout=2)
    call.respond(refer, 603)
    call.respond(caller.expect_request("BYE", call_id=call.call_id), 200)
    harness.advance(0.1)
    assert harness.call_record(call.call_id)["end_reason"] == "transfer to 5559999 refused (603)"
