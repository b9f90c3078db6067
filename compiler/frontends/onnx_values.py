"""What the ONNX frontend knows about each ONNX tensor while it reads a graph.

An ONNX tensor is one of:

* a compile-time constant, a numpy array (an ``object`` array when it holds symbolic sizes,
  :class:`~.symbolic.SymInt`): initializers, ``Constant`` nodes and folded shape plumbing;
* :class:`Quant`, a dequantized constant (``DequantizeLinear`` of integer codes): the
  weights keep their codes and scales;
* :class:`Data`, a run-time tensor: a *view* of an IR value. IR activations are 2-D
  ``(rows, width)``; the ONNX tensor has the same elements with unit axes added (batch 1,
  direction 1) and its width on the last axis, so transposes, squeezes and reshapes that
  only move unit axes are views and emit nothing. Token ids are 1-D in the IR.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from ...errors import CompileError
from ..shapes import OPS
from .symbolic import SymInt

__all__ = [
    "Data",
    "Quant",
    "const_ints",
    "dequantized",
    "onnx_slice",
    "product",
    "slice_length",
    "view",
]

Size = int | SymInt


@dataclasses.dataclass(frozen=True, eq=False)
class Quant:
    """``codes * scales`` along ``axis`` (None: one scale for the tensor), from ONNX Q/DQ.

    Parameters
    ----------
    codes : numpy.ndarray
        int8 codes (int4 codes unpacked into int8).
    scales : numpy.ndarray
        float32 scales: a scalar (per tensor) or one per index of ``axis``.
    axis : int or None
        The axis the scales run along.
    precision : str
        ``"int8"`` or ``"int4"``.
    """

    codes: np.ndarray
    scales: np.ndarray
    axis: int | None
    precision: str

    def row_scales(self, rows_axis: int) -> np.ndarray | None:
        """Scales per index of ``rows_axis`` (None if they run along another axis)."""
        if self.axis is None:
            return np.full(self.codes.shape[rows_axis], self.scales, dtype=np.float32)
        if self.axis % self.codes.ndim != rows_axis % self.codes.ndim:
            return None
        return self.scales


def dequantized(value: np.ndarray | Quant) -> np.ndarray:
    """The float32 values of a constant or a :class:`Quant`."""
    if not isinstance(value, Quant):
        return value
    shape = [1] * value.codes.ndim
    if value.axis is not None:
        shape[value.axis] = -1
    return value.codes.astype(np.float32) * value.scales.reshape(shape)


@dataclasses.dataclass(frozen=True)
class Data:
    """A run-time ONNX tensor: IR value ``value`` seen with ONNX ``shape``.

    Parameters
    ----------
    value : str
        The IR value.
    shape : tuple
        The ONNX shape (ints and :class:`SymInt`), including ``pad``.
    rows_axis : int or None
        The ONNX axis holding the IR rows (None when every leading axis has size 1).
    vector : bool
        The IR value is 1-D (ids) rather than ``(rows, width)``.
    pad : int or SymInt
        Zero rows a ``Pad`` appended that the IR value does not hold yet: only a
        ``Reshape`` stacking frames (time reduction) may consume them.
    """

    value: str
    shape: tuple[Size, ...]
    rows_axis: int | None
    vector: bool = False
    pad: Size = 0

    @property
    def width(self) -> int:
        """Size of the last axis (the IR width of a 2-D value)."""
        return self.shape[-1]

    @property
    def leading(self) -> tuple[Size, ...]:
        """The ONNX axes that make up the IR rows."""
        return self.shape if self.vector else self.shape[:-1]


def product(sizes) -> Size:
    """Product of sizes (at most one symbolic)."""
    total: Size = 1
    for size in sizes:
        total = total * size
    return total


def view(value: str, shape: tuple[Size, ...], vector: bool, pad: Size = 0) -> Data:
    """A :class:`Data` of ``value`` with ONNX ``shape``; raises ``ValueError`` if it is not a view.

    Every leading axis but at most one (the rows) must have size 1.
    """
    if not vector and not shape:
        raise ValueError("a run-time tensor needs at least one axis")
    leading = shape if vector else shape[:-1]
    if not vector and not isinstance(shape[-1], numbers.Integral):
        raise ValueError(f"the last axis (features) must have a fixed size, not {shape[-1]}")
    rows = [axis for axis, size in enumerate(leading) if not (isinstance(size, int) and size == 1)]
    if len(rows) > 1:
        sizes = ", ".join(map(str, shape))
        raise ValueError(
            f"shape [{sizes}] has more than one non-unit leading axis (the compiler runs one "
            "utterance: batch 1, one direction)"
        )
    return Data(value, tuple(shape), rows[0] if rows else None, vector, pad)


def const_ints(array: np.ndarray, what: str) -> list[int]:
    """A constant's entries as plain ints (``CompileError`` if any is symbolic)."""
    values = np.asarray(array).reshape(-1).tolist()
    for v in values:
        if not isinstance(v, numbers.Integral):
            raise CompileError(f"{what} must be known at compile time, not {v}")
    return [int(v) for v in values]


def onnx_slice(size: int, start: int, end: int, step: int) -> slice:
    """The Python slice of ONNX ``Slice`` semantics on an axis of ``size`` (clamped ends)."""
    if step == 0:
        raise CompileError("Slice step must not be 0")
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
        return slice(start, end, step)
    start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
    return slice(start, None if end < 0 else end, step)


def slice_length(piece: slice, size: int) -> int:
    """Elements a slice keeps of an axis of ``size``."""
    return len(range(*piece.indices(size)))


class Context:
    """The node being read: its name and attributes, the IR builder, and error messages.

    Parameters
    ----------
    builder : GraphBuilder
        The IR graph being built.
    path : str
        The ONNX file (for messages).
    node : onnx.NodeProto
        The node.
    index : int
        Its position in the graph (names a node that has no name).
    """

    def __init__(self, builder, path: str, node, index: int) -> None:
        from onnx import helper

        self.builder = builder
        self.path = path
        self.node = node
        self.op = node.op_type
        self.name = node.name or f"{node.op_type}_{index}"
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def fail(self, message: str) -> CompileError:
        """A :class:`CompileError` naming the file, node and op."""
        return CompileError(f"{self.path}: node {self.name} ({self.op}): {message}")

    def attr(self, key: str, default=None):
        """Attribute ``key`` (bytes decoded), or ``default``."""
        value = self.attrs.get(key, default)
        return value.decode() if isinstance(value, bytes) else value

    def input_name(self, index: int) -> str:
        """The ONNX name of input ``index``."""
        return self.node.input[index]

    def const(self, value, index: int) -> np.ndarray:
        """Input ``index`` as a constant array (a :class:`Quant` is dequantized)."""
        if isinstance(value, Data):
            raise self.fail(
                f"input {self.input_name(index)!r} must be a constant (initializer), "
                "but it is computed at run time"
            )
        return dequantized(value)

    def data(self, value, index: int) -> Data:
        """Input ``index`` as a run-time tensor."""
        if not isinstance(value, Data):
            raise self.fail(f"input {self.input_name(index)!r} must be a run-time tensor")
        if value.pad != 0:
            raise self.fail(
                f"input {self.input_name(index)!r} is padded along time by a Pad; only a "
                "Reshape that stacks frames (time reduction) may read a padded tensor"
            )
        return value

    def view(self, value: str, shape, vector: bool = False, pad=0) -> Data:
        """:func:`view`, failing with this node's name."""
        try:
            return view(value, tuple(shape), vector, pad)
        except ValueError as error:
            raise self.fail(str(error)) from None

    def add(self, op: str, inputs, attrs=None, outputs=None) -> tuple[str, ...]:
        """Emit an IR node named after this node (failing with this node's name)."""
        if outputs is None and op in OPS:
            given = list(self.node.output)
            outputs = [
                given[i] if i < len(given) and given[i] else f"{self.name}.{name}"
                for i, name in enumerate(OPS[op].outputs)
            ]
        hints = outputs
        try:
            return self.builder.add(op, inputs, attrs, name=self.name, outputs=hints)
        except CompileError as error:
            raise self.fail(str(error).split(": ", 2)[-1]) from None
