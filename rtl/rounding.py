"""The fixed-point rounding and saturation datapath, as Amaranth expressions.

These are the hardware forms of :func:`edgenpu.fixedpoint.rounding_shift_right` and
:func:`edgenpu.fixedpoint.saturate`; the vector unit builds its result stage from them and the
bench checks them against the Python functions.
"""

from __future__ import annotations

from amaranth import Const, Mux, Value, signed

__all__ = ["rounding_shift_right", "saturate"]


def rounding_shift_right(x: Value, shift: Value) -> Value:
    """``(x >> shift) + bit(shift - 1) of x``, round half up; ``x`` itself for ``shift == 0``.

    One arithmetic shifter by ``shift - 1`` gives both parts: its low bit is the rounding bit
    and the rest is ``x >> shift``. Nothing is wider than ``x`` (a 64-bit product stays in
    one machine word in Verilator, where a 65-bit value would not), and the final increment
    cannot overflow: after a shift of at least one place the magnitude has halved.

    Parameters
    ----------
    x : Value
        Signed.
    shift : Value
        Unsigned, any width.

    Returns
    -------
    Value
        Signed, as wide as ``x``.
    """
    if not x.shape().signed:
        raise TypeError(f"x must be a signed value, not {x.shape()!r}")
    zero = shift == 0
    y = x >> Mux(zero, 0, shift - 1)[: len(shift)]
    rounded = y[1:].as_signed() + y[0]  # signed(len(x)): no wide intermediate
    return Mux(zero, x, rounded)


def saturate(x: Value, bits: int) -> Value:
    """``x`` (signed) clamped to the signed ``bits``-bit range, as a ``signed(bits)`` value
    (``x`` itself if it is no wider than that)."""
    if not x.shape().signed:
        raise TypeError(f"x must be a signed value, not {x.shape()!r}")
    if not isinstance(bits, int) or bits < 1:
        raise TypeError(f"bits must be a positive integer, not {bits!r}")
    if bits >= len(x):
        return x.as_signed()
    lo = Const(-(1 << (bits - 1)), signed(bits))
    hi = Const((1 << (bits - 1)) - 1, signed(bits))
    return Mux(x > hi, hi, Mux(x < lo, lo, x[:bits].as_signed()))
