"""Compiled RNN-T kernels on the whole processor: the committed small ONNX models compiled,
real input codes placed in the program's DRAM image, each entry point (``encoder_chunk``,
``predictor_step``, ``joint``) run once on the RTL from that image. Each run must agree with
the functional simulator in every memory, take exactly the cycles the performance model
predicts, and leave in DRAM the outputs (and the encoder's next state) that the quantized
reference computes.

The inputs are what a host writes (:func:`edgenpu.compiler.report.plausible_inputs`):
encoder features drawn from a normal distribution and quantized at the input's scale, one
chunk from zero state; for the predictor a one-hot token with random ``h`` and ``c`` codes;
for the joint random projection codes.

A compiled program is longer than the regression bench's 128 instruction words, so these runs
get builds of their own (:func:`edgenpu.sim.rtl_run.run_on_rtl`: 16 KiB DRAM, the program's
length rounded up to a power of two), shared by every kernel of a model and by models of
similar length: on ``tiny`` both models take 1024 words, one build. The regular suite runs
two kernels there; the rest, and the default configuration with a 4x4 MAC array (two more
builds), are ``soak``.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgenpu.compiler.compile import CompiledModel, compile_model
from edgenpu.compiler.frontends.onnx_frontend import load_onnx
from edgenpu.compiler.host import SimulatedModel, with_inputs
from edgenpu.compiler.quant import reference
from edgenpu.compiler.quant.qir import QKernel
from edgenpu.compiler.report import plausible_inputs
from edgenpu.config import HardwareConfig, load_config
from edgenpu.errors import CompileError
from edgenpu.sim import functional, rtl_run
from edgenpu.sim.hdl_build import default_simulator

from .test_examples_rtl import DEFAULT_MAC4X4

DATA = Path(__file__).resolve().parents[1] / "compiler" / "data"
MODELS = ("three_layers", "reduce_first")
KERNELS = ("encoder_chunk", "predictor_step", "joint")
CONFIGS: dict[str, HardwareConfig] = {"tiny": load_config("tiny"), "default-mac4x4": DEFAULT_MAC4X4}
#: What the regular suite runs: the longest kernel of one model and the predictor of the other.
REGULAR = {("tiny", "three_layers", "encoder_chunk"), ("tiny", "reduce_first", "predictor_step")}
SEED = 20261125


@functools.cache
def compiled(model: str, config: str) -> CompiledModel:
    return compile_model(load_onnx(DATA / model), CONFIGS[config])


def host_inputs(kernel: QKernel, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The codes a host would write for one call of ``kernel``."""
    codes = plausible_inputs(kernel, rng)
    return {name: codes[name] for name in kernel.inputs}


def read_tensor(dram: np.ndarray, model: CompiledModel, kernel: str, name: str) -> np.ndarray:
    tensor = model.qmodel.kernels[kernel].tensor(name)
    region = model.region(kernel, name)
    raw = dram[region.addr : region.addr + region.nbytes]
    return raw.view(tensor.dtype.numpy).reshape(tensor.shape).astype(np.int64)


@pytest.mark.parametrize("model", MODELS)
def test_an_image_with_inputs_runs_as_the_host_calls(model):
    # The image the RTL starts from computes what the host's call computes, in the
    # functional simulator, for every kernel: the inputs are where the kernel reads them.
    target = compiled(model, "tiny")
    for kernel in KERNELS:
        q = target.qmodel.kernels[kernel]
        inputs = host_inputs(q, np.random.default_rng(SEED))
        want = SimulatedModel.from_compiled(target).call(kernel, inputs)
        program = with_inputs(target, kernel, inputs)
        result = functional.run(program, target.config, entry=kernel)
        assert result.halted, f"{kernel}: {result.trap}"
        for name in q.outputs:
            got = read_tensor(result.machine.dram, target, kernel, name)
            np.testing.assert_array_equal(got, want[name], err_msg=f"{kernel}.{name}")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"frame_projection": np.zeros((1, 9))},
            "kernel joint: missing input 'prediction_projection'",
        ),
        (
            {"frame_projection": np.zeros((9,)), "prediction_projection": np.zeros((1, 9))},
            "kernel joint: input 'frame_projection' must be [1, 9], not [9]",
        ),
        (
            {
                "frame_projection": np.zeros((1, 9)),
                "prediction_projection": np.full((1, 9), 1 << 15),
            },
            "kernel joint: input 'prediction_projection' holds codes outside -32768..32767 (int16)",
        ),
    ],
)
def test_with_inputs_rejects(inputs, message):
    with pytest.raises(CompileError) as info:
        with_inputs(compiled("three_layers", "tiny"), "joint", inputs)
    assert str(info.value) == message


def _cases():
    for config in CONFIGS:
        for model in MODELS:
            for kernel in KERNELS:
                marks = () if (config, model, kernel) in REGULAR else (pytest.mark.soak,)
                yield pytest.param(
                    config, model, kernel, marks=marks, id=f"{config}-{model}-{kernel}"
                )


@pytest.mark.parametrize(("config", "model", "kernel"), list(_cases()))
def test_compiled_kernel_on_rtl(config, model, kernel):
    if default_simulator() == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
    target = compiled(model, config)
    q = target.qmodel.kernels[kernel]
    inputs = host_inputs(q, np.random.default_rng(SEED))
    state = reference.initial_state(q)  # the image's state regions are zero
    want = reference.run_kernel(q, inputs, state)
    # The reference must be driven as a host would: nonzero outputs, so a kernel that wrote
    # nothing cannot pass.
    assert any(np.any(want[name]) for name in q.outputs), want

    run = rtl_run.run_on_rtl(
        with_inputs(target, kernel, inputs),
        target.config,
        entry=kernel,
        name=f"{model}.{kernel}",
    )
    assert run.halted and not run.timed_out, run.ending()
    assert run.agreed, f"{run.ending()} (expected {run.expected_ending()}); {run.divergence}"
    assert run.cycles == run.rules_cycles, (run.cycles, run.rules_cycles)
    for name, expected in {**want, **state}.items():
        np.testing.assert_array_equal(
            read_tensor(run.dram, target, kernel, name), expected, err_msg=f"{kernel}.{name}"
        )
