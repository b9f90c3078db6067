"""Mono 16-bit WAV reading and writing, and the errors for everything else."""

from __future__ import annotations

import re
import wave

import numpy as np
import pytest

from edgenpu.asr_workloads.wav import WavError, read_wav, write_wav


def raw_wav(path, channels: int, width: int, rate: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)


def test_round_trip_is_exact_on_the_int16_grid(tmp_path):
    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, 1000)
    audio = pcm / 32768
    write_wav(tmp_path / "a.wav", audio, 8000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back * 32768, pcm)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temporary left


def test_full_scale_and_rounding(tmp_path):
    write_wav(tmp_path / "b.wav", np.array([1.0, -1.0, 0.4 / 32768, 0.6 / 32768]), 16000)
    with wave.open(str(tmp_path / "b.wav"), "rb") as reader:
        pcm = np.frombuffer(reader.readframes(4), dtype="<i2")
    np.testing.assert_array_equal(pcm, [32767, -32768, 0, 1])


def test_reads_what_the_wave_module_wrote(tmp_path):
    raw_wav(tmp_path / "c.wav", 1, 2, 22050, np.array([0, 16384, -32768], "<i2").tobytes())
    audio, rate = read_wav(tmp_path / "c.wav")
    assert rate == 22050
    np.testing.assert_array_equal(audio, [0.0, 0.5, -1.0])


def test_rejects_a_file_that_is_not_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("not audio at all")
    with pytest.raises(WavError, match=rf"^{re.escape(str(path))}: not a PCM WAV file \("):
        read_wav(path)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(WavError, match=rf"^{re.escape(str(empty))}: not a PCM WAV file"):
        read_wav(empty)


def test_rejects_stereo(tmp_path):
    path = tmp_path / "stereo.wav"
    raw_wav(path, 2, 2, 8000, bytes(8))
    with pytest.raises(
        WavError, match=rf"^{re.escape(str(path))}: 2 channels; only mono WAV files are supported$"
    ):
        read_wav(path)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_rejects_other_sample_widths(tmp_path, width):
    path = tmp_path / f"w{width}.wav"
    raw_wav(path, 1, width, 8000, bytes(4 * width))
    with pytest.raises(
        WavError,
        match=rf"^{re.escape(str(path))}: {8 * width}-bit samples; only 16-bit PCM WAV files",
    ):
        read_wav(path)


def test_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "cut.wav"
    raw_wav(path, 1, 2, 8000, bytes(200))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(
        WavError, match=rf"^{re.escape(str(path))}: truncated: header says 100 samples, 75 found"
    ):
        read_wav(path)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros((4, 2)), 8000, r"audio must be one-dimensional \(mono\), not of shape \(4, 2\)"),
        (np.array([0.0, np.inf]), 8000, "audio holds NaN or infinite samples"),
        (np.array([0.0, -1.5]), 8000, r"sample 1 is -1.5, outside \[-1, 1\]"),
        (np.zeros(4), 8000.0, "sample_rate must be a positive integer, not 8000.0"),
    ],
)
def test_write_rejects_bad_input_and_leaves_nothing(tmp_path, audio, rate, message):
    path = tmp_path / "bad.wav"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
        write_wav(path, audio, rate)
    assert list(tmp_path.iterdir()) == []
