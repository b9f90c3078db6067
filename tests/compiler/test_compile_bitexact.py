"""Compiled kernels compute exactly what the quantized reference computes, in the functional
simulator: whole utterances through the encoder chunk by chunk (state carried in DRAM), the
predictor and the joint, for models read from ONNX and from bundles, on both shipped
configs, both schedules, and SRAM sizes that force other tilings."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.quant import reference
from edgenpu.compiler.spec import CompileSpec
from edgenpu.config import load_config, override

from .conftest import SMALL_MODELS, bundled_model, random_inputs, small_model


def _check_all_kernels(compiled, rng, frames: int) -> None:
    sim = SimulatedModel.from_compiled(compiled)
    q = compiled.qmodel
    width = q.kernels["encoder_chunk"].tensor(q.kernels["encoder_chunk"].inputs[0]).shape[1]
    features = rng.normal(size=(frames, width))
    np.testing.assert_array_equal(sim.encode(features), reference.encode(q, features))
    for name in ("predictor_step", "joint"):
        kernel = q.kernels[name]
        for _ in range(2):
            inputs = random_inputs(kernel, rng)
            want = reference.run_kernel(kernel, inputs)
            got = sim.call(name, inputs)
            for output in kernel.outputs:
                np.testing.assert_array_equal(got[output], want[output], err_msg=f"{name}.{output}")


@pytest.mark.parametrize("schedule", ["layer_major", "frame_major"])
@pytest.mark.parametrize("config", ["tiny", "default"])
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_onnx_models_are_bit_exact(name, config, schedule, rng):
    compiled = compile_model(small_model(name), load_config(config), CompileSpec(schedule=schedule))
    # Enough frames for three chunks and a partial one: state crosses calls.
    _check_all_kernels(compiled, rng, frames=2 * compiled.qmodel.chunk_frames + 5)


@pytest.mark.parametrize(
    ("bundle", "config"), [("int4_sparse", "tiny"), ("int4_sparse", "default"), ("int8", "default")]
)
def test_bundled_models_fit_and_are_bit_exact(bundle, config, rng):
    # int8 on default keeps only part of each layer's recurrent weights resident.
    compiled = compile_model(bundled_model(bundle), load_config(config))
    assert compiled.dram_bytes <= compiled.config.dram.bytes
    _check_all_kernels(compiled, rng, frames=compiled.qmodel.chunk_frames + 1)


def test_smaller_srams_change_the_tiling_and_stay_bit_exact(rng):
    model = bundled_model("int4_2of4")
    default = load_config("default")
    smaller = override(
        default,
        {
            "name": "small-sram",
            "sram.weight_bytes": 65536,
            "sram.activation_bytes": 32768,
            "sram.accumulator_bytes": 16384,
        },
    )
    big, small = compile_model(model, default), compile_model(model, smaller)
    assert (big.qmodel.chunk_frames, big.ambition) != (small.qmodel.chunk_frames, small.ambition)
    assert big.program.words != small.program.words
    _check_all_kernels(small, rng, frames=small.qmodel.chunk_frames + 3)


def test_a_fixed_chunk_is_honoured_and_checked():
    model = small_model("three_layers")  # reduces time 6x
    compiled = compile_model(model, load_config("default"), CompileSpec(chunk_frames=12))
    assert compiled.qmodel.chunk_frames == 12
    from edgenpu.errors import CompileError

    with pytest.raises(CompileError, match="multiple of the encoder's time reduction"):
        compile_model(model, load_config("default"), CompileSpec(chunk_frames=8))


def test_a_calibrated_compile_is_bit_exact(rng):
    model = small_model("reduce_first")
    samples = [rng.normal(size=(12, 5)).astype(np.float32)]
    compiled = compile_model(model, load_config("tiny"), calibration=samples)
    _check_all_kernels(compiled, rng, frames=compiled.qmodel.chunk_frames + 3)


def test_lstm_kernels_need_two_tables():
    # tiny's LUT memory holds two tables: the LSTM's gates take sigmoid - 1 (whose codes
    # reach 0 and 1 exactly, unlike sigmoid's) with 1 added back by a vadd, not a third.
    compiled = compile_model(small_model("three_layers"), load_config("tiny"))
    tables = {region.name for region in compiled.regions if region.kind == "lut"}
    assert tables == {"lut.sigmoid_m1", "lut.tanh"}
    assert compiled.config.sram.lut_tables == len(tables)
