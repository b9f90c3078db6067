"""Data augmentation in numpy: noisy, quieter or louder, padded audio; vocal tract length
perturbation; SpecAugment masks.

Synthesized speech is clean, level and tightly trimmed; device audio is none of these. The
audio augmentations (``augment_audio``) are applied once, when the corpus is built, so the
cache holds them; ``warp_vocal_tract`` and ``spec_augment`` are applied by the trainer to
every batch, so each epoch sees a different voice and different masks.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..frontend import FrontEndConfig, hz_to_mel, mel_edges
from ..resample import as_audio

__all__ = [
    "AugmentConfig",
    "augment_audio",
    "coloured_noise",
    "spec_augment",
    "warp_vocal_tract",
]


def _range(name: str, value: object, low: float, high: float) -> tuple[float, float]:
    """A ``(lo, hi)`` pair inside ``[low, high]`` with ``lo <= hi``."""
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not low <= value[0] <= value[1] <= high
    ):
        raise ValueError(
            f"{name} must be a pair [lo, hi] with {low:g} <= lo <= hi <= {high:g}, not {value!r}"
        )
    return float(value[0]), float(value[1])


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges the audio augmentations draw from (uniformly) for each utterance.

    Parameters
    ----------
    noise_probability : float
        Chance that an utterance gets additive noise at all.
    snr_db : tuple of float
        Signal-to-noise ratio range in dB, the signal's power taken over the speech only.
    noise_exponent : tuple of float
        Range of ``a`` in the noise's power spectrum ``1 / f**a``: 0 is white, 1 pink,
        2 brown (rumble-like).
    gain_db : tuple of float
        Gain range in dB; the result is clipped to ``[-1, 1]`` as an ADC would.
    lead_silence_s, trail_silence_s : tuple of float
        Ranges of the silence (seconds) added before and after the speech.
    """

    noise_probability: float = 0.8
    snr_db: tuple[float, float] = (5.0, 40.0)
    noise_exponent: tuple[float, float] = (0.0, 2.0)
    gain_db: tuple[float, float] = (-20.0, 3.0)
    lead_silence_s: tuple[float, float] = (0.0, 0.4)
    trail_silence_s: tuple[float, float] = (0.0, 0.4)

    def __post_init__(self) -> None:
        p = self.noise_probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ValueError(f"noise_probability must be a number in [0, 1], not {p!r}")
        checks = {
            "snr_db": (-20, 100),
            "noise_exponent": (0, 3),
            "gain_db": (-60, 20),
            "lead_silence_s": (0, 10),
            "trail_silence_s": (0, 10),
        }
        for name, (low, high) in checks.items():
            object.__setattr__(self, name, _range(name, getattr(self, name), low, high))


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of Gaussian noise with power spectrum ``1 / f**exponent``, unit RMS.

    White noise is shaped in the frequency domain; the DC bin is zeroed (a power law
    diverges there, and an offset is not noise a microphone would pass).
    """
    if n == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    scale = np.zeros_like(freqs)
    scale[1:] = freqs[1:] ** (-exponent / 2)
    noise = np.fft.irfft(spectrum * scale, n)
    rms = math.sqrt(float(np.mean(noise**2)))
    return noise / rms if rms > 0 else noise


def augment_audio(
    audio: np.ndarray, sample_rate: int, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray:
    """Pad with silence, add coloured noise at a random SNR, apply a random gain.

    Parameters
    ----------
    audio : numpy.ndarray
        Mono speech samples in ``[-1, 1]``.
    sample_rate : int
        Their rate (for the silence lengths).
    rng : numpy.random.Generator
        Source of every random choice (the same state gives the same output).
    cfg : AugmentConfig
        The ranges to draw from.

    Returns
    -------
    numpy.ndarray
        float64 samples in ``[-1, 1]``, longer than ``audio`` by the added silence.
    """
    x = as_audio(audio)
    lead = round(rng.uniform(*cfg.lead_silence_s) * sample_rate)
    trail = round(rng.uniform(*cfg.trail_silence_s) * sample_rate)
    speech_power = float(np.mean(x**2)) if len(x) else 0.0
    y = np.concatenate([np.zeros(lead), x, np.zeros(trail)])
    # Draw every value whether it is used or not, so one choice never shifts the others.
    add_noise = rng.random() < cfg.noise_probability
    snr_db = rng.uniform(*cfg.snr_db)
    exponent = rng.uniform(*cfg.noise_exponent)
    gain_db = rng.uniform(*cfg.gain_db)
    noise = coloured_noise(len(y), exponent, rng)
    if add_noise and speech_power > 0:
        y = y + noise * math.sqrt(speech_power / 10 ** (snr_db / 10))
    return np.clip(y * 10 ** (gain_db / 20), -1.0, 1.0)


def warp_vocal_tract(features: np.ndarray, factor: float, cfg: FrontEndConfig) -> np.ndarray:
    """Vocal tract length perturbation of log-mel features (Jaitly and Hinton, 2013).

    A vocal tract ``1 / factor`` times as long scales every formant by ``factor``: the new
    spectrum at ``f`` is the old one at ``f / factor``. Each band takes the old features at
    that frequency of its centre, interpolated linearly between the neighbouring bands'
    centres on the mel axis; frequencies beyond the first or last centre take that band's
    value. Working on the cached features, not the audio, lets every epoch draw a new
    factor for every utterance at the cost of one interpolation.

    Parameters
    ----------
    features : numpy.ndarray
        Shape ``(T, n_mels)``: log-mel features of ``cfg`` (before normalization); not
        modified.
    factor : float
        Formant scale; 1 returns the features unchanged.
    cfg : FrontEndConfig
        The front end that computed ``features`` (its mel bands' centres).

    Returns
    -------
    numpy.ndarray
        The warped features, of the same shape and dtype.
    """
    feats = np.asarray(features)
    if feats.ndim != 2 or feats.shape[1] != cfg.n_mels:
        raise ValueError(f"features must be of shape (T, {cfg.n_mels}), not {feats.shape}")
    if not factor > 0:
        raise ValueError(f"the warp factor must be positive, not {factor}")
    centres_hz = mel_edges(cfg)[1:-1]
    bands = np.arange(cfg.n_mels)
    source = np.interp(hz_to_mel(centres_hz / factor), hz_to_mel(centres_hz), bands)
    below = np.floor(source).astype(np.int64)
    above = np.minimum(below + 1, cfg.n_mels - 1)
    weight = (source - below).astype(feats.dtype)
    return feats[:, below] * (1 - weight) + feats[:, above] * weight


def spec_augment(
    features: np.ndarray,
    rng: np.random.Generator,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 20,
    max_time_fraction: float = 0.2,
    fill: float | None = None,
) -> np.ndarray:
    """SpecAugment's frequency and time masks on one utterance's log-mel features.

    Each mask overwrites a band of consecutive mel channels (or frames) whose width is drawn
    uniformly from ``[0, width]``, at a uniformly drawn start (Park et al., 2019; no time
    warping).

    Parameters
    ----------
    features : numpy.ndarray
        Shape ``(T, n_mels)``; not modified.
    rng : numpy.random.Generator
        Source of the mask positions and widths.
    freq_masks, freq_width : int
        Number of frequency masks and their largest width in mel channels.
    time_masks, time_width : int
        Number of time masks and their largest width in frames.
    max_time_fraction : float
        A time mask never covers more than this fraction of the ``T`` frames, so short
        utterances are not wiped out.
    fill : float or None
        Value written under the masks; ``None`` means the utterance's mean (log-mel values are
        not centred, so 0 would be a loud, unnatural value).

    Returns
    -------
    numpy.ndarray
        A masked copy, of the same shape and dtype.
    """
    feats = np.asarray(features)
    if feats.ndim != 2:
        raise ValueError(f"features must be of shape (T, n_mels), not {feats.shape}")
    for name, value in (
        ("freq_masks", freq_masks),
        ("freq_width", freq_width),
        ("time_masks", time_masks),
        ("time_width", time_width),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    if not 0 <= max_time_fraction <= 1:
        raise ValueError(f"max_time_fraction must be in [0, 1], not {max_time_fraction!r}")
    out = feats.copy()
    if out.size == 0:
        return out
    value = float(np.mean(feats, dtype=np.float64)) if fill is None else fill
    n_frames, n_mels = out.shape
    for _ in range(freq_masks):
        width = int(rng.integers(0, min(freq_width, n_mels) + 1))
        start = int(rng.integers(0, n_mels - width + 1))
        out[:, start : start + width] = value
    longest = min(time_width, int(max_time_fraction * n_frames))
    for _ in range(time_masks):
        width = int(rng.integers(0, longest + 1))
        start = int(rng.integers(0, n_frames - width + 1))
        out[start : start + width] = value
    return out
