"""The ONNX frontend: ONNX files as PyTorch exports them -> IR graphs.

One file per RNN-T part, as :func:`~edgenpu.asr_workloads.onnx_export.export_onnx` writes
them (``encoder.onnx``, ``predictor.onnx``, ``joint.onnx`` in a folder). A file is loaded,
checked with ``onnx.checker`` (full check), then read node by node in its (topological)
order: shape plumbing is folded (:mod:`.onnx_fold`), layers become IR nodes
(:mod:`.onnx_layers`). Graph inputs lose their unit axes: ``features (1, T, F)`` becomes
``f32[T, F]``, a token ``(1, 1)`` int64 becomes ``i64[1]``, a state ``(1, 1, H)`` becomes
``f32[1, H]``. A ``dim_param`` becomes a symbolic size (``T``, ``N``).

Supported ops (default domain): those of :data:`SUPPORTED`. Anything else, or an
unsupported attribute or pattern, is a :class:`~edgenpu.errors.CompileError` of one line
naming the file, the node and op, and what is supported instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...asr_workloads.frontend import FrontEndConfig
from ...errors import CompileError
from ..ir import Graph, GraphBuilder, Model, verify, verify_model
from ..shapes import SymDim, TensorType
from .onnx_fold import FOLD_OPS
from .onnx_layers import LAYER_OPS
from .onnx_values import Context, Data, view
from .symbolic import SymInt, to_dim

__all__ = ["PARTS", "SUPPORTED", "load_onnx", "load_onnx_graph"]

#: The files of an exported RNN-T, by graph name.
PARTS = ("encoder", "predictor", "joint")

#: Every ONNX op the frontend reads.
SUPPORTED = tuple(sorted({op.lstrip("_") for op in FOLD_OPS} | set(LAYER_OPS)))

_INPUT_TYPES = {1: "f32", 7: "i64", 6: "i32"}


def _read(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise CompileError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(path)
    except (DecodeError, ValueError, RuntimeError, OSError) as error:
        raise CompileError(f"{path}: not an ONNX model ({' '.join(str(error).split())})") from None
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        reason = " ".join(str(error).split())
        raise CompileError(f"{path}: rejected by the ONNX checker: {reason}") from None
    return model


def _input(builder: GraphBuilder, path: Path, value) -> Data:
    kind = value.type.tensor_type
    dtype = _INPUT_TYPES.get(kind.elem_type)
    if dtype is None:
        raise CompileError(
            f"{path}: input {value.name!r} has element type {kind.elem_type} "
            "(only float32, int64, int32)"
        )
    shape = []
    for axis, dim in enumerate(kind.shape.dim):
        if dim.HasField("dim_value"):
            shape.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            shape.append(SymInt.symbol(dim.dim_param))
        else:
            raise CompileError(f"{path}: input {value.name!r} axis {axis} has no size")
    vector = dtype != "f32"
    leading = shape if vector else shape[:-1]
    rows = [s for s in leading if not (isinstance(s, int) and s == 1)]
    if len(rows) > 1 or (not vector and (not shape or not isinstance(shape[-1], int))):
        raise CompileError(
            f"{path}: input {value.name!r} of shape {[str(s) for s in shape]}: the compiler "
            "takes (rows, features) with unit batch axes and fixed features"
        )
    row = to_dim(rows[0]) if rows else 1
    if isinstance(row, SymDim) and row.divisor != 1:
        raise CompileError(f"{path}: input {value.name!r} has a derived size {row}")
    ir_type = TensorType(dtype, (row,) if vector else (row, shape[-1]))
    name = builder.input(value.name, ir_type)
    return view(name, tuple(shape), vector)


def _initializers(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    # int4 initializers come as ml_dtypes int4 arrays; DequantizeLinear reads the precision.
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def load_onnx_graph(path: str | os.PathLike, name: str | None = None) -> Graph:
    """Read one ONNX file into a verified IR :class:`Graph` (named ``name`` or the file stem).

    Raises
    ------
    CompileError
        A missing or malformed file (with the ONNX checker's reason), an unsupported op or
        attribute (naming the node and the supported alternatives), a weight that is not an
        initializer, shapes that do not fit (naming the tensors).
    """
    path = Path(path)
    model = _read(path)
    graph = model.graph
    builder = GraphBuilder(name or path.stem)
    env: dict[str, object] = dict(_initializers(model))
    for value in graph.input:
        if value.name not in env:
            env[value.name] = _input(builder, path, value)
    for index, node in enumerate(graph.node):
        ctx = Context(builder, str(path), node, index)
        handler = LAYER_OPS.get(node.op_type) or FOLD_OPS.get(node.op_type)
        args = [env[n] if n else None for n in node.input]
        if node.op_type in ("Add", "Mul", "Sigmoid", "Tanh", "Relu") and not any(
            isinstance(a, Data) for a in args
        ):
            handler = FOLD_OPS.get(f"_{node.op_type}", handler)
        if node.domain not in ("", "ai.onnx") or handler is None:
            op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
            raise CompileError(
                f"{path}: node {ctx.name}: unsupported op {op} (supported: {', '.join(SUPPORTED)})"
            )
        outputs = handler(ctx, args)
        for out_name, out in zip(node.output, outputs, strict=False):
            if out_name:
                env[out_name] = out
    renames, outputs = {}, []
    for value in graph.output:
        out = env[value.name]
        if not isinstance(out, Data) or out.pad != 0:
            what = "a constant" if not isinstance(out, Data) else "padded"
            raise CompileError(f"{path}: output {value.name!r} is {what}, not a computed tensor")
        if out.value in renames or out.value in {v.name for v in graph.input}:
            raise CompileError(f"{path}: output {value.name!r} repeats another value")
        renames[out.value] = value.name
        outputs.append(out.value)
    try:
        return verify(builder.build(outputs, renames))
    except CompileError as error:
        raise CompileError(f"{path}: {error}") from None


def load_onnx(
    folder: str | os.PathLike,
    frontend: FrontEndConfig | None = None,
    parts: tuple[str, ...] = PARTS,
) -> Model:
    """Read ``<part>.onnx`` for each of ``parts`` in ``folder`` into a :class:`Model`.

    ``frontend`` is the feature front end, when the caller knows it (ONNX files do not
    carry it).
    """
    folder = Path(folder)
    graphs: Mapping[str, Graph] = {
        part: load_onnx_graph(folder / f"{part}.onnx", part) for part in parts
    }
    return verify_model(Model(graphs, frontend, source=str(folder)))
