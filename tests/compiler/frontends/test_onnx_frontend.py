"""The ONNX frontend: PyTorch exports of varied RNN-Ts read into the IR compute what the
torch model does (float reference within 1e-5); bad files fail in one line naming the culprit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgenpu.compiler.float_reference import run
from edgenpu.compiler.frontends.onnx_frontend import load_onnx, load_onnx_graph
from edgenpu.errors import CompileError

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.model_config import ModelConfig  # noqa: E402
from edgenpu.asr_workloads.onnx_export import export_onnx  # noqa: E402
from edgenpu.asr_workloads.rnnt.model import RNNT  # noqa: E402

TOPOLOGIES = {
    "one-layer": ([10], [1], [8], "tanh", None),
    "reduce-first": ([12, 9], [2, 1], [8, 6], "relu", "int8"),
    "three-layers": ([8, 11, 6], [1, 3, 2], [7], "tanh", "int4"),
}


def _model(name: str) -> RNNT:
    hidden, reduce, pred, activation, precision = TOPOLOGIES[name]
    config = ModelConfig.from_dict(
        {
            "input_dim": 5,
            "encoder": {"hidden": hidden, "reduce": reduce},
            "predictor": {"embed": 4, "hidden": pred},
            "joint": {"hidden": 9, "activation": activation},
            "vocab_size": 7,
        }
    )
    torch.manual_seed(len(name))
    model = RNNT(config)
    if precision is not None:
        w = model.parameter("encoder.0.w_ih")
        model.set_mask("encoder.0.w_ih", (torch.rand(w.shape) > 0.5).float())
        model.set_precision(precision)
    return model.eval()


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def imported(request, tmp_path_factory):
    model = _model(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    export_onnx(model, folder)
    return model, load_onnx(folder)


@pytest.mark.parametrize("frames", [1, 7, 13])
def test_encoder_matches_torch(imported, frames):
    model, ir = imported
    x = torch.randn(1, frames, 5)
    with torch.no_grad():
        ref = model.encode(x, torch.tensor([frames])).frames[0].numpy()
    out = run(ir["encoder"], {"features": x[0].numpy()})["frames"]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_predictor_steps_and_joint_match_torch(imported):
    model, ir = imported
    hidden = model.config.predictor.hidden
    tokens = [0, 3, 5, 1]
    with torch.no_grad():
        ref, ref_state = model.predict(torch.tensor([tokens]))
    state = {f"{k}{i}": np.zeros((1, h), np.float32) for i, h in enumerate(hidden) for k in "hc"}
    for u, token in enumerate(tokens):
        out = run(ir["predictor"], {"token": np.array([token]), **state})
        np.testing.assert_allclose(out["output"][0], ref[0, u].numpy(), atol=1e-5)
        state = {name: out[f"{name}_out"] for name in state}
    for i, (h, c) in enumerate(ref_state):
        np.testing.assert_allclose(state[f"h{i}"], h.numpy(), atol=1e-5)
        np.testing.assert_allclose(state[f"c{i}"], c.numpy(), atol=1e-5)
    enc, pred = torch.randn(4, model.config.encoder_dim), torch.randn(4, hidden[-1])
    with torch.no_grad():
        logits = model.joint_step(enc, pred).numpy()
    out = run(ir["joint"], {"frame": enc.numpy(), "prediction": pred.numpy()})["logits"]
    np.testing.assert_allclose(out, logits, atol=1e-5)


def test_time_reduction_is_folded_into_typed_ops(imported):
    model, ir = imported
    ops = [node.op for node in ir["encoder"].nodes]
    reduce = model.config.encoder.reduce
    assert ops.count("lstm") == len(reduce)
    assert [n.attrs["factor"] for n in ir["encoder"].nodes if n.op == "time_reduce"] == [
        r for r in reduce if r > 1
    ]
    (frames,) = ir["encoder"].output_types()
    r = model.config.time_reduction
    rows = "T" if r == 1 else f"ceil(T/{r})"
    assert str(frames) == f"f32[{rows}, {model.config.encoder_dim}]"


# --- bad input ---------------------------------------------------------------------------------


def _save(tmp_path, graph, name="bad.onnx", opset=17):
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_unsupported_op_names_node_op_and_alternatives(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv0")
    graph = helper.make_graph([node], "g", [_input("x", [1, 3, 8])], [_input("y", [1, 4, 6])], [w])
    with pytest.raises(CompileError) as error:
        load_onnx_graph(_save(tmp_path, graph))
    message = str(error.value)
    assert "bad.onnx: node conv0: unsupported op Conv (supported: " in message
    assert "LSTM" in message and "Gemm" in message and "\n" not in message


def test_garbage_bytes_are_not_an_onnx_model(tmp_path):
    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"\x07not a protobuf at all\xff" * 10)
    with pytest.raises(CompileError, match=r"encoder\.onnx: not an ONNX model \("):
        load_onnx_graph(path)


def test_checker_reason_is_reported(tmp_path):
    node = helper.make_node("Relu", ["missing"], ["y"], name="r")
    graph = helper.make_graph([node], "g", [_input("x", [2, 3])], [_input("y", [2, 3])])
    with pytest.raises(CompileError) as error:
        load_onnx_graph(_save(tmp_path, graph))
    assert "rejected by the ONNX checker: " in str(error.value)
    assert "missing" in str(error.value) and "\n" not in str(error.value)


def test_weight_without_initializer_is_named(tmp_path):
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    graph = helper.make_graph(
        [node], "g", [_input("x", ["N", 3]), _input("w", [4, 3])], [_input("y", ["N", 4])]
    )
    with pytest.raises(
        CompileError,
        match=r"node fc \(Gemm\): weight 'w' must be an initializer \(constant\), but it is a "
        r"run-time tensor",
    ):
        load_onnx_graph(_save(tmp_path, graph))


def test_gemm_weight_of_the_wrong_width_is_named(tmp_path):
    # A symbolic input width passes ONNX shape inference; the compiler needs it fixed, so
    # the mismatch is declared through a Reshape the checker cannot see through.
    w = numpy_helper.from_array(np.ones((4, 5), np.float32), "w")
    shape = numpy_helper.from_array(np.array([-1, 3], np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["x2"], name="flat"),
        helper.make_node("Gemm", ["x2", "w"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "g", [_input("x", ["N", 3])], [_input("y", ["N", 4])], [w, shape]
    )
    with pytest.raises(CompileError) as error:
        load_onnx_graph(_save(tmp_path, graph))
    message = str(error.value)
    assert "fc" in message and "\n" not in message
    assert ("'w'" in message and "width 5" in message) or "checker" in message


def test_dequantized_weights_keep_codes_and_scales(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, size=(4, 3)).astype(np.int8)
    scales = rng.uniform(0.01, 0.1, size=4).astype(np.float32)
    inits = [
        numpy_helper.from_array(codes, "codes"),
        numpy_helper.from_array(scales, "scales"),
        numpy_helper.from_array(np.zeros(4, np.int8), "zero"),
        numpy_helper.from_array(np.arange(4, dtype=np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["codes", "scales", "zero"], ["w"], axis=0),
        helper.make_node("Gemm", ["x", "w", "bias"], ["y"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["y"], ["z"]),
    ]
    graph = helper.make_graph(nodes, "g", [_input("x", ["N", 3])], [_input("z", ["N", 4])], inits)
    ir = load_onnx_graph(_save(tmp_path, graph))
    weight = ir.constants[ir.nodes[0].inputs[1]]
    assert weight.precision == "int8"
    np.testing.assert_array_equal(weight.codes, codes)
    np.testing.assert_array_equal(weight.scales, scales)
    x = rng.normal(size=(2, 3)).astype(np.float32)
    want = 1 / (1 + np.exp(-(x @ (codes * scales[:, None]).T + np.arange(4))))
    np.testing.assert_allclose(run(ir, {"x": x})["z"], want, atol=1e-6)


def test_nonzero_zero_point_is_refused(tmp_path):
    inits = [
        numpy_helper.from_array(np.ones((4, 3), np.int8), "codes"),
        numpy_helper.from_array(np.float32(0.1), "scale"),
        numpy_helper.from_array(np.int8(3), "zero"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["codes", "scale", "zero"], ["w"], name="dq"),
        helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "g", [_input("x", ["N", 3])], [_input("y", ["N", 4])], inits)
    with pytest.raises(CompileError, match=r"node dq \(DequantizeLinear\): zero point must be 0"):
        load_onnx_graph(_save(tmp_path, graph))


def test_checker_names_a_gemm_of_the_wrong_width(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 5), np.float32), "w")
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    graph = helper.make_graph([node], "g", [_input("x", ["N", 3])], [_input("y", ["N", 4])], [w])
    with pytest.raises(CompileError, match=r"node name: fc\).*mismatch .*between 5 and 3"):
        load_onnx_graph(_save(tmp_path, graph))


def _lstm_graph(w_shape, **attrs):
    hidden = 2
    inits = [
        numpy_helper.from_array(np.ones(w_shape, np.float32), "W"),
        numpy_helper.from_array(np.ones((w_shape[0], 4 * hidden, hidden), np.float32), "R"),
    ]
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="rnn", hidden_size=hidden, **attrs)
    y = _input("y", ["T", w_shape[0], 1, hidden])
    return helper.make_graph([node], "g", [_input("x", ["T", 1, 3])], [y], inits)


def test_lstm_weight_of_the_wrong_width_is_named(tmp_path):
    with pytest.raises(
        CompileError, match=r"node rnn \(LSTM\): W 'W' has shape \[1, 8, 4\], not \[1, 8, 3\]"
    ):
        load_onnx_graph(_save(tmp_path, _lstm_graph((1, 8, 4))))


def test_unsupported_attribute_is_named(tmp_path):
    graph = _lstm_graph((2, 8, 3), direction="bidirectional")
    with pytest.raises(
        CompileError,
        match=r"node rnn \(LSTM\): LSTM direction='bidirectional' is not supported "
        r"\(only 'forward'\)",
    ):
        load_onnx_graph(_save(tmp_path, graph))


def test_reshape_that_is_no_time_reduction_is_refused(tmp_path):
    shape = numpy_helper.from_array(np.array([1, -1, 3], np.int64), "shape")
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="odd")
    graph = helper.make_graph(
        [node], "g", [_input("x", [1, "T", 6])], [_input("y", [1, None, 3])], [shape]
    )
    with pytest.raises(CompileError, match=r"node odd \(Reshape\): .*changes the features"):
        load_onnx_graph(_save(tmp_path, graph))


def _quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scales = np.abs(w).max(axis=-1) / 127
    return np.clip(np.rint(w / scales[..., None]), -127, 127).astype(np.int8), scales


def test_quantized_lstm_weights_keep_codes_in_contract_gate_order(imported, tmp_path):
    """Replace the predictor's LSTM weights by DequantizeLinear of int8 codes (per row),
    then check the IR against onnxruntime on that graph and its codes against the ONNX ones
    reordered from gates i, o, f, c to i, f, g, o."""
    ort = pytest.importorskip("onnxruntime")
    model, _ = imported
    folder = tmp_path / "export"
    export_onnx(model, folder)
    proto = onnx.load(folder / "predictor.onnx")
    graph = proto.graph
    lstm = next(node for node in graph.node if node.op_type == "LSTM")
    inits = {init.name: init for init in graph.initializer}
    onnx_codes = {}
    for slot in (1, 2):
        name = lstm.input[slot]
        codes, scales = _quantize_rows(numpy_helper.to_array(inits[name])[0])
        onnx_codes[slot] = codes
        graph.initializer.remove(inits[name])
        graph.initializer.extend(
            [
                numpy_helper.from_array(codes[None], f"{name}.codes"),
                numpy_helper.from_array(scales.astype(np.float32), f"{name}.scales"),
            ]
        )
        dq = helper.make_node(
            "DequantizeLinear", [f"{name}.codes", f"{name}.scales"], [name], axis=1
        )
        graph.node.insert(0, dq)
    path = tmp_path / "predictor.onnx"
    onnx.save(proto, path)
    ir = load_onnx_graph(path, "predictor")
    hidden = model.config.predictor.hidden
    w_ih = ir.constants[ir.nodes[1].inputs[1]]
    assert w_ih.precision == "int8"
    blocks = onnx_codes[1].reshape(4, hidden[0], -1)
    np.testing.assert_array_equal(w_ih.codes, blocks[[0, 2, 3, 1]].reshape(w_ih.shape))
    state = {f"{k}{i}": np.zeros((1, 1, h), np.float32) for i, h in enumerate(hidden) for k in "hc"}
    feeds = {"token": np.array([[3]]), **state}
    ref = ort.InferenceSession(str(path)).run(None, feeds)
    out = run(ir, {"token": np.array([3]), **{k: v[0] for k, v in state.items()}})
    np.testing.assert_allclose(out["output"], ref[0], atol=1e-5)
    np.testing.assert_allclose(out["c0_out"], ref[2][0], atol=1e-5)


def test_matmul_add_and_activation_quantization_match_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=(1, 4)).astype(np.float32), "b"),
        numpy_helper.from_array(np.float32(0.05), "s"),
        numpy_helper.from_array(np.int8(0), "z"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("QuantizeLinear", ["a", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node("Concat", ["d", "x"], ["y"], axis=-1),
        helper.make_node("Tanh", ["y"], ["t"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [_input("x", [1, "N", 3])], [_input("t", [1, "N", 7])], inits
    )
    path = _save(tmp_path, graph)
    ir = load_onnx_graph(path)
    assert [n.op for n in ir.nodes] == ["linear", "add", "quantize", "dequantize", "concat", "tanh"]
    x = rng.normal(size=(1, 5, 3)).astype(np.float32) * 4
    (ref,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(run(ir, {"x": x[0]})["t"], ref[0], atol=1e-6)


def test_onnx_and_bundle_frontends_give_the_same_graphs(imported, tmp_path):
    from edgenpu.asr_workloads.bundle import bundle_from_weights
    from edgenpu.asr_workloads.frontend import FrontEndConfig
    from edgenpu.compiler.frontends.bundle_frontend import from_bundle

    model, ir = imported
    weights = {k: v.numpy() for k, v in model.effective_parameters().items()}
    bundle = bundle_from_weights(model.config, FrontEndConfig(n_mels=5), weights)
    other = from_bundle(bundle)
    for name, graph in ir.graphs.items():
        mine = [(n.op, dict(n.attrs), [str(v.type) for v in n.outputs]) for n in graph.nodes]
        theirs = [
            (n.op, dict(n.attrs), [str(v.type) for v in n.outputs]) for n in other[name].nodes
        ]
        assert mine == theirs, name
        assert [(v.name, v.type) for v in graph.inputs] == [
            (v.name, v.type) for v in other[name].inputs
        ]
        assert graph.outputs == other[name].outputs
    x = np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)
    np.testing.assert_allclose(
        run(ir["encoder"], {"features": x})["frames"],
        run(other["encoder"], {"features": x})["frames"],
        atol=1e-6,
    )


def test_lstm_with_only_its_sequence_output_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(5)
    hidden = 3
    inits = [
        numpy_helper.from_array(rng.normal(size=(1, 4 * hidden, 4)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(size=(1, 4 * hidden, hidden)).astype(np.float32), "R"),
        numpy_helper.from_array(rng.normal(size=(1, 8 * hidden)).astype(np.float32), "B"),
    ]
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], name="rnn", hidden_size=hidden)
    y = _input("y", ["T", 1, 1, hidden])
    path = _save(tmp_path, helper.make_graph([node], "g", [_input("x", ["T", 1, 4])], [y], inits))
    ir = load_onnx_graph(path)
    x = rng.normal(size=(6, 1, 4)).astype(np.float32)
    (ref,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(run(ir, {"x": x[:, 0]})["y"], ref[:, 0, 0], atol=1e-6)
