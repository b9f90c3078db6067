"""The quantized IR: kernels of integer steps, each with exact fixed-point semantics.

A :class:`QModel` is what the compiler lowers: one :class:`QKernel` per entry point
(``encoder_chunk``, ``predictor_step``, ``joint``), each a list of steps over named
integer tensors with concrete shapes (the encoder's symbolic time is fixed to the chunk
length). The semantics of every step are :mod:`.arith`'s functions; the reference
executor (:mod:`.reference`) runs them and the lowering (:mod:`edgenpu.compiler.lowering`)
turns each into instructions that compute the same bits.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

import numpy as np

from edgenpu.isa import DType

from ...asr_workloads.frontend import FrontEndConfig
from ..ir import _frozen
from .formats import LutFunction

__all__ = [
    "QAdd",
    "QKernel",
    "QLinear",
    "QLstm",
    "QLut",
    "QModel",
    "QRelu",
    "QTensor",
    "QTimeReduce",
    "QWeights",
    "Requant",
    "Step",
]


@dataclasses.dataclass(frozen=True)
class QTensor:
    """An integer tensor: ``(rows, width)`` codes of ``bits`` bits, real value
    ``code * scale``."""

    name: str
    shape: tuple[int, int]
    bits: int
    scale: float

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.bits // 8

    @property
    def dtype(self) -> DType:
        """Its element type in DRAM (``DType.I8`` or ``DType.I16``)."""
        return DType[f"I{self.bits}"]


@dataclasses.dataclass(frozen=True, eq=False)
class QWeights:
    """A weight matrix as the MAC array holds it.

    Parameters
    ----------
    name : str
        The source constant (``encoder.0.w_ih``), for reports.
    codes : numpy.ndarray
        int8 ``(rows, cols)`` codes on the grid of ``precision``.
    precision : str
        ``"int8"`` or ``"int4"``.
    scales : numpy.ndarray
        float64 per-row scales: the weight is ``codes * scales[:, None]``.
    """

    name: str
    codes: np.ndarray
    precision: str
    scales: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", _frozen(self.codes, np.int8))
        object.__setattr__(self, "scales", _frozen(self.scales, np.float64))

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape


@dataclasses.dataclass(frozen=True, eq=False)
class Requant:
    """``int32 -> bits``: ``saturate((acc * multipliers[row]) >> shift)`` (rounding)."""

    multipliers: np.ndarray
    shift: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "multipliers", _frozen(self.multipliers, np.int64))


@dataclasses.dataclass(frozen=True, eq=False)
class _Unary:
    """A step reading tensor ``x`` and writing tensor ``y``."""

    name: str
    x: str
    y: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.x,)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.y,)


@dataclasses.dataclass(frozen=True, eq=False)
class QLinear(_Unary):
    """``y = requant(sat32(wrap32(x W^T) + bias))``; no bias when ``bias`` is None."""

    weights: QWeights
    bias: np.ndarray | None
    requant: Requant

    def __post_init__(self) -> None:
        if self.bias is not None:
            object.__setattr__(self, "bias", _frozen(self.bias, np.int64))


@dataclasses.dataclass(frozen=True, eq=False)
class QLstm:
    """An LSTM layer over the rows of ``x`` (:func:`.arith.lstm`), gate order i, f, g, o.

    ``h_in``/``c_in`` hold the state before the first row and ``h_out``/``c_out`` receive
    it after the last; the same names for both make the state persistent across calls.
    """

    name: str
    x: str
    y: str
    h_in: str
    c_in: str
    h_out: str
    c_out: str
    w_ih: QWeights
    w_hh: QWeights
    bias: np.ndarray
    requant_ih: Requant
    requant_hh: Requant

    def __post_init__(self) -> None:
        object.__setattr__(self, "bias", _frozen(self.bias, np.int64))

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[1]

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.x, self.h_in, self.c_in)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.y, self.h_out, self.c_out)


@dataclasses.dataclass(frozen=True, eq=False)
class QTimeReduce(_Unary):
    """Row ``t`` of ``y`` is rows ``factor t ..`` of ``x`` side by side (no arithmetic)."""

    factor: int


@dataclasses.dataclass(frozen=True)
class QAdd:
    """``y = saturate(a + b)``; ``a``, ``b`` and ``y`` share one scale."""

    name: str
    a: str
    b: str
    y: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.a, self.b)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.y,)


@dataclasses.dataclass(frozen=True, eq=False)
class QLut(_Unary):
    """``y = function(x)`` through its 256-entry table, ``x`` shifted to the table's index."""

    function: LutFunction
    shift: int


@dataclasses.dataclass(frozen=True, eq=False)
class QRelu(_Unary):
    """``y = saturate(max(x >> shift, 0))`` (rounding shift)."""

    shift: int


Step = QLinear | QLstm | QTimeReduce | QAdd | QLut | QRelu


@dataclasses.dataclass(frozen=True, eq=False)
class QKernel:
    """One entry point: integer steps over named tensors.

    Parameters
    ----------
    name : str
        The entry point (``encoder_chunk``, ``predictor_step``, ``joint``).
    tensors : Mapping of str to QTensor
        Every tensor a step reads or writes.
    inputs, outputs : tuple of str
        What the host writes before a call and reads after it.
    state : tuple of str
        Tensors kept in DRAM between calls (the encoder's LSTM state); the host zeroes
        them at the start of an utterance.
    steps : tuple of Step
        In execution order.
    """

    name: str
    tensors: Mapping[str, QTensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    state: tuple[str, ...]
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", types.MappingProxyType(dict(self.tensors)))
        for field in ("inputs", "outputs", "state", "steps"):
            object.__setattr__(self, field, tuple(getattr(self, field)))

    def tensor(self, name: str) -> QTensor:
        return self.tensors[name]

    def weights(self) -> list[QWeights]:
        """Every weight matrix, in step order."""
        found: list[QWeights] = []
        for step in self.steps:
            if isinstance(step, QLinear):
                found.append(step.weights)
            elif isinstance(step, QLstm):
                found += [step.w_ih, step.w_hh]
        return found


@dataclasses.dataclass(frozen=True, eq=False)
class QModel:
    """A quantized RNN-T: its kernels by entry name, plus what the host needs to call them.

    Parameters
    ----------
    kernels : Mapping of str to QKernel
    chunk_frames : int
        Encoder input rows (stacked feature frames) per ``encoder_chunk`` call.
    frontend : FrontEndConfig or None
    source : str
        Where the model came from.
    """

    kernels: Mapping[str, QKernel]
    chunk_frames: int
    frontend: FrontEndConfig | None = None
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernels", types.MappingProxyType(dict(self.kernels)))
