"""A trusted trunk's P-Asserted-Identity names the caller (the From says anonymous); an untrusted
trunk's is ignored: a customer could otherwise claim any number and get another's account."""

from .test_shell_queue import queue_harness

PAI = [("P-Asserted-Identity", "<tel:+447700900123>"), ("Diversion", "<sip:+442079460000@pbx.example>;reason=no-answer")]


def _caller_id(harness, call):
    return harness.call_record(call.call_id)["caller"]


def test_a_trusted_trunk_asserts_the_caller(make_harness):
    """trusted: true: the record's caller (and the customer look-up's number) is the asserted one."""
    harness = queue_harness(make_harness, trunk_extra="trusted: true")
    caller = harness.caller()
    call = caller.invite("3000", headers=PAI)
    call.expect(200)
    call.ack()
    assert _caller_id(harness, call) == "+447700900123"
    assert harness.logged(r"trusted trunk test asserts caller=\+447700900123 \(From user '5551'\) "
                          r"diverted_from=\+442079460000")


def test_an_untrusted_trunk_cannot_assert(make_harness):
    """Without trusted: true the From user stays the caller."""
    harness = queue_harness(make_harness)
    caller = harness.caller()
    call = caller.invite("3000", headers=PAI)
    call.expect(200)
    call.ack()
    assert _caller_id(harness, call) == "5551"
