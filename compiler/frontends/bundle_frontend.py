"""The bundled checkpoint frontend: a :class:`~edgenpu.asr_workloads.bundle.Bundle` -> IR.

The three graphs follow :mod:`~edgenpu.asr_workloads.model_config` and use the value
names of the ONNX export (:mod:`~edgenpu.asr_workloads.onnx_export`), so both frontends
give the same interface:

* ``encoder``: ``features: f32[T, input_dim]`` -> ``frames: f32[ceil(T/r), H_enc]``, a
  ``time_reduce`` before each layer whose ``reduce`` exceeds 1, then an ``lstm``;
* ``predictor``: ``token: i64[1]`` and ``h{l}, c{l}: f32[1, H_l]`` -> ``output: f32[1,
  H_pred]`` and ``h{l}_out, c{l}_out``: an ``embedding`` then one ``lstm`` step per layer;
* ``joint``: ``frame: f32[N, H_enc]``, ``prediction: f32[N, H_pred]`` -> ``logits: f32[N,
  V]``: ``linear(frame) + linear(prediction)``, ``tanh`` or ``relu``, ``linear``.

Constants keep the contract's parameter names; quantized bundles give constants with
their int codes, per-row scales and precision, and pruned parameters carry their masks.
"""

from __future__ import annotations

from ...asr_workloads.bundle import Bundle
from ...errors import CompileError
from ..ir import Graph, GraphBuilder, Model, verify_model
from ..shapes import SymDim, TensorType

__all__ = ["from_bundle"]


def _constant(builder: GraphBuilder, bundle: Bundle, name: str) -> str:
    param = bundle.parameters[name]
    if param.codes is not None:
        return builder.constant(
            name,
            codes=param.codes,
            scales=param.scales,
            precision=bundle.precision,
            mask=param.mask,
        )
    return builder.constant(name, values=param.values, mask=param.mask)


def _lstm(
    builder: GraphBuilder, bundle: Bundle, prefix: str, x: str, state: tuple[str, str] = ()
) -> tuple[str, ...]:
    weights = [_constant(builder, bundle, f"{prefix}.{part}") for part in ("w_ih", "w_hh", "bias")]
    return builder.add("lstm", [x, *weights, *state], name=prefix)


def _encoder(bundle: Bundle) -> Graph:
    """The encoder over a chunk of frames. A branching encoder's graph is its stem and cheap
    branch, with two more outputs: the stem's frames and the gate's logit per frame (the
    expensive branch runs, in its own graph, on the frames whose logit is >= 0)."""
    config = bundle.config
    branching = config.branching
    stem = len(config.encoder.hidden) if branching is None else branching.stem_layers
    builder = GraphBuilder("encoder")
    x = builder.input("features", TensorType("f32", (SymDim("T"), config.input_dim)))
    for layer in range(stem):
        reduce = config.encoder.reduce[layer]
        if reduce > 1:
            (x,) = builder.add(
                "time_reduce", [x], {"factor": reduce}, name=f"encoder.{layer}.reduce"
            )
        x, _, _ = _lstm(builder, bundle, f"encoder.{layer}", x)
    if branching is None:
        return builder.build([x], {x: "frames"})
    stem_frames, cheap = x, x
    for layer in range(len(branching.cheap_hidden)):
        cheap, _, _ = _lstm(builder, bundle, f"cheap.{layer}", cheap)
    weight, bias = (_constant(builder, bundle, f"gate.{part}") for part in ("weight", "bias"))
    (gate,) = builder.add("linear", [stem_frames, weight, bias], name="gate")
    return builder.build([cheap, stem_frames, gate], {cheap: "frames", stem_frames: "stem"})


def _encoder_expensive(bundle: Bundle) -> Graph:
    """A branching encoder's expensive branch over the stem frames the gate chose (``E`` of
    them): a plain LSTM stack over that subsequence, its state held on the skipped frames."""
    config = bundle.config
    stem = config.branching.stem_layers
    builder = GraphBuilder("encoder_expensive")
    width = config.encoder.hidden[stem - 1]
    x = builder.input("stem", TensorType("f32", (SymDim("E"), width)))
    for layer in range(stem, len(config.encoder.hidden)):
        x, _, _ = _lstm(builder, bundle, f"encoder.{layer}", x)
    return builder.build([x], {x: "frames"})


def _predictor(bundle: Bundle) -> Graph:
    config = bundle.config
    builder = GraphBuilder("predictor")
    token = builder.input("token", TensorType("i64", (1,)))
    states = [
        tuple(builder.input(f"{k}{layer}", TensorType("f32", (1, size))) for k in "hc")
        for layer, size in enumerate(config.predictor.hidden)
    ]
    table = _constant(builder, bundle, "predictor.embedding")
    (x,) = builder.add("embedding", [token, table], name="predictor.embedding")
    renames, outputs = {}, []
    for layer, state in enumerate(states):
        x, h, c = _lstm(builder, bundle, f"predictor.{layer}", x, state)
        renames.update({h: f"h{layer}_out", c: f"c{layer}_out"})
        outputs += [h, c]
    renames[x] = "output"
    return builder.build([x, *outputs], renames)


def _joint(bundle: Bundle) -> Graph:
    config = bundle.config
    builder = GraphBuilder("joint")
    rows = SymDim("N")
    frame = builder.input("frame", TensorType("f32", (rows, config.encoder_dim)))
    prediction = builder.input("prediction", TensorType("f32", (rows, config.predictor_dim)))

    def linear(x: str, prefix: str) -> str:
        weight = _constant(builder, bundle, f"{prefix}.weight")
        bias = _constant(builder, bundle, f"{prefix}.bias")
        return builder.add("linear", [x, weight, bias], name=prefix)[0]

    (hidden,) = builder.add(
        "add", [linear(frame, "joint.encoder"), linear(prediction, "joint.predictor")]
    )
    (hidden,) = builder.add(config.joint.activation, [hidden])
    logits = linear(hidden, "joint.output")
    return builder.build([logits], {logits: "logits"})


def from_bundle(bundle: Bundle, source: str = "bundle") -> Model:
    """The IR of ``bundle``: ``encoder``, ``predictor`` and ``joint`` graphs (and, for a
    branching encoder, ``encoder_expensive``) and its front end; ``source`` (the bundle's
    file) names it in messages.

    Raises
    ------
    CompileError
        For a bundle that is not a :class:`Bundle`.
    """
    if not isinstance(bundle, Bundle):
        raise CompileError(f"from_bundle needs a Bundle, not {type(bundle).__name__}")
    graphs = {"encoder": _encoder(bundle), "predictor": _predictor(bundle), "joint": _joint(bundle)}
    if bundle.config.branching is not None:
        graphs["encoder_expensive"] = _encoder_expensive(bundle)
    model = Model(graphs, bundle.frontend, source=source, metadata=bundle.metadata)
    return verify_model(model)
