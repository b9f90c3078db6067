"""Audio augmentation (noise, gain, silence), vocal tract warping and SpecAugment masks."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.asr_workloads.corpus.augment import (
    AugmentConfig,
    augment_audio,
    coloured_noise,
    spec_augment,
    warp_vocal_tract,
)
from edgenpu.asr_workloads.frontend import FrontEndConfig, log_mel


def test_coloured_noise_spectral_slope():
    rng = np.random.default_rng(0)
    for exponent in (0.0, 1.0, 2.0):
        noise = coloured_noise(1 << 16, exponent, rng)
        assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(len(noise))
        band = (freqs > 0.001) & (freqs < 0.4)
        slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
        assert slope == pytest.approx(-exponent, abs=0.1)


def test_augment_snr_gain_and_silence():
    rate = 8000
    speech = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    cfg = AugmentConfig(
        noise_probability=1.0,
        snr_db=(10.0, 10.0),
        noise_exponent=(0.0, 0.0),
        gain_db=(-6.0, -6.0),
        lead_silence_s=(0.25, 0.25),
        trail_silence_s=(0.5, 0.5),
    )
    out = augment_audio(speech, rate, np.random.default_rng(1), cfg)
    assert len(out) == rate + 2000 + 4000
    gain = 10 ** (-6 / 20)
    noise = out / gain - np.concatenate([np.zeros(2000), speech, np.zeros(4000)])
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.01)


def test_augment_is_reproducible_and_clipped():
    speech = np.random.default_rng(0).uniform(-1, 1, 4000)
    cfg = AugmentConfig(gain_db=(10.0, 20.0))
    a = augment_audio(speech, 8000, np.random.default_rng(5), cfg)
    b = augment_audio(speech, 8000, np.random.default_rng(5), cfg)
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a)) <= 1.0


def test_augment_config_errors():
    with pytest.raises(ValueError) as info:
        AugmentConfig(snr_db=(30.0, 10.0))
    assert str(info.value) == (
        "snr_db must be a pair [lo, hi] with -20 <= lo <= hi <= 100, not (30.0, 10.0)"
    )
    with pytest.raises(ValueError, match=r"noise_probability must be a number in \[0, 1\]"):
        AugmentConfig(noise_probability=1.5)


def test_spec_augment_masks_bands_with_the_mean():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 40)).astype(np.float16)
    out = spec_augment(
        feats, np.random.default_rng(3), freq_masks=1, freq_width=10, time_masks=1,
        time_width=30, fill=99.0,
    )  # fmt: skip
    assert out.shape == feats.shape and out.dtype == feats.dtype
    masked = out == 99.0
    cols = np.flatnonzero(masked.all(axis=0))
    rows = np.flatnonzero(masked.all(axis=1))
    # Whole columns and whole rows, each one contiguous band, and nothing else touched.
    assert len(cols) <= 10 and len(rows) <= 30
    if len(cols):
        assert np.all(np.diff(cols) == 1)
    if len(rows):
        assert np.all(np.diff(rows) == 1)
    expected = np.zeros_like(masked)
    expected[:, cols] = True
    expected[rows] = True
    np.testing.assert_array_equal(masked, expected)
    np.testing.assert_array_equal(out[~masked], feats[~masked])
    assert not np.shares_memory(out, feats)


def test_spec_augment_statistics():
    feats = np.zeros((100, 40))
    widths_f, widths_t = [], []
    rng = np.random.default_rng(0)
    for _ in range(300):
        out = spec_augment(
            feats, rng, freq_masks=1, freq_width=8, time_masks=1, time_width=50, fill=1.0
        )
        widths_f.append(int(out.all(axis=0).sum()))
        widths_t.append(int(out.all(axis=1).sum()))
    # Widths uniform on [0, width]; time masks capped at 20% of 100 frames.
    assert set(widths_f) == set(range(9))
    assert set(widths_t) == set(range(21))


def test_spec_augment_default_fill_is_the_mean_and_errors():
    feats = np.arange(400, dtype=np.float32).reshape(20, 20)
    out = spec_augment(feats, np.random.default_rng(1), freq_masks=3, time_masks=0)
    changed = out != feats
    assert changed.any()
    np.testing.assert_allclose(out[changed], feats.mean())
    with pytest.raises(ValueError, match=r"features must be of shape \(T, n_mels\), not \(5,\)"):
        spec_augment(np.zeros(5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="time_masks must be a non-negative integer, not -1"):
        spec_augment(feats, np.random.default_rng(0), time_masks=-1)


def _tone_features(hz: float, cfg: FrontEndConfig) -> np.ndarray:
    t = np.arange(cfg.sample_rate // 2) / cfg.sample_rate
    return log_mel(0.5 * np.sin(2 * np.pi * hz * t), cfg.sample_rate, cfg).astype(np.float32)


@pytest.mark.parametrize("factor", [0.88, 1.0, 1.13])
def test_vocal_tract_warp_moves_a_tone_as_scaling_its_frequency_does(factor):
    # The warp of a 900 Hz tone's features is close to the features of a tone at
    # 900 * factor Hz: the same loudest band and the same levels beside it (further out,
    # interpolating log levels between band centres flattens the steep skirts).
    cfg = FrontEndConfig()
    warped = warp_vocal_tract(_tone_features(900.0, cfg), factor, cfg)
    scaled = _tone_features(900.0 * factor, cfg)
    assert warped.shape == scaled.shape and warped.dtype == np.float32
    mid = len(warped) // 2
    assert np.argmax(warped[mid]) == np.argmax(scaled[mid])
    peak = np.argmax(scaled[mid])
    assert warped[mid, peak] == pytest.approx(scaled[mid, peak], abs=0.5)
    near = slice(peak - 1, peak + 2)
    np.testing.assert_allclose(warped[mid, near], scaled[mid, near], atol=1.2)
    if factor == 1.0:
        np.testing.assert_array_equal(warped, _tone_features(900.0, cfg))


def test_vocal_tract_warp_holds_the_edge_bands_and_rejects_bad_input():
    cfg = FrontEndConfig(n_mels=8, f_min=100.0)
    ramp = np.tile(np.arange(8, dtype=np.float64), (3, 1))
    up, down = warp_vocal_tract(ramp, 1.3, cfg), warp_vocal_tract(ramp, 0.7, cfg)
    # Formants move up, so every band reads from a lower band, and the first band has
    # nothing below it; moving down, the last band has nothing above it.
    assert up[0, 0] == 0 and np.all(up[0, 1:] < ramp[0, 1:]) and np.all(np.diff(up[0]) >= 0)
    assert down[0, -1] == 7 and np.all(down[0, :-1] > ramp[0, :-1])
    with pytest.raises(ValueError, match="must be of shape"):
        warp_vocal_tract(np.zeros((3, 5)), 1.1, cfg)
    with pytest.raises(ValueError, match="must be positive"):
        warp_vocal_tract(ramp, 0.0, cfg)
