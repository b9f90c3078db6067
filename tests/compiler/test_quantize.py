"""Quantization: the fixed-point formats and tables, what the pass keeps (QAT codes) and
changes (spec precision), its one-line refusals, and the quantized model's distance from
the float one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgenpu.compiler.ir import GraphBuilder, Model
from edgenpu.compiler.quant import arith, reference
from edgenpu.compiler.quant.formats import (
    CELL_FRAC,
    GATE_FRAC,
    LUT_ONE,
    SIGMOID,
    SIGMOID_M1,
    TANH,
    fraction_for_bound,
    quantize_activation,
)
from edgenpu.compiler.quant.qir import QLstm
from edgenpu.compiler.quant.quantize import quantize_model
from edgenpu.compiler.shapes import SymDim, TensorType
from edgenpu.compiler.spec import CompileSpec, load_spec
from edgenpu.errors import CompileError

from .conftest import bundled_model, small_model


def test_tables_sample_their_functions_at_their_input_fraction():
    sigmoid, tanh = SIGMOID.table().astype(int), TANH.table().astype(int)
    assert sigmoid[128] == 64 and tanh[128] == 0  # f(0): 0.5 and 0 at 1/128
    assert sigmoid[0] == 0 and sigmoid[255] == 127  # saturated ends (sigmoid(8) -> 127.96)
    assert np.all(np.diff(sigmoid) >= 0) and np.all(np.diff(tanh) >= 0)
    x = (np.arange(256) - 128) / 2.0**TANH.in_frac
    assert np.abs(tanh - np.tanh(x) * 128).max() <= 1.0


def test_the_gate_table_is_sigmoid_less_one_and_reaches_both_ends():
    sigmoid, minus_one = SIGMOID.table().astype(int), SIGMOID_M1.table().astype(int)
    assert minus_one[0] == -LUT_ONE and minus_one[255] == 0  # gates of exactly 0 and 1
    # Rounded as sigmoid's own table, except where that one saturates at 127/128.
    unsaturated = minus_one + LUT_ONE
    assert np.array_equal(np.minimum(unsaturated, 127), sigmoid)
    assert (unsaturated == LUT_ONE).sum() > 0
    pre = np.array([-(1 << 15), -1, 0, 1 << 10, 6 << 10, (1 << 15) - 1])
    assert arith.gate(pre).tolist() == [0, 64, 64, 94, LUT_ONE, LUT_ONE]


def test_a_saturated_forget_gate_keeps_the_cell_exactly():
    # f = 1 and i = 0: c is held, whatever its value; with an int8 sigmoid (f <= 127/128)
    # every cell decayed by at least 1/128 a step.
    hidden = 5
    big, small = (1 << 15) - 1, -(1 << 15)
    c = np.array([[-32768, -20000, 1, 2047, 32767]])
    gates = np.concatenate(
        [np.full(hidden, small), np.full(hidden, big), np.zeros(hidden), np.full(hidden, big)]
    )[None]
    h_new, c_new = arith.lstm_gates(gates, c)
    assert np.array_equal(c_new, c)
    # o = 1 as well: h is tanh(c) itself.
    tanh_c = arith.lut(c, TANH, TANH.shift_from(CELL_FRAC))
    assert np.array_equal(h_new, tanh_c)
    for _ in range(100):
        h_new, c_new = arith.lstm_gates(gates, c_new)
    assert np.array_equal(c_new, c)


def test_fraction_for_bound_is_the_most_that_cannot_overflow():
    assert fraction_for_bound(1.0, 8) == 6  # 127 / 64 >= 1 > 127 / 128
    assert fraction_for_bound(40.0, 16) == 9
    assert fraction_for_bound(1e9, 16, lo=-8) == -8
    assert (quantize_activation([0.5, -0.5, 100.0], 0.25) == [2, -2, 127]).all()


def test_the_integer_cell_tracks_the_float_cell():
    rng = np.random.default_rng(0)
    gates = rng.normal(scale=2.0, size=(1000, 4 * 8))
    c = rng.normal(scale=1.5, size=(1000, 8))
    h_q, c_q = arith.lstm_gates(
        np.round(gates * 2**GATE_FRAC).astype(np.int64), np.round(c * 2**CELL_FRAC).astype(np.int64)
    )
    i, f, g, o = np.split(gates, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_f = sig(f) * c + sig(i) * np.tanh(g)
    h_f = sig(o) * np.tanh(c_f)
    # The tables' input steps bound the error, not the output's 1/128: sigmoid's 1/16 step
    # is off by up to 0.25/32 + 1/256 ~ 0.012, times |c| up to ~5 here.
    assert np.abs(c_q / 2**CELL_FRAC - c_f).max() < 0.08
    assert np.abs(h_q / 128 - h_f).max() < 0.06
    assert np.abs(c_q / 2**CELL_FRAC - c_f).mean() < 0.01


def test_qat_codes_are_kept_and_the_spec_can_requantize():
    model = bundled_model("int4_sparse")
    constant = model["encoder"].constants["encoder.0.w_ih"]
    kept = quantize_model(model, CompileSpec(), 3).kernels["encoder_chunk"].steps[0].w_ih
    assert kept.precision == "int4" and np.array_equal(kept.codes, constant.codes)
    spec = CompileSpec(precision={"encoder.0": "int8"})
    moved = quantize_model(model, spec, 3).kernels["encoder_chunk"].steps[0]
    assert moved.w_ih.precision == moved.w_hh.precision == "int8"
    assert np.abs(moved.w_ih.codes).max() == 127
    # Pruned weights stay pruned.
    assert np.array_equal(moved.w_ih.codes == 0, constant.codes == 0)
    again = quantize_model(model, spec, 3).kernels["encoder_chunk"].steps[1].w_ih
    assert again.precision == "int4"


def test_spec_keys_must_name_weights():
    with pytest.raises(CompileError, match=r"precision.encoder.7: no weight of the model"):
        quantize_model(bundled_model("int8"), CompileSpec(precision={"encoder.7": "int4"}), 3)


def _joint_with(op: str) -> Model:
    base = small_model("three_layers")
    b = GraphBuilder("joint")
    n = SymDim("N")
    frame = b.input("frame", TensorType("f32", (n, 6)))
    prediction = b.input("prediction", TensorType("f32", (n, 7)))
    w1 = b.constant("w1", values=np.ones((9, 6), np.float32))
    w2 = b.constant("w2", values=np.ones((9, 7), np.float32))
    (a,) = b.add("linear", [frame, w1], name="a")
    (p,) = b.add("linear", [prediction, w2], name="p")
    (m,) = b.add(op, [a, p], name="combine")
    (t,) = b.add("tanh", [m], name="squash")
    w3 = b.constant("w3", values=np.ones((7, 9), np.float32))
    (logits,) = b.add("linear", [t, w3], name="out")
    joint = b.build([logits])
    return dataclasses.replace(base, graphs={**base.graphs, "joint": joint})


def test_an_op_without_a_quantized_lowering_is_named():
    with pytest.raises(
        CompileError,
        match=r"graph joint: node .*combine.*: mul has no quantized lowering \(supported: ",
    ):
        quantize_model(_joint_with("mul"), CompileSpec(), 6)
    quantize_model(_joint_with("add"), CompileSpec(), 6)  # the same graph with add is fine


def test_a_bias_beyond_int32_is_named():
    model = small_model("three_layers")
    joint = model["joint"]
    name = next(n for n in joint.constants if n.endswith("bias"))
    constant = joint.constants[name]
    huge = dataclasses.replace(constant, values=np.full(constant.shape, 1e12, np.float32))
    bad = dataclasses.replace(joint, constants={**joint.constants, name: huge})
    model = dataclasses.replace(model, graphs={**model.graphs, "joint": bad})
    with pytest.raises(CompileError, match="overflows int32"):
        quantize_model(model, CompileSpec(), 6)


def test_the_quantized_model_stays_close_to_the_float_one():
    model = small_model("reduce_first")
    q = quantize_model(model, CompileSpec(), 4)
    features = np.random.default_rng(3).normal(size=(40, 5)).astype(np.float32)
    d = reference.deviation(model, q, features)
    assert d.encoder_error < 0.05 and d.predictor_error < 0.05
    assert d.logits_error < 0.1 * d.logits_rms + 0.05
    assert d.argmax_agreement >= 0.9


def test_spec_files_fail_in_one_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("schedule: layer_major\nchunk: 4\n")
    with pytest.raises(CompileError, match=r"spec.yaml: unknown key chunk \(known: "):
        load_spec(path)
    path.write_text("schedule: sideways\n")
    with pytest.raises(CompileError, match="schedule must be one of layer_major, frame_major"):
        load_spec(path)
    path.write_text("formats: [dense, zip]\n")
    with pytest.raises(CompileError, match="formats: unknown weight format 'zip'"):
        load_spec(path)
    path.write_text("precision: {default: int2}\n")
    with pytest.raises(CompileError, match="precision.default: 'int2' is not one of int8, int4"):
        load_spec(path)
    path.write_text("chunk_frames: 8\nprecision: {joint.output: int4}\nformats: [bitmask]\n")
    spec = load_spec(path)
    assert spec.chunk_frames == 8 and spec.precision_of("joint.output.weight") == "int4"
    assert spec.precision_of("joint.encoder.weight") is None


def test_calibration_tightens_the_formats_it_may_set(rng):
    from edgenpu.compiler.quant.calibrate import observe_ranges

    model = small_model("reduce_first")
    samples = [rng.normal(size=(n, 5)).astype(np.float32) for n in (9, 17)]
    ranges = observe_ranges(model, samples)
    assert {"encoder/features", "predictor/output", "joint/logits"} <= set(ranges)
    plain, tight = (
        quantize_model(model, CompileSpec(), 4),
        quantize_model(model, CompileSpec(), 4, ranges),
    )
    enc_plain = plain.kernels["encoder_chunk"].tensor("features").scale
    enc_tight = tight.kernels["encoder_chunk"].tensor("features").scale
    assert enc_tight == pytest.approx(ranges["encoder/features"] * 1.25 / 127)
    assert enc_tight < enc_plain
    # Fixed formats (the LSTM's) do not move.
    assert tight.kernels["encoder_chunk"].tensor("frames").scale == 2.0**-7
    joint_plain, joint_tight = (q.kernels["joint"] for q in (plain, tight))
    assert all(
        joint_tight.tensor(n).scale <= joint_plain.tensor(n).scale for n in joint_plain.tensors
    )
    with pytest.raises(CompileError, match=r"calibration sample 0: features must be \(T, 5\)"):
        observe_ranges(model, [np.zeros((4, 3))])


def _first_lstm(qmodel):
    return next(s for s in qmodel.kernels["encoder_chunk"].steps if isinstance(s, QLstm))


def test_float_weights_on_a_qat_grid_keep_their_precision():
    # The exporter folds fake-quant into float initializers: the grid is recognised.
    lstm = (
        quantize_model(small_model("three_layers"), CompileSpec(), 6)
        .kernels["encoder_chunk"]
        .steps[0]
    )
    assert lstm.w_ih.precision == lstm.w_hh.precision == "int4"
    constant = small_model("three_layers")["encoder"].constants[lstm.w_ih.name]
    np.testing.assert_allclose(
        lstm.w_ih.codes * lstm.w_ih.scales[:, None], constant.array(), rtol=1e-6
    )
    int8 = quantize_model(small_model("reduce_first"), CompileSpec(), 4)
    assert {w.precision for w in int8.kernels["encoder_chunk"].weights()} == {"int8"}
    # Off the int4 grid (a little noise), the same weights are quantized at the default, int8.
    model = small_model("three_layers")
    encoder = model["encoder"]
    name = lstm.w_ih.name
    weights = encoder.constants[name].array()
    noise = np.random.default_rng(0).normal(scale=1e-3, size=weights.shape).astype(np.float32)
    noisy = dataclasses.replace(encoder.constants[name], values=weights + noise, mask=None)
    encoder = dataclasses.replace(encoder, constants={**encoder.constants, name: noisy})
    model = dataclasses.replace(model, graphs={**model.graphs, "encoder": encoder})
    moved = _first_lstm(quantize_model(model, CompileSpec(), 6))
    assert moved.w_ih.precision == "int8" and moved.w_hh.precision == "int4"
