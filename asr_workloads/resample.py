"""Sample-rate conversion: a polyphase windowed-sinc resampler in numpy, whole-signal and
streaming, bit-identical to each other (both compute every output sample by the same
routine, :func:`_resample_outputs`). The ratio is reduced by its gcd, so 8 kHz <-> 16 kHz
and any other integer ratio are exact; the signal counts as zero outside the input.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ResampleStream", "as_audio", "check_positive_int", "resample"]

# Windowed-sinc resampler: zero crossings of the sinc on each side, passband edge as a
# fraction of the lower Nyquist frequency, Kaiser window shape. 16 crossings and beta 8.6
# keep aliasing below about -80 dB; the 0.94 roll-off leaves room for the transition band.
RESAMPLE_ZEROS = 16
RESAMPLE_ROLLOFF = 0.94
RESAMPLE_BETA = 8.6


def check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def as_audio(audio: np.ndarray) -> np.ndarray:
    """One-dimensional float64 samples; anything else is rejected with its shape or dtype."""
    array = np.asarray(audio)
    if array.ndim != 1:
        raise ValueError(f"audio must be one-dimensional (mono), not of shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"audio must hold real numbers, not {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("audio holds NaN or infinite samples")
    return array


def _kaiser(x: np.ndarray, beta: float) -> np.ndarray:
    """Continuous Kaiser window on ``[-1, 1]`` (zero outside)."""
    inside = np.abs(x) <= 1
    arg = np.sqrt(np.clip(1 - x * x, 0, None))
    return np.where(inside, np.i0(beta * arg) / np.i0(beta), 0.0)


def _resample_taps(up: int, down: int) -> tuple[np.ndarray, int]:
    """Polyphase filter table ``(up, taps)`` and the taps' offset before the output instant.

    Output ``m`` sits at input time ``m * down / up``; with ``base = m * down // up`` and
    phase ``r = m * down % up`` it is ``sum_j x[base - half + j] * table[r, j]``.
    """
    cutoff = 0.5 * RESAMPLE_ROLLOFF * min(1.0, up / down)  # cycles per input sample
    reach = RESAMPLE_ZEROS / (2 * cutoff)  # input samples on each side
    half = math.ceil(reach)
    offsets = np.arange(-half, half + 2)  # input index relative to base
    phases = np.arange(up)[:, None] / up
    tau = phases - offsets[None, :]  # output instant minus input instant
    table = 2 * cutoff * np.sinc(2 * cutoff * tau) * _kaiser(tau / reach, RESAMPLE_BETA)
    # Each phase sums to one so a constant passes unchanged whatever the ratio.
    table /= table.sum(axis=1, keepdims=True)
    return table, half


def _ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """``(up, down)``: the resampling ratio ``to_rate / from_rate`` in lowest terms."""
    check_positive_int("from_rate", from_rate)
    check_positive_int("to_rate", to_rate)
    g = math.gcd(from_rate, to_rate)
    return to_rate // g, from_rate // g


# Outputs computed per block, to bound the (outputs x taps) gather's memory.
RESAMPLE_BLOCK = 8192


def _resample_outputs(
    held: np.ndarray, held_start: int, ms: np.ndarray, up: int, down: int, table: np.ndarray
) -> np.ndarray:
    """Outputs ``ms`` from ``held``, the input samples from index ``held_start`` on.

    Each output is an elementwise product and a sum along one row, so its value depends only
    on its own taps, never on how many outputs are computed together: the batch and the
    streaming resampler agree bit for bit.
    """
    if len(ms) == 0:
        return np.zeros(0)
    half = (table.shape[1] - 2) // 2
    windows = np.lib.stride_tricks.sliding_window_view(held, table.shape[1])
    out = np.empty(len(ms))
    for lo in range(0, len(ms), RESAMPLE_BLOCK):
        block = ms[lo : lo + RESAMPLE_BLOCK]
        first_tap = block * down // up - half - held_start
        out[lo : lo + RESAMPLE_BLOCK] = np.sum(
            windows[first_tap] * table[block * down % up], axis=1
        )
    return out


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample by the exact rational ratio ``to_rate / from_rate`` (windowed sinc).

    Parameters
    ----------
    audio : numpy.ndarray
        Mono samples.
    from_rate, to_rate : int
        Sample rates in Hz; the ratio is reduced by their gcd, so 8 kHz <-> 16 kHz is 1:2.

    Returns
    -------
    numpy.ndarray
        float64 samples, ``ceil(len(audio) * to_rate / from_rate)`` of them; the signal is
        taken as zero outside ``audio``. Equal rates return a copy.
    """
    up, down = _ratio(from_rate, to_rate)
    x = as_audio(audio)
    if up == down:
        return x.copy()
    table, half = _resample_taps(up, down)
    n_out = -(-len(x) * up // down)
    padded = np.concatenate([np.zeros(half), x, np.zeros(table.shape[1])])
    return _resample_outputs(padded, -half, np.arange(n_out), up, down, table)


class ResampleStream:
    """``resample`` for audio that arrives in pieces, equal bit for bit to the batch form.

    Each output needs input up to about ``RESAMPLE_ZEROS`` periods of the lower rate past
    its instant, so ``push`` returns the outputs whose taps have all arrived and ``finish``
    the rest (taking the signal as zero after its end, as ``resample`` does).

    Parameters
    ----------
    from_rate, to_rate : int
        Input and output sample rates in Hz.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._up, self._down = _ratio(from_rate, to_rate)
        self._table, self._half = _resample_taps(self._up, self._down)
        self._held = np.zeros(self._half)  # input from index _held_start on (zeros before 0)
        self._held_start = -self._half
        self._received = 0
        self._next = 0  # index of the next output to produce
        self._finished = False

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add input samples; return the outputs now complete (float64, possibly none)."""
        if self._finished:
            raise ValueError("resample stream already finished; start a new one")
        x = as_audio(samples)
        if self._up == self._down:
            return x.copy()
        self._held = np.concatenate([self._held, x])
        self._received += len(x)
        # Output m is complete when its last tap, input m*down//up + half + 1, has arrived.
        last_base = self._received - self._half - 2
        stop = ((last_base + 1) * self._up - 1) // self._down + 1 if last_base >= 0 else 0
        return self._emit(max(stop, self._next))

    def finish(self) -> np.ndarray:
        """End the input; return the remaining outputs."""
        if self._finished:
            raise ValueError("resample stream already finished; start a new one")
        self._finished = True
        if self._up == self._down:
            return np.zeros(0)
        self._held = np.concatenate([self._held, np.zeros(self._table.shape[1])])
        return self._emit(-(-self._received * self._up // self._down))

    def _emit(self, stop: int) -> np.ndarray:
        ms = np.arange(self._next, stop)
        out = _resample_outputs(self._held, self._held_start, ms, self._up, self._down, self._table)
        self._next = stop
        # Input before the next output's first tap is never needed again.
        keep_from = self._next * self._down // self._up - self._half
        self._held = self._held[keep_from - self._held_start :]
        self._held_start = keep_from
        return out


# --- framing and spectra ----------------------------------------------------------------------
