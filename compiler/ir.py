"""The compiler IR: graphs of typed values, constants (weights) and ops, and its invariants.

A :class:`Graph` has typed inputs, named constants (the weights: float values, or integer
codes with per-row scales, plus an optional pruning mask), nodes in topological order and
named outputs. Every value is named once: a graph input, a constant, or a node output, and
each node records its outputs' types. The ops and their shape rules are
:data:`~.shapes.OPS`. A :class:`Model` is the named graphs of one RNN-T (``encoder``,
``predictor``, ``joint``) plus, when known, its front end.

Everything is a frozen dataclass; a pass is a pure function ``Graph -> Graph`` (or
``Model -> Model``) that builds new objects (:class:`GraphBuilder` helps), and
:func:`verify` is the invariant check a pipeline (:func:`run_passes`) runs between passes.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..asr_workloads.frontend import FrontEndConfig
from ..asr_workloads.weight_quant import QUANTIZED, qmax
from ..errors import CompileError
from .shapes import OPS, TensorType, infer

__all__ = [
    "Constant",
    "Graph",
    "GraphBuilder",
    "Model",
    "Node",
    "Value",
    "run_passes",
    "verify",
    "verify_model",
]

_DTYPE_NAMES = {np.dtype(np.float32): "f32", np.dtype(np.int64): "i64", np.dtype(np.int32): "i32"}


def _frozen(array: Any, dtype: Any) -> np.ndarray:
    array = np.array(array, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Constant:
    """A named constant: float32 (or integer) ``values``, or quantized ``codes``.

    A quantized constant is a 2-D weight stored as integer ``codes`` (int8 arrays; int4
    codes one per byte) with float32 per-row ``scales`` on the grid of ``precision``
    (:mod:`~edgenpu.asr_workloads.weight_quant`): the weight is ``codes * scales[:, None]``.
    The arrays are copied and made read-only.

    Parameters
    ----------
    name : str
        The constant's value name in its graph.
    values : numpy.ndarray or None
        float32, int64 or int32 values (given exactly when ``codes`` is not).
    codes : numpy.ndarray or None
        int8 codes, shape ``(rows, cols)``.
    scales : numpy.ndarray or None
        float32 per-row scales, shape ``(rows,)``, each > 0; given exactly with ``codes``.
    precision : str or None
        ``"int8"`` or ``"int4"`` with ``codes``; None otherwise.
    mask : numpy.ndarray or None
        bool, the constant's shape; ``True`` where pruning kept the weight (pruned weights
        are stored as zero).
    """

    name: str
    values: np.ndarray | None = None
    codes: np.ndarray | None = None
    scales: np.ndarray | None = None
    precision: str | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"constant {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise CompileError(f"a constant's name must be a non-empty string, not {self.name!r}")
        if (self.values is None) == (self.codes is None):
            raise CompileError(f"{where}: has either values or codes, not both or neither")
        if self.values is not None:
            dtype = np.asarray(self.values).dtype
            if np.issubdtype(dtype, np.floating):
                dtype = np.dtype(np.float32)  # the precision the model computes in
            if dtype not in _DTYPE_NAMES:
                raise CompileError(f"{where}: values of dtype {dtype} (f32, i64 or i32 only)")
            object.__setattr__(self, "values", _frozen(self.values, dtype))
            if self.scales is not None or self.precision is not None:
                raise CompileError(f"{where}: scales and precision go with codes, not values")
            if dtype == np.float32 and not np.all(np.isfinite(self.values)):
                raise CompileError(f"{where}: values hold NaN or infinity")
        else:
            self._check_codes(where)
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.dtype != np.bool_ or mask.shape != self.shape:
                raise CompileError(
                    f"{where}: mask must be bool {list(self.shape)}, "
                    f"not {mask.dtype} {list(mask.shape)}"
                )
            object.__setattr__(self, "mask", _frozen(mask, np.bool_))
            stored = self.values if self.codes is None else self.codes
            bad = np.argwhere(~self.mask & (stored != 0))
            if bad.size:
                raise CompileError(
                    f"{where}: weight {tuple(map(int, bad[0]))} is pruned by the mask but not zero"
                )

    def _check_codes(self, where: str) -> None:
        codes = np.asarray(self.codes)
        if not np.issubdtype(codes.dtype, np.integer) or codes.ndim != 2:
            raise CompileError(f"{where}: codes must be a 2-D integer array, not {codes.dtype}")
        if self.precision not in QUANTIZED:
            raise CompileError(
                f"{where}: precision must be one of {', '.join(QUANTIZED)}, not {self.precision!r}"
            )
        top = qmax(self.precision)
        bad = np.argwhere(np.abs(codes.astype(np.int64)) > top)
        if bad.size:
            index = tuple(map(int, bad[0]))
            raise CompileError(
                f"{where}: code {int(codes[index])} at {index} is outside the symmetric "
                f"{self.precision} grid [-{top}, {top}]"
            )
        object.__setattr__(self, "codes", _frozen(codes, np.int8))
        scales = np.asarray(self.scales if self.scales is not None else [], dtype=np.float32)
        if scales.shape != codes.shape[:1]:
            raise CompileError(
                f"{where}: scales must be one per row {list(codes.shape[:1])}, "
                f"not shape {list(scales.shape)}"
            )
        if not np.all(np.isfinite(scales) & (scales > 0)):
            row = int(np.flatnonzero(~(np.isfinite(scales) & (scales > 0)))[0])
            raise CompileError(f"{where}: scale {float(scales[row])!r} of row {row} is not > 0")
        object.__setattr__(self, "scales", _frozen(scales, np.float32))

    @property
    def shape(self) -> tuple[int, ...]:
        """The constant's shape."""
        return (self.values if self.codes is None else self.codes).shape

    @property
    def type(self) -> TensorType:
        """Its IR type (quantized weights are f32: they stand for ``codes * scales``)."""
        dtype = "f32" if self.codes is not None else _DTYPE_NAMES[self.values.dtype]
        return TensorType(dtype, self.shape)

    @property
    def quantized(self) -> bool:
        """Whether it is stored as codes and scales."""
        return self.codes is not None

    def array(self) -> np.ndarray:
        """The values the model computes with (codes dequantized in float32)."""
        if self.codes is None:
            return self.values
        return self.codes.astype(np.float32) * self.scales[:, None]


@dataclasses.dataclass(frozen=True)
class Value:
    """A named, typed value (a graph input or a node output)."""

    name: str
    type: TensorType


@dataclasses.dataclass(frozen=True)
class Node:
    """One op application.

    Parameters
    ----------
    op : str
        An op of :data:`~.shapes.OPS`.
    inputs : tuple of str
        Names of the values it reads, in the op's input order.
    outputs : tuple of Value
        The values it defines, with their types.
    attrs : Mapping of str to int, float or str
        The op's attributes (read-only).
    name : str
        Where it came from (a source node or parameter), for messages.
    """

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[Value, ...]
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "attrs", types.MappingProxyType(dict(self.attrs)))


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """A graph: typed inputs, constants, nodes in topological order, output names.

    Construction checks nothing beyond the containers (so that a broken pass can be
    caught by :func:`verify` with a message naming what it broke).
    """

    name: str
    inputs: tuple[Value, ...]
    constants: Mapping[str, Constant]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "constants", types.MappingProxyType(dict(self.constants)))

    def types(self) -> dict[str, TensorType]:
        """Every value's type by name (inputs, constants, node outputs)."""
        found = {value.name: value.type for value in self.inputs}
        found.update({name: c.type for name, c in self.constants.items()})
        for node in self.nodes:
            found.update({value.name: value.type for value in node.outputs})
        return found

    def output_types(self) -> tuple[TensorType, ...]:
        """Types of the graph's outputs, in order."""
        known = self.types()
        return tuple(known[name] for name in self.outputs)

    def producer(self, name: str) -> Node | None:
        """The node defining value ``name`` (None for inputs, constants, unknown names)."""
        for node in self.nodes:
            if any(value.name == name for value in node.outputs):
                return node
        return None


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """An RNN-T as the compiler sees it: its graphs by name and, if known, its front end.

    Parameters
    ----------
    graphs : Mapping of str to Graph
        Usually ``encoder``, ``predictor`` and ``joint``.
    frontend : FrontEndConfig or None
        The feature front end (bundles carry it; ONNX files do not).
    source : str
        Where the model was read from, for messages.
    metadata : Mapping
        Plain data from the source (a bundle's metadata, e.g. its ``sparsity`` pattern).
    """

    graphs: Mapping[str, Graph]
    frontend: FrontEndConfig | None = None
    source: str = ""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "graphs", types.MappingProxyType(dict(self.graphs)))
        object.__setattr__(self, "metadata", types.MappingProxyType(dict(self.metadata)))
        if self.frontend is not None and not isinstance(self.frontend, FrontEndConfig):
            raise CompileError(
                f"frontend must be a FrontEndConfig or None, not {type(self.frontend).__name__}"
            )

    def __getitem__(self, name: str) -> Graph:
        if name not in self.graphs:
            raise CompileError(f"model has no graph {name!r} (it has {', '.join(self.graphs)})")
        return self.graphs[name]


class GraphBuilder:
    """A mutable helper that frontends and passes use to build a :class:`Graph`.

    Each :meth:`add` infers the outputs' types, so a graph built this way is typed by
    construction; names are made unique by suffixing ``_1``, ``_2``, ...

    Parameters
    ----------
    name : str
        The graph's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._inputs: list[Value] = []
        self._constants: dict[str, Constant] = {}
        self._nodes: list[Node] = []
        self._types: dict[str, TensorType] = {}

    def fresh(self, hint: str) -> str:
        """A value name not used yet, ``hint`` itself if free."""
        name, index = hint, 0
        while name in self._types:
            index += 1
            name = f"{hint}_{index}"
        return name

    def type_of(self, name: str) -> TensorType:
        """The type of the defined value ``name``."""
        return self._types[name]

    def is_constant(self, name: str) -> bool:
        """Whether ``name`` is a constant of the graph being built."""
        return name in self._constants

    def input(self, name: str, type: TensorType) -> str:
        """Declare a graph input; returns its name (exactly ``name``)."""
        if name in self._types:
            raise CompileError(f"graph {self.name}: value {name!r} is defined twice")
        self._inputs.append(Value(name, type))
        self._types[name] = type
        return name

    def constant(self, hint: str, **arrays: Any) -> str:
        """Add a :class:`Constant` (keyword arguments as its fields); returns its name."""
        name = self.fresh(hint)
        constant = Constant(name, **arrays)
        self._constants[name] = constant
        self._types[name] = constant.type
        return name

    def add(
        self,
        op: str,
        inputs: Sequence[str],
        attrs: Mapping[str, Any] | None = None,
        name: str = "",
        outputs: Sequence[str] | None = None,
    ) -> tuple[str, ...]:
        """Append a node; returns its output names.

        ``outputs`` are name hints (defaults: ``name`` or ``op`` with the op's output
        names); raises :class:`CompileError` naming the node if the inputs do not fit.
        """
        attrs = dict(attrs or {})
        spec = OPS.get(op)
        where = f"graph {self.name}: node {name or op} ({op})"
        if spec is None:
            raise CompileError(f"{where}: unknown op (known: {', '.join(sorted(OPS))})")
        for value in inputs:
            if value not in self._types:
                raise CompileError(f"{where}: input {value!r} is not defined")
        try:
            out_types = infer(op, [self._types[v] for v in inputs], attrs)
        except CompileError as error:
            raise CompileError(f"{where}: {error}") from None
        if outputs is None:
            base = name or op
            outputs = [base if len(out_types) == 1 else f"{base}.{o}" for o in spec.outputs]
        names = []
        for hint, out_type in zip(outputs, out_types, strict=True):
            names.append(self.fresh(hint))
            self._types[names[-1]] = out_type
        self._nodes.append(
            Node(op, tuple(inputs), tuple(map(Value, names, out_types)), attrs, name)
        )
        return tuple(names)

    def build(self, outputs: Iterable[str], renames: Mapping[str, str] | None = None) -> Graph:
        """The graph with ``outputs``; ``renames`` (old -> new) renames node outputs first.

        Renaming gives graph outputs the names the source used ("frames", "logits").
        """
        renames = dict(renames or {})
        taken = set(self._types) - set(renames)
        for old, new in renames.items():
            if old not in self._types or old in self._constants:
                raise CompileError(f"graph {self.name}: cannot rename {old!r}")
            if new in taken:
                raise CompileError(f"graph {self.name}: value name {new!r} is taken")
            taken.add(new)

        def rename(name: str) -> str:
            return renames.get(name, name)

        inputs = tuple(Value(rename(v.name), v.type) for v in self._inputs)
        nodes = tuple(
            dataclasses.replace(
                node,
                inputs=tuple(map(rename, node.inputs)),
                outputs=tuple(Value(rename(v.name), v.type) for v in node.outputs),
            )
            for node in self._nodes
        )
        return Graph(self.name, inputs, self._constants, nodes, tuple(map(rename, outputs)))


# --- invariants -------------------------------------------------------------------------------


def _node_line(node: Node) -> str:
    from .printer import format_node  # the printer imports this module

    return format_node(node)


def verify(graph: Graph) -> Graph:
    """Check the invariants of ``graph``; return it unchanged.

    Checks: every value is defined exactly once; every node reads only values defined
    before it (topological order; an undefined name is a dangling value); ops are known,
    with their arity and attributes; weight inputs are constants; each node's recorded
    output types are what :func:`~.shapes.infer` gives; the graph's outputs are defined.

    Raises
    ------
    CompileError
        One line naming the graph, the node (printed) and the broken invariant.
    """
    if not isinstance(graph, Graph):
        raise CompileError(f"verify needs a Graph, not {type(graph).__name__}")
    where = f"graph {graph.name}"
    defined: dict[str, TensorType] = {}
    for value in graph.inputs:
        if not isinstance(value, Value) or not isinstance(value.type, TensorType):
            raise CompileError(f"{where}: input {value!r} is not a typed Value")
        if value.name in defined:
            raise CompileError(f"{where}: value {value.name!r} is defined twice")
        defined[value.name] = value.type
    for name, constant in graph.constants.items():
        if not isinstance(constant, Constant) or constant.name != name:
            raise CompileError(f"{where}: constant {name!r} is not a Constant of that name")
        if name in defined:
            raise CompileError(f"{where}: value {name!r} is defined twice")
        defined[name] = constant.type
    for node in graph.nodes:
        if not isinstance(node, Node):
            raise CompileError(f"{where}: {node!r} is not a Node")
        line = f"{where}: node {_node_line(node)}"
        spec = OPS.get(node.op)
        if spec is None:
            raise CompileError(f"{line}: unknown op {node.op!r} (known: {', '.join(sorted(OPS))})")
        for index, name in enumerate(node.inputs):
            if name not in defined:
                later = any(name in (v.name for v in n.outputs) for n in graph.nodes)
                why = "is defined by a later node" if later else "is dangling (never defined)"
                raise CompileError(f"{line}: input {name!r} {why}")
            if spec.input_name(index) in spec.const and name not in graph.constants:
                raise CompileError(
                    f"{line}: input {spec.input_name(index)} must be a constant, not {name!r}"
                )
        try:
            expected = infer(node.op, [defined[name] for name in node.inputs], node.attrs)
        except CompileError as error:
            raise CompileError(f"{line}: {error}") from None
        recorded = tuple(value.type for value in node.outputs)
        if recorded != expected:
            got = ", ".join(map(str, recorded))
            raise CompileError(
                f"{line}: output types are ({got}), but {node.op} gives "
                f"({', '.join(map(str, expected))})"
            )
        for value in node.outputs:
            if value.name in defined:
                raise CompileError(f"{line}: value {value.name!r} is defined twice")
            defined[value.name] = value.type
    for name in graph.outputs:
        if name not in defined:
            raise CompileError(f"{where}: output {name!r} is dangling (never defined)")
    return graph


def verify_model(model: Model) -> Model:
    """:func:`verify` every graph of ``model`` (each under its own name); return it."""
    if not isinstance(model, Model):
        raise CompileError(f"verify_model needs a Model, not {type(model).__name__}")
    for name, graph in model.graphs.items():
        if graph.name != name:
            raise CompileError(f"model graph {name!r} is named {graph.name!r}")
        verify(graph)
    return model


def run_passes(
    graph: Graph, passes: Sequence[Callable[[Graph], Graph]], check: bool = True
) -> Graph:
    """Apply ``passes`` in order, verifying the input and each pass's result.

    A failed check names the pass that broke the invariant (its ``__name__``).
    """
    if check:
        verify(graph)
    for step in passes:
        graph = step(graph)
        if check:
            try:
                verify(graph)
            except CompileError as error:
                name = getattr(step, "__name__", repr(step))
                raise CompileError(f"after pass {name}: {error}") from None
    return graph
