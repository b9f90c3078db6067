"""The bundle frontend: the IR of a bundle computes exactly what the bundle's numpy model
does, and quantized bundles give constants with their codes, scales and masks."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.asr_workloads import numpy_model
from edgenpu.asr_workloads.bundle import bundle_from_weights
from edgenpu.asr_workloads.bundle_params import parameter_shapes
from edgenpu.asr_workloads.frontend import FrontEndConfig
from edgenpu.asr_workloads.model_config import ModelConfig
from edgenpu.compiler.float_reference import encode, run
from edgenpu.compiler.frontends.bundle_frontend import from_bundle

CONFIG = ModelConfig.from_dict(
    {
        "input_dim": 8,
        "encoder": {"hidden": [8, 5], "reduce": [2, 3]},
        "predictor": {"embed": 4, "hidden": [6, 7]},
        "joint": {"hidden": 9, "activation": "relu"},
        "vocab_size": 11,
    }
)


def _bundle(precision, config=CONFIG):
    rng = np.random.default_rng(0)
    weights = {
        n: rng.normal(size=s).astype(np.float32) for n, s in parameter_shapes(config).items()
    }
    masks = {"encoder.0.w_ih": rng.random((32, 16)) > 0.5}
    frontend = FrontEndConfig(n_mels=4, stack=2)
    metadata = {"sparsity": "unstructured"}
    return bundle_from_weights(config, frontend, weights, precision, masks, metadata)


@pytest.mark.parametrize("precision", [None, "int8", "int4"])
def test_graphs_compute_what_the_numpy_model_does(precision):
    bundle = _bundle(precision)
    model = from_bundle(bundle)
    assert model.frontend == bundle.frontend and model.metadata["sparsity"] == "unstructured"
    x = np.random.default_rng(1).normal(size=(13, 8)).astype(np.float32)
    frames = run(model["encoder"], {"features": x})["frames"]
    np.testing.assert_allclose(frames, numpy_model.encode(bundle, x).frames, atol=1e-6)
    state, ref_state = (
        {f"{k}{i}": np.zeros((1, h), np.float32) for i, h in enumerate([6, 7]) for k in "hc"},
        None,
    )
    for token in (0, 4, 9):
        out = run(model["predictor"], {"token": np.array([token]), **state})
        ref, ref_state = numpy_model.predictor_step(bundle, token, ref_state)
        np.testing.assert_allclose(out["output"][0], ref, atol=1e-6)
        state = {name: out[f"{name}_out"] for name in state}
    np.testing.assert_allclose(state["c1"][0], ref_state[1][1], atol=1e-6)
    pred = np.repeat(ref[None], len(frames), axis=0)
    logits = run(model["joint"], {"frame": frames, "prediction": pred})["logits"]
    np.testing.assert_allclose(logits, numpy_model.joint(bundle, frames, pred), atol=1e-5)


def test_quantized_constants_carry_codes_scales_and_masks():
    bundle = _bundle("int4")
    constants = from_bundle(bundle)["encoder"].constants
    w = constants["encoder.0.w_ih"]
    stored = bundle.parameters["encoder.0.w_ih"]
    assert w.precision == "int4" and w.quantized
    np.testing.assert_array_equal(w.codes, stored.codes)
    np.testing.assert_array_equal(w.scales, stored.scales)
    np.testing.assert_array_equal(w.mask, stored.mask)
    assert (
        constants["encoder.0.bias"].values is not None and constants["encoder.0.w_hh"].mask is None
    )


def test_branching_encoder_computes_the_numpy_model():
    config = ModelConfig.from_dict(
        {
            **CONFIG.to_dict(),
            "encoder": {"hidden": [8, 7, 5], "reduce": [2, 1, 1]},
            "branching": {"stem_layers": 1, "cheap_hidden": [5]},
        }
    )
    bundle = _bundle(None, config)
    model = from_bundle(bundle)
    assert set(model.graphs) == {"encoder", "encoder_expensive", "predictor", "joint"}
    features = np.random.default_rng(2).normal(size=(31, 8)).astype(np.float32)
    want = numpy_model.encode(bundle, features)
    assert 0 < want.expensive.sum() < len(want.expensive)  # both branches run
    np.testing.assert_allclose(encode(model, features), want.frames, atol=1e-5)
