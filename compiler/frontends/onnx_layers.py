"""ONNX ops that compute: LSTM, Gemm/MatMul, Add/Mul, activations, embedding, Q/DQ.

Weights must be constants: initializers, or ``DequantizeLinear`` of integer initializers
(then the IR constant keeps the codes and per-row scales; the zero point must be 0, the
symmetric grid of :mod:`~edgenpu.asr_workloads.weight_quant`). ONNX's LSTM gate order
i, o, f, c and its two biases become the contract's i, f, g, o and one bias here.
"""

from __future__ import annotations

import numpy as np

from ...asr_workloads.weight_quant import qmax
from .onnx_values import Context, Data, Quant

__all__ = ["LAYER_OPS", "embedding"]

#: Block ``k`` of the contract's gates (i, f, g, o) is block ``_GATES[k]`` of ONNX's (i, o, f, c).
_GATES = (0, 2, 3, 1)


def _weight(ctx: Context, value, index: int, hint: str, rows_axis: int, transpose: bool) -> str:
    """An IR constant of a weight (2-D after dropping unit axes), rows along ``rows_axis``."""
    if isinstance(value, Data):
        raise ctx.fail(
            f"weight {ctx.input_name(index)!r} must be an initializer (constant), but it is "
            "a run-time tensor (a graph input without an initializer?)"
        )
    if isinstance(value, Quant):
        scales = value.row_scales(rows_axis)
        if scales is None:
            raise ctx.fail(
                f"weight {ctx.input_name(index)!r} is quantized along axis {value.axis}, not "
                "per output row"
            )
        codes = value.codes.T if transpose else value.codes
        return ctx.builder.constant(hint, codes=codes, scales=scales, precision=value.precision)
    array = np.asarray(value, dtype=np.float32)
    return ctx.builder.constant(hint, values=array.T if transpose else array)


def _gate_rows(array: np.ndarray, hidden: int) -> np.ndarray:
    blocks = array.reshape(4, hidden, *array.shape[1:])
    return blocks[list(_GATES)].reshape(array.shape)


def _lstm_weight(ctx: Context, value, index: int, hint: str, hidden: int, width: int) -> str:
    """``W``/``R`` of an ONNX LSTM, ``(1, 4H, In)``, as a contract-ordered IR constant."""
    shape = np.shape(value.codes if isinstance(value, Quant) else value)
    if shape != (1, 4 * hidden, width):
        raise ctx.fail(
            f"{'WR'[index - 1]} {ctx.input_name(index)!r} has shape {list(shape)}, not "
            f"[1, {4 * hidden}, {width}]"
        )
    if isinstance(value, Quant):
        scales = value.row_scales(1)
        if scales is None:
            raise ctx.fail(f"weight {ctx.input_name(index)!r} is not quantized per row")
        value = Quant(
            _gate_rows(value.codes[0], hidden),
            _gate_rows(np.asarray(scales), hidden),
            0,
            value.precision,
        )
        return _weight(ctx, value, index, hint, 0, False)
    return _weight(ctx, _gate_rows(np.asarray(value)[0], hidden), index, hint, 0, False)


def _state(ctx: Context, args, index: int, hidden: int) -> str | None:
    """An initial state input: None when absent or zero, else the IR value (1, H)."""
    value = args[index] if len(args) > index else None
    if value is None:
        return None
    if not isinstance(value, Data):
        zero = ctx.const(value, index)
        if np.any(zero != 0) or np.size(zero) != hidden:
            raise ctx.fail(f"initial state {ctx.input_name(index)!r} must be zero or an input")
        return None
    value = ctx.data(value, index)
    if value.shape != (1, 1, hidden):
        raise ctx.fail(f"initial state {ctx.input_name(index)!r} is not [1, 1, {hidden}]")
    return value.value


def _lstm(ctx: Context, args):
    for key, default in (("direction", "forward"), ("layout", 0), ("input_forget", 0)):
        if ctx.attr(key, default) != default:
            raise ctx.fail(f"LSTM {key}={ctx.attr(key)!r} is not supported (only {default!r})")
    if "clip" in ctx.attrs:
        raise ctx.fail("LSTM clip is not supported")
    acts = [a.decode() if isinstance(a, bytes) else a for a in ctx.attrs.get("activations", [])]
    if acts and acts != ["Sigmoid", "Tanh", "Tanh"]:
        raise ctx.fail(f"LSTM activations {acts} (only Sigmoid, Tanh, Tanh)")
    if len(args) > 4 and args[4] is not None:
        raise ctx.fail("LSTM sequence_lens is not supported (one utterance, all frames)")
    if len(args) > 7 and args[7] is not None:
        raise ctx.fail("LSTM peepholes (P) are not supported")
    x = ctx.data(args[0], 0)
    hidden = ctx.attr("hidden_size")
    if len(x.shape) != 3 or x.shape[1] != 1 or x.rows_axis not in (0, None):
        raise ctx.fail(f"LSTM input X must be [T, 1, In], not {list(map(str, x.shape))}")
    w_ih = _lstm_weight(ctx, args[1], 1, f"{ctx.name}.w_ih", hidden, x.width)
    w_hh = _lstm_weight(ctx, args[2], 2, f"{ctx.name}.w_hh", hidden, hidden)
    bias = np.zeros(8 * hidden, np.float32)
    if len(args) > 3 and args[3] is not None:
        bias = np.asarray(ctx.const(args[3], 3), dtype=np.float32).reshape(-1)
        if bias.shape != (8 * hidden,):
            raise ctx.fail(f"B {ctx.input_name(3)!r} must have {8 * hidden} entries")
    bias = _gate_rows(bias[: 4 * hidden] + bias[4 * hidden :], hidden)
    bias = ctx.builder.constant(f"{ctx.name}.bias", values=bias)
    h0, c0 = _state(ctx, args, 5, hidden), _state(ctx, args, 6, hidden)
    state = []
    if h0 is not None or c0 is not None:
        zero = np.zeros((1, hidden), np.float32)
        state = [
            s if s is not None else ctx.builder.constant(f"{ctx.name}.zero", values=zero)
            for s in (h0, c0)
        ]
    y, h, c = ctx.add("lstm", [x.value, w_ih, w_hh, bias, *state])
    rows = x.shape[0]
    return [
        ctx.view(y, (rows, 1, 1, hidden)),
        ctx.view(h, (1, 1, hidden)),
        ctx.view(c, (1, 1, hidden)),
    ]


def _linear(ctx: Context, x: Data, weight: str, bias: str | None, index: int) -> list:
    width = ctx.builder.type_of(weight).shape[1]
    if x.vector or x.width != width:
        raise ctx.fail(
            f"weight {ctx.input_name(index)!r} is {list(ctx.builder.type_of(weight).shape)} "
            f"(takes width {width}), but input {ctx.input_name(0)!r} has shape "
            f"{list(map(str, x.shape))}"
        )
    (y,) = ctx.add("linear", [x.value, weight] + ([bias] if bias else []))
    return [ctx.view(y, (*x.shape[:-1], ctx.builder.type_of(weight).shape[0]))]


def _gemm(ctx: Context, args):
    if ctx.attr("transA", 0):
        raise ctx.fail("Gemm transA=1 is not supported")
    x = ctx.data(args[0], 0)
    trans = bool(ctx.attr("transB", 0))
    value = args[1]
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    if alpha != 1.0:
        if isinstance(value, Quant):
            value = Quant(
                value.codes, value.scales * np.float32(alpha), value.axis, value.precision
            )
        else:
            value = ctx.const(value, 1) * np.float32(alpha)
    shape = np.shape(value.codes if isinstance(value, Quant) else value)
    if len(shape) != 2:
        raise ctx.fail(f"B {ctx.input_name(1)!r} must be 2-D, not {list(shape)}")
    weight = _weight(ctx, value, 1, ctx.input_name(1), 0 if trans else 1, not trans)
    bias = None
    if len(args) > 2 and args[2] is not None:
        out = ctx.builder.type_of(weight).shape[0]
        c = np.asarray(ctx.const(args[2], 2), dtype=np.float32) * np.float32(beta)
        if c.size not in (1, out) or (c.ndim == 2 and c.shape[0] != 1):
            raise ctx.fail(f"C {ctx.input_name(2)!r} of shape {list(c.shape)} is no bias")
        bias = ctx.builder.constant(
            ctx.input_name(2), values=np.broadcast_to(c.reshape(-1), (out,))
        )
    return _linear(ctx, x, weight, bias, 1)


def _matmul(ctx: Context, args):
    x = ctx.data(args[0], 0)
    value = args[1]
    shape = np.shape(value.codes if isinstance(value, Quant) else value)
    if isinstance(value, Data) or len(shape) != 2:
        raise ctx.fail(f"MatMul needs a 2-D constant right operand, not {ctx.input_name(1)!r}")
    weight = _weight(ctx, value, 1, ctx.input_name(1), 1, True)
    return _linear(ctx, x, weight, None, 1)


def _binary(op: str):
    def handle(ctx: Context, args):
        views = [a for a in args if isinstance(a, Data)]
        names, shapes = [], []
        for index, arg in enumerate(args):
            if isinstance(arg, Data):
                arg = ctx.data(arg, index)
                names.append(arg.value)
                shapes.append(arg.shape)
                continue
            c = np.asarray(ctx.const(arg, index), dtype=np.float32)
            if any(size != 1 for size in c.shape[:-1]):
                raise ctx.fail(
                    f"constant {ctx.input_name(index)!r} of shape {list(c.shape)} varies "
                    "along more than the features"
                )
            names.append(ctx.builder.constant(ctx.input_name(index), values=c.reshape(-1)))
            shapes.append(c.shape)
        shape = _broadcast(ctx, shapes)
        (y,) = ctx.add(op, names)
        return [ctx.view(y, shape, views[0].vector)]

    return handle


def _broadcast(ctx: Context, shapes) -> tuple:
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        sizes = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise ctx.fail(f"shapes {[list(map(str, s)) for s in shapes]} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _unary(op: str, fold):
    def handle(ctx: Context, args):
        if not isinstance(args[0], Data):
            return [fold(np.asarray(ctx.const(args[0], 0), dtype=np.float32))]
        x = ctx.data(args[0], 0)
        (y,) = ctx.add(op, [x.value])
        return [ctx.view(y, x.shape, x.vector)]

    return handle


def embedding(ctx: Context, table, ids: Data, axis: int) -> list:
    """``Gather`` of a constant table by run-time ids: an IR ``embedding``."""
    ids = ctx.data(ids, 1)
    shape = np.shape(table.codes if isinstance(table, Quant) else table)
    if axis % max(len(shape), 1) != 0 or len(shape) != 2:
        raise ctx.fail(f"Gather of run-time ids from {list(shape)} along axis {axis}")
    weight = _weight(ctx, table, 0, ctx.input_name(0), 0, False)
    (y,) = ctx.add("embedding", [ids.value, weight])
    return [ctx.view(y, (*ids.shape, shape[1]))]


def _scalar(ctx: Context, args, index: int, what: str, default=0):
    if len(args) <= index or args[index] is None:
        return default
    value = np.asarray(ctx.const(args[index], index))
    if value.size != 1:
        raise ctx.fail(f"{what} of a run-time tensor must be one value (per tensor)")
    return value.reshape(-1)[0]


def _zero_point(ctx: Context, args) -> tuple[int, str]:
    zero = np.asarray(ctx.const(args[2], 2)) if len(args) > 2 and args[2] is not None else None
    kind = "int8" if zero is None else str(zero.dtype)
    if kind not in ("int8", "int4"):
        raise ctx.fail(f"zero point of type {kind} (only int8 and int4, signed)")
    return (0 if zero is None else zero.astype(np.int32)), kind


def _quantize(ctx: Context, args):
    zero, kind = _zero_point(ctx, args)
    if isinstance(args[0], Data):
        x = ctx.data(args[0], 0)
        scale = float(_scalar(ctx, args, 1, "scale"))
        attrs = {"scale": scale, "zero_point": int(np.reshape(zero, -1)[0])}
        (q,) = ctx.add("quantize", [x.value], attrs)
        return [ctx.view(q, x.shape, x.vector)]
    x = np.asarray(ctx.const(args[0], 0), dtype=np.float32)
    axis = ctx.attr("axis", 1)
    scale = np.asarray(ctx.const(args[1], 1), dtype=np.float32)
    shape = [1] * x.ndim
    if scale.size > 1:
        shape[axis] = -1
    low, high = (-128, 127) if kind == "int8" else (-8, 7)
    q = np.rint(x / scale.reshape(shape)) + np.reshape(zero, shape if np.size(zero) > 1 else ())
    return [np.clip(q, low, high).astype(np.int8)]  # int4 codes are kept one per byte


def _dequantize(ctx: Context, args):
    zero, kind = _zero_point(ctx, args) if len(args) > 2 else (0, None)
    if isinstance(args[0], Data):
        x = ctx.data(args[0], 0)
        attrs = {
            "scale": float(_scalar(ctx, args, 1, "scale")),
            "zero_point": int(np.reshape(zero, -1)[0]),
        }
        (y,) = ctx.add("dequantize", [x.value], attrs)
        return [ctx.view(y, x.shape, x.vector)]
    codes = np.asarray(ctx.const(args[0], 0))
    scales = np.asarray(ctx.const(args[1], 1), dtype=np.float32)
    precision = "int4" if str(codes.dtype) == "int4" else "int8"
    if codes.dtype not in (np.int8,) and precision != "int4":
        shape = [1] * codes.ndim  # an int32 bias or similar: plain float values
        if scales.size > 1:
            shape[ctx.attr("axis", 1)] = -1
        return [(codes.astype(np.float32) - zero) * scales.reshape(shape)]
    if np.any(np.asarray(zero) != 0):
        raise ctx.fail("zero point must be 0 (weights use a symmetric grid)")
    codes = codes.astype(np.int8)
    top = qmax(precision)
    if np.any(np.abs(codes.astype(np.int16)) > top):
        raise ctx.fail(
            f"codes of {ctx.input_name(0)!r} must lie in [-{top}, {top}] (symmetric {precision})"
        )
    axis = None if scales.size == 1 else ctx.attr("axis", 1) % codes.ndim
    return [
        Quant(
            codes, scales.reshape(-1) if axis is not None else scales.reshape(()), axis, precision
        )
    ]


#: Handlers of the ops that compute: ``handler(ctx, args) -> outputs``.
LAYER_OPS = {
    "LSTM": _lstm,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary("add"),
    "Mul": _binary("mul"),
    "Sigmoid": _unary("sigmoid", lambda x: 0.5 * np.tanh(0.5 * x) + 0.5),
    "Tanh": _unary("tanh", np.tanh),
    "Relu": _unary("relu", lambda x: np.maximum(x, 0)),
    "QuantizeLinear": _quantize,
    "DequantizeLinear": _dequantize,
}
