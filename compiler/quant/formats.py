"""The fixed-point formats of compiled RNN-T kernels: defined here once, derived everywhere.

Every activation is a signed integer code with a scale; a *fraction* ``f`` means the scale
``2**-f``. Weights are per-row int8/int4 codes (:mod:`edgenpu.asr_workloads.weight_quant`);
accumulators are int32 and are brought to the next format by one ``vmul`` with a per-row
int32 multiplier and a shared shift (:func:`edgenpu.fixedpoint.requantize`).

The LSTM runs in fixed formats chosen from the ranges of its functions, so it needs no
calibration and never depends on the input:

====================  =======  ========  ===========================================
value                 type     fraction  why
====================  =======  ========  ===========================================
gate pre-activation   int16    10        +-32: sigmoid and tanh are flat long before
sigmoid LUT index     int8     4         +-8: sigmoid(8) = 0.99966
tanh LUT index        int8     5         +-4: tanh(4) = 0.99933
LUT output, h         int8     7         +-1: every table output and h lies in [-1, 1]
gates i, f, o         int16    7         [0, 1]: sigmoid - 1 from a table, plus 1
cell state c          int16    11        +-16: |c| grows by at most 1 a step
====================  =======  ========  ===========================================

An int8 code at 7 fraction bits reaches -1 but not +1 (127/128 at most). A forget gate
capped there would decay every cell by at least 1/128 a step, however saturated its
pre-activation, so the LSTM's gates are tabulated less one (:data:`SIGMOID_M1`, in
``[-1, 0]``: both ends exact) and :data:`LUT_ONE` is added back in int16.

The three products of the cell update then need only shifts (:data:`FC_SHIFT` and the
others are derived below, not written twice).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgenpu import fixedpoint
from edgenpu.isa import LUT_ENTRIES

__all__ = [
    "CELL_FRAC",
    "FC_SHIFT",
    "GATE_FRAC",
    "IG_SHIFT",
    "LUT_ONE",
    "LUT_OUT_FRAC",
    "OH_SHIFT",
    "SIGMOID",
    "SIGMOID_M1",
    "STATE_FRAC",
    "TANH",
    "LutFunction",
    "fraction_for_bound",
    "quantize_activation",
    "round_half_up",
]

GATE_FRAC = 10
CELL_FRAC = 11
LUT_OUT_FRAC = 7
#: h, the LSTM's output, is a LUT output times a LUT output brought back to int8.
STATE_FRAC = LUT_OUT_FRAC
#: 1 at LUT_OUT_FRAC: not an int8 code; what turns a :data:`SIGMOID_M1` code into a gate.
LUT_ONE = 1 << LUT_OUT_FRAC

#: f * c: (LUT_OUT + CELL) fraction bits down to CELL.
FC_SHIFT = LUT_OUT_FRAC
#: i * g: 2 LUT_OUT fraction bits down to CELL.
IG_SHIFT = 2 * LUT_OUT_FRAC - CELL_FRAC
#: o * tanh(c): 2 LUT_OUT fraction bits down to STATE.
OH_SHIFT = 2 * LUT_OUT_FRAC - STATE_FRAC


class LutFunction:
    """A function tabulated for ``vlut``: 256 int8 inputs at ``in_frac`` -> int8 at
    :data:`LUT_OUT_FRAC`.

    Parameters
    ----------
    name : str
        The table's name in reports and the DRAM image (``"sigmoid"``, ``"tanh"``).
    function : callable
        The float function, vectorised over a float64 array.
    in_frac : int
        Fraction of the table's int8 index.
    """

    def __init__(self, name: str, function: Callable[[np.ndarray], np.ndarray], in_frac: int):
        self.name, self.function, self.in_frac = name, function, in_frac

    def table(self) -> np.ndarray:
        """The 256 int8 entries, index ``i`` holding ``f((i - 128) 2**-in_frac)``, rounded
        half up and saturated (sigmoid's 1.0 becomes 127/128)."""
        x = (np.arange(LUT_ENTRIES, dtype=np.float64) - LUT_ENTRIES // 2) * 2.0**-self.in_frac
        return quantize_activation(self.function(x), 2.0**-LUT_OUT_FRAC).astype(np.int8)

    def shift_from(self, frac: int) -> int:
        """The ``vlut`` shift that takes a value at ``frac`` to this table's index."""
        if frac < self.in_frac:
            raise ValueError(f"{self.name} needs at least {self.in_frac} fraction bits, got {frac}")
        return frac - self.in_frac

    def __repr__(self) -> str:
        return f"LutFunction({self.name}, in_frac={self.in_frac})"


SIGMOID = LutFunction("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)), 4)
TANH = LutFunction("tanh", np.tanh, 5)
#: The LSTM's gates: ``sigmoid(x) - 1``, written ``-sigmoid(-x)`` to spare the cancellation.
#: Its codes plus :data:`LUT_ONE` are sigmoid's, rounded the same way, but reach 1.
SIGMOID_M1 = LutFunction("sigmoid_m1", lambda x: -1.0 / (1.0 + np.exp(x)), SIGMOID.in_frac)


def fraction_for_bound(bound: float, bits: int, lo: int = 0, hi: int = 24) -> int:
    """The most fraction bits that keep ``|x| <= bound`` inside a signed ``bits`` code,
    clipped to ``[lo, hi]``."""
    if not bound > 0 or not math.isfinite(bound):
        return hi
    fits = math.floor(math.log2(((1 << (bits - 1)) - 1) / bound))
    return max(lo, min(hi, fits))


def round_half_up(x: np.ndarray) -> np.ndarray:
    """Real values to the nearest integer, halves up (the rounding of
    :mod:`edgenpu.fixedpoint`), as int64."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def quantize_activation(x: np.ndarray, scale: float, bits: int = 8) -> np.ndarray:
    """The rule for real values to codes (the host's float inputs, table entries, biases):
    ``saturate(round_half_up(x / scale))``, as int64."""
    return fixedpoint.saturate(round_half_up(np.asarray(x, dtype=np.float64) / scale), bits)
