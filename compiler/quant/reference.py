"""The quantized reference executor: runs a :class:`QKernel` in numpy, bit for bit what the
compiled program computes, and measures how far the quantized model is from the float one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...asr_workloads.numpy_model import DEFAULT_MAX_SYMBOLS, greedy_search, reduce_time
from ...errors import CompileError
from ..float_reference import encode as encode_float
from ..float_reference import run as run_float
from ..ir import Model
from ..joint_split import PROJECTED, hoist_joint_projections
from . import arith, branch_calls
from .formats import quantize_activation
from .qir import QAdd, QKernel, QLinear, QLstm, QLut, QModel, QRelu, QTimeReduce

__all__ = [
    "Deviation",
    "deviation",
    "choose_branches",
    "encode",
    "encode_chunks",
    "greedy_decode",
    "predictor_stepper",
    "initial_state",
    "onehot",
    "run_kernel",
]


def initial_state(kernel: QKernel) -> dict[str, np.ndarray]:
    """Zero state for every persistent tensor of ``kernel`` (an utterance's start)."""
    return {name: np.zeros(kernel.tensor(name).shape, np.int64) for name in kernel.state}


def onehot(token: int, size: int) -> np.ndarray:
    """The predictor's input code for ``token``: a one-hot int8 row."""
    if not 0 <= token < size:
        raise CompileError(f"token {token} is outside the vocabulary of {size}")
    row = np.zeros((1, size), np.int64)
    row[0, token] = 1
    return row


def run_kernel(
    kernel: QKernel, inputs: Mapping[str, np.ndarray], state: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Run ``kernel`` on integer ``inputs``; ``state`` (updated in place) holds the
    persistent tensors. Returns the outputs (int64 codes)."""
    env: dict[str, np.ndarray] = {}
    for name in kernel.inputs:
        if name not in inputs:
            raise CompileError(f"kernel {kernel.name}: missing input {name!r}")
        want = kernel.tensor(name).shape
        value = np.asarray(inputs[name], np.int64)
        if value.shape != want:
            raise CompileError(
                f"kernel {kernel.name}: input {name!r} must be {list(want)}, "
                f"not {list(value.shape)}"
            )
        env[name] = value
    if kernel.state:
        if state is None:
            raise CompileError(f"kernel {kernel.name}: needs its state ({', '.join(kernel.state)})")
        env.update({name: state[name] for name in kernel.state})
    for step in kernel.steps:
        _run_step(step, kernel, env)
    if state is not None:
        state.update({name: env[name] for name in kernel.state})
    return {name: env[name] for name in kernel.outputs}


def _run_step(step, kernel: QKernel, env: dict[str, np.ndarray]) -> None:
    bits = kernel.tensor(step.writes[0]).bits
    if isinstance(step, QLinear):
        env[step.y] = arith.linear(env[step.x], step.weights, step.bias, step.requant, bits)
    elif isinstance(step, QLstm):
        y, h, c = arith.lstm(
            env[step.x],
            step.w_ih,
            step.w_hh,
            step.bias,
            step.requant_ih,
            step.requant_hh,
            env[step.h_in],
            env[step.c_in],
        )
        env[step.y], env[step.h_out], env[step.c_out] = y, h, c
    elif isinstance(step, QTimeReduce):
        env[step.y] = reduce_time(env[step.x], step.factor)
    elif isinstance(step, QAdd):
        env[step.y] = arith.add(env[step.a], env[step.b], bits)
    elif isinstance(step, QLut):
        env[step.y] = arith.lut(env[step.x], step.function, step.shift)
    elif isinstance(step, QRelu):
        env[step.y] = arith.relu(env[step.x], step.shift, bits)
    else:  # pragma: no cover - the step union is closed
        raise TypeError(step)


def encode(qmodel: QModel, features: np.ndarray) -> np.ndarray:
    """The encoder over a whole utterance, as the host calls it (:func:`encode_chunks`):
    float features ``(T, F)`` -> frame codes."""
    kernel = qmodel.kernels["encoder_chunk"]
    (name,) = kernel.inputs
    x, out = kernel.tensor(name), kernel.tensor(kernel.outputs[0])
    state = initial_state(kernel)
    # The expensive branch's kernels share one state, as they share it in DRAM.
    expensive_state: dict[str, np.ndarray] = {}
    for k in qmodel.kernels.values():
        if branch_calls.is_expensive(k.name):
            expensive_state.update(initial_state(k))

    def run_chunk(codes: np.ndarray) -> dict[str, np.ndarray]:
        return run_kernel(kernel, {name: codes}, state)

    def run_group(size: int, stem_rows: np.ndarray) -> np.ndarray:
        group = qmodel.kernels[branch_calls.kernel_name(size)]
        result = run_kernel(group, {group.inputs[0]: stem_rows}, expensive_state)
        return result[group.outputs[0]]

    codes = quantize_activation(features, x.scale)
    return encode_chunks(codes, x.shape, out.shape, kernel.outputs, run_chunk, run_group)


def encode_chunks(codes, chunk_shape, frames_shape, outputs, run_chunk, run_group) -> np.ndarray:
    """The host's encoder loop over an utterance's input codes: ``chunk_shape`` rows a
    call (``run_chunk(codes) -> outputs``, the first ``frames_shape``), the last chunk
    zero-padded and the frames computed from padding dropped (an empty utterance makes no
    call and has no frames). A branching encoder's valid frames whose gate code is >= 0
    are replaced by the expensive branch's (:func:`choose_branches`)."""
    factor = chunk_shape[0] // frames_shape[0]  # input rows per frame
    valid = -(-len(codes) // factor)
    frames: list[np.ndarray] = [np.zeros((0, frames_shape[1]), np.int64)]
    for start in range(0, len(codes), chunk_shape[0]):
        chunk = np.zeros(chunk_shape, np.int64)
        part = codes[start : start + chunk_shape[0]]
        chunk[: len(part)] = part
        result = run_chunk(chunk)
        rows = min(len(result[outputs[0]]), valid - sum(map(len, frames)))
        frames.append(choose_branches(outputs, result, rows, run_group))
    return np.concatenate(frames)[:valid]


def choose_branches(outputs, result: Mapping[str, np.ndarray], rows: int, run_group):
    """One encoder chunk's frames as the host assembles them: the first ``rows`` frames (the
    valid ones); where a branching encoder's gate code (its third output) is >= 0, the
    expensive branch's output for that row of the stem (its second output), run in groups
    (``run_group(size, stem rows)``, :func:`.branch_calls.run_groups`); a plain encoder's
    frames as they are."""
    frames = np.array(result[outputs[0]][:rows])
    if len(outputs) == 3:
        stem, gate = result[outputs[1]], result[outputs[2]]
        chosen = np.flatnonzero(gate[:rows, 0] >= 0)
        if chosen.size:
            frames[chosen] = branch_calls.run_groups(stem[chosen], run_group)
    return frames


def greedy_decode(
    qmodel: QModel, features: np.ndarray, max_symbols_per_frame: int = DEFAULT_MAX_SYMBOLS
) -> list[int]:
    """Token ids of one utterance by greedy RNN-T search
    (:func:`edgenpu.asr_workloads.numpy_model.greedy_search`) on the integer kernels."""
    predictor, joint = qmodel.kernels["predictor_step"], qmodel.kernels["joint"]
    inputs = predictor.inputs
    state = {n: np.zeros(predictor.tensor(n).shape, np.int64) for n in inputs[1:]}
    vocabulary = predictor.tensor(inputs[0]).shape[1]
    step = predictor_stepper(
        inputs, predictor.outputs, vocabulary, state, lambda i: run_kernel(predictor, i)
    )

    def logits(frame: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        result = run_kernel(joint, {joint.inputs[0]: frame[None], joint.inputs[1]: prediction})
        return result[joint.outputs[0]][0]

    return greedy_search(encode(qmodel, features), step, logits, max_symbols_per_frame)


def predictor_stepper(inputs, outputs, vocabulary: int, state: dict[str, np.ndarray], call):
    """``predict(token)`` for greedy search over a predictor kernel ``call(inputs) ->
    outputs``: its inputs are the one-hot token then its state, which comes back as the
    outputs named ``<state>_out`` and is kept in ``state``; it returns the first output."""

    def predict(token: int) -> np.ndarray:
        result = call({inputs[0]: onehot(token, vocabulary), **state})
        state.update({name: result[f"{name}_out"] for name in state})
        return result[outputs[0]]

    return predict


@dataclass(frozen=True)
class Deviation:
    """How far the quantized model is from the float one on one utterance.

    ``*_error`` are max |quantized - float| (real units) of the encoder frames, the
    predictor's output after the blank token from zero state, and the joint's logits over
    every frame with that prediction; ``*_rms`` the float values' RMS for scale;
    ``argmax_agreement`` the share of frames whose best token agrees.
    """

    encoder_error: float
    encoder_rms: float
    predictor_error: float
    logits_error: float
    logits_rms: float
    argmax_agreement: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in self.__dict__.items()}


def deviation(model: Model, qmodel: QModel, features: np.ndarray) -> Deviation:
    """Compare ``qmodel`` with the float ``model`` it came from on ``features`` ``(T, F)``
    (the encoder's and predictor's outputs are the joint's projections when ``qmodel``'s
    kernels have them)."""
    if qmodel.kernels["joint"].inputs[0] == PROJECTED[0]:
        model = hoist_joint_projections(model)
    encoder = qmodel.kernels["encoder_chunk"]
    predictor = qmodel.kernels["predictor_step"]
    joint = qmodel.kernels["joint"]
    frames_f = encode_float(model, features)
    frame_scale = encoder.tensor(encoder.outputs[0]).scale
    frames_q = encode(qmodel, features)
    # The predictor after the blank token (0) from zero state.
    graph = model["predictor"]
    float_inputs = {
        v.name: np.zeros([1 if not isinstance(d, int) else d for d in v.type.shape], np.float32)
        for v in graph.inputs
    }
    token_name = graph.inputs[0].name
    float_inputs[token_name] = np.zeros(1, np.int64)
    pred_f = run_float(graph, float_inputs)[graph.outputs[0]]
    q_inputs = {}
    for name in predictor.inputs:
        shape = predictor.tensor(name).shape
        q_inputs[name] = (
            onehot(0, shape[1]) if name.endswith("_onehot") else np.zeros(shape, np.int64)
        )
    pred_q = run_kernel(predictor, q_inputs)[predictor.outputs[0]]
    pred_scale = predictor.tensor(predictor.outputs[0]).scale
    jgraph = model["joint"]
    frame_in, pred_in = (v.name for v in jgraph.inputs)
    logits_f = run_float(jgraph, {frame_in: frames_f, pred_in: np.repeat(pred_f, len(frames_f), 0)})
    logits_f = next(iter(logits_f.values()))
    logits_q = (
        np.concatenate(
            [
                run_kernel(joint, {joint.inputs[0]: f[None], joint.inputs[1]: pred_q})[
                    joint.outputs[0]
                ]
                for f in frames_q
            ]
        )
        * joint.tensor(joint.outputs[0]).scale
    )
    return Deviation(
        encoder_error=float(np.abs(frames_q * frame_scale - frames_f).max()),
        encoder_rms=float(np.sqrt(np.mean(frames_f.astype(np.float64) ** 2))),
        predictor_error=float(np.abs(pred_q * pred_scale - pred_f).max()),
        logits_error=float(np.abs(logits_q - logits_f).max()),
        logits_rms=float(np.sqrt(np.mean(logits_f.astype(np.float64) ** 2))),
        argmax_agreement=float(np.mean(logits_q.argmax(1) == logits_f.argmax(1))),
    )
