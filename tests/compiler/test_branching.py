"""A branching encoder compiled: the stem, the cheap branch and the gate run in
``encoder_chunk``; the host calls ``encoder_expensive`` for each frame whose gate code is
>= 0, so compute follows the audio. Bit-exact against the quantized reference, and the
quantized model follows the float one (which runs the expensive branch on the frames whose
gate logit is >= 0)."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.asr_workloads.bundle import bundle_from_weights
from edgenpu.asr_workloads.bundle_params import parameter_shapes
from edgenpu.asr_workloads.frontend import FrontEndConfig
from edgenpu.asr_workloads.model_config import ModelConfig
from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.float_reference import run
from edgenpu.compiler.frontends.bundle_frontend import from_bundle
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.quant import reference
from edgenpu.compiler.quant.formats import quantize_activation
from edgenpu.compiler.spec import CompileSpec
from edgenpu.config import load_config

CONFIG = ModelConfig.from_dict(
    {
        "input_dim": 6,
        "encoder": {"hidden": [10, 12, 8], "reduce": [1, 1, 1]},
        "branching": {"stem_layers": 1, "cheap_hidden": [8]},
        "predictor": {"embed": 4, "hidden": [7]},
        "joint": {"hidden": 9, "activation": "tanh"},
        "vocab_size": 11,
    }
)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(4)
    weights = {
        name: (0.4 * rng.normal(size=shape)).astype(np.float32)
        for name, shape in parameter_shapes(CONFIG).items()
    }
    weights["gate.bias"] = np.zeros(1, np.float32)  # about half the frames go expensive
    bundle = bundle_from_weights(CONFIG, FrontEndConfig(n_mels=2, stack=3), weights, "int8")
    return from_bundle(bundle, source="branching")


@pytest.mark.parametrize("schedule", ["layer_major", "frame_major"])
@pytest.mark.parametrize("config", ["tiny", "default"])
def test_branching_encoder_is_bit_exact_and_data_dependent(model, config, schedule):
    compiled = compile_model(model, load_config(config), CompileSpec(schedule=schedule))
    assert set(compiled.kernels) == {
        "encoder_chunk",
        "encoder_expensive",
        "predictor_step",
        "joint",
    }
    host = SimulatedModel.from_compiled(compiled)
    features = np.random.default_rng(5).normal(size=(2 * compiled.qmodel.chunk_frames + 7, 6))
    frames = host.encode(features)
    np.testing.assert_array_equal(frames, reference.encode(compiled.qmodel, features))
    calls = [s.executed for s in host.stats]
    chunk_calls = -(-len(features) // compiled.qmodel.chunk_frames)
    expensive_calls = len(calls) - chunk_calls
    # Data-dependent compute: some frames, not all, took the expensive branch.
    assert 0 < expensive_calls < len(frames)
    tokens = host.greedy_decode(features)
    assert tokens == reference.greedy_decode(compiled.qmodel, features)


def test_the_quantized_branching_model_follows_the_float_one(model):
    compiled = compile_model(model, load_config("default"))
    encoder = compiled.qmodel.kernels["encoder_chunk"]
    rows = compiled.qmodel.chunk_frames
    features = np.random.default_rng(6).normal(size=(rows, 6)).astype(np.float32)
    codes = quantize_activation(features, encoder.tensor("features").scale)
    state = reference.initial_state(encoder)
    gate_codes = reference.run_kernel(encoder, {"features": codes}, state)["gate"][:, 0]
    gate_float = run(model["encoder"], {"features": features})["gate"][:, 0]
    # A hard gate flips where its logit is near 0 (and the expensive branch's state then
    # differs): the decisions agree on nearly every frame, and the recognizer's choices too.
    assert np.mean((gate_codes >= 0) == (gate_float >= 0)) >= 0.9
    d = reference.deviation(model, compiled.qmodel, features)
    assert d.predictor_error < 0.05 and d.argmax_agreement >= 0.85
