"""RFC 4733 telephone-event payloads and one-digit-per-press reception."""

import pytest

from acd.media.rfc4733 import (
    DIGIT_TO_EVENT, EVENT_TO_DIGIT, DtmfReceiver, TelephoneEvent, dtmf_event_payloads,
)

# Digit 5, E bit set, volume 10 (-10 dBm0), duration 800 (100 ms at 8 kHz).
END_OF_5 = bytes.fromhex("058a0320")
UPDATE_OF_5 = bytes.fromhex("050a00a0")


def payload(digit, *, end, duration=160, volume=10):
    return bytes(TelephoneEvent(event=DIGIT_TO_EVENT[digit], end=end, volume=volume, duration=duration))


def press(receiver, timestamp, digit, *, updates=3, ends=3):
    """Feed one key press: `updates` growing non-end packets then `ends` end packets."""
    results = []
    for n in range(1, updates + 1):
        results.append(receiver.receive(timestamp, payload(digit, end=False, duration=160 * n)))
    for _ in range(ends):
        results.append(receiver.receive(timestamp, payload(digit, end=True, duration=160 * (updates + 1))))
    return results


def test_event_table_covers_the_sixteen_dtmf_keys():
    assert [EVENT_TO_DIGIT[n] for n in range(16)] == list("0123456789*#ABCD")
    assert DIGIT_TO_EVENT["#"] == 11 and DIGIT_TO_EVENT["D"] == 15


def test_end_packet_fields_and_round_trip():
    event = TelephoneEvent.parse(END_OF_5)
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"
    assert bytes(event) == END_OF_5


def test_update_packet_round_trips():
    event = TelephoneEvent.parse(UPDATE_OF_5)
    assert not event.end and event.duration == 160
    assert bytes(event) == UPDATE_OF_5


def test_reserved_bit_is_ignored():
    assert TelephoneEvent.parse(bytes.fromhex("05ca0320")) == TelephoneEvent.parse(END_OF_5)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "telephone-event payload is too short"),
        (END_OF_5[:3], "telephone-event payload is too short"),
        (END_OF_5 + b"\x00", "telephone-event payload is 5 bytes, expected 4"),
    ],
)
def test_broken_payload_raises_value_error(data, message):
    with pytest.raises(ValueError) as info:
        TelephoneEvent.parse(data)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [({"event": 256}, "event code 256"), ({"volume": 64}, "volume 64"), ({"duration": 65536}, "duration 65536")],
)
def test_constructor_rejects_out_of_range_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TelephoneEvent(**{"event": 1, "end": False, "volume": 10, "duration": 0, **kwargs})


def test_three_end_packets_report_the_digit_once_on_the_first_end():
    receiver = DtmfReceiver()
    assert press(receiver, 1000, "7") == [None, None, None, "7", None, None]


def test_report_on_start_reports_on_the_first_packet_only():
    receiver = DtmfReceiver(report_on_start=True)
    assert press(receiver, 1000, "#") == ["#", None, None, None, None, None]


def test_two_presses_of_the_same_key_are_two_digits():
    receiver = DtmfReceiver()
    assert press(receiver, 1000, "1") == [None, None, None, "1", None, None]
    assert press(receiver, 5000, "1") == [None, None, None, "1", None, None]


def test_lost_end_packets_report_the_digit_when_the_next_press_starts():
    receiver = DtmfReceiver()
    assert press(receiver, 1000, "4", ends=0) == [None, None, None]
    assert press(receiver, 5000, "2") == ["4", None, None, "2", None, None]


def test_lost_end_then_new_press_seen_only_from_its_end_reports_both_in_order():
    receiver = DtmfReceiver()
    assert press(receiver, 1000, "4", ends=0) == [None, None, None]
    # Only the end packets of the second press arrive: first "4", then "9" on the repeat.
    assert press(receiver, 5000, "9", updates=0) == ["4", "9", None]


def test_late_end_packet_of_a_finished_press_is_ignored():
    receiver = DtmfReceiver()
    press(receiver, 1000, "3")
    assert receiver.receive(5000, payload("8", end=False)) is None
    assert receiver.receive(1000, payload("3", end=True, duration=640)) is None
    assert receiver.receive(5000, payload("8", end=True, duration=320)) == "8"


def test_flush_reports_an_unfinished_press_once():
    receiver = DtmfReceiver()
    assert press(receiver, 1000, "*", ends=0) == [None, None, None]
    assert receiver.flush() == "*"
    assert receiver.flush() is None
    assert receiver.receive(1000, payload("*", end=True)) is None


def test_flush_after_a_reported_press_reports_nothing():
    receiver = DtmfReceiver()
    press(receiver, 1000, "0")
    assert receiver.flush() is None


def test_reset_forgets_finished_presses():
    receiver = DtmfReceiver()
    press(receiver, 1000, "6")
    receiver.reset()
    assert press(receiver, 1000, "6") == [None, None, None, "6", None, None]


def test_non_dtmf_events_are_ignored():
    receiver = DtmfReceiver()
    flash = bytes(TelephoneEvent(event=16, end=True, volume=10, duration=800))
    assert receiver.receive(1000, flash) is None
    assert press(receiver, 2000, "5") == [None, None, None, "5", None, None]


def test_malformed_payload_raises_value_error():
    with pytest.raises(ValueError, match="too short"):
        DtmfReceiver().receive(1000, b"\x05")


def test_history_size_must_be_positive():
    with pytest.raises(ValueError, match="history_size"):
        DtmfReceiver(history_size=0)


def test_sender_payloads_have_marker_first_growing_durations_and_three_ends():
    packets = dtmf_event_payloads("5", 100)
    events = [TelephoneEvent.parse(p) for p, _, _ in packets]
    assert [marker for _, marker, _ in packets] == [True, False, False, False, False, False, False, False]
    assert [is_end for _, _, is_end in packets] == [False] * 5 + [True] * 3
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert all(e.event == 5 and e.volume == 10 for e in events)
    assert [e.end for e in events] == [False] * 5 + [True] * 3
    assert packets[-1][0] == END_OF_5


def test_sender_payloads_feed_the_receiver_as_one_digit():
    receiver = DtmfReceiver()
    for digit, timestamp in (("1", 160), ("#", 8160), ("1", 16160)):
        results = [receiver.receive(timestamp, p) for p, _, _ in dtmf_event_payloads(digit, 60)]
        assert [r for r in results if r] == [digit]


def test_sender_rejects_unknown_digit_and_too_long_press():
    with pytest.raises(ValueError, match="'x' is not a DTMF digit"):
        dtmf_event_payloads("x", 100)
    with pytest.raises(ValueError, match="does not fit"):
        dtmf_event_payloads("1", 10_000)
    with pytest.raises(ValueError, match="positive"):
        dtmf_event_payloads("1", 0)
