"""Readable text of IR graphs: one line per constant and per node.

::

    graph joint(frame: f32[N, 5], prediction: f32[N, 7]) -> (logits)
      const encoder.weight: f32[9, 5] int8 density=0.52
      /encoder/Gemm = linear(frame, encoder.weight, encoder.bias) : f32[N, 9]
      ...

Node lines read ``outputs = op(inputs) {attrs} : types``. The text is deterministic (it
is used in error messages and golden tests): attributes in sorted order, floats in
``repr``.
"""

from __future__ import annotations

import numpy as np

from .ir import Constant, Graph, Model, Node

__all__ = ["format_constant", "format_graph", "format_model", "format_node"]


def _attr(value: object) -> str:
    return repr(value) if isinstance(value, float | str) else str(value)


def format_node(node: Node) -> str:
    """``y = op(a, b) {k=v} : f32[T, 4]`` (one line)."""
    outs = ", ".join(value.name for value in node.outputs)
    attrs = ", ".join(f"{k}={_attr(node.attrs[k])}" for k in sorted(node.attrs))
    types = ", ".join(str(value.type) for value in node.outputs)
    text = f"{outs} = {node.op}({', '.join(node.inputs)})"
    if attrs:
        text += f" {{{attrs}}}"
    return f"{text} : {types}"


def format_constant(constant: Constant) -> str:
    """``name: f32[32, 12]`` plus storage: ``int8``/``int4`` codes and the kept fraction."""
    text = f"{constant.name}: {constant.type}"
    if constant.quantized:
        text += f" {constant.precision}"
    if constant.mask is not None:
        text += f" density={float(np.mean(constant.mask)):.2f}"
    return text


def format_graph(graph: Graph, constants: bool = True) -> str:
    """The whole graph: a header, its constants (unless ``constants=False``), its nodes."""
    inputs = ", ".join(f"{v.name}: {v.type}" for v in graph.inputs)
    lines = [f"graph {graph.name}({inputs}) -> ({', '.join(graph.outputs)})"]
    if constants:
        lines += [f"  const {format_constant(c)}" for c in graph.constants.values()]
    lines += [f"  {format_node(node)}" for node in graph.nodes]
    return "\n".join(lines)


def format_model(model: Model, constants: bool = True) -> str:
    """Every graph of ``model``, separated by blank lines, after its front end if any."""
    parts = []
    if model.frontend is not None:
        parts.append(f"frontend {model.frontend.to_dict()}")
    parts += [format_graph(graph, constants) for graph in model.graphs.values()]
    return "\n\n".join(parts)
