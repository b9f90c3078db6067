"""The vector unit against the functional simulator and its timing rules.

Three levels: constructor checks and the rounding datapath; short runs in Amaranth's own
simulator (no external tools, and the only way to reach lane counts the bundled configs do
not have); and the cocotb bench on Verilator (the simulator ``EDGENPU_SIM`` selects) and on
Icarus.
"""

from __future__ import annotations

import dataclasses
import gc
import re

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.sim import Simulator

from edgenpu import fixedpoint
from edgenpu.config import HardwareConfig, load_config
from edgenpu.isa import Opcode
from edgenpu.rtl.rounding import rounding_shift_right, saturate
from edgenpu.rtl.vector_unit import VectorUnit
from edgenpu.sim.benches.vector_unit_ref import (
    Case,
    Memories,
    apply_fills,
    command_payload,
    coverage_cases,
    empty_machine,
    expected_memories,
    make_case,
    random_cases,
    timing,
)
from edgenpu.sim.hdl_build import (
    lint,
    run_bench,
    run_bench_icarus,
    verilog_for,
)

BENCH = "edgenpu.sim.benches.vector_unit_bench"
TINY = load_config("tiny")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("lanes", [0, 3, 128, True, 4.0])
def test_constructor_rejects(lanes):
    with pytest.raises(ValueError) as info:
        VectorUnit(lanes=lanes)
    assert str(info.value) == f"lanes must be a power of two in 1..64, not {lanes!r}"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_from_config_ports():
    dut = VectorUnit.from_config(load_config("default"))
    assert dut.lanes == 16
    assert len(dut.act_a.data) == 16 * 16 and len(dut.acc_b.data) == 16 * 32
    assert len(dut.act_w.mask) == 32 and len(dut.acc_w.mask) == 16
    assert len(dut.lut) == 16 and len(dut.lut[0].data) == 8
    assert dut.cmd_layout["opcode"].width == 5
    # Collected here, so that the never-elaborated warning falls under this test's filter.
    del dut
    gc.collect()


def test_timing_rules_by_hand():
    # V = 4, len 10: beats 0..2 read in cycles 1..3, written in 4..6, done with the last.
    t = timing(10, 4)
    assert (t.reads, t.writes, t.done, t.next_command) == ((1, 2, 3), (4, 5, 6), 6, 7)
    assert timing(0, 4) == type(t)((), (), 1, 2)
    assert timing(1, 16).done == 4 and timing(16, 16).done == 4 and timing(17, 16).done == 5


def test_rounding_datapath():
    """The Amaranth rounding shift and saturation against ``edgenpu.fixedpoint``."""
    rng = np.random.default_rng(3)
    xs = [0, 1, -1, 2**62, -(2**62), 2**31 - 1, -(2**31), 5, -5, 6, -6, 7, -7]
    xs += [int(v) for v in rng.integers(-(2**62), 2**62, size=40)]
    shifts = [0, 1, 2, 7, 31, 32, 62, 63]
    x, s = Signal(signed(64)), Signal(6)
    r = Signal(signed(64))
    sat8, sat16 = Signal(signed(8)), Signal(signed(16))
    m = Module()
    m.d.comb += [
        r.eq(rounding_shift_right(x, s)),
        sat8.eq(saturate(r, 8)),
        sat16.eq(saturate(r, 16)),
    ]
    got = []

    async def bench(ctx):
        for xv in xs:
            for sv in shifts:
                ctx.set(x, xv)
                ctx.set(s, sv)
                got.append((ctx.get(r), ctx.get(sat8), ctx.get(sat16)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    expected = []
    for xv in xs:
        for sv in shifts:
            rv = int(fixedpoint.rounding_shift_right(np.int64(xv), sv))
            expected.append((rv, int(fixedpoint.saturate(rv, 8)), int(fixedpoint.saturate(rv, 16))))
    assert got == expected


def _simulate(dut: VectorUnit, config: HardwareConfig, cases: list[Case], seed: int = 0):
    """Run ``cases`` back to back in Amaranth's simulator with ``done`` always ready,
    against :class:`Memories`; check the memories after each against the functional
    simulator and the read, write and done cycles against :func:`timing`."""
    rng = np.random.default_rng(seed)
    machine = empty_machine(config, rng)
    memories = Memories(machine, dut.lanes)
    reads = {"act_a": dut.act_a, "act_b": dut.act_b, "acc_a": dut.acc_a, "acc_b": dut.acc_b}
    reads |= {f"lut{j}": port for j, port in enumerate(dut.lut)}
    writes = {"act_w": dut.act_w, "acc_w": dut.acc_w}

    async def bench(ctx):
        ctx.set(dut.done.ready, 1)
        pending: list[tuple[object, int]] = []
        cycle, last_done = 0, None
        for case in cases:
            apply_fills(case, machine)
            expected = expected_memories(case, machine)
            for name, value in command_payload(dut.cmd_layout, case.ins).items():
                ctx.set(getattr(dut.cmd.payload, name), value)
            ctx.set(dut.cmd.valid, 1)
            start, a_reads, w_cycles, done = None, [], [], None
            while done is None:
                for port, word in pending:
                    ctx.set(port.data, word)
                pending = []
                if start is None and ctx.get(dut.cmd.ready):
                    start = cycle
                for name, port in reads.items():
                    if ctx.get(port.en):
                        pending.append((port, memories.read(name[:3], ctx.get(port.addr))))
                        if name.endswith("_a"):
                            a_reads.append(cycle - start)
                for name, port in writes.items():
                    if ctx.get(port.en):
                        memories.write(
                            name, ctx.get(port.addr), ctx.get(port.data), ctx.get(port.mask)
                        )
                        w_cycles.append(cycle - start)
                if ctx.get(dut.done.valid):
                    done = cycle - start
                await ctx.tick()
                if start is not None:
                    ctx.set(dut.cmd.valid, 0)
                cycle += 1
                assert start is None or cycle - start < 10 + case.ins["len"], case.describe()
            for mem in ("act", "acc"):
                got, want = getattr(machine, mem), getattr(expected, mem)
                bad = np.flatnonzero(got != want)
                assert not bad.size, (
                    f"{case.describe()}: {mem} byte {bad[0]:#x} is {got[bad[0]]}, "
                    f"expected {want[bad[0]]}"
                )
            t = timing(case.ins["len"], dut.lanes)
            assert (tuple(a_reads), tuple(w_cycles), done) == (t.reads, t.writes, t.done), (
                case.describe()
            )
            if last_done is not None:
                assert start == last_done + 1, case.describe()
            last_done = cycle - 1  # the done transfer's cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _lanes(config: HardwareConfig, lanes: int) -> HardwareConfig:
    return dataclasses.replace(config, vector=dataclasses.replace(config.vector, lanes=lanes))


@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
def test_amaranth_sim(lanes):
    config = _lanes(TINY, lanes)
    dut = VectorUnit.from_config(config)
    rng = np.random.default_rng(lanes)
    cases = coverage_cases(config, rng)[::7] + random_cases(config, rng, 10)
    cases.append(make_case(config, rng, opcode=Opcode.VMUL, length=3 * lanes + 1, period=2))
    # The worked example of docs/microarchitecture.md (there at V = 4).
    cases.append(make_case(config, rng, opcode=Opcode.VMUL, length=10, period=3))
    _simulate(dut, config, cases, seed=lanes)


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_verilog_lints_clean(config):
    lint(verilog_for(VectorUnit.from_config, {"config": load_config(config)}))


#: A combinational process as Yosys writes it: ``always @* begin`` to the ``end`` at its indent.
_PROCESS = re.compile(
    r"^(?P<indent>[ \t]*)always @\* begin\n(?P<body>.*?)^(?P=indent)end$", re.M | re.S
)


@pytest.mark.parametrize("lanes", [1, 4])
def test_reset_wakes_every_combinational_process(lanes):
    """Every ``always @*`` process of the unit's Verilog reads ``rst``, so the benches' reset
    evaluates it. An event-driven simulator runs such a process only when an input changes
    (Yosys's time-0 trigger makes no event under IEEE 1800, which Icarus follows with
    ``-g2012``): one whose inputs all keep their initial values, as the head pick's did for a
    first instruction with a zero ``b``, stays X in Icarus while Verilator computes it."""
    text = verilog_for(VectorUnit.from_config, {"config": _lanes(TINY, lanes)}).read_text()
    processes = [match["body"] for match in _PROCESS.finditer(text)]
    assert processes, "no always @* process found: has Yosys's Verilog changed shape?"
    asleep = [body for body in processes if not re.search(r"\brst\b", body)]
    assert not asleep, f"{len(asleep)} process(es) reset does not wake, first:\n{asleep[0]}"


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_cocotb_bench(config):
    """The cocotb bench on the selected simulator (``EDGENPU_SIM``, default Verilator)."""
    run_bench(VectorUnit.from_config, {"config": load_config(config)}, BENCH)


def test_cocotb_bench_icarus():
    """The Icarus subset: the tiny config."""
    run_bench_icarus(VectorUnit.from_config, {"config": TINY}, BENCH)
