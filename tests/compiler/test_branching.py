"""A branching encoder compiled: the stem, the cheap branch and the gate run in
``encoder_chunk``; the host runs the frames whose gate code is >= 0 through the
``encoder_expensive_<n>`` kernels in groups, so compute follows the audio. Bit-exact against
the quantized reference, one state and one copy of the weights for all group sizes, and the
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
from edgenpu.compiler.quant import branch_calls, reference
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
    sizes = branch_calls.group_sizes(compiled.qmodel.chunk_frames)  # no time reduction
    groups = [branch_calls.kernel_name(n) for n in sizes]
    assert set(compiled.kernels) == {"encoder_chunk", *groups, "predictor_step", "joint"}
    host = SimulatedModel.from_compiled(compiled)
    features = np.random.default_rng(5).normal(size=(2 * compiled.qmodel.chunk_frames + 7, 6))
    frames = host.encode(features)
    np.testing.assert_array_equal(frames, reference.encode(compiled.qmodel, features))
    chunk_calls = -(-len(features) // compiled.qmodel.chunk_frames)
    expensive_calls = len(host.stats) - chunk_calls
    # Data-dependent compute: some frames, not all, took the expensive branch, in at most
    # one call per group size a chunk.
    gated = _gated_frames(compiled.qmodel, features)
    assert 0 < gated < len(frames)
    assert 0 < expensive_calls <= min(gated, chunk_calls * len(sizes))
    # All group sizes read and write one state and one copy of the weights.
    first, *others = groups
    for kernel in others:
        for name in compiled.qmodel.kernels[kernel].state:
            assert compiled.region(kernel, name) == compiled.region(first, name)
    weight_regions = [r.name for r in compiled.regions if r.kind == "weights"]
    assert len(weight_regions) == len(set(weight_regions))
    tokens = host.greedy_decode(features)
    assert tokens == reference.greedy_decode(compiled.qmodel, features)


def _gated_frames(qmodel, features) -> int:
    """How many frames of ``features`` the integer gate sends to the expensive branch."""
    encoder = qmodel.kernels["encoder_chunk"]
    rows = qmodel.chunk_frames
    codes = quantize_activation(features, encoder.tensor("features").scale)
    state = reference.initial_state(encoder)
    gated = 0
    for start in range(0, len(codes), rows):
        chunk = np.zeros((rows, codes.shape[1]), np.int64)
        part = codes[start : start + rows]
        chunk[: len(part)] = part
        gate = reference.run_kernel(encoder, {"features": chunk}, state)["gate"][: len(part)]
        gated += int(np.count_nonzero(gate >= 0))
    return gated


def test_gated_frames_run_in_groups_of_their_binary_digits():
    assert branch_calls.group_sizes(32) == (1, 2, 4, 8, 16, 32)
    assert branch_calls.group_sizes(12) == (1, 2, 4, 8)
    assert branch_calls.groups(13) == [8, 4, 1]
    assert branch_calls.groups(16) == [16]
    rows = np.arange(7)[:, None]
    calls = []
    out = branch_calls.run_groups(rows, lambda n, r: calls.append((n, r[:, 0].tolist())) or -r)
    assert calls == [(4, [0, 1, 2, 3]), (2, [4, 5]), (1, [6])]
    np.testing.assert_array_equal(out, -rows)


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
