"""ONNX export: the three graphs pass the checker and reproduce the PyTorch model in
onnxruntime; onnxruntime's quantize_dynamic peer runs; a branching encoder is refused."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from edgenpu.asr_workloads.model_config import ModelConfig
from edgenpu.asr_workloads.onnx_export import ExportError, export_onnx
from edgenpu.asr_workloads.onnx_peer import (
    OnnxRecognizer,
    initializer_bytes,
    quantize_peer,
)
from edgenpu.asr_workloads.rnnt.decode import greedy_decode
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.text import BLANK, decode

CONFIG = ModelConfig.from_dict(
    {
        "input_dim": 12,
        "encoder": {"hidden": [16, 24, 20], "reduce": [1, 2, 3]},
        "predictor": {"embed": 8, "hidden": [12, 10]},
        "joint": {"hidden": 16, "activation": "relu"},
    }
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = RNNT(CONFIG)
    with torch.no_grad():  # a livelier joint than the initialisation, so decoding emits
        model.parameter("joint.output.bias")[BLANK] -= 1.0
    model.set_mask("encoder.1.w_ih", (torch.rand(96, 32) > 0.5).float())
    model.set_precision("int8")
    model.eval()
    out = tmp_path_factory.mktemp("onnx")
    return model, export_onnx(model, out), out


def _run(path, feeds):
    return ort.InferenceSession(str(path)).run(None, feeds)


@pytest.mark.parametrize("frames", [1, 5, 17])
def test_encoder_graph_reproduces_the_model(exported, frames):
    model, paths, _ = exported
    x = torch.randn(1, frames, CONFIG.input_dim)
    with torch.no_grad():
        ref = model.encode(x, torch.tensor([frames])).frames[0].numpy()
    (out,) = _run(paths["encoder"], {"features": x.numpy()})
    assert out.shape == (1, -(-frames // 6), 20)
    np.testing.assert_allclose(out[0], ref, atol=1e-5)


def test_predictor_and_joint_graphs_reproduce_the_model(exported):
    model, paths, _ = exported
    state = {
        f"{k}{i}": np.zeros((1, 1, h), np.float32) for i, h in enumerate([12, 10]) for k in "hc"
    }
    with torch.no_grad():
        ref, ref_state = model.predict(torch.tensor([[BLANK, 3, 7]]))
    for u, token in enumerate([BLANK, 3, 7]):
        out, *new = _run(paths["predictor"], {"token": np.array([[token]]), **state})
        np.testing.assert_allclose(out[0], ref[0, u].numpy(), atol=1e-5)
        state = dict(zip(state, new, strict=True))
    np.testing.assert_allclose(state["h1"][0, 0], ref_state[1][0][0].numpy(), atol=1e-5)
    enc, pred = torch.randn(4, 20), torch.randn(4, 10)
    with torch.no_grad():
        ref_logits = model.joint_step(enc, pred).numpy()
    (logits,) = _run(paths["joint"], {"frame": enc.numpy(), "prediction": pred.numpy()})
    np.testing.assert_allclose(logits, ref_logits, atol=1e-5)


def test_onnx_greedy_decoding_equals_the_model_and_the_peer_is_smaller(exported, tmp_path):
    model, paths, _ = exported
    torch.manual_seed(1)
    features = torch.randn(2, 30, CONFIG.input_dim)
    lengths = torch.tensor([30, 19])
    expected = [decode(h) for h in greedy_decode(model, features, lengths)]
    assert any(expected)
    assert OnnxRecognizer(paths)(features.numpy(), lengths.numpy()) == expected
    peer = quantize_peer(paths["encoder"].parent, tmp_path)
    assert initializer_bytes(peer) < 0.4 * initializer_bytes(paths)
    assert len(OnnxRecognizer(peer)(features.numpy(), lengths.numpy())) == 2


def test_a_branching_encoder_is_refused(tmp_path):
    config = ModelConfig.from_dict(
        {
            **CONFIG.to_dict(),
            "encoder": {"hidden": [16, 20], "reduce": [2, 1]},
            "branching": {"stem_layers": 1, "cheap_hidden": [20]},
        }
    )
    with pytest.raises(ExportError, match="ONNX export of a branching encoder is not supported"):
        export_onnx(RNNT(config), tmp_path)
