"""A numpy float32 executor of IR graphs: the float reference the compiler is checked against.

Each op of :data:`~.shapes.OPS` has one kernel in :data:`KERNELS`; the RNN-T arithmetic
(sigmoid, the LSTM step, time reduction) is :mod:`~edgenpu.asr_workloads.numpy_model`'s own
functions, so a graph read from a bundle computes what the bundle's numpy model does.
Quantized constants compute with their dequantized weights (``codes * scales``).

Symbolic sizes are bound from the inputs, and every value produced is checked against its
type, so a wrong shape rule cannot go unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..asr_workloads.numpy_model import lstm_step, reduce_time, sigmoid
from ..errors import CompileError
from .ir import Graph
from .printer import format_node
from .shapes import SymDim, TensorType

__all__ = ["KERNELS", "encode", "run"]

_NUMPY = {"f32": np.float32, "i64": np.int64, "i32": np.int32, "i8": np.int8, "bool": np.bool_}


def _linear(attrs, x, weight, bias=None):
    y = x @ weight.T
    return (y if bias is None else y + bias,)


def _lstm(attrs, x, w_ih, w_hh, bias, h0=None, c0=None):
    size = w_hh.shape[1]
    h = np.zeros(size, np.float32) if h0 is None else h0[0]
    c = np.zeros(size, np.float32) if c0 is None else c0[0]
    projected = x @ w_ih.T + bias
    y = np.empty((len(x), size), dtype=np.float32)
    for t in range(len(x)):
        h, c = lstm_step(projected[t], w_hh, h, c)
        y[t] = h
    return y, h[None, :], c[None, :]


def _embedding(attrs, ids, table):
    if ids.size and (ids.min() < 0 or ids.max() >= len(table)):
        bad = ids[(ids < 0) | (ids >= len(table))][0]
        raise CompileError(f"id {int(bad)} is outside the table [0, {len(table)})")
    return (table[ids],)


def _quantize(attrs, x):
    q = np.rint(x / np.float32(attrs["scale"])) + attrs["zero_point"]  # rint: half to even
    return (np.clip(q, -128, 127).astype(np.int8),)


def _dequantize(attrs, q):
    return ((q.astype(np.float32) - np.float32(attrs["zero_point"])) * np.float32(attrs["scale"]),)


#: ``kernel(attrs, *inputs) -> tuple of outputs`` for every op.
KERNELS: Mapping[str, Callable[..., tuple[np.ndarray, ...]]] = {
    "linear": _linear,
    "lstm": _lstm,
    "time_reduce": lambda attrs, x: (reduce_time(x, attrs["factor"]),),
    "embedding": _embedding,
    "add": lambda attrs, a, b: (a + b,),
    "mul": lambda attrs, a, b: (a * b,),
    "sigmoid": lambda attrs, x: (sigmoid(x),),
    "tanh": lambda attrs, x: (np.tanh(x),),
    "relu": lambda attrs, x: (np.maximum(x, np.float32(0)),),
    "concat": lambda attrs, *xs: (np.concatenate(xs, axis=-1),),
    "quantize": _quantize,
    "dequantize": _dequantize,
}


def _check(name: str, array: np.ndarray, type: TensorType, bindings: dict[str, int]) -> None:
    """Check ``array`` against ``type``, binding symbols of divisor 1 on first sight."""
    if array.dtype != _NUMPY[type.dtype] or array.ndim != type.rank:
        raise CompileError(f"{name} must be {type}, not {array.dtype} of shape {list(array.shape)}")
    for size, dim in zip(array.shape, type.shape, strict=True):
        if isinstance(dim, SymDim) and dim.name not in bindings:
            if dim.divisor != 1:
                continue  # bound by a plain occurrence elsewhere, or unchecked
            bindings[dim.name] = size
        if isinstance(dim, SymDim) and dim.name not in bindings:
            continue
        want = dim.evaluate(bindings) if isinstance(dim, SymDim) else dim
        if size != want:
            raise CompileError(
                f"{name} must be {type}, not of shape {list(array.shape)} "
                f"(with {', '.join(f'{k}={v}' for k, v in bindings.items()) or 'no symbols'})"
            )


def run(
    graph: Graph, inputs: Mapping[str, Any], *, every_value: bool = False
) -> dict[str, np.ndarray]:
    """Execute ``graph`` on ``inputs`` (name -> array) in float32; return its outputs (with
    ``every_value``: every input, constant and node output by name, for calibration).

    Inputs are converted to their declared element types; integer inputs must hold
    integers.

    Raises
    ------
    CompileError
        A missing or unknown input, an input of the wrong shape (symbolic sizes must agree
        across inputs), or an embedding id out of range (naming the node).
    """
    env: dict[str, np.ndarray] = {}
    bindings: dict[str, int] = {}
    declared = {value.name for value in graph.inputs}
    for name in inputs:
        if name not in declared:
            raise CompileError(
                f"graph {graph.name}: unknown input {name!r} (inputs: {', '.join(declared)})"
            )
    for value in graph.inputs:
        if value.name not in inputs:
            raise CompileError(f"graph {graph.name}: missing input {value.name!r}")
        given = np.asarray(inputs[value.name])
        array = given.astype(_NUMPY[value.type.dtype])
        if value.type.dtype != "f32" and not np.array_equal(array, given):
            raise CompileError(f"graph {graph.name}: input {value.name!r} must hold integers")
        _check(f"graph {graph.name}: input {value.name!r}", array, value.type, bindings)
        env[value.name] = array
    for name, constant in graph.constants.items():
        env[name] = constant.array()
    for node in graph.nodes:
        try:
            results = KERNELS[node.op](node.attrs, *(env[name] for name in node.inputs))
        except CompileError as error:
            raise CompileError(f"graph {graph.name}: node {format_node(node)}: {error}") from None
        for value, result in zip(node.outputs, results, strict=True):
            result = np.asarray(result)
            _check(f"graph {graph.name}: {value.name!r}", result, value.type, bindings)
            env[value.name] = result
    return env if every_value else {name: env[name] for name in graph.outputs}


def encode(model, features: np.ndarray) -> np.ndarray:
    """The encoder's output frames for ``features`` ``(T, F)``; for a branching encoder the
    frames whose gate logit is >= 0 (sigmoid >= 1/2) come from the expensive branch, run
    over just those frames."""
    encoder = model["encoder"]
    out = run(encoder, {encoder.inputs[0].name: np.asarray(features, np.float32)})
    frames = out[encoder.outputs[0]]
    if "encoder_expensive" not in model.graphs:
        return frames
    stem, gate = out[encoder.outputs[1]], out[encoder.outputs[2]]
    chosen = gate[:, 0] >= 0
    expensive = model["encoder_expensive"]
    frames = frames.copy()
    if chosen.any():
        result = run(expensive, {expensive.inputs[0].name: stem[chosen]})
        frames[chosen] = result[expensive.outputs[0]]
    return frames
