"""WAV prompt loading: 8 kHz mono 16-bit only, with errors that name the file."""

import struct
import wave

import pytest

from acd.media.wav import read_wav_pcm16_8k, write_wav_pcm16_8k


def write_wav(path, *, channels=1, width=2, rate=8000, frames=b"\x00\x00" * 8):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)


def test_write_then_read_gives_the_same_samples(tmp_path):
    pcm = struct.pack("<4h", 0, 32767, -32768, -1)
    path = tmp_path / "prompt.wav"
    write_wav_pcm16_8k(path, pcm)
    assert read_wav_pcm16_8k(path) == pcm
    assert read_wav_pcm16_8k(str(path)) == pcm
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)


def test_empty_file_of_the_right_format_reads_as_no_samples(tmp_path):
    path = tmp_path / "empty.wav"
    write_wav_pcm16_8k(path, b"")
    assert read_wav_pcm16_8k(path) == b""


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": 2, "frames": b"\x00" * 8}, "has 2 channels, expected mono"),
        ({"rate": 16000}, "is 16000 Hz, expected 8000 Hz"),
        ({"width": 1, "frames": b"\x80" * 8}, "has 8-bit samples, expected 16-bit"),
    ],
    ids=["stereo", "16khz", "8bit"],
)
def test_wrong_format_raises_value_error_naming_file_and_problem(tmp_path, kwargs, message):
    path = tmp_path / "bad.wav"
    write_wav(path, **kwargs)
    with pytest.raises(ValueError) as info:
        read_wav_pcm16_8k(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_all_problems_are_reported_together(tmp_path):
    path = tmp_path / "cd.wav"
    write_wav(path, channels=2, rate=44100, width=2, frames=b"\x00" * 8)
    with pytest.raises(ValueError, match="has 2 channels, expected mono, is 44100 Hz, expected 8000 Hz"):
        read_wav_pcm16_8k(path)


def test_non_wav_file_raises_value_error_naming_the_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_bytes(b"ID3\x03\x00 this is an mp3")
    with pytest.raises(ValueError, match=r"notes\.wav' is not a 16-bit PCM WAV file"):
        read_wav_pcm16_8k(path)


def test_truncated_wav_raises_value_error(tmp_path):
    path = tmp_path / "cut.wav"
    write_wav(path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"cut\.wav' is not a 16-bit PCM WAV file"):
        read_wav_pcm16_8k(path)


def test_missing_file_raises_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_wav_pcm16_8k(tmp_path / "missing.wav")


def test_write_rejects_odd_length_pcm(tmp_path):
    with pytest.raises(ValueError, match="odd length 3"):
        write_wav_pcm16_8k(tmp_path / "x.wav", b"\x00\x01\x02")
