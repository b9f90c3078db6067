"""Tensor types of the compiler IR and the op set: each op's signature and shape rule.

A tensor type is an element type and a shape. Activations are 2-D, ``(rows, width)``: rows
are time frames (encoder) or independent rows (one predictor step, a batch of joint
evaluations); batch-1 and direction axes of the source format are dropped. Token ids are
1-D ``(rows,)``. A dimension is an ``int`` or a :class:`SymDim`, ``ceil(name / divisor)``
of a size known only at run time (the utterance length ``T``); time reduction divides it,
and because ``ceil(ceil(T / a) / b) = ceil(T / (a b))`` that one form is closed under the
ops here.

The op set (inputs marked *const* must be graph constants, i.e. weights):

* ``linear(x, weight const, [bias const])``: ``x (R, K)``, ``weight (M, K)``, ``bias (M,)``
  -> ``x weight^T + bias``, ``(R, M)``.
* ``lstm(x, w_ih const, w_hh const, bias const, [h0, c0])`` -> ``y, h, c``: an LSTM layer over
  the rows of ``x (R, In)`` in the contract's gate order i, f, g, o (``w_ih (4H, In)``,
  ``w_hh (4H, H)``, one ``bias (4H,)``), ``c' = f c + i g``, ``h' = o tanh(c')``; initial
  state ``h0, c0 (1, H)`` (both or neither; zero when absent); ``y (R, H)`` the hidden
  state of every row, ``h, c (1, H)`` the final state.
* ``time_reduce(x) {factor}``: ``(R, F) -> (ceil(R / factor), factor F)``, output row ``t``
  the concatenation of rows ``factor t .. factor t + factor - 1``, the last group
  zero-padded.
* ``embedding(ids, table const)``: ``ids (R,)`` integer, ``table (V, E)`` -> ``(R, E)``.
* ``add(a, b)``, ``mul(a, b)``: elementwise with numpy broadcasting (right-aligned, a size
  1 stretches).
* ``sigmoid(x)``, ``tanh(x)``, ``relu(x)``: elementwise.
* ``concat(x0, x1, ...)``: along the width (last axis); leading sizes equal.
* ``quantize(x) {scale, zero_point}`` -> int8 ``clip(round_half_even(x / scale) +
  zero_point, -128, 127)``; ``dequantize(q) {scale, zero_point}`` -> float32
  ``(q - zero_point) scale`` (per-tensor activation quantization, as ONNX's QDQ ops).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import CompileError

__all__ = [
    "DTYPES",
    "OPS",
    "Dim",
    "OpSpec",
    "SymDim",
    "TensorType",
    "broadcast",
    "format_dim",
    "infer",
]

#: Element types: float32 activations and weights, integer ids, quantized codes, masks.
DTYPES = ("f32", "i64", "i32", "i8", "bool")


@dataclasses.dataclass(frozen=True)
class SymDim:
    """A size known at run time: ``ceil(name / divisor)``.

    Parameters
    ----------
    name : str
        The symbol (a dimension name of the source graph, such as ``"T"``).
    divisor : int
        Positive; 1 for the symbol itself.
    """

    name: str
    divisor: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"SymDim name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.divisor, int) or isinstance(self.divisor, bool) or self.divisor < 1:
            raise TypeError(f"SymDim divisor must be a positive integer, not {self.divisor!r}")

    def __str__(self) -> str:
        return self.name if self.divisor == 1 else f"ceil({self.name}/{self.divisor})"

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        """The size for the symbol values in ``bindings``."""
        return -(-bindings[self.name] // self.divisor)


Dim = int | SymDim


def format_dim(dim: Dim) -> str:
    """``"6"`` or ``"T"`` or ``"ceil(T/2)"``."""
    return str(dim)


def _check_dim(dim: Any) -> Dim:
    if isinstance(dim, SymDim):
        return dim
    if isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0:
        return dim
    raise TypeError(f"a dimension must be a non-negative int or a SymDim, not {dim!r}")


@dataclasses.dataclass(frozen=True)
class TensorType:
    """Element type (one of :data:`DTYPES`) and shape of an IR value."""

    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise TypeError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if not isinstance(self.shape, tuple | list):
            raise TypeError(f"shape must be a tuple of dimensions, not {self.shape!r}")
        object.__setattr__(self, "shape", tuple(_check_dim(d) for d in self.shape))

    @property
    def rank(self) -> int:
        """Number of axes."""
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(map(format_dim, self.shape))}]"


def broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...] | None:
    """Numpy's broadcast of two shapes, or None when they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


# --- the op set ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """Signature and shape rule of one IR op.

    Parameters
    ----------
    name : str
        The op's name in the IR.
    inputs : tuple of str
        Input names in order; a trailing ``"?"`` marks an optional one, ``"*"`` a variadic
        last input (at least two values).
    const : frozenset of str
        Inputs that must be graph constants (weights).
    outputs : tuple of str
        Output names in order.
    attrs : Mapping of str to type
        Required attributes and their Python types.
    rule : callable
        ``rule(types, attrs) -> tuple of TensorType``; raises ``ValueError`` with the reason.
    """

    name: str
    inputs: tuple[str, ...]
    const: frozenset[str]
    outputs: tuple[str, ...]
    attrs: Mapping[str, type]
    rule: Callable[[Sequence[TensorType], Mapping[str, Any]], tuple[TensorType, ...]]

    @property
    def variadic(self) -> bool:
        """Whether the last input takes any number (at least two) of values."""
        return self.inputs[-1].endswith("*")

    def input_name(self, index: int) -> str:
        """The name of input ``index`` (a variadic input's values are ``xs[i]``)."""
        if self.variadic and index >= len(self.inputs) - 1:
            return f"{self.inputs[-1][:-1]}[{index - len(self.inputs) + 1}]"
        return self.inputs[index].rstrip("?")

    def arity(self) -> tuple[int, int | None]:
        """Least and most number of inputs (None: unbounded)."""
        if self.variadic:
            return len(self.inputs) + 1, None
        required = sum(1 for name in self.inputs if not name.endswith("?"))
        return required, len(self.inputs)


def _matrix(t: TensorType, what: str, dtype: str = "f32") -> tuple[Dim, Dim]:
    if t.dtype != dtype or t.rank != 2:
        raise ValueError(f"{what} must be {dtype} (rows, width), not {t}")
    return t.shape


def _vector(t: TensorType, what: str, size: Dim) -> None:
    if t.dtype != "f32" or t.shape != (size,):
        raise ValueError(f"{what} must be f32[{format_dim(size)}], not {t}")


def _linear(types, attrs):
    rows, width = _matrix(types[0], "x")
    out, inner = _matrix(types[1], "weight")
    if inner != width:
        raise ValueError(f"weight {types[1]} takes width {inner}, but x is {types[0]}")
    if len(types) > 2:
        _vector(types[2], "bias", out)
    return (TensorType("f32", (rows, out)),)


def _lstm(types, attrs):
    rows, width = _matrix(types[0], "x")
    gates, inner = _matrix(types[1], "w_ih")
    if gates % 4:
        raise ValueError(f"w_ih {types[1]} must have 4 H rows (gates i, f, g, o)")
    hidden = gates // 4
    if inner != width:
        raise ValueError(f"w_ih {types[1]} takes width {inner}, but x is {types[0]}")
    if types[2] != TensorType("f32", (4 * hidden, hidden)):
        raise ValueError(f"w_hh must be f32[{4 * hidden}, {hidden}], not {types[2]}")
    _vector(types[3], "bias", 4 * hidden)
    state = TensorType("f32", (1, hidden))
    if len(types) == 5:
        raise ValueError("h0 and c0 go together")
    for name, t in zip(("h0", "c0"), types[4:], strict=False):
        if t != state:
            raise ValueError(f"{name} must be {state}, not {t}")
    return TensorType("f32", (rows, hidden)), state, state


def _time_reduce(types, attrs):
    rows, width = _matrix(types[0], "x")
    factor = attrs["factor"]
    if factor < 2:
        raise ValueError(f"factor must be at least 2, not {factor}")
    if isinstance(rows, SymDim):
        reduced: Dim = SymDim(rows.name, rows.divisor * factor)
    else:
        reduced = -(-rows // factor)
    return (TensorType("f32", (reduced, factor * width)),)


def _embedding(types, attrs):
    ids, table = types
    if ids.dtype not in ("i64", "i32") or ids.rank != 1:
        raise ValueError(f"ids must be integer (rows,), not {ids}")
    _, width = _matrix(table, "table")
    return (TensorType("f32", (ids.shape[0], width)),)


def _binary(types, attrs):
    a, b = types
    if a.dtype != "f32" or b.dtype != "f32":
        raise ValueError(f"operands must be f32, not {a} and {b}")
    shape = broadcast(a.shape, b.shape)
    if shape is None:
        raise ValueError(f"shapes {a} and {b} do not broadcast")
    return (TensorType("f32", shape),)


def _unary(types, attrs):
    if types[0].dtype != "f32":
        raise ValueError(f"x must be f32, not {types[0]}")
    return (types[0],)


def _concat(types, attrs):
    rows, width = _matrix(types[0], "xs[0]")
    total = width
    for index, t in enumerate(types[1:], start=1):
        other, extra = _matrix(t, f"xs[{index}]")
        if other != rows:
            raise ValueError(f"xs[{index}] is {t}, but xs[0] has {format_dim(rows)} rows")
        total += extra
    return (TensorType("f32", (rows, total)),)


def _quant_attrs(attrs):
    scale, zero = attrs["scale"], attrs["zero_point"]
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, not {scale!r}")
    if not -128 <= zero <= 127:
        raise ValueError(f"zero_point must lie in [-128, 127], not {zero!r}")


def _quantize(types, attrs):
    _quant_attrs(attrs)
    if types[0].dtype != "f32":
        raise ValueError(f"x must be f32, not {types[0]}")
    return (TensorType("i8", types[0].shape),)


def _dequantize(types, attrs):
    _quant_attrs(attrs)
    if types[0].dtype != "i8":
        raise ValueError(f"q must be i8, not {types[0]}")
    return (TensorType("f32", types[0].shape),)


def _spec(name, inputs, outputs, rule, const=(), attrs=None) -> OpSpec:
    return OpSpec(name, tuple(inputs), frozenset(const), tuple(outputs), attrs or {}, rule)


_QUANT = {"scale": float, "zero_point": int}

#: Every IR op by name.
OPS: Mapping[str, OpSpec] = {
    spec.name: spec
    for spec in (
        _spec("linear", ["x", "weight", "bias?"], ["y"], _linear, ["weight", "bias"]),
        _spec(
            "lstm",
            ["x", "w_ih", "w_hh", "bias", "h0?", "c0?"],
            ["y", "h", "c"],
            _lstm,
            ["w_ih", "w_hh", "bias"],
        ),
        _spec("time_reduce", ["x"], ["y"], _time_reduce, attrs={"factor": int}),
        _spec("embedding", ["ids", "table"], ["y"], _embedding, ["table"]),
        _spec("add", ["a", "b"], ["y"], _binary),
        _spec("mul", ["a", "b"], ["y"], _binary),
        _spec("sigmoid", ["x"], ["y"], _unary),
        _spec("tanh", ["x"], ["y"], _unary),
        _spec("relu", ["x"], ["y"], _unary),
        _spec("concat", ["xs*"], ["y"], _concat),
        _spec("quantize", ["x"], ["q"], _quantize, attrs=_QUANT),
        _spec("dequantize", ["q"], ["y"], _dequantize, attrs=_QUANT),
    )
}


def infer(op: str, types: Sequence[TensorType], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    """Output types of ``op`` applied to inputs of ``types`` with ``attrs``.

    Raises
    ------
    CompileError
        An unknown op, a wrong number of inputs, a missing, unknown or mistyped attribute,
        or input types the op does not take (the message gives the reason).
    """
    spec = OPS.get(op)
    if spec is None:
        raise CompileError(f"unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    low, high = spec.arity()
    if len(types) < low or (high is not None and len(types) > high):
        want = f"at least {low}" if high is None else str(low) if low == high else f"{low}-{high}"
        raise CompileError(f"{op} takes {want} inputs, not {len(types)}")
    for key in attrs:
        if key not in spec.attrs:
            raise CompileError(f"{op} has no attribute {key!r}")
    for key, kind in spec.attrs.items():
        if key not in attrs:
            raise CompileError(f"{op} needs attribute {key!r}")
        value = attrs[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CompileError(f"{op} attribute {key} must be {kind.__name__}, not {value!r}")
    try:
        return tuple(spec.rule(tuple(types), attrs))
    except ValueError as error:
        raise CompileError(f"{op}: {error}") from None
