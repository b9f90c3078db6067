"""Calibration: the largest magnitude each activation reaches on sample utterances.

The float model is run on each sample as a recognizer runs it: the encoder over the
utterance, then greedy search, so the predictor sees the tokens it would see and the joint
the (frame, prediction) pairs greedy search visits. Every value of every graph is observed.
The quantizer then takes the tightest of the observed range (with headroom) and the
provable bound for the formats calibration may set (the encoder's input, linear outputs
feeding adds, tables, ReLU and the logits).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ...asr_workloads.numpy_model import greedy_search
from ...errors import CompileError
from ..float_reference import encode, run
from ..ir import Model

__all__ = ["HEADROOM", "observe_ranges"]

#: Observed ranges are widened by this factor before they become formats.
HEADROOM = 1.25


def _note(ranges: dict[str, float], graph: str, values: dict[str, np.ndarray]) -> None:
    for name, value in values.items():
        if np.issubdtype(np.asarray(value).dtype, np.floating) and np.size(value):
            key = f"{graph}/{name}"
            ranges[key] = max(ranges.get(key, 0.0), float(np.abs(value).max()))


def _utterance(model: Model, features: np.ndarray, ranges: dict[str, float]) -> None:
    """Observe one utterance: the encoder, then greedy search with the float graphs."""
    encoder, predictor, joint = model["encoder"], model["predictor"], model["joint"]
    values = run(encoder, {encoder.inputs[0].name: features}, every_value=True)
    _note(ranges, "encoder", values)
    frames = values[encoder.outputs[0]]
    if "encoder_expensive" in model.graphs:  # the chosen frames from the expensive branch
        frames = encode(model, features)
    token_name = predictor.inputs[0].name
    state = {
        v.name: np.zeros([d if isinstance(d, int) else 1 for d in v.type.shape], np.float32)
        for v in predictor.inputs[1:]
    }
    frame_name, prediction_name = (v.name for v in joint.inputs)

    def predict(token: int) -> np.ndarray:
        out = run(predictor, {token_name: np.array([token]), **state}, every_value=True)
        _note(ranges, "predictor", out)
        state.update({name: out[f"{name}_out"] for name in state})
        return out[predictor.outputs[0]]

    def logits(frame: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        out = run(joint, {frame_name: frame[None], prediction_name: prediction}, every_value=True)
        _note(ranges, "joint", out)
        return out[joint.outputs[0]][0]

    greedy_search(frames, predict, logits)


def observe_ranges(model: Model, samples: Iterable[np.ndarray]) -> dict[str, float]:
    """Max |value| of every float value, keyed ``graph/value``, over ``samples`` (each the
    encoder's input features ``(T, F)``)."""
    width = model["encoder"].inputs[0].type.shape[1]
    ranges: dict[str, float] = {}
    count = 0
    for count, features in enumerate(samples, 1):
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or features.shape[1] != width:
            raise CompileError(
                f"calibration sample {count - 1}: features must be (T, {width}), "
                f"not {list(features.shape)}"
            )
        _utterance(model, features, ranges)
    if count == 0:
        raise CompileError("calibration needs at least one sample utterance")
    return ranges
