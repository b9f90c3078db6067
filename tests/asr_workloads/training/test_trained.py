"""A trained model's bundle reproduces the fake-quant PyTorch model with numpy alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.bundle import load_bundle, save_bundle
from edgenpu.asr_workloads.corpus import open_split
from edgenpu.asr_workloads.numpy_model import encode, greedy_decode, joint, predictor_step
from edgenpu.asr_workloads.rnnt.decode import greedy_decode as torch_decode
from edgenpu.asr_workloads.text import BLANK
from edgenpu.asr_workloads.training.batches import make_batch
from edgenpu.asr_workloads.training.trained import load_trained, to_bundle


def test_the_bundle_reproduces_the_fake_quant_model(tiny_run, tiny_corpus, tmp_path):
    trained = load_trained(tiny_run)
    model = trained.model()
    yaml_path, _ = save_bundle(to_bundle(trained), tmp_path / "tiny")
    bundle = load_bundle(yaml_path)
    assert bundle.precision == "int4"
    assert bundle.metadata["sparsity"] == "unstructured"
    # The bundle holds the very weights the fake-quant model computes with.
    for name, w in model.effective_parameters().items():
        np.testing.assert_allclose(bundle.weights()[name], w.numpy(), rtol=0, atol=1e-7)

    split = open_split(tiny_corpus, "valid")
    batch = make_batch(split, np.arange(len(split)), trained.frontend)
    features = torch.from_numpy(batch.features)
    lengths = torch.from_numpy(batch.lengths)
    with torch.no_grad():
        frames = model.encode(features, lengths)
        out, _ = model.predict(torch.tensor([[BLANK]]))
        logits = model.joint_step(frames.frames[:1, 0], out[:, 0])
    for b, n in enumerate(batch.lengths):
        ours = encode(bundle, batch.features[b, :n]).frames
        n_out = int(frames.lengths[b])
        np.testing.assert_allclose(ours, frames.frames[b, :n_out].numpy(), rtol=0, atol=2e-5)
    prediction, _ = predictor_step(bundle, BLANK)
    np.testing.assert_allclose(prediction, out[0, 0].numpy(), rtol=0, atol=2e-5)
    np.testing.assert_allclose(
        joint(bundle, frames.frames[0, 0].numpy(), prediction), logits[0].numpy(), atol=2e-5
    )
    hypotheses = torch_decode(model, features, lengths)
    assert hypotheses == [
        greedy_decode(bundle, batch.features[b, :n]) for b, n in enumerate(batch.lengths)
    ]


def test_a_float_model_bundles_quantized_after_training(tiny_run):
    # A float model (the tiny run's raw weights) bundled at int8 holds what its post-training
    # fake-quant model computes with.
    trained = dataclasses.replace(load_trained(tiny_run), precision=None)
    bundle = to_bundle(trained, precision="int8")
    assert bundle.precision == "int8" and bundle.metadata["post_training"] == "int8"
    for name, w in trained.model("int8").effective_parameters().items():
        np.testing.assert_allclose(bundle.weights()[name], w.numpy(), rtol=0, atol=1e-7)
