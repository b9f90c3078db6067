"""ONNX shape plumbing: folded to constants, or turned into views of IR values.

PyTorch's exporter wraps layers in ``Shape``/``Gather``/``Unsqueeze``/``Concat``/
``ConstantOfShape``/``Squeeze``/``Transpose``: on constants (and symbolic sizes, see
:mod:`.symbolic`) these are evaluated here; on run-time tensors they may only move unit
axes (batch 1, direction 1), which makes them views that emit nothing. Two patterns do
emit IR: ``Pad`` (zero rows at the end of time) followed by a ``Reshape`` that merges
``r`` frames into one is ``time_reduce(r)``, checked exactly (the pad must be
``(-T) mod r``); ``Gather`` of a constant table by run-time ids is ``embedding``.
"""

from __future__ import annotations

import numbers

import numpy as np
from onnx import helper, numpy_helper

from .onnx_layers import embedding
from .onnx_values import (
    Context,
    Data,
    Quant,
    const_ints,
    onnx_slice,
    product,
    slice_length,
)
from .symbolic import SymInt, from_dim

__all__ = ["FOLD_OPS", "normalize"]


def normalize(array: np.ndarray) -> np.ndarray:
    """An ``object`` array whose entries are all ints becomes int64."""
    array = np.asarray(array)
    if array.dtype == object and all(isinstance(v, numbers.Integral) for v in array.flat):
        return array.astype(np.int64)
    return array


def _plain(value):
    """An integer as a Python int (a SymInt as it is)."""
    return int(value) if isinstance(value, numbers.Integral) else value


def _is_const(value) -> bool:
    return not isinstance(value, Data)


def _shape_array(sizes) -> np.ndarray:
    return normalize(np.array(list(sizes) or [], dtype=object).reshape(len(sizes)))


def _constant(ctx: Context, args):
    for key, value in ctx.attrs.items():
        if key == "value":
            return [numpy_helper.to_array(value)]
        if key in ("value_float", "value_int"):
            return [np.array(value, dtype=np.float32 if key == "value_float" else np.int64)]
        if key in ("value_floats", "value_ints"):
            return [np.array(value, dtype=np.float32 if key == "value_floats" else np.int64)]
    raise ctx.fail(f"Constant attribute {', '.join(ctx.attrs)} is not supported")


def _shape(ctx: Context, args):
    (x,) = args
    shape = x.shape if isinstance(x, Data) else np.shape(x.codes if isinstance(x, Quant) else x)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return [_shape_array(list(shape)[start:end])]


def _cast(ctx: Context, args):
    (x,) = args
    target = helper.tensor_dtype_to_np_dtype(ctx.attr("to"))
    if isinstance(x, Data):
        dtype = ctx.builder.type_of(x.value).dtype
        if {"f32": np.float32, "i64": np.int64, "i32": np.int32}.get(dtype) != target:
            raise ctx.fail(f"Cast of a run-time {dtype} tensor to {target} is not supported")
        return [x]
    x = ctx.const(x, 0)
    if x.dtype == object:
        if not np.issubdtype(target, np.integer):
            raise ctx.fail(f"Cast of symbolic sizes to {target} is not supported")
        return [x]
    return [x.astype(target)]


def _axes(ctx: Context, args, rank: int, index: int = 1) -> list[int] | None:
    """Axes from the ``axes`` attribute (old opsets) or input ``index`` (opset 13)."""
    if "axes" in ctx.attrs:
        axes = list(ctx.attrs["axes"])
    elif len(args) > index and args[index] is not None:
        axes = const_ints(ctx.const(args[index], index), "axes")
    else:
        return None
    return sorted(a % rank for a in axes)


def _unsqueeze(ctx: Context, args):
    x = args[0]
    raw = ctx.attrs.get("axes")
    if raw is None:
        raw = const_ints(ctx.const(args[1], 1), "axes")
    rank = (len(x.shape) if isinstance(x, Data) else np.ndim(ctx.const(x, 0))) + len(raw)
    axes = sorted(a % rank for a in raw)
    if _is_const(x):
        out = ctx.const(x, 0)
        for axis in axes:
            out = np.expand_dims(out, axis)
        return [out]
    x = ctx.data(x, 0)
    shape = list(x.shape)
    for axis in axes:
        shape.insert(axis, 1)
    if not x.vector and (rank - 1) in axes:
        raise ctx.fail("Unsqueeze after the feature axis is not supported (features stay last)")
    return [ctx.view(x.value, shape, x.vector)]


def _squeeze(ctx: Context, args):
    x = args[0]
    if _is_const(x):
        x = ctx.const(x, 0)
        axes = _axes(ctx, args, x.ndim)
        return [np.squeeze(x, axis=None if axes is None else tuple(axes))]
    x = ctx.data(x, 0)
    rank = len(x.shape)
    axes = _axes(ctx, args, rank)
    last = rank if x.vector else rank - 1
    if axes is None:
        axes = [a for a, size in enumerate(x.shape[:last]) if size == 1]
    for axis in axes:
        if x.shape[axis] != 1 or axis == last:
            raise ctx.fail(f"Squeeze of axis {axis} of shape {list(map(str, x.shape))}")
    shape = [size for axis, size in enumerate(x.shape) if axis not in axes]
    return [ctx.view(x.value, shape, x.vector)]


def _transpose(ctx: Context, args):
    x = args[0]
    if _is_const(x):
        return [np.transpose(ctx.const(x, 0), ctx.attr("perm"))]
    x = ctx.data(x, 0)
    perm = list(ctx.attr("perm") or reversed(range(len(x.shape))))
    if not x.vector and perm[-1] != len(x.shape) - 1:
        raise ctx.fail(f"Transpose {perm} moves the feature axis (only unit axes may move)")
    return [ctx.view(x.value, [x.shape[p] for p in perm], x.vector)]


def _gather(ctx: Context, args):
    data, indices = args
    axis = ctx.attr("axis", 0)
    if isinstance(indices, Data):
        return embedding(ctx, data, indices, axis)
    index = ctx.const(indices, 1)
    if _is_const(data):
        return [np.take(ctx.const(data, 0), index, axis=axis)]
    x = ctx.data(data, 0)
    axis %= len(x.shape)
    picked = const_ints(index, "Gather indices")
    if (
        x.shape[axis] != 1
        or picked not in ([0], [-1])
        or (not x.vector and axis == len(x.shape) - 1)
    ):
        raise ctx.fail(
            f"Gather of index {picked} along axis {axis} of a run-time tensor of shape "
            f"{list(map(str, x.shape))} (only unit axes may be selected)"
        )
    shape = list(x.shape[:axis]) + list(np.shape(index)) + list(x.shape[axis + 1 :])
    return [ctx.view(x.value, shape, x.vector)]


def _concat(ctx: Context, args):
    axis = ctx.attr("axis")
    if all(_is_const(a) for a in args):
        parts = [np.asarray(ctx.const(a, i)) for i, a in enumerate(args)]
        kind = object if any(p.dtype == object for p in parts) else None
        return [normalize(np.concatenate([p.astype(kind) if kind else p for p in parts], axis))]
    xs = [ctx.data(a, i) for i, a in enumerate(args)]
    rank = len(xs[0].shape)
    if xs[0].vector or axis % rank != rank - 1:
        raise ctx.fail(f"Concat of run-time tensors along axis {axis} (only features, the last)")
    if any(x.shape[:-1] != xs[0].shape[:-1] for x in xs):
        raise ctx.fail("Concat inputs differ in their leading sizes")
    (y,) = ctx.add("concat", [x.value for x in xs])
    return [ctx.view(y, list(xs[0].shape[:-1]) + [sum(x.width for x in xs)])]


def _slice(ctx: Context, args):
    x = args[0]
    shape = x.shape if isinstance(x, Data) else np.shape(ctx.const(x, 0))
    starts = const_ints(ctx.const(args[1], 1), "Slice starts")
    ends = const_ints(ctx.const(args[2], 2), "Slice ends")
    rank = len(shape)
    axes = list(range(len(starts)))
    if len(args) > 3 and args[3] is not None:
        axes = const_ints(ctx.const(args[3], 3), "Slice axes")
    steps = [1] * len(starts)
    if len(args) > 4 and args[4] is not None:
        steps = const_ints(ctx.const(args[4], 4), "Slice steps")
    if _is_const(x):
        index = [slice(None)] * rank
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            index[axis % rank] = onnx_slice(shape[axis % rank], start, end, step)
        return [ctx.const(x, 0)[tuple(index)]]
    x = ctx.data(x, 0)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        size = shape[axis % rank]
        whole = isinstance(size, int) and step == 1 and start in (0, -size)
        if not (whole and slice_length(onnx_slice(size, start, end, step), size) == size):
            raise ctx.fail(
                f"Slice [{start}:{end}:{step}] of axis {axis} of a run-time tensor of shape "
                f"{list(map(str, shape))} (only whole unit axes can be sliced)"
            )
    return [x]


def _reshape_target(ctx: Context, shape, spec: list) -> list:
    allowzero = ctx.attr("allowzero", 0)
    out = [shape[i] if (s == 0 and not allowzero) else s for i, s in enumerate(spec)]
    if sum(1 for s in out if isinstance(s, int) and s == -1) > 1:
        raise ctx.fail(f"Reshape target {spec} has more than one -1")
    if any(isinstance(s, int) and s == -1 for s in out):
        known = product(s for s in out if not (isinstance(s, int) and s == -1))
        if not isinstance(known, int) or known == 0:
            raise ctx.fail(f"Reshape target {list(map(str, out))} cannot be inferred")
        total = product(shape)
        inferred = total // known
        if inferred * known != total:
            raise ctx.fail(f"Reshape of {list(map(str, shape))} to {spec} does not divide")
        out = [inferred if isinstance(s, int) and s == -1 else s for s in out]
    return out


def _reshape(ctx: Context, args):
    x, spec = args
    spec = [_plain(s) for s in ctx.const(spec, 1).reshape(-1)]
    if _is_const(x):
        x = ctx.const(x, 0)
        return [np.reshape(x, _reshape_target(ctx, x.shape, [int(s) for s in spec]))]
    target = _reshape_target(ctx, x.shape, spec)
    if x.vector or target[-1] == x.width:
        if x.pad != 0 or product(target) != product(x.shape):
            raise ctx.fail(f"Reshape of {list(map(str, x.shape))} to {list(map(str, target))}")
        return [ctx.view(x.value, target, x.vector)]
    factor = target[-1] // x.width if isinstance(target[-1], int) else 0
    if factor < 2 or factor * x.width != target[-1]:
        raise ctx.fail(
            f"Reshape of {list(map(str, x.shape))} to {list(map(str, target))} changes the "
            "features other than by stacking whole frames (time reduction)"
        )
    rows = from_dim(ctx.builder.type_of(x.value).shape[0])
    if x.pad != (-rows) % factor:
        raise ctx.fail(
            f"Reshape stacks {factor} frames, but the {rows} frames are padded by {x.pad}, "
            f"not to a multiple of {factor} (expected {(-rows) % factor})"
        )
    (y,) = ctx.add("time_reduce", [x.value], {"factor": factor})
    out = ctx.view(y, target)
    if product(out.leading) != from_dim(ctx.builder.type_of(y).shape[0]):
        raise ctx.fail(f"Reshape to {list(map(str, target))} is not a time reduction by {factor}")
    return [out]


def _pad(ctx: Context, args):
    x = args[0]
    if (ctx.attr("mode") or "constant") != "constant":
        raise ctx.fail(f"Pad mode {ctx.attr('mode')!r} (only 'constant')")
    if len(args) > 2 and args[2] is not None:
        fill = ctx.const(args[2], 2)
        if np.any(fill != 0):
            raise ctx.fail(f"Pad value {fill.tolist()} (only zero padding)")
    rank = len(x.shape) if isinstance(x, Data) else np.ndim(ctx.const(x, 0))
    pads = [_plain(p) for p in np.asarray(ctx.const(args[1], 1)).reshape(-1)]
    axes = _axes(ctx, args, rank, index=3) or list(range(rank))
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = pads[i], pads[i + len(axes)]
    if _is_const(x):
        ends = const_ints(end, "pads")
        widths = list(zip(const_ints(begin, "pads"), ends, strict=True))
        return [np.pad(ctx.const(x, 0), widths)]
    x = ctx.data(x, 0)
    grown = [axis for axis in range(rank) if begin[axis] != 0 or end[axis] != 0]
    if not grown:
        return [x]
    axis = grown[0]
    rows = x.rows_axis if x.rows_axis is not None else axis
    feature = not x.vector and axis == rank - 1
    if len(grown) > 1 or begin[axis] != 0 or axis != rows or feature:
        raise ctx.fail(
            "Pad only appends zero frames at the end of time (for time reduction), not "
            f"pads {[str(p) for p in pads]} of shape {list(map(str, x.shape))}"
        )
    shape = list(x.shape)
    shape[axis] = shape[axis] + end[axis]
    padded = ctx.view(x.value, shape, x.vector, pad=end[axis])
    if padded.rows_axis not in (None, axis):
        raise ctx.fail("Pad of a unit axis")
    return [padded]


def _constant_of_shape(ctx: Context, args):
    shape = ctx.const(args[0], 0)
    if any(isinstance(v, SymInt) for v in np.asarray(shape).flat):
        raise ctx.fail(
            f"ConstantOfShape of run-time shape {[str(v) for v in shape.flat]} is not supported"
        )
    value = ctx.attrs.get("value")
    fill = numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
    return [np.full(const_ints(shape, "shape"), fill.reshape(-1)[0], dtype=fill.dtype)]


def _arith(name: str):
    def fold(ctx: Context, args):
        a, b = (np.asarray(ctx.const(v, i)) for i, v in enumerate(args))
        if name == "Mod":
            if ctx.attr("fmod", 0):
                if a.dtype == object or b.dtype == object:
                    raise ctx.fail("fmod of symbolic sizes is not supported")
                return [np.fmod(a, b)]
            return [normalize(np.mod(a, b))]
        if name == "Div":
            if a.dtype == object or b.dtype == object:
                return [normalize(np.floor_divide(a, b))]  # sizes are never negative
            if np.issubdtype(a.dtype, np.integer):
                quotient = np.abs(a) // np.abs(b)
                return [(quotient * np.sign(a) * np.sign(b)).astype(a.dtype)]  # truncates
            return [a / b]
        op = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[name]
        return [normalize(op(a, b))]

    return fold


#: Handlers of the ops that fold or view: ``handler(ctx, args) -> outputs``.
FOLD_OPS = {
    "Constant": _constant,
    "Identity": lambda ctx, args: [args[0]],
    "Shape": _shape,
    "Cast": _cast,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Transpose": _transpose,
    "Gather": _gather,
    "Concat": _concat,
    "Slice": _slice,
    "Reshape": _reshape,
    "Pad": _pad,
    "ConstantOfShape": _constant_of_shape,
    "Sub": _arith("Sub"),
    "Div": _arith("Div"),
    "Mod": _arith("Mod"),
    "_Add": _arith("Add"),
    "_Mul": _arith("Mul"),
}
