"""Exact integer arithmetic on one symbolic size, for folding exporters' shape plumbing.

PyTorch's exporter computes padding and reshape targets from the run-time length ``T``
(``Shape``, ``Gather``, ``Mod``, ``Sub``, ...). To fold that plumbing into constants the
frontend evaluates it on :class:`SymInt` values: functions of one integer symbol ``x`` of
the form ``f(x) = slope * x + table[x mod period]`` (``slope`` and table entries rational).
That form is closed under ``+``, ``-``, multiplication by an integer, ``mod`` and floor
division by a positive integer, and two such functions are equal exactly when their
normalized forms are, so the frontend can *prove*, not guess, that a pad amount is
``(-T) mod r`` or that a length is ``ceil(T / r)``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from fractions import Fraction

from ...errors import CompileError
from ..shapes import SymDim

__all__ = ["SymInt", "from_dim", "to_dim"]


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


@dataclasses.dataclass(frozen=True)
class SymInt:
    """``slope * x + table[x mod len(table)]`` of the symbol ``var`` (normalized).

    Build with :meth:`symbol`; arithmetic with ints and SymInts of the same symbol gives
    SymInts, or plain ints when the result no longer depends on the symbol.
    """

    var: str
    slope: Fraction
    table: tuple[Fraction, ...]

    @classmethod
    def symbol(cls, var: str) -> SymInt:
        """The symbol itself, ``f(x) = x``."""
        return cls(var, Fraction(1), (Fraction(0),))

    @classmethod
    def _make(cls, var: str, slope: Fraction, table: list[Fraction]) -> SymInt | int:
        period = len(table)
        for size in range(1, period + 1):
            if period % size == 0 and all(table[i] == table[i % size] for i in range(period)):
                table = table[:size]
                break
        if slope == 0 and len(table) == 1:
            value = table[0]
            if value.denominator != 1:
                raise CompileError(f"symbolic size {value} is not an integer")
            return int(value)
        return cls(var, Fraction(slope), tuple(table))

    def __call__(self, x: int) -> Fraction:
        """The value at ``x``."""
        return self.slope * x + self.table[x % len(self.table)]

    def _other(self, other: object) -> SymInt | None:
        if isinstance(other, SymInt):
            if other.var != self.var:
                raise CompileError(
                    f"shape arithmetic mixing the sizes {self.var} and {other.var} is not supported"
                )
            return other
        if isinstance(other, numbers.Integral):
            return SymInt(self.var, Fraction(0), (Fraction(int(other)),))
        return None

    def _combine(self, other: object, sign: int) -> SymInt | int:
        peer = self._other(other)
        if peer is None:
            return NotImplemented
        period = _lcm(len(self.table), len(peer.table))
        table = [
            self.table[i % len(self.table)] + sign * peer.table[i % len(peer.table)]
            for i in range(period)
        ]
        return self._make(self.var, self.slope + sign * peer.slope, table)

    def __add__(self, other: object) -> SymInt | int:
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other: object) -> SymInt | int:
        return self._combine(other, -1)

    def __neg__(self) -> SymInt | int:
        return self._make(self.var, -self.slope, [-v for v in self.table])

    def __rsub__(self, other: object) -> SymInt | int:
        peer = self._other(other)
        return NotImplemented if peer is None else peer._combine(self, -1)

    def __mul__(self, other: object) -> SymInt | int:
        if isinstance(other, SymInt):
            raise CompileError(f"the product of two symbolic sizes ({self.var}) is not supported")
        if not isinstance(other, numbers.Integral):
            return NotImplemented
        factor = int(other)
        return self._make(self.var, self.slope * factor, [v * factor for v in self.table])

    __rmul__ = __mul__

    def _divisor(self, other: object, what: str) -> int:
        if isinstance(other, SymInt):
            raise CompileError(f"{what} by a symbolic size ({other.var}) is not supported")
        if not isinstance(other, numbers.Integral) or int(other) <= 0:
            raise CompileError(f"{what} of a symbolic size by {other!r} is not supported")
        return int(other)

    def _periodic(self, divisor: int) -> int:
        """A period after which ``f / divisor`` grows by an integer (so its floor repeats)."""
        step = self.slope / divisor
        return _lcm(len(self.table), step.denominator)

    def __mod__(self, other: object) -> SymInt | int:
        divisor = self._divisor(other, "mod")
        table = [Fraction(self(x) % divisor) for x in range(self._periodic(divisor))]
        return self._make(self.var, Fraction(0), table)

    def __floordiv__(self, other: object) -> SymInt | int:
        divisor = self._divisor(other, "division")
        step = self.slope / divisor
        period = self._periodic(divisor)
        table = [Fraction(math.floor(self(x) / divisor)) - step * x for x in range(period)]
        return self._make(self.var, step, table)

    def __str__(self) -> str:
        dim = _as_ceil(self)
        return (
            str(dim) if dim is not None else f"{self.slope}*{self.var}+{list(map(str, self.table))}"
        )


def _as_ceil(value: SymInt) -> SymDim | None:
    """``value`` as ``ceil(var / d)``, or None if it is not of that form."""
    if value.slope <= 0 or value.slope.numerator != 1:
        return None
    dim = SymDim(value.var, value.slope.denominator)
    return dim if from_dim(dim) == value else None


def from_dim(dim: SymDim | int) -> SymInt | int:
    """The SymInt of an IR dimension (``ceil(x / d) = (x + d - 1) // d``)."""
    if isinstance(dim, int):
        return dim
    return (SymInt.symbol(dim.name) + (dim.divisor - 1)) // dim.divisor


def to_dim(value: SymInt | int) -> SymDim | int:
    """The IR dimension of a size; raises :class:`CompileError` if it is no ``ceil(x / d)``."""
    if isinstance(value, numbers.Integral):
        return int(value)
    dim = _as_ceil(value)
    if dim is None:
        raise CompileError(f"size {value} is not of the form ceil({value.var}/d)")
    return dim
