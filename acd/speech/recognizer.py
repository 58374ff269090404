# SPDX-License-Identifier: MIT
"""Offline recognition of one spoken menu phrase with pocketsphinx.

Rules of this file:

* Pure and synchronous: bytes in, a ``Recognition`` out.  No Twisted; the
  shell runs ``recognize`` in a thread pool.  A decoder is not thread-safe, so
  each ``PhraseRecognizer`` serialises its calls with a lock.
* The acoustic model, dictionary and phone language model are the English
  ones shipped inside the ``pocketsphinx`` wheel (``get_model_path``); nothing
  is ever fetched from the network.
* Input is call audio: 8 kHz mono signed 16-bit little-endian PCM.

Front end (measured on 32 espeak-ng utterances of the four test phrases, four
voices, two speeds, after a G.711 mu-law round trip):

* The model is 16 kHz.  Configuring the decoder for 8 kHz (``samprate 8000,
  nfft 256, upperf 3500``) moves the mel filters away from where the model was
  trained: 7/32 correct.  Upsampling to 16 kHz is what we do.
* Upsampled telephone audio has nothing above 4 kHz, but the model's filter
  bank reaches 6.8 kHz.  Those channels then see near-digital silence and the
  search goes wrong on fricatives ("support" -> "technical", "sales" ->
  "billing"): 25/32 with linear interpolation, 26/32 with the half-band FIR.
  Adding a fixed, speech-independent noise floor *only in the 4-8 kHz band*
  gives those channels a constant level that cepstral mean normalisation
  removes: 32/32, and still 32/32 with the speech 10 dB and 20 dB quieter.
  White noise over the whole band helps too, but at a level that fixes loud
  speech it drowns quiet speech (7/32 at -20 dB).
* ``remove_noise`` (spectral subtraction, on in the model's feat.params) keeps
  a noise estimate from one utterance to the next, so results depended on what
  was decoded before; it is off, and the feature parameters are given here
  instead of read from feat.params (which would override them).

Confidence.  Two searches run over the same audio: the phrase grammar (JSGF,
exactly the configured phrases, with silence and noise fillers around them)
and a free phone loop (``allphone`` with the shipped phonetic LM).  Per frame
of the phrase words, in nats::

    llr = (score(grammar path) - score(phone loop)) / phrase frames
    coverage = share of the energetic frames that the phrase words cover
    z = llr + 10 * (coverage - 1)
    confidence = 1 / (1 + exp(-2 * (z - Z_MIDPOINT)))

A grammar decoder always prefers *some* phrase; the phone loop is the best
the model can do with no grammar, so a real phrase scores close to it and an
out-of-set word far below it.  ``coverage`` catches a phrase fitted to a
piece of a longer utterance ("cancel my account" -> "billing" over 40 % of
it).  The lattice posterior that pocketsphinx reports (``Hypothesis.prob``)
was about 0.5 for right and wrong answers alike (0.87 for one wrong one), so
it is not used.
"""

import array
import math
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from pocketsphinx import Decoder, get_model_path

from acd.speech.endpointing import DEFAULT_THRESHOLD_DBFS, frame_level_dbfs

__all__ = [
    "DEFAULT_MIN_CONFIDENCE", "OUTCOMES", "PhraseRecognizer", "Recognition", "RecognizerCache",
    "upsample_8k_to_16k",
]

OUTCOMES = ("match", "no-match", "no-input")

#: Default ``min_confidence``.  Measured on 96 in-set utterances (4 phrases x
#: 4 espeak-ng voices x 2 speeds x 3 levels, G.711 mu-law): all recognised,
#: lowest confidence 0.79, median 0.99.  Of 144 unrelated utterances ("banana",
#: "hello", "operator", "weather forecast", "cancel my account", "yes"), 38 were
#: refused by the grammar search and 20 scored 0.5 or more (18 of them 0.7 or
#: more, mostly "yes" -> "sales"/"agent"); every "banana" stayed under 0.17.
DEFAULT_MIN_CONFIDENCE = 0.5

#: Where confidence is 0.5 on the ``z`` scale (nats per frame).  The lowest
#: measured in-set z was +0.17, so this leaves about 0.7 nat per frame of margin.
Z_MIDPOINT = -0.5
#: Slope of the logistic; z from -2 to 1 spans confidence 0.05 to 0.95.
Z_SLOPE = 2.0
#: Weight of missing coverage in ``z``: 10 % of the speech left out of the
#: phrase costs as much as 1 nat per frame of acoustic mismatch.
COVERAGE_WEIGHT = 10.0

#: pocketsphinx reports hypothesis scores scaled down by 2**10 (its
#: SENSCR_SHIFT; measured: the hypothesis score times 1024 equals the sum of
#: the segment acoustic scores).  Both searches share the scale.
_SCORE_SCALE = 1024

#: Less speech than this (in 20 ms frames at or above the endpointer threshold) is no input.
MIN_SPEECH_MS = 60

_MODEL_DIR = get_model_path("en-us/en-us")
_DICTIONARY = get_model_path("en-us/cmudict-en-us.dict")
_PHONE_LM = get_model_path("en-us/en-us-phone.lm.bin")

# The shipped model's feat.params, minus remove_noise (see the module comment).
_FEATURE_PARAMETERS = {
    "lowerf": 130, "upperf": 6800, "nfilt": 25, "transform": "dct", "lifter": 22,
    "feat": "1s_c_d_dd", "svspec": "0-12/13-25/26-38", "agc": "none", "cmn": "batch",
    "varnorm": False, "remove_noise": False,
}

_GRAMMAR_SEARCH = "menu"
_PHONE_SEARCH = "phones"
_WORD = re.compile(r"[a-z][a-z']*\Z")
_FILLER = re.compile(r"<.*>|\[.*\]|\(NULL\)\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class Recognition:
    """Result of one ``recognize`` call.

    ``phrase`` is one of the configured phrases, exactly as given, when
    ``outcome`` is ``"match"``, else None.  ``hypothesis`` is what the grammar
    search produced even when rejected (for logs and threshold tuning).
    """

    phrase: str | None
    confidence: float
    outcome: str
    hypothesis: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"recognition outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"recognition confidence {self.confidence} is outside 0..1")
        if (self.phrase is None) == (self.outcome == "match"):
            raise ValueError(f"recognition outcome {self.outcome!r} with phrase {self.phrase!r}")


# --- 8 kHz -> 16 kHz ---------------------------------------------------------

# Half-band interpolator: the odd output samples are a Hamming-windowed sinc
# at half-sample offsets, 16 taps; the even ones are the input samples.
_HALF_TAPS = 8
_INTERPOLATOR = tuple(
    math.sin(math.pi * x) / (math.pi * x) * (0.54 + 0.46 * math.cos(math.pi * x / _HALF_TAPS))
    for x in (k + 0.5 for k in range(-_HALF_TAPS, _HALF_TAPS))
)


def _samples(pcm: bytes) -> array.array:
    samples = array.array("h", pcm)
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


def _to_bytes(samples: array.array) -> bytes:
    if sys.byteorder != "little":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _clip(value: float) -> int:
    return -32768 if value < -32768 else 32767 if value > 32767 else int(round(value))


def _upsample(samples: array.array) -> array.array:
    count = len(samples)
    padded = [0] * (_HALF_TAPS - 1) + samples.tolist() + [0] * _HALF_TAPS
    taps = _INTERPOLATOR
    odd = [_clip(sum(h * x for h, x in zip(taps, padded[i:i + 2 * _HALF_TAPS]))) for i in range(count)]
    out = array.array("h", bytes(4 * count))
    out[0::2] = samples
    out[1::2] = array.array("h", odd)
    return out


def upsample_8k_to_16k(pcm: bytes) -> bytes:
    """Double the sample rate of 16-bit little-endian PCM with a 16-tap half-band FIR."""
    if len(pcm) % 2:
        raise ValueError(f"PCM data has odd length {len(pcm)}, expected 16-bit samples")
    return _to_bytes(_upsample(_samples(pcm)))


# Amplitude of the 4-8 kHz noise floor, about -29 dBFS RMS in that band only.
# Measured: 128 and 512 left 5 and 1 of 32 test utterances wrong, 2048 none.
_HIGH_BAND_AMPLITUDE = 2048
_HIGH_BAND_SEED = 0x5EED
_high_band: array.array | None = None
_high_band_lock = threading.Lock()


def _high_band_noise() -> array.array:
    """One second of fixed 4-8 kHz noise at 16 kHz, built once.

    Uniform noise at 8 kHz is interpolated (so it lies below 4 kHz at 16 kHz)
    and every other sample negated, which mirrors the band to 4-8 kHz.  A
    fixed linear congruential sequence keeps results reproducible.
    """
    global _high_band
    with _high_band_lock:
        if _high_band is None:
            state = _HIGH_BAND_SEED
            base = array.array("h")
            for _ in range(8000):
                state = (1103515245 * state + 12345) & 0x7FFFFFFF
                base.append((state >> 8) % (2 * _HIGH_BAND_AMPLITUDE + 1) - _HIGH_BAND_AMPLITUDE)
            low = _upsample(base)
            _high_band = array.array("h", (-s if k % 2 else s for k, s in enumerate(low)))
        return _high_band


def _front_end(pcm: bytes) -> bytes:
    """8 kHz call audio to the 16 kHz signal the decoder is fed."""
    speech = _upsample(_samples(pcm))
    noise = _high_band_noise()
    repeats = len(speech) // len(noise) + 1
    floor = (noise * repeats)[: len(speech)]
    return _to_bytes(array.array("h", (_clip(s + n) for s, n in zip(speech, floor))))


# --- recognition ---------------------------------------------------------------

def _normalise(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def _energetic_frames(pcm: bytes) -> set[int]:
    """10 ms frames (the decoder's frame rate) within 35 dB of the loudest one."""
    levels = [frame_level_dbfs(pcm[i:i + 160]) for i in range(0, len(pcm) - 159, 160)]
    if not levels:
        return set()
    floor = max(max(levels) - 35.0, -60.0)
    return {index for index, level in enumerate(levels) if level > floor}


class PhraseRecognizer:
    """A decoder restricted to exactly ``phrases``.

    Raises ``ValueError`` at construction for an empty or duplicate phrase, a
    word with characters other than letters and apostrophes, or a word missing
    from the shipped CMU dictionary (pocketsphinx 5 has no letter-to-sound
    rules; add the word to the dictionary or rephrase the menu).
    """

    def __init__(self, phrases: Sequence[str]) -> None:
        if isinstance(phrases, str):
            raise TypeError("phrases must be a sequence of strings, not one string")
        if not phrases:
            raise ValueError("a speech menu needs at least one phrase")
        self.phrases: tuple[str, ...] = tuple(phrases)
        self._by_text: dict[str, str] = {}
        for phrase in self.phrases:
            text = _normalise(phrase)
            if not text:
                raise ValueError(f"speech menu phrase {phrase!r} is empty")
            if text in self._by_text:
                raise ValueError(f"speech menu phrase {phrase!r} is listed twice")
            self._by_text[text] = phrase
        self._decoder = Decoder(
            hmm=None, mdef=f"{_MODEL_DIR}/mdef", mean=f"{_MODEL_DIR}/means", var=f"{_MODEL_DIR}/variances",
            tmat=f"{_MODEL_DIR}/transition_matrices", sendump=f"{_MODEL_DIR}/sendump",
            fdict=f"{_MODEL_DIR}/noisedict", dict=_DICTIONARY, lm=None, loglevel="FATAL",
            **_FEATURE_PARAMETERS,
        )
        for text, phrase in self._by_text.items():
            for word in text.split():
                if not _WORD.match(word):
                    raise ValueError(
                        f"speech menu phrase {phrase!r}: word {word!r} has characters other than letters"
                    )
                if self._decoder.lookup_word(word) is None:
                    raise ValueError(
                        f"speech menu phrase {phrase!r}: word {word!r} is not in the pronunciation dictionary"
                    )
        alternatives = " | ".join(self._by_text)
        self._decoder.add_jsgf_string(_GRAMMAR_SEARCH, f"#JSGF V1.0;\ngrammar menu;\npublic <menu> = {alternatives};\n")
        self._decoder.add_allphone_file(_PHONE_SEARCH, _PHONE_LM)
        self._lock = threading.Lock()

    def recognize(self, pcm: bytes, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Recognition:
        """Recognise one utterance of 8 kHz signed 16-bit little-endian PCM."""
        if len(pcm) % 2:
            raise ValueError(f"PCM data has odd length {len(pcm)}, expected 16-bit samples")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence {min_confidence} is outside 0..1")
        if not self._has_speech(pcm):
            return Recognition(phrase=None, confidence=0.0, outcome="no-input")
        audio = _front_end(pcm)
        with self._lock:
            hypothesis, score, words = self._decode(audio, _GRAMMAR_SEARCH)
            phrase = self._by_text.get(hypothesis or "")
            if phrase is None or not words:
                return Recognition(phrase=None, confidence=0.0, outcome="no-match", hypothesis=hypothesis or None)
            _, loop_score, _ = self._decode(audio, _PHONE_SEARCH)
        confidence = _confidence(score, loop_score, words, _energetic_frames(pcm))
        if confidence < min_confidence:
            return Recognition(phrase=None, confidence=confidence, outcome="no-match", hypothesis=hypothesis)
        return Recognition(phrase=phrase, confidence=confidence, outcome="match", hypothesis=hypothesis)

    @staticmethod
    def _has_speech(pcm: bytes) -> bool:
        needed = MIN_SPEECH_MS // 20
        for offset in range(0, len(pcm) - 319, 320):
            if frame_level_dbfs(pcm[offset:offset + 320]) >= DEFAULT_THRESHOLD_DBFS:
                needed -= 1
                if not needed:
                    return True
        return False

    def _decode(self, audio: bytes, search: str) -> tuple[str | None, float | None, set[int]]:
        """Run one search; return the hypothesis, its log score in nats and the frames of its words."""
        decoder = self._decoder
        decoder.activate_search(search)
        decoder.start_utt()
        decoder.process_raw(audio, full_utt=True)
        decoder.end_utt()
        result = decoder.hyp()
        if result is None or result.score <= 0.0:
            return None, None, set()
        frames = {
            frame
            for segment in decoder.seg()
            if not _FILLER.match(segment.word)
            for frame in range(segment.start_frame, segment.end_frame + 1)
        }
        return result.hypstr, math.log(result.score) * _SCORE_SCALE, frames


def _confidence(score: float | None, loop_score: float | None, words: set[int], energetic: set[int]) -> float:
    """Map the grammar/phone-loop score ratio and speech coverage to 0..1 (see the module comment)."""
    if score is None or loop_score is None or not words:
        return 0.0
    llr = (score - loop_score) / len(words)
    coverage = len(words & energetic) / len(energetic) if energetic else 1.0
    z = llr + COVERAGE_WEIGHT * (coverage - 1.0)
    return 1.0 / (1.0 + math.exp(-Z_SLOPE * (z - Z_MIDPOINT)))


class RecognizerCache:
    """Least-recently-used ``PhraseRecognizer``s keyed by the exact phrase tuple.

    Building a decoder reads the model and dictionary (about 0.1 s); a menu is
    asked many times with the same phrases.  ``max_size`` bounds memory: each
    decoder holds the dictionary, a few MB.
    """

    def __init__(self, max_size: int = 16) -> None:
        if max_size < 1:
            raise ValueError(f"recognizer cache max_size must be at least 1, got {max_size}")
        self.max_size = max_size
        self._recognizers: OrderedDict[tuple[str, ...], PhraseRecognizer] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._recognizers)

    def get(self, phrases: Sequence[str]) -> PhraseRecognizer:
        """The recognizer for ``phrases``, built on first use (``ValueError`` as for ``PhraseRecognizer``)."""
        key = tuple(phrases)
        with self._lock:
            recognizer = self._recognizers.get(key)
            if recognizer is not None:
                self._recognizers.move_to_end(key)
                return recognizer
        recognizer = PhraseRecognizer(key)
        with self._lock:
            recognizer = self._recognizers.setdefault(key, recognizer)
            self._recognizers.move_to_end(key)
            while len(self._recognizers) > self.max_size:
                self._recognizers.popitem(last=False)
        return recognizer
