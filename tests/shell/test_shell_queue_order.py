"""Queue order a supervisor can read and steer, in process: a VIP served before four waiting
callers says why (log, API), every caller's explanation says where they stand and why, and a
priority raised over the API moves a caller ahead on the next decision."""

from __future__ import annotations

from .harness import queue_files

Q = "{strategy: longest-idle, ring_timeout: 4, wrap_up: 2, when_no_agents: join, announce_every: 30}"
VIP_FLOW = ("name: to_q_vip\nsteps:\n  wait: {queue: q, priority: 5, on_failure: busy}\n"
            "  busy: {play: all_busy, next: end}\n  end: {hangup: true}\n")


def order_harness(make_harness):
    files = queue_files({"q": Q}, {"1001": "{q: 0}"})
    files["dialplans/tests.yaml"] += '  - {number: "3009", flow: to_q_vip}\n'
    files["ivr_flows/to_q_vip.yaml"] = VIP_FLOW
    return make_harness(extra_files=files)


def line_up(harness, phone, callers: int):
    """The agent talks to a first caller; `callers` more wait (a port each)."""
    _, talking = harness.answered_call("3000", port=5070)
    offer = phone.take_offer()
    waiting = []
    for n in range(callers):
        harness.advance(1)
        waiting.append(harness.answered_call("3000", port=5072 + 2 * n)[1])
    harness.advance(1)
    return talking, offer, waiting


def free_the_agent(harness, phone, offer):
    offer.bye()
    phone.expect_response(200, method="BYE", call_id=offer.call_id)
    harness.advance(2.1)  # wrap-up


def test_a_vip_jumps_four_callers_and_everybody_can_read_why(make_harness):
    harness = order_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    talking, offer, waiting = line_up(harness, phone, 4)
    harness.advance(1)
    _, vip = harness.answered_call("3009", port=5090)
    harness.advance(1)
    status, first = harness.api("GET", f"/api/calls/{waiting[0].call_id}/explanation")
    assert status == 200 and first["position"] == 2
    assert first["place"].startswith("2nd of 5 in line for q, priority 0")
    assert f"behind {vip.call_id} (priority 5 > 0: worth 300s of waiting (60s per level)" in first["place"]
    status, mine = harness.api("GET", f"/api/calls/{vip.call_id}/explanation")
    assert (mine["position"], mine["priority"], mine["priority_detail"]) == (1, 5, "flow priority 5")

    free_the_agent(harness, phone, offer)
    vip_offer = phone.offer()
    assert vip_offer.invite.headers.get("X-ACD-Caller-Call-ID") == vip.call_id
    status, mine = harness.api("GET", f"/api/calls/{vip.call_id}/explanation")
    assert mine["state"] == "offered"
    assert mine["order"].startswith("1st of 5 in line for q, priority 5")
    assert f"before {waiting[0].call_id}: priority 5 > 0: worth 300s of waiting" in mine["order"]
    assert [step["what"].split(":")[0] for step in mine["story"]] == [
        "queued in q, priority 5 (flow priority 5)", "waiting at position 1", "offered to 1001"]
    assert harness.logged(rf"call={vip.call_id} offer agent=1001 queue=q: .*; order: 1st of 5 in line")


def test_raising_a_waiting_callers_priority_over_the_api_serves_them_next(make_harness):
    harness = order_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    talking, offer, waiting = line_up(harness, phone, 3)
    last = waiting[-1]
    status, body = harness.api("PATCH", f"/api/calls/{last.call_id}", {"priority": 9})
    assert (status, body) == (200, {"call_id": last.call_id, "result": "changed", "position": 1}), body
    status, second = harness.api("GET", f"/api/calls/{waiting[0].call_id}/explanation")
    assert second["position"] == 2 and f"behind {last.call_id} (priority 9 > 0" in second["place"]
    assert harness.logged(rf"call={last.call_id} steered by API: priority 0 -> 9")
    free_the_agent(harness, phone, offer)
    assert phone.offer().invite.headers.get("X-ACD-Caller-Call-ID") == last.call_id


def test_steering_refusals_say_what_is_wrong(make_harness):
    harness = order_harness(make_harness)
    phone = harness.logged_in_agent("1001")
    talking, offer, waiting = line_up(harness, phone, 1)
    assert harness.api("PATCH", f"/api/calls/{waiting[0].call_id}", {"priority": 12})[0] == 400
    assert harness.api("PATCH", f"/api/calls/{waiting[0].call_id}", {"colour": "red"})[0] == 400
    status, body = harness.api("PATCH", f"/api/calls/{waiting[0].call_id}", {"queue": "nope"})
    assert status == 400 and "unknown-queue" in body["message"]
    assert harness.api("PATCH", "/api/calls/no-such-call", {"priority": 1})[0] == 404
    status, body = harness.api("PATCH", f"/api/calls/{talking.call_id}", {"priority": 1})
    assert status == 409 and body["details"]["result"] == "connected", body
    assert harness.api("GET", "/api/calls/no-such-call/explanation")[0] == 404
