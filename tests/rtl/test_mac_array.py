"""The MAC array against the functional simulator and its timing rules.

Three levels: constructor checks and the timing rules by hand; short runs in Amaranth's own
simulator (no external tools, and the only way to reach configurations the bundled YAML
files do not have); and the cocotb bench on Verilator (the simulator ``EDGENPU_SIM``
selects) and on Icarus.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgenpu.config import HardwareConfig, load_config
from edgenpu.precision import Precision
from edgenpu.rtl.mac_array import PIPELINE_DEPTH, MacArray
from edgenpu.sim.benches import mac_array_ref
from edgenpu.sim.benches.mac_array_ref import Case, make_case, make_cases, timing
from edgenpu.sim.hdl_build import lint, run_bench, run_bench_icarus, verilog_for

BENCH = "edgenpu.sim.benches.mac_array_bench"
INT8, INT4 = Precision.INT8, Precision.INT4
TINY = load_config("tiny")


def _args(**overrides):
    args = dict(
        lanes=4,
        macs_per_lane=4,
        lookahead=2,
        precisions=[INT8, INT4],
        skip_weights=True,
        skip_activations=True,
        wgt_bits=12,
        act_bits=11,
        acc_bits=9,
    )
    return {**args, **overrides}


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"lanes": 3}, ValueError, "lanes must be a power of two in 1..64, not 3"),
        ({"macs_per_lane": 0}, ValueError, "macs_per_lane must be a power of two in 1..64, not 0"),
        ({"lookahead": True}, ValueError, "lookahead must be a power of two in 1..64, not True"),
        ({"precisions": []}, TypeError, "precisions must be a non-empty list of Precision, not ()"),
        (
            {"precisions": ["int8"]},
            TypeError,
            "precisions must be a non-empty list of Precision, not ('int8',)",
        ),
        ({"skip_weights": 1}, TypeError, "skip_weights must be a bool, not 1"),
        ({"acc_bits": 21}, ValueError, "acc_bits must be an integer in 1..20, not 21"),
    ],
)
def test_constructor_rejects(overrides, error, message):
    with pytest.raises(error) as info:
        MacArray(**_args(**overrides))
    assert str(info.value) == message


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_from_config_ports():
    dut = MacArray.from_config(TINY)
    assert (dut.lanes, dut.macs_per_lane, dut.lookahead) == (4, 4, 2)
    # An int4 window is 2*S*M = 16 nibbles, which can start mid-byte: 8 + 1 bytes.
    assert (dut.wgt_width, dut.act_width) == (9, 16)
    assert (dut.wgt_bits, dut.act_bits, dut.acc_bits) == (12, 11, 9)
    assert dut.done_layout.size == 64
    assert mac_array_ref.PIPELINE_DEPTH == PIPELINE_DEPTH


def test_timing_rules_by_hand():
    # tiny: L=4, M=4, S=2: int8 windows of K=8 pairs, M'=4; int4 K=16, M'=8.
    w = np.zeros((5, 10), dtype=np.int64)
    x = np.ones((2, 10), dtype=np.int64)
    # All zero: 2 groups x 2 vectors x 2 windows, one cycle each.
    t = timing(w, x, INT8, TINY)
    assert (t.windows, t.done, t.work, t.gated) == (8, PIPELINE_DEPTH + 8 - 1, 0, 0)
    # Row 0 dense: its first window has 8 work pairs (2 cycles), its second 2 (1 cycle);
    # row 4 (second group) has 5 non-zeros in window 0: 2 cycles.
    w[0] = 1
    w[4, :5] = 3
    t = timing(w, x, INT8, TINY)
    assert t.windows == 2 * (2 + 1) + 2 * (2 + 1)
    assert (t.work, t.gated) == (2 * 15, 0)
    # In int4 one window of 16 covers the 10 columns: row 0's 10 pairs take 2 cycles.
    t = timing(w, x, INT4, TINY)
    assert t.windows == 2 * 2 + 2 * 1
    # Zero activations skip too; without skipping they are gated.
    x[1] = 0
    assert timing(w, x, INT8, TINY).windows == (2 + 1) + 2 + (2 + 1) + 2
    no_skip = _variant(TINY, weights=False, activations=False)
    t = timing(w, x, INT8, no_skip)
    assert t.windows == 4 * (2 + 1)
    assert (t.work, t.gated) == (2 * 5 * 10, 2 * 5 * 10 - 15)
    assert timing(np.zeros((0, 3)), x[:, :3], INT8, TINY).done == 1


def _variant(config: HardwareConfig, *, mac=None, **zero_skip) -> HardwareConfig:
    return dataclasses.replace(
        config,
        mac=dataclasses.replace(config.mac, **(mac or {})),
        zero_skip=dataclasses.replace(config.zero_skip, **zero_skip),
    )


def _simulate(dut: MacArray, config: HardwareConfig, cases: list[Case]) -> list[tuple]:
    """Run ``cases`` back to back in Amaranth's simulator with memory models, ``done``
    always ready; per case: the final accumulator memory, the done payload and its cycle
    counted from the command's transfer."""
    results = []

    def read(mem: np.ndarray, addr: int, width: int, unit: int) -> int:
        chunk = mem[addr * unit : (addr + width) * unit]
        return int.from_bytes(chunk.tobytes(), "little")

    async def bench(ctx):
        ctx.set(dut.done.ready, 1)
        for case in cases:
            wgt, act, acc = case.wgt.copy(), case.act.copy(), case.acc.copy()
            for name, value in case.fields.items():
                ctx.set(getattr(dut.cmd.payload, name), value)
            ctx.set(dut.cmd.valid, 1)
            cycle, start, done = 0, None, None
            while done is None:
                if start is None and ctx.get(dut.cmd.ready):
                    start = cycle
                if ctx.get(dut.done.valid):
                    payload = (ctx.get(dut.done.payload.work), ctx.get(dut.done.payload.gated))
                    done = (payload, cycle - start)
                reads = []
                for port in dut.wgt:
                    if ctx.get(port.en):
                        reads.append((port.data, read(wgt, ctx.get(port.addr), dut.wgt_width, 1)))
                if ctx.get(dut.act.en):
                    reads.append((dut.act.data, read(act, ctx.get(dut.act.addr), dut.act_width, 1)))
                if ctx.get(dut.acc_rd.en):
                    value = read(acc, ctx.get(dut.acc_rd.addr), dut.lanes, 4)
                    reads.append((dut.acc_rd.data, value))
                if ctx.get(dut.acc_wr.en):
                    addr, word = ctx.get(dut.acc_wr.addr), ctx.get(dut.acc_wr.data)
                    mask = ctx.get(dut.acc_wr.mask)
                    for lane in range(dut.lanes):
                        at = 4 * (addr + lane)
                        if mask >> lane & 1 and at < acc.size:
                            value = word >> (32 * lane) & 0xFFFFFFFF
                            acc[at : at + 4] = np.frombuffer(value.to_bytes(4, "little"), np.uint8)
                await ctx.tick()
                for signal, value in reads:
                    ctx.set(signal, value)
                ctx.set(dut.cmd.valid, 0)
                cycle += 1
                assert cycle < 10_000, f"hung: {case.describe()}"
            results.append((acc, *done))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def _check(config: HardwareConfig, cases: list[Case]) -> None:
    dut = MacArray.from_config(config)
    for case, (acc, (work, gated), done) in zip(cases, _simulate(dut, config, cases), strict=True):
        expected = case.expected_acc(config)
        bad = np.flatnonzero(acc.view("<i4") != expected.view("<i4"))
        assert not bad.size, (
            f"{case.describe()}: ACC word {bad[0]} is {acc.view('<i4')[bad[0]]}, "
            f"expected {expected.view('<i4')[bad[0]]}"
        )
        t = case.timing(config)
        assert (done, work, gated) == (t.done, t.work, t.gated), case.describe()


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        # What the bundled configs do not have: no skipping, one kind only, one precision,
        # and the smallest window.
        _variant(TINY, weights=False, activations=False),
        _variant(TINY, weights=False, lookahead=4),
        _variant(TINY, activations=False, mac={"precisions": (INT4,), "lanes": 2}),
        _variant(TINY, mac={"precisions": (INT8,), "macs_per_lane": 1}, lookahead=1),
    ],
    ids=["tiny", "no-skip", "act-skip-s4", "int4-only", "int8-m1-s1"],
)
def test_amaranth_sim(config):
    rng = np.random.default_rng(11)
    cases = make_cases(config, rng, n_random=4)[::3]
    cases.append(make_case(config, rng, prec=config.mac.precisions[-1], rows=0, cols=3, n=1))
    _check(config, cases)


# The default config's array (16 lanes, 64-pair compaction networks) is 6 MB of Verilog and a
# ~15 minute cold Verilator build on 2 cores: it runs with the soak tests, not in every CI
# run. The tiny config and the Amaranth-simulator variants above cover the same logic.
HEAVY = pytest.param("default", marks=pytest.mark.soak)


@pytest.mark.parametrize("config", ["tiny", HEAVY])
def test_verilog_lints_clean(config):
    lint(verilog_for(MacArray.from_config, {"config": load_config(config)}))


@pytest.mark.parametrize("config", ["tiny", HEAVY])
def test_cocotb_bench(config):
    """The cocotb bench on the selected simulator (``EDGENPU_SIM``, default Verilator)."""
    run_bench(MacArray.from_config, {"config": load_config(config)}, BENCH)


def test_cocotb_bench_icarus():
    """The Icarus subset: the tiny config."""
    run_bench_icarus(MacArray.from_config, {"config": TINY}, BENCH)
