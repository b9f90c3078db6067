"""The compile report: per-layer work from the weights themselves, cycles and bytes from
the performance model and the simulator, and the encoder's weight bytes per second of
audio under each schedule."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.report import (
    LAYER_COLUMNS,
    compile_report,
    format_report,
    plausible_inputs,
    report_to_dict,
    weight_rate,
)
from edgenpu.compiler.spec import CompileSpec
from edgenpu.config import load_config

from .conftest import bundled_model, small_model


@functools.cache
def small():
    compiled = compile_model(small_model("three_layers"), load_config("tiny"))
    return compiled, compile_report(compiled)


@functools.cache
def bundled(schedule: str):
    spec = CompileSpec(chunk_frames=8, schedule=schedule)
    return compile_model(bundled_model("int4_sparse"), load_config("default"), spec)


def test_plausible_inputs_are_seeded_codes_in_range():
    compiled, _ = small()
    for kernel in compiled.qmodel.kernels.values():
        a = plausible_inputs(kernel, np.random.default_rng(1))
        b = plausible_inputs(kernel, np.random.default_rng(1))
        assert sorted(a) == sorted((*kernel.inputs, *kernel.state))
        for name, codes in a.items():
            t = kernel.tensor(name)
            assert np.array_equal(codes, b[name]) and codes.shape == t.shape
            assert -(1 << (t.bits - 1)) <= codes.min() and codes.max() < 1 << (t.bits - 1)
            assert np.any(codes != 0), name
    onehot = plausible_inputs(compiled.qmodel.kernels["predictor_step"], np.random.default_rng(2))
    assert sorted(onehot["token_onehot"].ravel().tolist())[-2:] == [0, 1]
    assert onehot["token_onehot"].sum() == 1


def test_layers_count_work_from_the_weights():
    compiled, report = small()
    kernels = compiled.qmodel.kernels.values()
    weights = {(k.name, w.name): (k, w) for k in kernels for w in k.weights()}
    assert sorted((r.kernel, r.weight) for r in report.layers) == sorted(weights)
    # Both LSTMs of an ONNX export are /layers.0/LSTM: rows keep their own kernel's choice.
    assert len(weights) > len({name for _, name in weights})
    by_kernel, at = {}, 0
    for k in compiled.qmodel.kernels.values():
        for c in compiled.choices[at : at + len(k.weights())]:
            by_kernel[k.name, c.name] = c
        at += len(k.weights())
    for row in report.layers:
        kernel, w = weights[row.kernel, row.weight]
        choice = by_kernel[row.kernel, row.weight]
        step = next(s for s in kernel.steps if s.name == row.layer)
        rows = kernel.tensor(step.x).shape[0]
        assert row.macs == w.codes.size * rows
        assert row.nonzero_macs == np.count_nonzero(w.codes) * rows
        assert row.stream_bytes == choice.stream_bytes and choice.shape == w.shape
        assert row.dense_int8_bytes == w.codes.size
        assert row.format == choice.format and row.precision == w.precision
    # encoder.0.w_ih of this export is half pruned: half its MACs are on zero weights.
    pruned = next(r for r in report.layers if r.weight.endswith("0/LSTM.w_ih"))
    assert pruned.nonzero_macs < 0.75 * pruned.macs


def test_kernel_costs_agree_with_the_simulators():
    compiled, report = small()
    sim = SimulatedModel.from_compiled(compiled)
    rng = np.random.default_rng(3)
    for cost in report.kernels:
        q = compiled.qmodel.kernels[cost.name]
        sim.call(cost.name, plausible_inputs(q, rng))
        # Weight streams do not depend on the data: any inputs give the same bytes.
        assert cost.weight_stream_bytes == sim.stats[-1].weight_stream_bytes > 0
        assert cost.instructions == compiled.kernels[cost.name].length
        assert cost.microseconds == pytest.approx(cost.cycles / compiled.config.clock_mhz)
        layers = [r for r in report.layers if r.kernel == cost.name]
        for row in layers:
            assert 0 < row.cycles <= cost.cycles
        assert set(cost.step_cycles) >= {r.layer for r in layers}


def test_report_prints_and_serializes():
    _, report = small()
    text = format_report(report)
    lines = text.splitlines()
    assert tuple(lines[0].split()) == LAYER_COLUMNS
    for row in report.layers:
        assert row.weight in text
    assert "per encoder input frame" in lines[-1]
    data = json.loads(json.dumps(report_to_dict(report)))
    assert len(data["layers"]) == len(report.layers)
    assert data["encoder_weight_bytes"]["rate"] == report.encoder.rate


def test_weight_rate_per_second_of_audio_by_schedule():
    rates = {s: weight_rate(bundled(s)) for s in ("layer_major", "frame_major")}
    fe = bundled("layer_major").qmodel.frontend
    for rate in rates.values():
        assert rate.per == "second of audio"
        assert rate.units_per_call == pytest.approx(8 * fe.hop_ms * fe.subsample / 1000)
    # Layer-major fetches each encoder weight once per chunk; frame-major once per frame.
    compiled = bundled("layer_major")
    # The encoder kernel's matrices come first (the joint's frame projection among them).
    encoder = compiled.choices[: len(compiled.qmodel.kernels["encoder_chunk"].weights())]
    assert rates["layer_major"].bytes_per_call == sum(c.stream_bytes for c in encoder)
    assert rates["frame_major"].rate > 4 * rates["layer_major"].rate
