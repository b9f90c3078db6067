"""Fixed-point arithmetic: the exact rounding, saturation and requantization rules.

Every simulator, the compiler's quantized reference and (by construction from the same
rules) the RTL vector unit use these functions, so bit-exactness is a matter of calling
them, not of re-deriving them.

Conventions
-----------
* Quantization is **symmetric** everywhere (zero point 0): a real zero is the code 0, which
  is what lets the MAC array's zero-skip logic recognise zero activations and weights.
* Values are carried as ``int64`` numpy arrays between steps; every intermediate fits:
  operands are at most int32, so a product is at most 2**62 in magnitude.
* **Rounding** is round-half-up (towards +infinity) after an arithmetic right shift:
  ``(x >> s) + bit(s - 1) of x``. That is what ``(x + 2**(s-1)) >> s`` computes, written so
  that it cannot overflow, and it is one adder in hardware.
* **Saturation** clamps to the destination's two's complement range.
* **Accumulation** in the MAC array wraps modulo 2**32 (int32 adders); only the vector
  unit saturates.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAX_SHIFT",
    "quantize_multipliers",
    "requantize",
    "rounding_shift_right",
    "saturate",
    "wrap_int32",
]

#: The ``shift`` field of vector instructions is 6 bits wide.
MAX_SHIFT = 63
#: Multipliers are int32 words in accumulator memory.
_MULTIPLIER_BITS = 31


def rounding_shift_right(x: np.ndarray, shift: int) -> np.ndarray:
    """Arithmetic right shift by ``shift`` with round-half-up; ``shift == 0`` is identity.

    Parameters
    ----------
    x : array of int64
    shift : int
        0 .. 63.
    """
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"shift must be in 0..{MAX_SHIFT}, not {shift}")
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x
    return (x >> shift) + ((x >> (shift - 1)) & 1)


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    """Clamp ``x`` to the signed ``bits``-bit range."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Reduce ``x`` modulo 2**32 into the int32 range (two's complement wrap-around)."""
    return np.asarray(x, dtype=np.int64).astype(np.int32).astype(np.int64)


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """``saturate(rounding_shift_right(acc * multiplier, shift), bits)``.

    This is the vector unit's ``vmul`` with an int32 multiplier operand, the step that
    takes an int32 accumulator to the int8/int16 scale of the next layer.
    """
    product = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    return saturate(rounding_shift_right(product, shift), bits)


def quantize_multipliers(scales: np.ndarray | float) -> tuple[np.ndarray, int]:
    """Integer multipliers and one shared shift that approximate real ``scales``.

    ``scales[i] ~= multipliers[i] / 2**shift``. The shift is the largest that keeps every
    multiplier within int32, so the largest scale keeps 31 significant bits and a scale
    1000x smaller still keeps 21: a shared shift costs no accuracy that matters, and it
    lets one instruction requantize a whole per-channel vector.

    Raises
    ------
    ValueError
        If a scale is not positive and finite, or the largest is too large for a 32-bit
        multiplier (>= 2**31) or too small for a 63-bit shift.
    """
    s = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"scales must be positive and finite, got {s[:4]}...")
    largest = float(s.max())
    # Largest shift with round(largest * 2**shift) < 2**31.
    shift = min(MAX_SHIFT, _MULTIPLIER_BITS - 1 - int(np.floor(np.log2(largest))))
    while shift >= 0 and np.round(largest * 2.0**shift) >= 1 << _MULTIPLIER_BITS:
        shift -= 1
    if shift < 0:
        raise ValueError(f"scale {largest} is too large for a 32-bit multiplier")
    multipliers = np.round(s * 2.0**shift).astype(np.int64)
    if multipliers.max() == 0:
        raise ValueError(f"scale {largest} is too small for a {MAX_SHIFT}-bit shift")
    return multipliers, shift
