"""The media worker plane (acd.calls.remote_media) where it differs from media in the call process:
ports another program holds, a worker that dies, playback ends that cross a new play, prompt blobs.

The worker runs on the fake reactor (tests/shell/media_loopback.py); the rest of tests/shell runs on
this plane too with ACD_SHELL_MEDIA_WORKERS=1 (scripts/test does that for a subset).
"""

from __future__ import annotations

from acd.media import worker_wire as wire

from .harness import RTP_BASE


def test_a_port_the_probe_finds_held_is_never_handed_out(make_harness):
    """The worker probes its slice at start and every minute: a port another program holds is not
    handed out, and the warning says which."""
    harness = make_harness(media_workers=True)
    harness.reactor.take_port(RTP_BASE)
    harness.media_workers.pipes[0].media.probe_ports()
    harness.advance(0.01)
    assert harness.logged(rf"media worker 0: 1 RTP port\(s\) of rtp: ports are held by another program .*\({RTP_BASE}\)")
    _, call = harness.answered_call()
    assert call.answer.port == RTP_BASE + 2
    harness.advance(0.5)
    assert len(call.rtp_received()) >= 20


def test_port_taken_after_start_ends_that_call_cleanly_and_is_skipped(make_harness):
    """A port some program grabbed after the worker's probe: the worker cannot bind it, so the call
    that got it has no media. It ends at once (BYE, record failed / media lost) rather than sitting
    in silence; the port is skipped from then on and the next call gets the next one."""
    harness = make_harness(media_workers=True)
    harness.reactor.take_port(RTP_BASE)
    caller, call = harness.answered_call()
    assert call.answer.port == RTP_BASE
    harness.advance(0.1)
    bye = caller.expect_request("BYE", call_id=call.call_id)
    call.respond(bye, 200)
    harness.advance(0.1)
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "failed" and record["end_reason"] == f"media lost: RTP port {RTP_BASE} held by another program"
    assert harness.logged(rf"call={call.call_id} RTP port {RTP_BASE} is held by another program")
    _, second = harness.answered_call(port=5072)
    assert second.answer.port == RTP_BASE + 2
    harness.advance(0.5)
    assert len(second.rtp_received()) >= 20
    second.bye()
    harness.advance(0.1)
    assert harness.leaks() == {}


def test_a_worker_that_dies_ends_its_calls_and_is_replaced(make_harness):
    """kill -9 of a media worker: its callers get BYE at once (record failed / media lost), the
    metric counts it, a new worker starts a second later, and the next call has media again."""
    harness = make_harness(media_workers=True)
    caller, call = harness.answered_call()
    harness.advance(0.5)
    harness.media_workers.pipes[0].signalProcess("KILL")
    harness.advance(0.01)
    bye = caller.expect_request("BYE", call_id=call.call_id)
    call.respond(bye, 200)
    harness.advance(0.1)
    record = harness.call_record(call.call_id)
    assert record["outcome"] == "failed" and record["end_reason"] == "media lost: media worker exited"
    assert harness.metric("acd_media_workers_lost_total") == 1
    assert harness.logged(r"media worker 0 \(pid 90000\) exited .*1 media leg\(s\) lost")
    harness.advance(1.0)
    assert harness.logged(r"media worker 0 started \(pid 90001\)")
    _, second = harness.answered_call(port=5072)
    harness.advance(0.5)
    assert len(second.rtp_received()) >= 20
    second.bye()
    harness.advance(0.1)
    assert harness.leaks() == {}


def test_each_prompt_crosses_to_the_worker_once(make_harness):
    """Prompts go to a worker as numbered blobs, once each: a second caller's welcome is a few bytes."""
    harness = make_harness(media_workers=True)
    sent: list[tuple] = []
    worker = harness.running.media.workers[0]
    real_send = worker.send
    worker.send = lambda message: (sent.append(message), real_send(message))
    _, first = harness.answered_call()
    harness.advance(0.5)
    _, second = harness.answered_call(port=5072)
    harness.advance(0.5)
    blobs = [message for message in sent if message[0] == wire.BLOB]
    plays = [message for message in sent if message[0] == wire.PLAY]
    assert len(blobs) == 1 and len(plays) == 2 and plays[0][2] == plays[1][2] == blobs[0][1]
    assert harness.prompts_heard(second.rtp_received())[:1] == ["welcome"]
    for call in (first, second):
        call.bye()
    harness.advance(0.1)
    assert harness.leaks() == {}
