"""The quantization pass: a float :class:`~edgenpu.compiler.ir.Model` -> a :class:`QModel`.

Weights keep their quantization-aware-training codes when the model carries them (a
bundle, or ONNX ``DequantizeLinear`` of integer initializers); float weights, and weights
the spec asks at another precision, are quantized per row by the training rule
(:mod:`edgenpu.asr_workloads.weight_quant`). Activations take fixed formats where the
function fixes their range (:mod:`.formats`: LSTM gates, state and output, LUT outputs)
and otherwise the tightest format that provably cannot overflow: a linear layer's output
is bounded by ``|b| + sum |w| max|x|`` per row, an embedding's by its table, the encoder's
input by the spec's ``input_range``. Int16 values feeding tables get power-of-two scales
(``vlut`` takes only a shift); the two sides of an ``add`` share one scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from edgenpu.fixedpoint import quantize_multipliers

from ...asr_workloads.weight_quant import QUANTIZED, channel_scales, codes
from ...errors import CompileError
from ..ir import Constant, Graph, Model, Node
from ..joint_split import hoist_joint_projections
from ..printer import format_node
from ..shapes import SymDim
from ..spec import CompileSpec
from . import branch_calls
from .calibrate import HEADROOM
from .formats import (
    CELL_FRAC,
    GATE_FRAC,
    SIGMOID,
    STATE_FRAC,
    TANH,
    fraction_for_bound,
    round_half_up,
)
from .qir import (
    QAdd,
    QKernel,
    QLinear,
    QLstm,
    QLut,
    QModel,
    QRelu,
    QTensor,
    QTimeReduce,
    QWeights,
    Requant,
    Step,
)

__all__ = ["KERNEL_NAMES", "quantize_model", "quantize_weights"]

#: Entry point of each graph of an RNN-T.
KERNEL_NAMES = {
    "encoder": "encoder_chunk",
    "predictor": "predictor_step",
    "joint": "joint",
}
_LUTS = {"sigmoid": SIGMOID, "tanh": TANH}
_NEEDS_INT8 = {"linear", "lstm", "time_reduce"}
_TAKES_INT16 = {"add", "tanh", "sigmoid", "relu"}
_ALIASES = {"quantize", "dequantize"}
#: How far (in grid steps) a float weight may sit from a grid point and still count as on
#: it: float32 products ``code * scale`` are off by far less.
_GRID_TOLERANCE = 1e-3


@dataclass(frozen=True)
class _Format:
    bits: int
    scale: float
    bound: float  # the largest |real value| the format must hold

    @staticmethod
    def fraction(bits: int, frac: int, bound: float) -> _Format:
        return _Format(bits, 2.0**-frac, bound)

    @property
    def frac(self) -> int:
        frac = -math.log2(self.scale)
        if frac != round(frac):
            raise ValueError("not a power-of-two scale")
        return int(round(frac))


def _on_grid(w: np.ndarray) -> QWeights | None:
    """Codes and scales of ``w`` if every row already lies on a per-row int4 or int8 grid:
    a quantization-aware model exported with its fake-quant folded into float weights."""
    for precision in QUANTIZED[::-1]:  # int4 first: an int4 grid is not an int8 one
        scales = channel_scales(w, precision, np)
        steps = w / scales
        if np.all(np.abs(steps - np.round(steps)) <= _GRID_TOLERANCE):
            return precision, codes(w, scales, precision, np), scales[:, 0]
    return None


def quantize_weights(constant: Constant, spec: CompileSpec) -> QWeights:
    """``constant`` as MAC-array codes: its own codes (a bundle's, or float weights already
    on a QAT grid), or quantized per row at the spec's precision (default int8)."""
    want = spec.precision_of(constant.name)
    if constant.quantized and want in (None, constant.precision):
        return QWeights(constant.name, constant.codes, constant.precision, constant.scales)
    w = constant.array().astype(np.float64)
    if w.ndim != 2:
        raise CompileError(f"weight {constant.name!r} must be 2-D, not of shape {list(w.shape)}")
    grid = None if constant.quantized else _on_grid(w)
    if grid is not None and want in (None, grid[0]):
        return QWeights(constant.name, grid[1], grid[0], grid[2])
    precision = want or "int8"
    scales = channel_scales(w, precision, np)
    return QWeights(constant.name, codes(w, scales, precision, np), precision, scales[:, 0])


def _requant(real_scales: np.ndarray, where: str) -> Requant:
    try:
        multipliers, shift = quantize_multipliers(real_scales)
    except ValueError as error:
        raise CompileError(f"{where}: cannot requantize ({error})") from None
    return Requant(multipliers, shift)


def _bias_codes(bias: np.ndarray, acc_scales: np.ndarray, where: str) -> np.ndarray:
    q = round_half_up(np.asarray(bias, np.float64) / acc_scales)
    if np.any(np.abs(q) >= 2**31):
        row = int(np.argmax(np.abs(q)))
        raise CompileError(f"{where}: bias {float(bias[row])} of row {row} overflows int32")
    return q


class _GraphQuantizer:
    """Quantizes one graph: formats first (they may be revised by later nodes), then steps."""

    def __init__(
        self, graph: Graph, spec: CompileSpec, rows: Mapping[str, int], inputs, observed, forced
    ):
        self.graph, self.spec, self.rows = graph, spec, dict(rows)
        self.observed = observed  # value name -> calibrated max |value| (may be empty)
        self.forced = forced  # linear output name -> the fraction another kernel needs
        self.given = set(inputs)  # formats fixed by the caller (other kernels' outputs)
        self.types = graph.types()
        self.formats: dict[str, _Format] = dict(inputs)
        self.alias: dict[str, str] = {}
        self.consumers: dict[str, list[Node]] = {}
        for node in graph.nodes:
            for name in node.inputs:
                self.consumers.setdefault(name, []).append(node)
        self.weights: dict[str, QWeights] = {}

    def where(self, node: Node) -> str:
        return f"graph {self.graph.name}: node {format_node(node)}"

    def real(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def qweights(self, name: str) -> QWeights:
        if name not in self.weights:
            self.weights[name] = quantize_weights(self.graph.constants[name], self.spec)
        return self.weights[name]

    # -- phase 1: formats --------------------------------------------------------------

    def decide_formats(self) -> None:
        for node in self.graph.nodes:  # refuse before any format depends on such a node
            if node.op not in _ALIASES and not hasattr(self, f"_format_{node.op}"):
                raise CompileError(
                    f"{self.where(node)}: {node.op} has no quantized lowering (supported: "
                    "linear, lstm, time_reduce, embedding, add, tanh, sigmoid, relu)"
                )
        for node in self.graph.nodes:
            if node.op in _ALIASES:
                self.alias[node.outputs[0].name] = node.inputs[0]
            else:
                getattr(self, f"_format_{node.op}")(node)

    def _format_lstm(self, node: Node) -> None:
        self._needs_int8(node, node.inputs[0])
        y, h, c = (v.name for v in node.outputs)
        self.formats[y] = self.formats[h] = _Format.fraction(8, STATE_FRAC, 1.0)
        self.formats[c] = _Format.fraction(16, CELL_FRAC, 2.0 ** (15 - CELL_FRAC))

    def _format_time_reduce(self, node: Node) -> None:
        self._needs_int8(node, node.inputs[0])
        self.formats[node.outputs[0].name] = self.formats[self.real(node.inputs[0])]

    def _format_embedding(self, node: Node) -> None:
        table = self.graph.constants[node.inputs[1]].array()
        bound = float(np.abs(table).max()) or 1.0
        self.formats[node.outputs[0].name] = _Format(8, bound / 127, bound)

    def _format_linear(self, node: Node) -> None:
        x = self.real(node.inputs[0])
        self._needs_int8(node, x)
        w = self.graph.constants[node.inputs[1]].array().astype(np.float64)
        bias = self._bias(node, w.shape[0])
        bound = float((np.abs(bias) + np.abs(w).sum(axis=1) * self.formats[x].bound).max())
        bound = self.calibrated(node.outputs[0].name, bound) or 1.0
        out = node.outputs[0].name
        uses = {n.op for n in self._uses(out)}
        if uses <= _NEEDS_INT8 and out not in self.graph.outputs and uses:
            self.formats[out] = _Format(8, bound / 127, bound)
        elif uses <= _TAKES_INT16:
            frac = self.forced.get(out, fraction_for_bound(bound, 16, lo=-8, hi=24))
            self.formats[out] = _Format.fraction(16, frac, bound)
        else:
            raise CompileError(
                f"{self.where(node)}: its output feeds both int8 "
                f"({', '.join(sorted(uses & _NEEDS_INT8))}) and int16 "
                f"({', '.join(sorted(uses & _TAKES_INT16))}) consumers"
            )

    def _format_add(self, node: Node) -> None:
        a, b = (self.real(name) for name in node.inputs)
        fa, fb = self.formats[a], self.formats[b]
        bound = self.calibrated(node.outputs[0].name, fa.bound + fb.bound)
        if (
            fa.bits == fb.bits == 16
            and fa.scale == fb.scale
            and a in self.given
            and b in self.given
        ):
            # Inputs made by other kernels (hoisted joint projections), already on one scale
            # that holds their sum.
            self.formats[node.outputs[0].name] = _Format(16, fa.scale, bound)
            return
        for name, f in ((a, fa), (b, fb)):
            producer = self.graph.producer(name)
            if f.bits != 16 or producer is None or producer.op != "linear":
                raise CompileError(
                    f"{self.where(node)}: add takes the outputs of linear layers, not {name!r}"
                )
        frac = min(fa.frac, fb.frac, fraction_for_bound(bound, 16, lo=-8, hi=24))
        self.formats[a] = _Format.fraction(16, frac, fa.bound)
        self.formats[b] = _Format.fraction(16, frac, fb.bound)
        self.formats[node.outputs[0].name] = _Format.fraction(16, frac, bound)

    def _format_lut(self, node: Node) -> None:
        x = self.real(node.inputs[0])
        f = self.formats[x]
        if f.bits != 16:
            raise CompileError(
                f"{self.where(node)}: {node.op} needs an int16 input, {x!r} is int{f.bits}"
            )
        self.formats[node.outputs[0].name] = _Format.fraction(8, STATE_FRAC, 1.0)

    _format_tanh = _format_sigmoid = _format_lut

    def _format_relu(self, node: Node) -> None:
        x = self.real(node.inputs[0])
        f = self.formats[x]
        if f.bits != 16:
            raise CompileError(
                f"{self.where(node)}: relu needs an int16 input, {x!r} is int{f.bits}"
            )
        frac = fraction_for_bound(f.bound, 8, lo=-8, hi=f.frac)
        self.formats[node.outputs[0].name] = _Format.fraction(8, frac, f.bound)

    def calibrated(self, name: str, bound: float) -> float:
        """``bound`` tightened to the calibrated range (with headroom) when observed."""
        if name in self.observed:
            return min(bound, self.observed[name] * HEADROOM)
        return bound

    def _uses(self, name: str) -> list[Node]:
        direct = self.consumers.get(name, [])
        out: list[Node] = []
        for node in direct:
            if node.op in _ALIASES:
                out += self._uses(node.outputs[0].name)
            else:
                out.append(node)
        return out

    def _needs_int8(self, node: Node, name: str) -> None:
        f = self.formats[self.real(name)]
        if f.bits != 8:
            raise CompileError(f"{self.where(node)}: needs an int8 input, {name!r} is int{f.bits}")

    def _bias(self, node: Node, rows: int) -> np.ndarray:
        if len(node.inputs) > 2:
            return self.graph.constants[node.inputs[2]].array().astype(np.float64)
        return np.zeros(rows)

    # -- phase 2: steps ----------------------------------------------------------------

    def tensor(self, name: str, shape=None) -> QTensor:
        name = self.real(name)
        f = self.formats[name]
        if shape is None:
            shape = tuple(self._size(d, name) for d in self.types[name].shape)
            shape = shape if len(shape) == 2 else (1, shape[0])
        return QTensor(name, shape, f.bits, f.scale)

    def _size(self, dim, name: str) -> int:
        if not isinstance(dim, SymDim):
            return dim
        rows = self.rows[dim.name]
        if rows % dim.divisor:
            raise CompileError(
                f"graph {self.graph.name}: {name!r} has {dim} rows; a chunk of {rows} frames "
                f"must be a multiple of {dim.divisor}"
            )
        return rows // dim.divisor

    def steps(self) -> tuple[list[Step], dict[str, QTensor]]:
        steps: list[Step] = []
        tensors: dict[str, QTensor] = {}
        for node in self.graph.nodes:
            if node.op in _ALIASES:
                continue
            step = getattr(self, f"_step_{node.op}", None) or self._step_lut
            made, used = step(node)
            steps.append(made)
            tensors.update({t.name: t for t in used})
        return steps, tensors

    def _step_lstm(self, node: Node) -> tuple[Step, list[QTensor]]:
        x = self.tensor(node.inputs[0])
        w_ih, w_hh = self.qweights(node.inputs[1]), self.qweights(node.inputs[2])
        bias = self.graph.constants[node.inputs[3]].array()
        y, h, c = (self.tensor(v.name) for v in node.outputs)
        if len(node.inputs) > 4:
            h_in, c_in = (self.tensor(name) for name in node.inputs[4:6])
        else:
            h_in, c_in = h, c  # state kept between calls
        where = self.where(node)
        acc_ih = x.scale * w_ih.scales
        step = QLstm(
            node.name or y.name,
            x.name,
            y.name,
            h_in.name,
            c_in.name,
            h.name,
            c.name,
            w_ih,
            w_hh,
            _bias_codes(bias, acc_ih, where),
            _requant(acc_ih * 2.0**GATE_FRAC, where),
            _requant(2.0**-STATE_FRAC * w_hh.scales * 2.0**GATE_FRAC, where),
        )
        return step, [x, y, h, c, h_in, c_in]

    def _step_linear(self, node: Node) -> tuple[Step, list[QTensor]]:
        x, y = self.tensor(node.inputs[0]), self.tensor(node.outputs[0].name)
        w = self.qweights(node.inputs[1])
        where = self.where(node)
        acc = x.scale * w.scales
        bias = None
        if len(node.inputs) > 2:
            bias = _bias_codes(self.graph.constants[node.inputs[2]].array(), acc, where)
        return QLinear(
            node.name or y.name, x.name, y.name, w, bias, _requant(acc / y.scale, where)
        ), [x, y]

    def _step_embedding(self, node: Node) -> tuple[Step, list[QTensor]]:
        # The ISA has no indexed load, so the lookup is a matmul with a one-hot input.
        table = self.graph.constants[node.inputs[1]]
        spec_precision = self.spec.precision_of(table.name) or "int8"
        w = table.array().astype(np.float64).T
        scales = channel_scales(w, spec_precision, np)
        weights = QWeights(
            table.name, codes(w, scales, spec_precision, np), spec_precision, scales[:, 0]
        )
        onehot = QTensor(self.onehot_name(node), (1, table.shape[0]), 8, 1.0)
        y = self.tensor(node.outputs[0].name)
        rq = _requant(weights.scales / y.scale, self.where(node))
        return QLinear(node.name or y.name, onehot.name, y.name, weights, None, rq), [onehot, y]

    def onehot_name(self, node: Node) -> str:
        return f"{node.inputs[0]}_onehot"

    def _step_time_reduce(self, node: Node) -> tuple[Step, list[QTensor]]:
        x, y = self.tensor(node.inputs[0]), self.tensor(node.outputs[0].name)
        return QTimeReduce(node.name or y.name, x.name, y.name, node.attrs["factor"]), [x, y]

    def _step_add(self, node: Node) -> tuple[Step, list[QTensor]]:
        a, b = (self.tensor(n) for n in node.inputs)
        y = self.tensor(node.outputs[0].name)
        return QAdd(node.name or y.name, a.name, b.name, y.name), [a, b, y]

    def _step_lut(self, node: Node) -> tuple[Step, list[QTensor]]:
        function = _LUTS[node.op]
        x, y = self.tensor(node.inputs[0]), self.tensor(node.outputs[0].name)
        frac = self.formats[x.name].frac
        if frac < function.in_frac:
            raise CompileError(
                f"{self.where(node)}: its input's range needs {frac} fraction bits, "
                f"{node.op} needs {function.in_frac}"
            )
        return QLut(node.name or y.name, x.name, y.name, function, function.shift_from(frac)), [
            x,
            y,
        ]

    def _step_relu(self, node: Node) -> tuple[Step, list[QTensor]]:
        x, y = self.tensor(node.inputs[0]), self.tensor(node.outputs[0].name)
        shift = self.formats[x.name].frac - self.formats[y.name].frac
        return QRelu(node.name or y.name, x.name, y.name, shift), [x, y]


def _input_formats(graph: Graph, given: Mapping[str, _Format], spec: CompileSpec, observed) -> dict:
    formats = {}
    for value in graph.inputs:
        if value.name in given:
            formats[value.name] = given[value.name]
        elif value.type.dtype in ("i64", "i32"):
            formats[value.name] = _Format(8, 1.0, 1.0)  # token ids: one-hot codes
        else:
            bound = observed[value.name] * HEADROOM if value.name in observed else spec.input_range
            formats[value.name] = _Format(8, bound / 127, bound)
    return formats


def _state_formats(graph: Graph) -> dict[str, _Format]:
    """Graph inputs that are an LSTM's initial state take the state formats."""
    formats = {}
    for node in graph.nodes:
        if node.op == "lstm" and len(node.inputs) > 4:
            formats[node.inputs[4]] = _Format.fraction(8, STATE_FRAC, 1.0)
            formats[node.inputs[5]] = _Format.fraction(16, CELL_FRAC, 2.0 ** (15 - CELL_FRAC))
    return formats


def _quantize_graph(
    graph: Graph,
    spec: CompileSpec,
    rows: Mapping[str, int],
    given: Mapping[str, _Format],
    ranges: Mapping[str, float],
    forced: Mapping[str, int] | None = None,
) -> tuple[QKernel, _GraphQuantizer]:
    prefix = f"{graph.name}/"
    observed = {k[len(prefix) :]: v for k, v in ranges.items() if k.startswith(prefix)}
    formats = _input_formats(graph, {**_state_formats(graph), **given}, spec, observed)
    q = _GraphQuantizer(graph, spec, rows, formats, observed, dict(forced or {}))
    q.decide_formats()
    steps, tensors = q.steps()
    inputs = []
    for value in graph.inputs:
        embedding = [n for n in graph.nodes if n.op == "embedding" and n.inputs[0] == value.name]
        inputs.append(q.onehot_name(embedding[0]) if embedding else value.name)
        if not embedding:
            tensors.setdefault(value.name, q.tensor(value.name))
    outputs = tuple(q.real(name) for name in graph.outputs)
    state = []
    for step in steps:
        if isinstance(step, QLstm) and step.h_in == step.h_out:
            state += [step.h_in, step.c_in]
    kernel = QKernel(
        KERNEL_NAMES.get(graph.name, graph.name),
        tensors,
        tuple(inputs),
        outputs,
        tuple(state),
        tuple(steps),
    )
    return kernel, q


def quantize_model(
    model: Model, spec: CompileSpec, chunk_frames: int, ranges: Mapping[str, float] | None = None
) -> QModel:
    """Quantize every graph of an RNN-T ``model`` (``encoder``, ``predictor``, ``joint``).

    The encoder is quantized for ``chunk_frames`` input rows per call; the joint for one
    (frame, prediction) pair; its inputs take the encoder's and predictor's output formats.
    ``ranges`` (:func:`.calibrate.observe_ranges`) tighten the formats calibration may set.
    """
    ranges = ranges or {}
    for name in ("encoder", "predictor", "joint"):
        model[name]  # noqa: B018 -- names the missing graph
    if spec.hoist_joint:
        model = hoist_joint_projections(model)
    spec.check_layers([c for g in model.graphs.values() for c in g.constants])
    joint_graph = model["joint"]
    if len(joint_graph.inputs) != 2:
        raise CompileError(
            "graph joint: takes 2 inputs (encoder frame, prediction), "
            f"not {len(joint_graph.inputs)}"
        )
    encoder_graph = model["encoder"]
    time = [d.name for v in encoder_graph.inputs for d in v.type.shape if isinstance(d, SymDim)]
    rows = dict.fromkeys(time, chunk_frames)

    expensive_graph = model.graphs.get(branch_calls.GRAPH)

    def encoders_and_predictor(forced):
        encoder = _quantize_graph(encoder_graph, spec, rows, {}, ranges, forced)
        expensive = []
        if expensive_graph is not None:
            # A branching encoder's expensive branch, in the stem's format, one kernel per
            # group size of gated frames (see branch_calls).
            kernel, quantizer = encoder
            stem_name = kernel.outputs[1]
            stem = {expensive_graph.inputs[0].name: quantizer.formats[stem_name]}
            for size in branch_calls.group_sizes(kernel.tensor(stem_name).shape[0]):
                made, q = _quantize_graph(expensive_graph, spec, {"E": size}, stem, ranges, forced)
                expensive.append((replace(made, name=branch_calls.kernel_name(size)), q))
        return encoder, expensive, _quantize_graph(model["predictor"], spec, {}, {}, ranges, forced)

    def output_format(made):
        kernel, quantizer = made
        return quantizer.formats[kernel.outputs[0]]

    (encoder, eq), expensive, (predictor, pq) = encoders_and_predictor({})
    frames = [output_format((encoder, eq))] + [output_format(e) for e in expensive[:1]]
    pf = output_format((predictor, pq))
    if all(f.bits == 16 for f in (*frames, pf)) and len({f.scale for f in (*frames, pf)}) > 1:
        # Hoisted projections: the joint adds them, so all take the fraction that holds
        # each of them and their sum.
        bound = max(f.bound for f in frames) + pf.bound
        frac = min(*(f.frac for f in (*frames, pf)), fraction_for_bound(bound, 16, lo=-8, hi=24))
        forced = {encoder.outputs[0]: frac, predictor.outputs[0]: frac}
        (encoder, eq), expensive, (predictor, pq) = encoders_and_predictor(forced)
    frame, prediction = (v.name for v in joint_graph.inputs)
    given = {
        frame: eq.formats[encoder.outputs[0]],
        prediction: pq.formats[predictor.outputs[0]],
    }
    symbols = {d.name for v in joint_graph.inputs for d in v.type.shape if isinstance(d, SymDim)}
    joint, _ = _quantize_graph(joint_graph, spec, dict.fromkeys(symbols, 1), given, ranges)
    made = (encoder, *(kernel for kernel, _ in expensive), predictor, joint)
    kernels = {k.name: k for k in made}
    return QModel(kernels, chunk_frames, model.frontend, model.source)
