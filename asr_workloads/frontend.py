"""The log-mel front end: the same numpy code for training features and the on-device runtime.

Audio (float, nominally in ``[-1, 1]``) is resampled to the configured rate if needed,
optionally pre-emphasised, cut into frames (no padding: frame ``t`` covers samples
``[t * hop, t * hop + window)``), windowed, transformed with a real FFT of ``n_fft`` points,
turned into a power spectrum, weighted by an **HTK-style** mel filterbank
(``mel(f) = 2595 log10(1 + f / 700)``; triangles of peak 1, no area normalisation) and
logged with a floor, then optionally normalised per band with the training corpus's mean and
standard deviation (``normalize``; the statistics are part of the config, so a model and its
front end travel together). ``stack_and_subsample`` then concatenates neighbouring frames and keeps
every k-th stack, which is what the encoder consumes.

``LogMelStream`` (with ``ResampleStream`` for other input rates) computes the same frames
from audio that arrives in pieces; its output is *bit-identical* to ``log_mel`` of the whole
signal, because batch and stream share the per-output routines (``_resample_outputs``,
``_frames_to_log_mel``), which compute every output on its own, so no batched FFT or matrix
product can round differently for different batch sizes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .resample import ResampleStream, as_audio, check_positive_int, resample

__all__ = [
    "FrontEndConfig",
    "LogMelStream",
    "check_input_rate",
    "features",
    "frames",
    "hz_to_mel",
    "log_mel",
    "mel_filterbank",
    "mel_to_hz",
    "normalize",
    "power_spectrum",
    "stack_and_subsample",
]

WINDOWS = ("hann", "hamming")


@dataclasses.dataclass(frozen=True)
class FrontEndConfig:
    """Parameters of the log-mel front end, stored in a model's metadata.

    Parameters
    ----------
    sample_rate : int
        Rate (Hz) the features are computed at; other input rates are resampled to it.
    window_ms, hop_ms : float
        Frame length and frame step in milliseconds; each must be a whole number of samples.
    n_mels : int
        Number of mel bands (40 and 80 are the usual choices).
    f_min : float
        Lower edge (Hz) of the lowest mel filter.
    f_max : float or None
        Upper edge (Hz) of the highest mel filter; ``None`` means ``sample_rate / 2``.
    window : str
        Frame window: ``"hann"`` or ``"hamming"`` (periodic forms, as for spectral analysis).
    log_floor : float
        Mel energies below this are clamped before the log, so silence gives a finite value.
    preemphasis : float
        Coefficient ``a`` of ``y[n] = x[n] - a x[n-1]`` (``x[-1] = 0``); 0 turns it off.
    stack : int
        Number of consecutive frames concatenated into one encoder input.
    subsample : int
        Keep every ``subsample``-th stacked frame.
    mean, std : tuple of float or None
        Per-band statistics of the training features (``n_mels`` each, ``std`` positive);
        ``normalize`` maps a log-mel frame ``x`` to ``(x - mean) / std``. Both or neither.
    """

    sample_rate: int = 16000
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 80
    f_min: float = 20.0
    f_max: float | None = None
    window: str = "hann"
    log_floor: float = 1e-10
    preemphasis: float = 0.0
    stack: int = 1
    subsample: int = 1
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int("sample_rate", self.sample_rate)
        check_positive_int("n_mels", self.n_mels)
        check_positive_int("stack", self.stack)
        check_positive_int("subsample", self.subsample)
        for name in ("window_ms", "hop_ms"):
            value = getattr(self, name)
            if not _is_real(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, not {value!r}")
            samples = value * self.sample_rate / 1000
            if abs(samples - round(samples)) > 1e-9:
                raise ValueError(
                    f"{name} must be a whole number of samples at {self.sample_rate} Hz, "
                    f"not {value!r} ({samples:g} samples)"
                )
        if self.hop_samples > self.window_samples:
            raise ValueError(
                f"hop_ms must not exceed window_ms, not {self.hop_ms!r} > {self.window_ms!r}"
            )
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, not {self.window!r}")
        if not _is_real(self.f_min) or self.f_min < 0:
            raise ValueError(f"f_min must be a non-negative number, not {self.f_min!r}")
        if self.f_max is not None and (
            not _is_real(self.f_max) or self.f_max > self.sample_rate / 2
        ):
            raise ValueError(
                f"f_max must be a number up to sample_rate / 2 = {self.sample_rate / 2:g}, "
                f"not {self.f_max!r}"
            )
        if self.mel_f_max <= self.f_min:
            raise ValueError(f"f_min must be below f_max, not {self.f_min!r} >= {self.mel_f_max!r}")
        if not _is_real(self.log_floor) or not self.log_floor > 0:
            raise ValueError(f"log_floor must be a positive number, not {self.log_floor!r}")
        if not _is_real(self.preemphasis) or not 0 <= self.preemphasis < 1:
            raise ValueError(f"preemphasis must be in [0, 1), not {self.preemphasis!r}")
        self._check_statistics()
        # A mel band narrower than the FFT's bin spacing would be silent forever: reject the
        # config here, where it is made, rather than when the first audio arrives.
        mel_filterbank(self)

    def _check_statistics(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must be given together")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, list | tuple) or len(value) != self.n_mels:
                raise ValueError(f"{name} must be a list of n_mels = {self.n_mels} numbers")
            if not all(_is_real(v) and math.isfinite(v) for v in value):
                raise ValueError(f"{name} must hold finite numbers")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"std must be positive, not {min(self.std)!r}")

    @property
    def window_samples(self) -> int:
        """Frame length in samples."""
        return round(self.window_ms * self.sample_rate / 1000)

    @property
    def hop_samples(self) -> int:
        """Frame step in samples."""
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def n_fft(self) -> int:
        """FFT length: the smallest power of two that holds a frame."""
        return 1 << (self.window_samples - 1).bit_length()

    @property
    def mel_f_max(self) -> float:
        """Upper edge of the filterbank in Hz (``f_max``, or Nyquist when unset)."""
        return self.sample_rate / 2 if self.f_max is None else float(self.f_max)

    @property
    def feature_dim(self) -> int:
        """Width of one encoder input: ``stack * n_mels``."""
        return self.stack * self.n_mels

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON/YAML-ready values (derived values are not stored)."""
        data = dataclasses.asdict(self)
        for name in ("mean", "std"):
            if data[name] is not None:
                data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontEndConfig:
        """Rebuild a config from ``to_dict`` output, rejecting unknown keys by name."""
        if not isinstance(data, dict):
            raise TypeError(f"front-end config must be a mapping, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown front-end config key {unknown[0]!r}")
        return cls(**data)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _preemphasise(x: np.ndarray, a: float, previous: float) -> np.ndarray:
    """``y[n] = x[n] - a x[n-1]`` with ``previous`` standing for ``x[-1]``."""
    if a == 0 or len(x) == 0:
        return x
    shifted = np.concatenate([[previous], x[:-1]])
    return x - a * shifted


def frames(audio: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """Cut audio (at ``cfg.sample_rate``) into frames, without padding.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(T, window_samples)`` with
        ``T = 1 + (len(audio) - window) // hop`` (0 if the audio is shorter than a window).
    """
    x = as_audio(audio)
    win, hop = cfg.window_samples, cfg.hop_samples
    if len(x) < win:
        return np.zeros((0, win))
    return np.lib.stride_tricks.sliding_window_view(x, win)[::hop].copy()


def window_function(cfg: FrontEndConfig) -> np.ndarray:
    """The periodic frame window of ``cfg.window_samples`` points."""
    n = np.arange(cfg.window_samples)
    phase = 2 * np.pi * n / cfg.window_samples
    if cfg.window == "hann":
        return 0.5 - 0.5 * np.cos(phase)
    return 0.54 - 0.46 * np.cos(phase)


def power_spectrum(frame: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """``|FFT(window * frame)|^2`` over ``n_fft // 2 + 1`` bins (the frame zero-padded)."""
    spectrum = np.fft.rfft(np.asarray(frame, dtype=np.float64) * window_function(cfg), cfg.n_fft)
    return spectrum.real**2 + spectrum.imag**2


# --- mel filterbank ---------------------------------------------------------------------------


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_edges(cfg: FrontEndConfig) -> np.ndarray:
    """The ``n_mels + 2`` filter corner frequencies (Hz), evenly spaced in HTK mel.

    Filter ``i`` rises from ``edges[i]`` to its peak at ``edges[i + 1]`` and falls to
    ``edges[i + 2]``.
    """
    mels = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.mel_f_max), cfg.n_mels + 2)
    return mel_to_hz(mels)


def mel_filterbank(cfg: FrontEndConfig) -> np.ndarray:
    """Triangular HTK mel filters over the FFT bins, peak 1 (no area normalisation).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_mels, n_fft // 2 + 1)``; weight of bin ``k`` (at
        ``k * sample_rate / n_fft`` Hz) in each filter, linear in Hz between the corners.

    Raises
    ------
    ValueError
        If some filter covers no FFT bin (too many mel bands for the FFT resolution).
    """
    edges = mel_edges(cfg)
    bins = np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    lower, peak, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (peak - lower)
    falling = (upper - bins) / (upper - peak)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)
    empty = np.flatnonzero(bank.max(axis=1) == 0)
    if len(empty):
        raise ValueError(
            f"n_mels = {cfg.n_mels} is too many for n_fft = {cfg.n_fft} at "
            f"{cfg.sample_rate} Hz: mel filter {empty[0]} "
            f"({edges[empty[0]]:.1f}-{edges[empty[0] + 2]:.1f} Hz) covers no FFT bin"
        )
    return bank


# --- log-mel features -------------------------------------------------------------------------


def _frames_to_log_mel(framed: np.ndarray, cfg: FrontEndConfig, bank: np.ndarray) -> np.ndarray:
    """Log-mel of each frame, one frame at a time.

    One frame per FFT and per matrix-vector product on purpose: the result of a frame then
    cannot depend on how many frames are processed together, which keeps the streaming
    front end bit-identical to the batch one.
    """
    out = np.empty((len(framed), cfg.n_mels), dtype=np.float32)
    for t, frame in enumerate(framed):
        energies = bank @ power_spectrum(frame, cfg)
        out[t] = np.log(np.maximum(energies, cfg.log_floor))
    return out


def log_mel(audio: np.ndarray, sample_rate: int, cfg: FrontEndConfig) -> np.ndarray:
    """Log-mel features of a whole signal.

    Parameters
    ----------
    audio : numpy.ndarray
        Mono samples, nominally in ``[-1, 1]``.
    sample_rate : int
        Rate of ``audio``; resampled to ``cfg.sample_rate`` when different.
    cfg : FrontEndConfig
        Front-end parameters.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(T, n_mels)`` (see ``frames`` for ``T``).
    """
    x = resample(audio, sample_rate, cfg.sample_rate)
    x = _preemphasise(x, cfg.preemphasis, 0.0)
    return _frames_to_log_mel(frames(x, cfg), cfg, mel_filterbank(cfg))


def stack_and_subsample(feats: np.ndarray, stack: int, subsample: int) -> np.ndarray:
    """Concatenate ``stack`` consecutive frames and keep every ``subsample``-th result.

    Output row ``i`` is ``feats[i * subsample : i * subsample + stack]`` flattened, for every
    ``i`` whose frames all exist: ``ceil((T - stack + 1) / subsample)`` rows (0 if
    ``T < stack``) of ``stack * n_mels`` values.
    """
    check_positive_int("stack", stack)
    check_positive_int("subsample", subsample)
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"features must be of shape (T, n_mels), not {feats.shape}")
    n_frames, width = feats.shape
    if n_frames < stack:
        return np.zeros((0, stack * width), dtype=feats.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(feats, (stack, width))[:, 0]
    return windows[::subsample].reshape(-1, stack * width).copy()


def check_input_rate(sample_rate: int, cfg: FrontEndConfig) -> None:
    """Refuse audio recorded at a lower rate than the front end's.

    Resampling up would run, but the band between the two Nyquist frequencies would be
    empty, which the model never saw in training: its transcripts would be quietly worse.
    """
    if sample_rate < cfg.sample_rate:
        raise ValueError(
            f"sample rate {sample_rate} Hz is below the model's {cfg.sample_rate} Hz "
            f"(the audio lacks the band from {sample_rate // 2} to {cfg.sample_rate // 2} Hz)"
        )


def normalize(feats: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """Log-mel frames ``(T, n_mels)`` normalised with the config's statistics (float32).

    Without statistics in the config the frames are returned as float32, unchanged.
    """
    feats = np.asarray(feats, dtype=np.float32)
    if cfg.mean is None:
        return feats
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    return (feats - mean) / std


def features(audio: np.ndarray, sample_rate: int, cfg: FrontEndConfig) -> np.ndarray:
    """Encoder inputs: ``log_mel``, ``normalize``, then ``stack_and_subsample``."""
    return stack_and_subsample(
        normalize(log_mel(audio, sample_rate, cfg), cfg), cfg.stack, cfg.subsample
    )


class LogMelStream:
    """Log-mel frames of audio that arrives in pieces, equal bit for bit to ``log_mel``.

    The frames returned by every ``push`` and then by ``finish``, concatenated, are exactly
    ``log_mel(whole_signal, sample_rate, cfg)``. At ``cfg.sample_rate`` every frame comes out
    as soon as its last sample arrives and ``finish`` returns none; at another input rate the
    resampler holds back a few milliseconds, which ``finish`` flushes.

    Parameters
    ----------
    cfg : FrontEndConfig
        Front-end parameters.
    sample_rate : int or None
        Rate of the pushed samples; ``None`` means ``cfg.sample_rate``.
    """

    def __init__(self, cfg: FrontEndConfig, sample_rate: int | None = None) -> None:
        self.cfg = cfg
        rate = cfg.sample_rate if sample_rate is None else sample_rate
        self._resampler = ResampleStream(rate, cfg.sample_rate)
        self._bank = mel_filterbank(cfg)
        self._pending = np.zeros(0)  # pre-emphasised samples not yet consumed by a frame
        self._last_raw = 0.0  # x[n-1] for the pre-emphasis of the next sample

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the frames they complete, float32 ``(k, n_mels)`` (k may be 0)."""
        return self._frames_of(self._resampler.push(samples))

    def finish(self) -> np.ndarray:
        """End the input; return the frames still held back by the resampler."""
        return self._frames_of(self._resampler.finish())

    def _frames_of(self, x: np.ndarray) -> np.ndarray:
        emphasised = _preemphasise(x, self.cfg.preemphasis, self._last_raw)
        if len(x):
            self._last_raw = float(x[-1])
        self._pending = np.concatenate([self._pending, emphasised])
        framed = frames(self._pending, self.cfg)
        self._pending = self._pending[len(framed) * self.cfg.hop_samples :]
        return _frames_to_log_mel(framed, self.cfg, self._bank)
