"""The integer semantics of every quantized step, in numpy, from :mod:`edgenpu.fixedpoint`.

This is the ground truth compiled programs are checked against: each function computes
exactly what the instructions the lowering emits for that step compute, because both apply
the ISA's rules (int32 wrapping accumulation, rounding shifts, saturation, 256-entry
tables) in the same order. Codes are int64 arrays.
"""

from __future__ import annotations

import numpy as np

from edgenpu.fixedpoint import requantize, rounding_shift_right, saturate, wrap_int32

from .formats import (
    CELL_FRAC,
    FC_SHIFT,
    GATE_FRAC,
    IG_SHIFT,
    LUT_ONE,
    OH_SHIFT,
    SIGMOID_M1,
    TANH,
    LutFunction,
)
from .qir import QWeights, Requant

__all__ = ["accumulate", "add", "gate", "linear", "lstm", "lstm_gates", "lut", "relu"]

_LUT_CACHE: dict[str, np.ndarray] = {}


def accumulate(x: np.ndarray, weights: QWeights, bias: np.ndarray | None) -> np.ndarray:
    """``saturate32(wrap32(x W^T) + bias)`` for rows of int8 ``x``: the MAC array's int32
    sum, then the bias added by the vector unit (one ``vadd`` whose bias operand repeats
    every row, instead of a DMA copying the bias into every output row)."""
    # float64 sums of int8 x int8 products are exact far below 2**53 (as in the simulator).
    acc = wrap_int32(
        (np.asarray(x, np.float64) @ weights.codes.T.astype(np.float64)).astype(np.int64)
    )
    return acc if bias is None else saturate(acc + bias, 32)


def linear(
    x: np.ndarray, weights: QWeights, bias: np.ndarray | None, rq: Requant, bits: int
) -> np.ndarray:
    """``requantize(accumulate(x, W, bias))`` to ``bits``."""
    return requantize(accumulate(x, weights, bias), rq.multipliers, rq.shift, bits)


def lut(x: np.ndarray, function: LutFunction, shift: int) -> np.ndarray:
    """``vlut``: ``table[saturate8(x >> shift) + 128]``."""
    if function.name not in _LUT_CACHE:
        _LUT_CACHE[function.name] = function.table().astype(np.int64)
    index = saturate(rounding_shift_right(x, shift), 8) + 128
    return _LUT_CACHE[function.name][index]


def add(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """``vadd``: ``saturate(a + b)``."""
    return saturate(np.asarray(a, np.int64) + b, bits)


def relu(x: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """``vrelu``: ``saturate(max(x >> shift, 0))``."""
    return saturate(np.maximum(rounding_shift_right(x, shift), 0), bits)


def gate(pre: np.ndarray) -> np.ndarray:
    """An LSTM gate from its int16 pre-activation at ``GATE_FRAC``: ``sigmoid`` as int16
    codes ``0 .. LUT_ONE`` at ``LUT_OUT_FRAC``.

    ``vlut`` through :data:`SIGMOID_M1` (``sigmoid - 1``, int8), then ``vadd`` of
    :data:`LUT_ONE` into int16: a saturated gate is exactly 1 (an int8 sigmoid stops at
    127/128).
    """
    return add(lut(pre, SIGMOID_M1, SIGMOID_M1.shift_from(GATE_FRAC)), LUT_ONE, 16)


def lstm_gates(gates: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One cell update from int16 gate pre-activations at ``GATE_FRAC`` (i, f, g, o) and the
    int16 cell state: returns ``(h', c')``.

    The order of operations is the lowering's, instruction for instruction:
    ``i, f, o = gate`` (int16, ``0 .. LUT_ONE``), ``g = tanh`` (int8),
    ``c' = sat16(sat16(f c >> FC) + sat16(i g >> IG))``, ``h' = sat8(o tanh(c') >> OH)``,
    each ``>>`` rounding half up. ``f c >> FC`` is ``c + (f - 1) c >> FC`` and never
    saturates (``|f| <= 1``), so a forget gate of 1 keeps the cell exactly:
    ``c' = sat16(c + (i g >> IG))``.
    """
    i, f, g, o = np.split(gates, 4, axis=-1)
    i, f, o = gate(i), gate(f), gate(o)
    g = lut(g, TANH, TANH.shift_from(GATE_FRAC))
    fc = saturate(rounding_shift_right(f * c, FC_SHIFT), 16)
    ig = saturate(rounding_shift_right(i * g, IG_SHIFT), 16)
    c_new = add(fc, ig, 16)
    tc = lut(c_new, TANH, TANH.shift_from(CELL_FRAC))
    h_new = saturate(rounding_shift_right(o * tc, OH_SHIFT), 8)
    return h_new, c_new


def lstm(
    x: np.ndarray,
    w_ih: QWeights,
    w_hh: QWeights,
    bias: np.ndarray,
    rq_ih: Requant,
    rq_hh: Requant,
    h: np.ndarray,
    c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An LSTM layer over the rows of int8 ``x`` from state ``(h, c)``: ``(y, h, c)``.

    The input projection of every row is independent of the recurrence, so it is computed
    first (as the hoisted matrix-matrix op does); each step then adds the recurrent
    projection at the gate format: ``gates = sat16(gx + gh)``.
    """
    gx = linear(x, w_ih, bias, rq_ih, 16)
    h, c = np.asarray(h, np.int64).reshape(-1), np.asarray(c, np.int64).reshape(-1)
    y = np.empty((len(x), len(h)), np.int64)
    for t in range(len(x)):
        gh = linear(h[None], w_hh, None, rq_hh, 16)[0]
        h, c = lstm_gates(add(gx[t], gh, 16), c)
        y[t] = h
    return y, h[None], c[None]
