"""The whole processor (``rtl/npu.py``) against the functional simulator, program by program.

The cocotb bench (``edgenpu.sim.benches.npu_bench``) runs the tiny kernels of
``tests/rtl/kernels`` and random programs (clean and with every injectable trap) on the tiny
configuration with a 16 KiB simulation DRAM, and compares the DRAM and every on-chip memory
byte for byte, halt/trap, cause and index, and each program's cycles with
``npu_ref.timing`` (the performance model, exactly). Verilator runs 80 clean programs and
20 per injectable trap (220 in all), Icarus 4 and 1 each; two processors unlike tiny in
every timing parameter run 110 each; a reduced build (int8 and dense only) shows
``unsupported``; the ``soak`` test runs 5,000. ``EDGENPU_NPU_MAC=0`` builds without the MAC
array (its ``matmul``s become ``nop``s with the same tokens); ``EDGENPU_NPU_PROGRAMS``
changes the count.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgenpu.config import load_config, override
from edgenpu.isa import Opcode
from edgenpu.rtl.command_adapter import CommandAdapter, command_fields
from edgenpu.rtl.compute_router import ComputeRouter
from edgenpu.rtl.npu import Npu
from edgenpu.sim.benches.npu_ref import KERNELS_ENV, bench_config, params
from edgenpu.sim.hdl_build import run_cocotb
from edgenpu.sim.random_programs import injectable_causes

BENCH = "edgenpu.sim.benches.npu_bench"
KERNELS = Path(__file__).parent / "kernels"
TINY = bench_config(load_config("tiny"))
#: The MAC array is wired in when its file exists (it was being finished separately).
MAC = os.environ.get("EDGENPU_NPU_MAC", "1") != "0"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Npu("tiny"), TypeError, "config must be a HardwareConfig or a dict, not 'tiny'"),
        (
            lambda: Npu(TINY, mac_array=1),
            TypeError,
            "mac_array must be a bool, not 1",
        ),
        (
            lambda: CommandAdapter(TINY, (Opcode.LOAD,)),
            TypeError,
            f"issue_layout must be a StructLayout with a word, not {TINY!r}",
        ),
        (
            lambda: ComputeRouter(Npu(TINY, mac_array=False).dispatcher.issue_layout, matmul=0),
            TypeError,
            "matmul must be a bool, not 0",
        ),
    ],
)
def test_constructor_rejects(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message


def test_command_fields_follow_the_opcode():
    # load and load_wgt keep ``dram`` at different offsets: the field must be multiplexed.

    from amaranth import Module, Signal
    from amaranth.sim import Simulator

    from edgenpu.isa import Instruction, encode

    word = Signal(128)
    fields = command_fields(word, (Opcode.LOAD, Opcode.LOAD_WGT))
    m = Module()
    dram = Signal(32)
    m.d.comb += dram.eq(fields["dram"])
    sim = Simulator(m)
    seen = []

    async def bench(ctx):
        for op in (Opcode.LOAD, Opcode.LOAD_WGT):
            ins = Instruction.make(op, dram=0x1234567)
            ctx.set(word, int.from_bytes(encode(ins), "little"))
            seen.append(ctx.get(dram))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [0x1234567, 0x1234567]


#: Random programs per run (clean; a quarter as many per injected trap cause, so 80 make 220
#: in all): Icarus runs a program about three times slower than Verilator, and builds in a
#: second.
PROGRAMS = {"verilator": 80, "icarus": 4}


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_npu_bench(simulator):
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed (the Icarus run needs it on PATH)")
    run = run_cocotb(
        Npu.from_config,
        params(TINY, mac_array=MAC),
        BENCH,
        simulator,
        extra_env={
            KERNELS_ENV: str(KERNELS.resolve()),
            "EDGENPU_NPU_PROGRAMS": os.environ.get(
                "EDGENPU_NPU_PROGRAMS", str(PROGRAMS[simulator])
            ),
        },
    )
    assert run.tests == 3


#: Processors that differ from tiny in every parameter the timing rules take: lanes, MACs per
#: lane, vector lanes, DRAM bandwidth or latency, zero-skip switches and lookahead, queue
#: depths. The performance model's cycles must equal theirs too.
VARIANTS = {
    "narrow": {
        "mac.lanes": 8,
        "mac.macs_per_lane": 2,
        "dram.bandwidth_bytes_per_cycle": 8,
        "decompressor.input_bytes_per_cycle": 8,
        "zero_skip.weights": False,
    },
    "deep": {
        "mac.lanes": 2,
        "mac.macs_per_lane": 8,
        "vector.lanes": 8,
        "dram.latency_cycles": 3,
        "zero_skip.activations": False,
        "zero_skip.lookahead": 4,
        "control.token_queue_depth": 2,
        "control.instruction_queue_depth": 2,
    },
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_npu_bench_variants(variant):
    """Random programs (40 clean, 10 per injectable trap) on processors unlike tiny."""
    config = override(TINY, {"name": f"tiny-{variant}", **VARIANTS[variant]})
    run_cocotb(
        Npu.from_config,
        params(config, mac_array=MAC),
        BENCH,
        "verilator",
        testcase="random_programs_agree",
        extra_env={"EDGENPU_NPU_PROGRAMS": os.environ.get("EDGENPU_NPU_PROGRAMS", "40")},
    )


def test_unsupported_traps_on_a_reduced_config():
    """A processor built without int4 and the 2:4 format traps on them as ``unsupported``
    (the bundled configs support everything, so only a reduced build reaches that cause)."""
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed (the Icarus run needs it on PATH)")
    reduced = override(
        TINY,
        {"name": "tiny-int8", "mac.precisions": ["int8"], "decompressor.formats": ["dense"]},
    )
    run_cocotb(
        Npu.from_config,
        params(reduced, mac_array=MAC),
        BENCH,
        "icarus",
        testcase="random_programs_agree",
        extra_env={"EDGENPU_NPU_PROGRAMS": "4"},
    )


@pytest.mark.soak
def test_npu_soak():
    """Thousands of random programs on Verilator (``EDGENPU_SOAK_PROGRAMS`` in all, default
    5,000: clean and every injectable trap), seeded apart from the regular run."""
    total = int(os.environ.get("EDGENPU_SOAK_PROGRAMS", "5000"))
    causes = len(injectable_causes(TINY))
    clean = 4
    while clean + causes * (clean // 4) < total:  # the bench runs clean // 4 per cause
        clean += 1
    run_cocotb(
        Npu.from_config,
        params(TINY, mac_array=MAC),
        BENCH,
        "verilator",
        testcase="random_programs_agree",
        seed=int(os.environ.get("EDGENPU_SEED", "1000")),
        extra_env={"EDGENPU_NPU_PROGRAMS": str(clean)},
    )


def test_worked_example_timing():
    # docs/microarchitecture.md, "Integration", worked example.
    from edgenpu.isa import Instruction, OperandKind, Program, Space, encode
    from edgenpu.sim import functional
    from edgenpu.sim.benches.npu_ref import timing

    code = [
        Instruction.make(Opcode.LOAD, space=Space.ACT, sram=0, dram=0, rows=1, len=8, push_next=1),
        Instruction.make(
            Opcode.VCOPY,
            d_kind=OperandKind.ACT_I8,
            d_addr=16,
            a_kind=OperandKind.ACT_I8,
            a_addr=0,
            len=8,
            pop_prev=1,
        ),
        Instruction.make(Opcode.HALT),
    ]
    program = Program(tuple(int.from_bytes(encode(i), "little") for i in code), (), ())
    assert timing(program, TINY, 0, functional.load_image(program, TINY)) == 22
