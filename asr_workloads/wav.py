"""Mono 16-bit PCM WAV files, read and written with the standard library's ``wave`` module.

Samples are floats in ``[-1, 1)``: int16 ``s`` reads as ``s / 32768``; writing scales by
32768, rounds, and maps exactly ``+1.0`` to 32767 (the one value int16 cannot hold).
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from ..atomic import atomic_output

__all__ = ["WavError", "read_wav", "write_wav"]

FULL_SCALE = 32768


class WavError(ValueError):
    """A WAV file that is not mono 16-bit PCM, or not a WAV file at all; names the file."""


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a mono 16-bit PCM WAV file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    tuple of (numpy.ndarray, int)
        float32 samples in ``[-1, 1)`` and the sample rate in Hz.

    Raises
    ------
    WavError
        If the file is not a PCM WAV file, is not mono or does not hold 16-bit samples.
    FileNotFoundError
        If the file does not exist.
    """
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            rate = reader.getframerate()
            n_frames = reader.getnframes()
            if channels != 1:
                raise WavError(f"{path}: {channels} channels; only mono WAV files are supported")
            if width != 2:
                raise WavError(
                    f"{path}: {8 * width}-bit samples; only 16-bit PCM WAV files are supported"
                )
            data = reader.readframes(n_frames)
    except (wave.Error, EOFError) as error:
        raise WavError(f"{path}: not a PCM WAV file ({error or 'file too short'})") from None
    if len(data) != 2 * n_frames:
        raise WavError(f"{path}: truncated: header says {n_frames} samples, {len(data) // 2} found")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / FULL_SCALE
    return samples, rate


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono samples in ``[-1, 1]`` as a 16-bit PCM WAV file.

    The file is written under a temporary name beside ``path`` and renamed into place, so a
    failure never leaves a partial file behind.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace.
    audio : numpy.ndarray
        One-dimensional float samples in ``[-1, 1]``.
    sample_rate : int
        Rate in Hz.

    Raises
    ------
    ValueError
        If ``audio`` is not one-dimensional, holds non-finite values or values outside
        ``[-1, 1]``, or ``sample_rate`` is not a positive integer.
    """
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(
            f"{path}: audio must be one-dimensional (mono), not of shape {audio.shape}"
        )
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{path}: audio holds NaN or infinite samples")
    if len(audio) and np.max(np.abs(audio)) > 1:
        peak = int(np.argmax(np.abs(audio)))
        value = float(audio[peak])
        raise ValueError(f"{path}: sample {peak} is {value!r}, outside [-1, 1]; scale it first")
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate < 1:
        raise ValueError(f"{path}: sample_rate must be a positive integer, not {sample_rate!r}")
    pcm = np.clip(np.round(audio * FULL_SCALE), -FULL_SCALE, FULL_SCALE - 1).astype("<i2")
    with atomic_output(path) as temp, wave.open(str(temp), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())
