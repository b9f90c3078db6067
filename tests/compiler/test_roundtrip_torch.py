"""Round trip from PyTorch: a small RNN-T built and pruned in torch, exported to ONNX,
compiled, and run on the functional simulator; its integer outputs equal the quantized
reference bit for bit and follow the torch model's float outputs. (Without torch, the
committed exports in ``data/`` cover the same path: test_compile_bitexact.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.frontends.onnx_frontend import load_onnx
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.quant import reference
from edgenpu.config import load_config

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.model_config import ModelConfig  # noqa: E402
from edgenpu.asr_workloads.onnx_export import export_onnx  # noqa: E402
from edgenpu.asr_workloads.rnnt.model import RNNT  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    config = ModelConfig.from_dict(
        {
            "input_dim": 6,
            "encoder": {"hidden": [20, 14], "reduce": [1, 2]},
            "predictor": {"embed": 5, "hidden": [10]},
            "joint": {"hidden": 12, "activation": "tanh"},
            "vocab_size": 9,
        }
    )
    torch.manual_seed(7)
    model = RNNT(config)
    for name in ("encoder.0.w_hh", "encoder.1.w_ih"):
        w = model.parameter(name)
        model.set_mask(name, (torch.rand(w.shape) > 0.6).float())
    model.set_precision("int4")
    model.eval()
    folder = tmp_path_factory.mktemp("roundtrip")
    export_onnx(model, folder)
    return model, load_onnx(folder)


def test_torch_to_onnx_to_program_round_trip(exported):
    model, ir = exported
    compiled = compile_model(ir, load_config("tiny"))
    sim = SimulatedModel.from_compiled(compiled)
    q = compiled.qmodel
    encoder, predictor, joint = (q.kernels[k] for k in ("encoder_chunk", "predictor_step", "joint"))
    rng = np.random.default_rng(1)
    features = rng.normal(size=(23, 6)).astype(np.float32)
    # The encoder kernel ends with the joint's frame projection (hoisted out of the joint).
    projected = sim.encode(features)
    np.testing.assert_array_equal(projected, reference.encode(q, features))
    with torch.no_grad():
        frames = model.encode(torch.from_numpy(features)[None], torch.tensor([23])).frames[0]
        want = model._affine(frames, "joint.encoder").numpy()  # noqa: SLF001
    scale = encoder.tensor(encoder.outputs[0]).scale
    assert projected.shape == want.shape
    assert np.abs(projected * scale - want).max() < 0.1 * np.abs(want).max()

    # One predictor step from zero state on token 3, then the joint on every frame.
    inputs = {
        name: reference.onehot(3, 9)
        if name.endswith("_onehot")
        else np.zeros(predictor.tensor(name).shape, np.int64)
        for name in predictor.inputs
    }
    pred = sim.call("predictor_step", inputs)
    assert all(
        np.array_equal(pred[k], v) for k, v in reference.run_kernel(predictor, inputs).items()
    )
    with torch.no_grad():
        pred_float, _ = model.predict(torch.tensor([[3]]))
        pred_projected = model._affine(pred_float[0, :1], "joint.predictor").numpy()  # noqa: SLF001
    pred_scale = predictor.tensor(predictor.outputs[0]).scale
    got = pred[predictor.outputs[0]] * pred_scale
    assert np.abs(got - pred_projected).max() < 0.1 * np.abs(pred_projected).max()

    frame_input, prediction_input = joint.inputs
    logits = np.concatenate(
        [
            sim.call("joint", {frame_input: f[None], prediction_input: pred[predictor.outputs[0]]})[
                "logits"
            ]
            for f in projected
        ]
    )
    with torch.no_grad():
        logits_float = model.joint_step(frames, pred_float[0, :1].repeat(len(frames), 1)).numpy()
    logits_real = logits * joint.tensor("logits").scale
    assert np.abs(logits_real - logits_float).max() < 0.1 * np.abs(logits_float).max()
    assert np.mean(logits_real.argmax(1) == logits_float.argmax(1)) >= 0.9
