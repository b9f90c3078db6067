"""The sparse weight decompressor against ``decode(strict=False)`` and its timing rules.

Three levels: constructor checks; short runs in Amaranth's own simulator (no external tools,
and the only way to reach configurations the bundled YAML files do not have); and the cocotb
bench on Verilator (the simulator ``EDGENPU_SIM`` selects) and on Icarus.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgenpu.config import HardwareConfig, load_config
from edgenpu.formats import WeightFormat
from edgenpu.precision import Precision
from edgenpu.rtl.decompressor import Decompressor
from edgenpu.sim.benches.decompressor_ref import Beat, Case, make_case, make_cases, timing
from edgenpu.sim.hdl_build import (
    lint,
    run_bench,
    run_bench_icarus,
    verilog_for,
)

BENCH = "edgenpu.sim.benches.decompressor_bench"
DENSE, BITMASK, NM = WeightFormat.DENSE, WeightFormat.BITMASK, WeightFormat.NM2_4
INT8, INT4 = Precision.INT8, Precision.INT4


def _args(**overrides):
    args = dict(input_bytes=4, output_elements=8, formats=[DENSE], precisions=[INT8], addr_bits=12)
    return {**args, **overrides}


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"input_bytes": 2},
            ValueError,
            "input_bytes must be a power of two in 4..64, not 2",
        ),
        (
            {"input_bytes": 12},
            ValueError,
            "input_bytes must be a power of two in 4..64, not 12",
        ),
        (
            {"output_elements": 64},
            ValueError,
            "output_elements must be a power of two in 4..32, not 64",
        ),
        (
            {"output_elements": True},
            ValueError,
            "output_elements must be a power of two in 4..32, not True",
        ),
        (
            {"formats": []},
            TypeError,
            "formats must be a non-empty list of WeightFormat, not ()",
        ),
        (
            {"formats": ["dense"]},
            TypeError,
            "formats must be a non-empty list of WeightFormat, not ('dense',)",
        ),
        (
            {"precisions": [8]},
            TypeError,
            "precisions must be a non-empty list of Precision, not (8,)",
        ),
        (
            {"addr_bits": 0},
            ValueError,
            "addr_bits must be an integer in 1..20, not 0",
        ),
    ],
)
def test_constructor_rejects(overrides, error, message):
    with pytest.raises(error) as info:
        Decompressor(**_args(**overrides))
    assert str(info.value) == message


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_from_config_ports():
    dut = Decompressor.from_config(load_config("tiny"))
    assert (dut.input_bytes, dut.output_elements, dut.addr_bits) == (4, 8, 12)
    assert dut.formats == (DENSE, BITMASK, NM) and dut.precisions == (INT8, INT4)
    # count is the ISA field (21 bits); the largest stream is 2**21 / 32 bitmask int8 blocks.
    assert dut.cmd_layout.size == 2 + 1 + 21 + 12
    assert dut.done_layout["consumed"].width == (65536 * 36).bit_length()
    assert dut.wr_layout.size == 12 + 8 * 8 + 8


def test_timing_rules_by_hand():
    # tiny: IN=4, OUT=8. Blocks of 20, 4 and 36 bytes, the last one of 5 elements.
    got = timing([20, 4, 36], 69, input_bytes=4, output_elements=8)
    # F0 = 1 + 5 = 6; F1 = F0 + max(1, 4) = 10; F2 = F1 + max(9, 4) = 19.
    assert got.writes == (7, 8, 9, 10, 11, 12, 13, 14, 20)
    assert got.done == 21
    assert timing([], 0, 4, 8).done == 1


def _simulate(dut: Decompressor, cases: list[Case]) -> list[tuple]:
    """Run ``cases`` back to back in Amaranth's simulator, the input always valid and the
    outputs always ready; per case: the write beats, the consumed count, the write cycles
    and the done cycle, counted from the command's transfer."""
    results = []
    n = dut.input_bytes

    async def bench(ctx):
        ctx.set(dut.wr.ready, 1)
        ctx.set(dut.done.ready, 1)
        for case in cases:
            beats = [case.supply[i : i + n] for i in range(0, len(case.supply), n)]
            ctx.set(dut.cmd.payload.format, case.fmt.value)
            ctx.set(dut.cmd.payload.precision, case.prec.value)
            ctx.set(dut.cmd.payload.count, case.count)
            ctx.set(dut.cmd.payload.addr, case.addr)
            ctx.set(dut.cmd.valid, 1)
            writes, write_cycles, done, cycle, start = [], [], None, 0, None
            while done is None:
                ctx.set(dut.src.valid, bool(beats))
                if beats:
                    ctx.set(dut.src.payload.as_value(), int.from_bytes(beats[0], "little"))
                if start is None and ctx.get(dut.cmd.ready):
                    start = cycle
                if beats and ctx.get(dut.src.ready):
                    beats.pop(0)
                if ctx.get(dut.wr.valid):
                    en = ctx.get(dut.wr.payload.en)
                    word = ctx.get(dut.wr.payload.data.as_value())
                    data = bytes(word >> 8 * k & 0xFF for k in range(dut.output_elements))
                    data = bytes(b for k, b in enumerate(data) if en >> k & 1)
                    writes.append(Beat(ctx.get(dut.wr.payload.addr), en, data))
                    write_cycles.append(cycle - start)
                if ctx.get(dut.done.valid):
                    done = (ctx.get(dut.done.payload.consumed), cycle - start)
                await ctx.tick()
                ctx.set(dut.cmd.valid, 0)
                cycle += 1
                assert cycle < 100 + 20 * len(case.supply), f"hung: {case.describe()}"
            results.append((tuple(writes), done[0], tuple(write_cycles), done[1]))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def _variant(config: HardwareConfig, **decompressor) -> HardwareConfig:
    precisions = decompressor.pop("precisions", config.mac.precisions)
    return dataclasses.replace(
        config,
        decompressor=dataclasses.replace(config.decompressor, **decompressor),
        mac=dataclasses.replace(config.mac, precisions=precisions),
    )


TINY = load_config("tiny")


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        # Rates the bundled configs do not have, and pruned formats and precisions.
        _variant(TINY, input_bytes_per_cycle=16, output_elements_per_cycle=4),
        _variant(TINY, input_bytes_per_cycle=8, formats=(DENSE, NM), precisions=(INT4,)),
        _variant(TINY, output_elements_per_cycle=32, formats=(DENSE, BITMASK), precisions=(INT8,)),
    ],
    ids=["tiny", "in16-out4", "int4-only", "int8-bitmask-out32"],
)
def test_amaranth_sim(config):
    dut = Decompressor.from_config(config)
    rng = np.random.default_rng(7)
    cases = make_cases(config, rng, n_random=10)[::5]
    # A longer arbitrary stream: several blocks in a row, the last one partial.
    fmt, prec = config.decompressor.formats[-1], config.mac.precisions[0]
    cases.append(make_case(config, fmt, prec, 150, rng, canonical=False))
    for case, (writes, consumed, write_cycles, done) in zip(
        cases, _simulate(dut, cases), strict=True
    ):
        assert writes == case.beats, case.describe()
        assert consumed == case.consumed, case.describe()
        expected = timing(case.block_sizes, case.count, dut.input_bytes, dut.output_elements)
        assert (write_cycles, done) == (expected.writes, expected.done), case.describe()


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_verilog_lints_clean(config):
    lint(verilog_for(Decompressor.from_config, {"config": load_config(config)}))


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_cocotb_bench(config):
    """The cocotb bench on the selected simulator (``EDGENPU_SIM``, default Verilator)."""
    run_bench(Decompressor.from_config, {"config": load_config(config)}, BENCH)


def test_cocotb_bench_icarus():
    """The Icarus subset: the tiny config."""
    run_bench_icarus(Decompressor.from_config, {"config": TINY}, BENCH)
