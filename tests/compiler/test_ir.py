"""IR invariants: verify accepts built graphs and names each broken invariant; passes run
between checks; shape rules and the printer's golden text."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from edgenpu.compiler.float_reference import run
from edgenpu.compiler.ir import Constant, GraphBuilder, Node, Value, run_passes, verify
from edgenpu.compiler.printer import format_graph
from edgenpu.compiler.shapes import SymDim, TensorType, infer
from edgenpu.errors import CompileError


def _graph():
    b = GraphBuilder("g")
    x = b.input("x", TensorType("f32", (SymDim("T"), 3)))
    w = b.constant(
        "w",
        codes=np.array([[1, -7, 0], [2, 3, 4]], np.int8),
        scales=np.array([0.5, 0.25], np.float32),
        precision="int4",
        mask=np.array([[True, True, False], [True, True, True]]),
    )
    bias = b.constant("b", values=np.array([1.0, -1.0], np.float32))
    (r,) = b.add("time_reduce", [x], {"factor": 2}, name="r")
    (y,) = b.add("linear", [x, w, bias], name="fc")
    (z,) = b.add("tanh", [y])
    return b.build([z], {z: "out"}), r


def test_golden_text():
    graph, _ = _graph()
    assert format_graph(graph) == "\n".join(
        [
            "graph g(x: f32[T, 3]) -> (out)",
            "  const w: f32[2, 3] int4 density=0.83",
            "  const b: f32[2]",
            "  r = time_reduce(x) {factor=2} : f32[ceil(T/2), 6]",
            "  fc = linear(x, w, b) : f32[T, 2]",
            "  out = tanh(fc) : f32[T, 2]",
        ]
    )
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    w = np.array([[0.5, -3.5, 0], [0.5, 0.75, 1.0]], np.float32)
    np.testing.assert_allclose(run(verify(graph), {"x": x})["out"], np.tanh(x @ w.T + [1, -1]))


def _broken(graph, **changes):
    return dataclasses.replace(graph, **changes)


def test_verify_names_each_broken_invariant():
    graph, _ = _graph()
    fc, tanh = graph.nodes[1], graph.nodes[2]
    cases = {
        "is dangling (never defined)": [
            graph.nodes[0],
            dataclasses.replace(fc, inputs=("nope", "w", "b")),
            tanh,
        ],
        "is defined by a later node": [graph.nodes[0], tanh, fc],
        "unknown op 'conv'": [graph.nodes[0], fc, dataclasses.replace(tanh, op="conv")],
        "gives (f32[T, 2])": [
            graph.nodes[0],
            fc,
            dataclasses.replace(tanh, outputs=(Value("out", TensorType("f32", (3, 2))),)),
        ],
        "input weight must be a constant, not 'x'": [
            graph.nodes[0],
            dataclasses.replace(fc, inputs=("x", "x", "b")),
            tanh,
        ],
        "is defined twice": [graph.nodes[0], fc, tanh, tanh],
    }
    for message, nodes in cases.items():
        with pytest.raises(CompileError, match=f"graph g: node .*{re.escape(message)}"):
            verify(_broken(graph, nodes=tuple(nodes)))
    with pytest.raises(CompileError, match="graph g: output 'gone' is dangling"):
        verify(_broken(graph, outputs=("gone",)))


def test_run_passes_names_the_pass_that_broke_the_graph():
    graph, _ = _graph()

    def drop_linear(g):
        return dataclasses.replace(g, nodes=tuple(n for n in g.nodes if n.op != "linear"))

    assert run_passes(graph, [lambda g: g]) is graph
    with pytest.raises(CompileError, match="after pass drop_linear: graph g: node out = tanh"):
        run_passes(graph, [drop_linear])


@pytest.mark.parametrize(
    ("op", "types", "attrs", "message"),
    [
        ("linear", [TensorType("f32", (4, 3)), TensorType("f32", (2, 5))], {}, "takes width 5"),
        (
            "lstm",
            [
                TensorType("f32", (4, 3)),
                TensorType("f32", (6, 3)),
                TensorType("f32", (6, 1)),
                TensorType("f32", (6,)),
            ],
            {},
            "4 H rows",
        ),
        ("time_reduce", [TensorType("f32", (4, 3))], {}, "needs attribute 'factor'"),
        ("add", [TensorType("f32", (4, 3)), TensorType("f32", (2, 3))], {}, "do not broadcast"),
        ("concat", [TensorType("f32", (4, 3))], {}, "at least 2 inputs"),
        ("embedding", [TensorType("f32", (1,)), TensorType("f32", (5, 3))], {}, "integer"),
    ],
)
def test_shape_rules_refuse_misfits(op, types, attrs, message):
    with pytest.raises(CompileError, match=message):
        infer(op, types, attrs)


def test_time_reduce_composes_symbolic_sizes():
    (t,) = infer("time_reduce", [TensorType("f32", (SymDim("T", 2), 4))], {"factor": 3})
    assert str(t) == "f32[ceil(T/6), 12]" and t.shape[0].evaluate({"T": 13}) == 3


def test_constants_check_their_grid_and_mask():
    with pytest.raises(CompileError, match=r"code 8 at \(0, 0\) is outside the symmetric int4"):
        Constant(
            "w", codes=np.array([[8]], np.int8), scales=np.ones(1, np.float32), precision="int4"
        )
    with pytest.raises(CompileError, match=r"weight \(0, 0\) is pruned by the mask but not zero"):
        Constant("w", values=np.ones((1, 1), np.float32), mask=np.zeros((1, 1), bool))


def test_run_checks_inputs():
    graph, _ = _graph()
    with pytest.raises(CompileError, match=r"input 'x' must be f32\[T, 3\]"):
        run(graph, {"x": np.zeros((2, 4), np.float32)})
    with pytest.raises(CompileError, match="missing input 'x'"):
        run(graph, {})
    assert isinstance(graph.nodes[0], Node)


def test_embedding_ids_out_of_range_name_the_node():
    b = GraphBuilder("p")
    ids = b.input("token", TensorType("i64", (1,)))
    table = b.constant("table", values=np.eye(3, dtype=np.float32))
    (y,) = b.add("embedding", [ids, table], name="embed")
    graph = verify(b.build([y]))
    np.testing.assert_array_equal(run(graph, {"token": [2]})["embed"], [[0, 0, 1]])
    with pytest.raises(
        CompileError, match=r"node embed = embedding\(token, table\).*id 3 is outside"
    ):
        run(graph, {"token": [3]})
    with pytest.raises(CompileError, match="input 'token' must hold integers"):
        run(graph, {"token": [1.5]})
