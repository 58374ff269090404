"""Menu phrase recognition on espeak-ng speech carried over 8 kHz G.711 mu-law.

The utterances are synthesised at test time (espeak-ng, then sox to 8 kHz mono
16-bit), padded with 300 ms of silence each side as an endpointer would hand
them over, and sent through a mu-law encode/decode round trip.
"""

import array
import math
import shutil
import subprocess
import time

import pytest

pytest.importorskip("pocketsphinx", reason="pocketsphinx is not installed")

from acd.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from acd.speech.recognizer import (  # noqa: E402
    DEFAULT_MIN_CONFIDENCE, PhraseRecognizer, Recognition, RecognizerCache, upsample_8k_to_16k,
)

MENU = ["billing", "technical support", "agent", "sales"]
PAD = bytes(2 * 2400)  # 300 ms at 8 kHz

needs_tts = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are needed to synthesise the test utterances",
)


@pytest.fixture(scope="module")
def recognizer():
    return PhraseRecognizer(MENU)


@pytest.fixture(scope="module")
def speak(tmp_path_factory):
    """Return 8 kHz mu-law round-tripped PCM of a spoken text, cached per text."""
    directory = tmp_path_factory.mktemp("speech")
    cache = {}

    def speak(text):
        if text not in cache:
            wav = directory / "tts.wav"
            raw = directory / "tts.raw"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
            subprocess.run(
                ["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", str(raw)],
                check=True,
            )
            pcm = PAD + raw.read_bytes() + PAD
            cache[text] = ulaw_decode(ulaw_encode(pcm))
        return cache[text]

    return speak


@needs_tts
@pytest.mark.parametrize("phrase", MENU)
def test_each_menu_phrase_is_recognised_after_ulaw_round_trip(recognizer, speak, phrase):
    started = time.perf_counter()
    result = recognizer.recognize(speak(phrase))
    elapsed = time.perf_counter() - started
    print(f"{phrase!r}: {result} in {elapsed * 1000:.0f} ms")
    assert result.outcome == "match"
    assert result.phrase == phrase
    assert result.confidence >= DEFAULT_MIN_CONFIDENCE


@needs_tts
def test_quiet_caller_20_db_down_is_still_recognised(recognizer, speak):
    quiet = array.array("h", speak("technical support"))
    quiet = array.array("h", (sample // 10 for sample in quiet))
    result = recognizer.recognize(ulaw_decode(ulaw_encode(quiet.tobytes())))
    assert (result.outcome, result.phrase) == ("match", "technical support")


@needs_tts
def test_word_outside_the_menu_is_not_a_match(recognizer, speak):
    """'banana' is either refused by the grammar search or scores far under the threshold."""
    result = recognizer.recognize(speak("banana"))
    print(f"'banana': {result}")
    assert result.outcome == "no-match"
    assert result.phrase is None
    assert result.confidence < DEFAULT_MIN_CONFIDENCE


@needs_tts
def test_long_unrelated_sentence_is_not_a_match(recognizer, speak):
    """A phrase fitted to a piece of a longer utterance loses on speech coverage."""
    result = recognizer.recognize(speak("cancel my account"))
    print(f"'cancel my account': {result}")
    assert result.outcome == "no-match"


@needs_tts
def test_threshold_turns_a_match_into_no_match_keeping_the_hypothesis(recognizer, speak):
    result = recognizer.recognize(speak("agent"), min_confidence=1.0)
    assert result.outcome == "no-match"
    assert result.phrase is None
    assert result.hypothesis == "agent"
    assert 0.0 < result.confidence < 1.0


@needs_tts
def test_same_audio_gives_the_same_result_whatever_came_before(recognizer, speak):
    """Decoder state (noise estimate, CMN) must not leak from one call to the next."""
    first = recognizer.recognize(speak("sales"))
    recognizer.recognize(speak("billing"))
    recognizer.recognize(bytes(16000))
    assert recognizer.recognize(speak("sales")) == first


def test_digital_silence_is_no_input(recognizer):
    assert recognizer.recognize(bytes(2 * 8000)) == Recognition(phrase=None, confidence=0.0, outcome="no-input")


def test_line_hiss_is_no_input(recognizer):
    hiss = array.array("h", ((-1) ** n * (n % 7) * 10 for n in range(8000)))
    assert recognizer.recognize(ulaw_decode(ulaw_encode(hiss.tobytes()))).outcome == "no-input"


def test_empty_audio_is_no_input(recognizer):
    assert recognizer.recognize(b"").outcome == "no-input"


def test_odd_length_audio_is_refused(recognizer):
    with pytest.raises(ValueError, match="odd length"):
        recognizer.recognize(b"\x00\x00\x00")


def test_min_confidence_outside_unit_interval_is_refused(recognizer):
    with pytest.raises(ValueError, match="min_confidence"):
        recognizer.recognize(bytes(320), min_confidence=1.5)


def test_word_missing_from_the_dictionary_is_named_at_construction():
    with pytest.raises(ValueError, match="'zorblax' is not in the pronunciation dictionary"):
        PhraseRecognizer(["billing", "zorblax support"])


@pytest.mark.parametrize("phrases, message", [
    ([], "at least one phrase"),
    (["billing", "  "], "empty"),
    (["billing", "Billing"], "listed twice"),
    (["tech-support"], "characters other than letters"),
])
def test_bad_phrase_lists_are_refused(phrases, message):
    with pytest.raises(ValueError, match=message):
        PhraseRecognizer(phrases)


def test_a_single_string_is_not_taken_as_a_list_of_letters():
    with pytest.raises(TypeError):
        PhraseRecognizer("billing")


def test_recognition_validates_itself():
    with pytest.raises(ValueError, match="outcome"):
        Recognition(phrase=None, confidence=0.0, outcome="maybe")
    with pytest.raises(ValueError, match="outside 0..1"):
        Recognition(phrase="sales", confidence=1.2, outcome="match")
    with pytest.raises(ValueError, match="phrase"):
        Recognition(phrase=None, confidence=0.9, outcome="match")
    with pytest.raises(ValueError, match="phrase"):
        Recognition(phrase="sales", confidence=0.1, outcome="no-match")


def test_cache_returns_the_same_recognizer_for_the_same_phrases_and_evicts_the_oldest():
    cache = RecognizerCache(max_size=2)
    menu = cache.get(("billing", "sales"))
    assert cache.get(["billing", "sales"]) is menu
    cache.get(("agent",))
    cache.get(("billing", "sales"))          # most recently used again
    cache.get(("yes", "no"))                 # evicts ("agent",)
    assert len(cache) == 2
    assert cache.get(("billing", "sales")) is menu


def test_cache_reports_bad_phrases_like_the_recognizer():
    with pytest.raises(ValueError, match="zorblax"):
        RecognizerCache().get(["zorblax"])


def test_upsampling_keeps_input_samples_and_interpolates_a_tone():
    tone = array.array("h", (round(10000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(800)))
    out = array.array("h", upsample_8k_to_16k(tone.tobytes()))
    assert len(out) == 2 * len(tone)
    assert out[0::2] == tone
    # Away from the edges, odd samples sit on the 1 kHz sine at the half-sample points.
    worst = max(abs(out[k] - 10000 * math.sin(2 * math.pi * 1000 * k / 16000)) for k in range(41, 1560, 2))
    assert worst < 150
