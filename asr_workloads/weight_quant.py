"""The weight quantization rule: symmetric, per output channel, int8 or int4.

Defined once and used by quantization-aware training (on torch tensors), by the bundled
checkpoint format and its numpy model, and by the compiler. The functions take an array
namespace ``xp`` (``numpy`` or ``torch``) so that both apply the very same arithmetic:

* ``scale[c] = max_k |w[c, k]| / qmax`` per output channel (row) ``c``, with ``qmax`` the
  largest code (127 for int8, 7 for int4); an all-zero row gets scale 1 (its codes are 0
  whatever the scale).
* ``code = clip(floor(w / scale + 1/2), -qmax, qmax)``: round half up, the rounding of
  :mod:`edgenpu.fixedpoint`; the range is symmetric (-128 / -8 are never used) so that
  negating a weight never saturates.
* The dequantized ("fake-quant") weight is ``code * scale``.
"""

from __future__ import annotations

from typing import Any

from edgenpu.precision import Precision

__all__ = ["QUANTIZED", "channel_scales", "codes", "dequantize", "qmax", "weight_precision"]

#: The weight precisions a model can be trained for and bundled in.
QUANTIZED = ("int8", "int4")


def weight_precision(name: str) -> Precision:
    """The :class:`~edgenpu.precision.Precision` named ``"int8"`` or ``"int4"``."""
    if name not in QUANTIZED:
        raise ValueError(f"weight precision must be one of {', '.join(QUANTIZED)}, not {name!r}")
    return Precision[name.upper()]


def qmax(precision: str) -> int:
    """Largest code of a symmetric weight grid: 127 (int8) or 7 (int4)."""
    return weight_precision(precision).max


def channel_scales(w: Any, precision: str, xp: Any) -> Any:
    """Per-row scales of a 2-D weight ``w`` (shape ``(rows, 1)`` so they broadcast)."""
    peak = xp.amax(xp.abs(w), axis=1, keepdims=True)
    return xp.where(peak > 0, peak / qmax(precision), xp.ones_like(peak))


def codes(w: Any, scale: Any, precision: str, xp: Any) -> Any:
    """Integer codes (in ``w``'s float dtype) of ``w`` on the grid ``scale``."""
    top = qmax(precision)
    return xp.clip(xp.floor(w / scale + 0.5), -top, top)


def dequantize(w: Any, precision: str, xp: Any) -> Any:
    """``w`` snapped to its per-channel grid: ``codes * scale``."""
    scale = channel_scales(w, precision, xp)
    return codes(w, scale, precision, xp) * scale
