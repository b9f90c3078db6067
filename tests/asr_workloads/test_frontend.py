"""The log-mel front end against independent computations, streaming against batch, and on
real spoken digits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edgenpu.asr_workloads.frontend import (
    FrontEndConfig,
    LogMelStream,
    features,
    frames,
    hz_to_mel,
    log_mel,
    mel_edges,
    mel_filterbank,
    mel_to_hz,
    normalize,
    power_spectrum,
    stack_and_subsample,
)
from edgenpu.asr_workloads.resample import ResampleStream, resample
from edgenpu.asr_workloads.wav import read_wav

FSDD = Path(__file__).parents[2] / ".." / "shared" / "data" / "fsdd" / "recordings"


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


# --- config -----------------------------------------------------------------------------------


def test_config_derived_values():
    cfg = FrontEndConfig()
    assert (cfg.window_samples, cfg.hop_samples, cfg.n_fft) == (400, 160, 512)
    assert FrontEndConfig(sample_rate=8000).n_fft == 256
    assert FrontEndConfig(window_ms=32).n_fft == 512  # exactly a power of two: kept
    assert FrontEndConfig(n_mels=40, stack=3).feature_dim == 120
    assert cfg.mel_f_max == 8000


def test_config_round_trips_through_dict():
    cfg = FrontEndConfig(n_mels=40, preemphasis=0.97, stack=4, subsample=3, f_max=7600.0)
    assert FrontEndConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sample_rate": 0}, "sample_rate must be a positive integer, not 0"),
        ({"n_mels": 40.0}, "n_mels must be a positive integer, not 40.0"),
        ({"stack": True}, "stack must be a positive integer, not True"),
        ({"window_ms": 25.03}, "window_ms must be a whole number of samples at 16000 Hz"),
        ({"hop_ms": -1}, "hop_ms must be a positive number, not -1"),
        ({"hop_ms": 30}, "hop_ms must not exceed window_ms, not 30 > 25.0"),
        ({"window": "blackman"}, "window must be one of hann, hamming, not 'blackman'"),
        ({"f_max": 9000}, "f_max must be a number up to sample_rate / 2 = 8000, not 9000"),
        ({"f_min": 5000, "f_max": 4000}, "f_min must be below f_max, not 5000 >= 4000.0"),
        ({"log_floor": 0}, "log_floor must be a positive number, not 0"),
        ({"preemphasis": 1.0}, r"preemphasis must be in \[0, 1\), not 1.0"),
    ],
)
def test_config_rejects_bad_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        FrontEndConfig(**fields)


def test_from_dict_names_unknown_key():
    with pytest.raises(ValueError, match="unknown front-end config key 'nmels'"):
        FrontEndConfig.from_dict({"nmels": 40})


# --- resampling -------------------------------------------------------------------------------


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 16000), (16000, 8000), (22050, 16000)])
def test_resample_keeps_a_sines_frequency_and_energy(from_rate, to_rate):
    x = tone(1000.0, from_rate, 0.5)
    y = resample(x, from_rate, to_rate)
    assert len(y) == -(-len(x) * to_rate // from_rate)
    assert abs(dominant_frequency(y, to_rate) - 1000.0) <= to_rate / len(y)
    # Away from the edges (where the signal was cut), the RMS is that of the sine.
    middle = y[len(y) // 4 : 3 * len(y) // 4]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=2e-3)
    # Against the exact sine at the new rate, sample by sample.
    expected = tone(1000.0, to_rate, len(y) / to_rate)
    np.testing.assert_allclose(middle, expected[len(y) // 4 : 3 * len(y) // 4], atol=2e-3)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 16000), (16000, 8000), (44100, 16000)])
def test_resample_passes_a_constant_unchanged(from_rate, to_rate):
    y = resample(np.full(2000, 0.25), from_rate, to_rate)
    # Away from the edges every output is a full, unit-sum filter over the constant.
    np.testing.assert_allclose(y[len(y) // 4 : 3 * len(y) // 4], 0.25, rtol=1e-12)


def test_downsampling_removes_what_the_new_rate_cannot_hold():
    x = tone(5000.0, 16000, 0.5)  # above 4 kHz, would alias to 3 kHz
    y = resample(x, 16000, 8000)
    middle = y[len(y) // 4 : 3 * len(y) // 4]
    assert np.sqrt(np.mean(middle**2)) < 1e-3


def test_resample_same_rate_is_a_copy_and_empty_stays_empty():
    x = np.arange(5.0)
    y = resample(x, 8000, 8000)
    np.testing.assert_array_equal(x, y)
    assert y is not x
    assert resample(np.zeros(0), 8000, 16000).shape == (0,)


# --- frames and spectra -----------------------------------------------------------------------


def test_frames_cut_without_padding():
    cfg = FrontEndConfig(sample_rate=8000)  # 200-sample window, 80-sample hop
    x = np.arange(1000.0)
    framed = frames(x, cfg)
    assert framed.shape == (1 + (1000 - 200) // 80, 200)
    np.testing.assert_array_equal(framed[3], x[240:440])
    assert frames(x[:199], cfg).shape == (0, 200)


def test_power_spectrum_equals_a_direct_dft():
    cfg = FrontEndConfig()
    rng = np.random.default_rng(1)
    frame = rng.standard_normal(cfg.window_samples)
    n = np.arange(cfg.window_samples)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.window_samples)
    k = np.arange(cfg.n_fft // 2 + 1)[:, None]
    dft = (hann * frame * np.exp(-2j * np.pi * k * n / cfg.n_fft)).sum(axis=1)
    np.testing.assert_allclose(power_spectrum(frame, cfg), np.abs(dft) ** 2, rtol=1e-9, atol=1e-9)


# --- mel filterbank ---------------------------------------------------------------------------


def test_htk_mel_formula():
    assert hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # the scale's anchor
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([0.0, 440.0, 8000.0])), [0, 440, 8000])


@pytest.mark.parametrize(("rate", "n_mels"), [(16000, 80), (16000, 40), (8000, 40)])
def test_filterbank_triangles_follow_the_formula(rate, n_mels):
    cfg = FrontEndConfig(sample_rate=rate, n_mels=n_mels)
    bank = mel_filterbank(cfg)
    assert bank.shape == (n_mels, cfg.n_fft // 2 + 1)
    mels = np.linspace(
        2595 * np.log10(1 + cfg.f_min / 700), 2595 * np.log10(1 + rate / 2 / 700), n_mels + 2
    )
    corners = 700 * (10 ** (mels / 2595) - 1)
    np.testing.assert_allclose(mel_edges(cfg), corners)
    bins = np.arange(cfg.n_fft // 2 + 1) * rate / cfg.n_fft
    for i in range(n_mels):
        low, peak, high = corners[i : i + 3]
        row = bank[i]
        # Zero outside the triangle, at most 1 inside, largest at a bin beside the peak.
        assert np.all(row[(bins <= low) | (bins >= high)] == 0)
        assert row.max() <= 1
        inside = np.flatnonzero(row)
        assert inside.size and low < bins[inside].min() and bins[inside].max() < high
        below = np.flatnonzero(bins <= peak)[-1]
        assert np.argmax(row) in (below, below + 1)
        # Each weight is the triangle's height at the bin.
        for k in inside:
            f = bins[k]
            expected = (f - low) / (peak - low) if f <= peak else (high - f) / (high - peak)
            assert row[k] == pytest.approx(expected)
    # Neighbouring triangles cross-fade: between the first and last peak the weights sum to 1.
    middle = (bins >= corners[1]) & (bins <= corners[-2])
    np.testing.assert_allclose(bank[:, middle].sum(axis=0), 1.0)


def test_config_rejects_a_mel_band_without_fft_bins():
    with pytest.raises(ValueError, match="n_mels = 128 is too many for n_fft = 256 at 8000 Hz"):
        FrontEndConfig(sample_rate=8000, n_mels=128, f_min=0.0)


# --- log-mel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("n_mels", [40, 80])
def test_a_1khz_tone_peaks_in_the_1khz_band(rate, n_mels):
    cfg = FrontEndConfig(n_mels=n_mels)  # features at 16 kHz whatever the input rate
    feats = log_mel(tone(1000.0, rate, 0.5), rate, cfg)
    assert feats.dtype == np.float32
    assert feats.shape == (1 + (8000 - 400) // 160, n_mels)
    peaks = mel_edges(cfg)[1:-1]
    expected_band = int(np.argmin(np.abs(peaks - 1000.0)))
    middle = feats[5:-5]
    assert np.all(np.argmax(middle, axis=1) == expected_band)


def test_log_mel_floors_silence():
    cfg = FrontEndConfig(log_floor=1e-6)
    feats = log_mel(np.zeros(16000), 16000, cfg)
    np.testing.assert_array_equal(feats, np.float32(np.log(1e-6)))


def test_log_mel_is_the_log_of_the_filterbank_energies():
    cfg = FrontEndConfig(n_mels=40, window="hamming", preemphasis=0.97)
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.5, 0.5, 4000)
    feats = log_mel(x, 16000, cfg)
    emphasised = x - 0.97 * np.concatenate([[0.0], x[:-1]])
    frame = emphasised[7 * 160 : 7 * 160 + 400]
    hamming = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(400) / 400)
    power = np.abs(np.fft.rfft(frame * hamming, 512)) ** 2
    np.testing.assert_allclose(feats[7], np.log(mel_filterbank(cfg) @ power), rtol=1e-6)


def test_log_mel_rejects_bad_audio():
    cfg = FrontEndConfig()
    with pytest.raises(ValueError, match=r"audio must be one-dimensional \(mono\), not of shape"):
        log_mel(np.zeros((100, 2)), 16000, cfg)
    with pytest.raises(ValueError, match="audio holds NaN or infinite samples"):
        log_mel(np.array([0.0, np.nan]), 16000, cfg)


# --- stacking ---------------------------------------------------------------------------------


def test_stack_and_subsample():
    feats = np.arange(7 * 2).reshape(7, 2)
    out = stack_and_subsample(feats, 3, 2)
    # Stacks start at frames 0, 2, 4 (the one at 6 would run past the end).
    np.testing.assert_array_equal(
        out, [[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9], [8, 9, 10, 11, 12, 13]]
    )
    np.testing.assert_array_equal(stack_and_subsample(feats, 1, 1), feats)
    assert stack_and_subsample(feats[:2], 3, 1).shape == (0, 6)
    with pytest.raises(ValueError, match="subsample must be a positive integer, not 0"):
        stack_and_subsample(feats, 2, 0)


def test_features_use_the_configs_stacking():
    cfg = FrontEndConfig(n_mels=40, stack=3, subsample=3)
    x = tone(440.0, 16000, 1.0)
    out = features(x, 16000, cfg)
    np.testing.assert_array_equal(out, stack_and_subsample(log_mel(x, 16000, cfg), 3, 3))
    assert out.shape == (-(-(98 - 2) // 3), 120)


# --- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_streaming_equals_batch_exactly(seed):
    rng = np.random.default_rng(seed)
    cfg = FrontEndConfig(
        sample_rate=[8000, 16000][seed % 2],
        n_mels=[40, 80][seed // 2 % 2],
        preemphasis=[0.0, 0.97][seed % 2],
    )
    x = rng.uniform(-1, 1, int(rng.integers(cfg.sample_rate // 2, cfg.sample_rate)))
    batch = log_mel(x, cfg.sample_rate, cfg)
    stream = LogMelStream(cfg)
    pieces, start = [], 0
    while start < len(x):
        # Chunk sizes from empty to several frames, so frames complete 0, 1 or many at a time.
        size = int(rng.integers(0, 3 * cfg.window_samples))
        pieces.append(stream.push(x[start : start + size]))
        start += size
    assert stream.finish().shape == (0, cfg.n_mels)  # nothing held back at the model's rate
    streamed = np.concatenate(pieces)
    assert streamed.dtype == np.float32
    np.testing.assert_array_equal(streamed, batch)


def random_pieces(rng: np.random.Generator, x: np.ndarray, largest: int) -> list[np.ndarray]:
    cuts = np.cumsum(rng.integers(0, largest, len(x)))
    return np.split(x, cuts[cuts < len(x)])


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 16000), (16000, 8000), (44100, 16000)])
def test_streaming_resampler_equals_batch_exactly(from_rate, to_rate):
    rng = np.random.default_rng(from_rate + to_rate)
    x = rng.uniform(-1, 1, 3001)
    stream = ResampleStream(from_rate, to_rate)
    pieces = [stream.push(piece) for piece in random_pieces(rng, x, 300)]
    # Outputs come out as soon as their taps are in: all but the last few before finish().
    tail = stream.finish()
    assert len(tail) <= 2 * 16 * max(1, to_rate // from_rate) + 2
    np.testing.assert_array_equal(np.concatenate([*pieces, tail]), resample(x, from_rate, to_rate))
    with pytest.raises(ValueError, match="resample stream already finished; start a new one"):
        stream.push(x)


@pytest.mark.parametrize("seed", range(2))
def test_streaming_at_8khz_equals_batch_exactly(seed):
    rng = np.random.default_rng(seed)
    cfg = FrontEndConfig(n_mels=40, preemphasis=0.97 * seed)
    x = rng.uniform(-1, 1, 6000)
    stream = LogMelStream(cfg, sample_rate=8000)
    pieces = [stream.push(piece) for piece in random_pieces(rng, x, 500)]
    pieces.append(stream.finish())
    np.testing.assert_array_equal(np.concatenate(pieces), log_mel(x, 8000, cfg))


# --- real recordings --------------------------------------------------------------------------

RECORDINGS = ["3_jackson_0.wav", "7_nicolas_12.wav", "0_george_5.wav"]


@pytest.mark.parametrize("name", RECORDINGS)
def test_real_digits_energy_envelope_follows_the_speech(name):
    path = FSDD / name
    if not path.exists():
        pytest.skip(f"FSDD recording {name} not found beside the project at {FSDD}")
    audio, rate = read_wav(path)
    assert rate == 8000
    cfg = FrontEndConfig(n_mels=40)
    feats = log_mel(audio, rate, cfg)
    n_frames = 1 + (len(audio) * 2 - 400) // 160
    assert feats.shape == (n_frames, 40)
    assert np.all(np.isfinite(feats))
    # Frame energy from the waveform itself (at the same frame times) ...
    framed = frames(audio.astype(np.float64), FrontEndConfig(sample_rate=8000))
    energy_db = 10 * np.log10(np.mean(framed**2, axis=1) + 1e-12)
    # ... rises and falls with the total mel energy: strongly correlated, loudest in the same
    # place, the waveform's quietest quarter of frames below its loudest quarter in mel energy
    # too, and the take starts and ends well below its peak (onset and decay of the word).
    mel_db = 10 * np.log10(np.exp(feats.astype(np.float64)).sum(axis=1))
    assert np.corrcoef(energy_db, mel_db)[0, 1] > 0.95
    assert abs(int(np.argmax(energy_db)) - int(np.argmax(mel_db))) <= 2
    order, quarter = np.argsort(energy_db), n_frames // 4
    assert mel_db[order[:quarter]].max() < mel_db[order[-quarter:]].min()
    assert max(mel_db[0], mel_db[-1]) < mel_db.max() - 10
    # The streaming front end gives the same frames on real speech, pushed 10 ms at a time.
    stream = LogMelStream(cfg, sample_rate=rate)
    pushed = [stream.push(audio[i : i + 80]) for i in range(0, len(audio), 80)]
    np.testing.assert_array_equal(np.concatenate([*pushed, stream.finish()]), feats)


def test_normalize_uses_the_configs_statistics_and_round_trips():
    cfg = FrontEndConfig(n_mels=4, mean=[1, 2, 3, 4], std=[1, 2, 4, 8])
    assert cfg.mean == (1.0, 2.0, 3.0, 4.0)
    assert FrontEndConfig.from_dict(cfg.to_dict()) == cfg
    out = normalize(np.array([[1.0, 4.0, 7.0, 12.0]]), cfg)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, 1.0, 1.0, 1.0]])
    plain = np.ones((2, 4))
    np.testing.assert_array_equal(normalize(plain, FrontEndConfig(n_mels=4)), plain)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mean": [0.0] * 4}, "mean and std must be given together"),
        ({"mean": [0.0] * 3, "std": [1.0] * 3}, "mean must be a list of n_mels = 4 numbers"),
        ({"mean": [0.0] * 4, "std": [1.0, 1.0, 0.0, 1.0]}, "std must be positive, not 0.0"),
        ({"mean": [float("nan")] * 4, "std": [1.0] * 4}, "mean must hold finite numbers"),
    ],
)
def test_bad_statistics_are_named(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FrontEndConfig(n_mels=4, **fields)
