"""Energy voice activity and utterance endpointing on synthetic 20 ms frames."""

import struct

import pytest

from acd.speech.endpointing import (
    FRAME_BYTES, NoInputDidTimeOut, SpeechDidEnd, SpeechDidStart, SpeechEndpointer, frame_level_dbfs, is_speech,
)

SILENCE = bytes(FRAME_BYTES)


def tone(amplitude):
    """A 160-sample square wave: RMS equals the amplitude."""
    return struct.pack("<160h", *([amplitude, -amplitude] * 80))


SPEECH = tone(3000)        # about -20.8 dBFS, ordinary telephone speech level
LINE_NOISE = tone(60)      # about -54.7 dBFS, a hiss under the threshold


def feed_all(endpointer, frames):
    return [(index, event) for index, frame in enumerate(frames) if (event := endpointer.feed(frame))]


def test_frame_level_of_full_scale_square_is_zero_dbfs_and_silence_is_floor():
    assert frame_level_dbfs(tone(32767)) == pytest.approx(0.0, abs=0.01)
    assert frame_level_dbfs(SILENCE) == -120.0


def test_is_speech_separates_speech_level_from_line_noise():
    assert is_speech(SPEECH)
    assert not is_speech(LINE_NOISE)
    assert not is_speech(SILENCE)
    assert is_speech(LINE_NOISE, threshold_dbfs=-60.0)


def test_utterance_starts_after_three_speech_frames_at_its_first_frame():
    endpointer = SpeechEndpointer()
    events = feed_all(endpointer, [SILENCE] * 10 + [SPEECH] * 3)
    assert events == [(12, SpeechDidStart(start_ms=200))]
    assert endpointer.state == "speaking"


def test_a_two_frame_click_does_not_start_an_utterance():
    endpointer = SpeechEndpointer()
    assert feed_all(endpointer, [SPEECH] * 2 + [SILENCE] * 20 + [SPEECH] * 2 + [SILENCE]) == []
    assert endpointer.state == "waiting"


def test_utterance_ends_after_800_ms_of_silence_and_carries_pre_roll_audio():
    endpointer = SpeechEndpointer()
    frames = [LINE_NOISE] * 20 + [SPEECH] * 25 + [SILENCE] * 40
    events = feed_all(endpointer, frames)
    assert [type(event) for _, event in events] == [SpeechDidStart, SpeechDidEnd]
    index, end = events[1]
    assert index == 20 + 25 + 40 - 1
    assert (end.start_ms, end.end_ms, end.reason) == (400, 900, "silence")
    # 200 ms pre-roll (10 frames of line noise), the speech, then the 800 ms of silence.
    assert end.pcm == LINE_NOISE * 10 + SPEECH * 25 + SILENCE * 40
    assert endpointer.state == "finished"


def test_a_pause_shorter_than_the_end_silence_does_not_split_the_utterance():
    endpointer = SpeechEndpointer()
    frames = [SPEECH] * 10 + [SILENCE] * 30 + [SPEECH] * 10 + [SILENCE] * 40
    events = feed_all(endpointer, frames)
    assert [type(event) for _, event in events] == [SpeechDidStart, SpeechDidEnd]
    assert (events[1][1].start_ms, events[1][1].end_ms) == (0, 1000)


def test_max_utterance_length_ends_endless_speech():
    endpointer = SpeechEndpointer(max_utterance_ms=1000)
    events = feed_all(endpointer, [SPEECH] * 200)
    assert [type(event) for _, event in events] == [SpeechDidStart, SpeechDidEnd]
    index, end = events[1]
    assert index == 49
    assert (end.start_ms, end.end_ms, end.reason) == (0, 1000, "max-length")
    assert len(end.pcm) == 50 * FRAME_BYTES


def test_no_input_timeout_when_only_silence_arrives():
    endpointer = SpeechEndpointer(no_input_timeout_ms=2000)
    events = feed_all(endpointer, [LINE_NOISE] * 150)
    assert events == [(99, NoInputDidTimeOut(after_ms=2000))]
    assert endpointer.state == "finished"
    assert endpointer.elapsed_ms == 2000


def test_speech_started_before_the_timeout_is_not_a_no_input():
    endpointer = SpeechEndpointer(no_input_timeout_ms=1000)
    events = feed_all(endpointer, [SILENCE] * 45 + [SPEECH] * 5 + [SILENCE] * 40)
    assert [type(event) for _, event in events] == [SpeechDidStart, SpeechDidEnd]


def test_finished_endpointer_ignores_further_frames():
    endpointer = SpeechEndpointer(no_input_timeout_ms=100)
    feed_all(endpointer, [SILENCE] * 5)
    assert endpointer.feed(SPEECH) is None
    assert endpointer.elapsed_ms == 100


def test_frame_of_wrong_size_is_refused():
    with pytest.raises(ValueError, match="320"):
        SpeechEndpointer().feed(bytes(160))


@pytest.mark.parametrize("kwargs", [
    {"silence_end_ms": 0}, {"speech_start_ms": 30}, {"no_input_timeout_ms": -20}, {"pre_roll_ms": 10},
    {"max_utterance_ms": 20, "speech_start_ms": 60},
])
def test_limits_must_be_positive_whole_frames(kwargs):
    with pytest.raises(ValueError):
        SpeechEndpointer(**kwargs)


def test_events_validate_themselves():
    with pytest.raises(ValueError, match="reason"):
        SpeechDidEnd(start_ms=0, end_ms=20, reason="hangup", pcm=b"")
    with pytest.raises(ValueError, match="before its start"):
        SpeechDidEnd(start_ms=40, end_ms=20, reason="silence", pcm=b"")
    with pytest.raises(ValueError):
        SpeechDidStart(start_ms=-20)
