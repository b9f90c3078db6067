"""A pass on the float model: compute the joint's two input projections where their inputs
are made, once each, instead of in every joint call.

Greedy (and beam) search calls the joint once per (frame, prediction) pair it visits, about
T + U times an utterance, but the encoder projection of a frame changes only with the frame
and the predictor projection only with the emitted token. With the joint as
``act(W_e f + b_e + W_p p + b_p)`` followed by the output layer, the ``W_e f + b_e`` linear
moves to the end of the encoder graph and ``W_p p + b_p`` to the end of the predictor graph;
the joint keeps the add, the activation and the output layer. Its weight traffic per call
falls from all three matrices to the output layer alone.

The pass changes nothing when the joint's inputs do not each feed exactly one ``linear``
(so it is idempotent).
"""

from __future__ import annotations

import dataclasses

from .ir import Graph, GraphBuilder, Model, Node, verify_model
from .shapes import TensorType

__all__ = ["PROJECTED", "hoist_joint_projections"]

#: Names of the encoder's and the predictor's projected outputs (the joint's new inputs).
PROJECTED = ("frame_projection", "prediction_projection")


def _copy_constant(builder: GraphBuilder, graph: Graph, name: str) -> str:
    constant = graph.constants[name]
    fields = {
        f.name: getattr(constant, f.name) for f in dataclasses.fields(constant) if f.name != "name"
    }
    return builder.constant(name, **{k: v for k, v in fields.items() if v is not None})


def _replay(builder: GraphBuilder, graph: Graph, skip: set[int], rename: dict[str, str]) -> None:
    """Add ``graph``'s constants and nodes (but the ``skip`` ped ones) to ``builder``."""
    for name in graph.constants:
        if any(name in node.inputs for i, node in enumerate(graph.nodes) if i not in skip):
            _copy_constant(builder, graph, name)
    for index, node in enumerate(graph.nodes):
        if index in skip:
            continue
        builder.add(
            node.op,
            [rename.get(n, n) for n in node.inputs],
            node.attrs,
            node.name,
            outputs=[v.name for v in node.outputs],
        )


def _with_projection(graph: Graph, source: Graph, node: Node, output: int, name: str) -> Graph:
    """``graph`` with ``node`` (a linear of ``source``) applied to its ``output``-th output,
    which the projection replaces as that output."""
    builder = GraphBuilder(graph.name)
    for value in graph.inputs:
        builder.input(value.name, value.type)
    _replay(builder, graph, set(), {})
    weights = [_copy_constant(builder, source, n) for n in node.inputs[1:]]
    (projected,) = builder.add(
        "linear", [graph.outputs[output], *weights], node.attrs, node.name, outputs=[name]
    )
    outputs = list(graph.outputs)
    outputs[output] = projected
    return builder.build(outputs)


def hoist_joint_projections(model: Model) -> Model:
    """``model`` with the joint's input projections moved into the encoder and predictor."""
    joint = model["joint"]
    if len(joint.inputs) != 2:
        return model
    projections = []
    for value in joint.inputs:
        users = [(i, n) for i, n in enumerate(joint.nodes) if value.name in n.inputs]
        if len(users) != 1 or users[0][1].op != "linear" or users[0][1].inputs[0] != value.name:
            return model
        projections.append(users[0])
    (e_index, e_node), (p_index, p_node) = projections
    encoder = _with_projection(model["encoder"], joint, e_node, 0, PROJECTED[0])
    predictor = _with_projection(model["predictor"], joint, p_node, 0, PROJECTED[1])
    builder = GraphBuilder("joint")
    rename = {}
    for value, (_, node), name in zip(joint.inputs, projections, PROJECTED, strict=True):
        rows = value.type.shape[0]
        width = node.outputs[0].type.shape[1]
        builder.input(name, TensorType("f32", (rows, width)))
        rename[node.outputs[0].name] = name
    _replay(builder, joint, {e_index, p_index}, rename)
    joint = builder.build([rename.get(n, n) for n in joint.outputs])
    graphs = {**model.graphs, "encoder": encoder, "predictor": predictor, "joint": joint}
    if "encoder_expensive" in model.graphs:  # a branching encoder's frames come from both
        graphs["encoder_expensive"] = _with_projection(
            model["encoder_expensive"], model["joint"], e_node, 0, PROJECTED[0]
        )
    return verify_model(dataclasses.replace(model, graphs=graphs))
