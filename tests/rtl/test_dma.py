"""The DMA path (load unit, store unit, simulation DRAM) against the functional simulator and
the DMA timing rules.

Pure-Python checks of the rules, constructor checks, a Verilator lint of the units, and the
cocotb bench (``sim/benches/dma_bench.py``) on the bench harness (the units wired to
``rtl/dram.py`` and ``rtl/sram.py``) on Verilator (``EDGENPU_SIM``) and Icarus.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgenpu.config import load_config
from edgenpu.formats import WeightFormat
from edgenpu.isa import Instruction, Opcode, Space
from edgenpu.rtl.dram import Dram
from edgenpu.rtl.load_unit import LoadUnit
from edgenpu.rtl.store_unit import StoreUnit
from edgenpu.sim.benches.dma_harness import DmaHarness, params
from edgenpu.sim.benches.dma_ref import beats, bench_config, make_instructions, reference, timing
from edgenpu.sim.functional import Machine
from edgenpu.sim.hdl_build import (
    lint,
    run_bench,
    run_bench_icarus,
    verilog_for,
)

BENCH = "edgenpu.sim.benches.dma_bench"
TINY = load_config("tiny")


def _load(**fields):
    return Instruction.make(Opcode.LOAD, **fields)


def test_beats_and_timing_by_hand():
    # B = 4: bytes 6..15 of a 10-byte row touch beats 1, 2, 3; row 2 at 6 + 2 * 3 = 12..21.
    ins = _load(space=Space.ACT, sram=0, dram=6, rows=3, len=10, stride=3)
    assert beats(ins, 4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (2, 5)]
    t = timing(ins, beat_bytes=4, latency=8)
    assert t.requests == tuple(range(1, 10))
    assert t.writes == tuple(range(9, 18)) and t.done == 18
    store = Instruction.make(Opcode.STORE, **ins.fields())
    t = timing(store, beat_bytes=4, latency=8)
    assert t.requests == tuple(range(1, 10)) and t.writes == tuple(range(2, 11)) and t.done == 11
    # ACC counts words: 3 words from byte 2 span bytes 2..13, beats 0..3.
    acc = _load(space=Space.ACC, sram=0, dram=2, rows=1, len=3, stride=0)
    assert [a for _, a in beats(acc, 4)] == [0, 1, 2, 3]
    assert timing(_load(space=Space.WGT, rows=0, len=5), 4, 8).done == 1
    # load_wgt: the Decompressor section's worked example (block sizes 20, 4, 36, count 69)
    # behind S = 2 + L cycles, one more when the stream is not beat-aligned.
    for dram, start in ((0x100, 10), (0x101, 11)):
        ins = Instruction.make(
            Opcode.LOAD_WGT, wgt=0, dram=dram, count=69, format=WeightFormat.BITMASK, prec=0
        )
        t = timing(ins, 4, 8, block_sizes=(20, 4, 36), output_elements=8)
        assert t.writes == tuple(start + c for c in (7, 8, 9, 10, 11, 12, 13, 14, 20))
        assert t.done == start + 21


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: LoadUnit(beat_bytes=2, sizes={s: 16 for s in Space}),
            ValueError,
            "beat_bytes must be a power of two, at least 4, not 2",
        ),
        (
            lambda: StoreUnit(beat_bytes=4, sizes={Space.WGT: 16}),
            TypeError,
            "sizes must map every Space to a size, not {<Space.WGT: 0>: 16}",
        ),
        (
            lambda: LoadUnit(beat_bytes=4, sizes={s: 0 for s in Space}),
            TypeError,
            "size of wgt must be a positive integer, not 0",
        ),
        (
            lambda: LoadUnit.from_config(
                dataclasses.replace(
                    TINY,
                    decompressor=dataclasses.replace(TINY.decompressor, input_bytes_per_cycle=8),
                )
            ),
            ValueError,
            "config tiny: decompressor.input_bytes_per_cycle (8) must equal "
            "dram.bandwidth_bytes_per_cycle (4) for load_wgt",
        ),
        (
            lambda: Dram(size=3000, beat_bytes=4, latency=1),
            ValueError,
            "size must be a power of two in 4..2**32, not 3000",
        ),
        (
            lambda: Dram(size=4096, beat_bytes=6, latency=1),
            ValueError,
            "beat_bytes must be a power of two, not 6",
        ),
        (
            lambda: Dram(size=4096, beat_bytes=4, latency=-1),
            ValueError,
            "latency must be a non-negative integer, not -1",
        ),
    ],
)
def test_constructor_rejects(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize("config", ["tiny", "default"])
@pytest.mark.parametrize("unit", [LoadUnit, StoreUnit])
def test_verilog_lints_clean(unit, config):
    lint(verilog_for(unit.from_config, {"config": load_config(config)}))


def test_through_real_memories():
    """Loads and stores through ``rtl/sram.py`` memories and ``rtl/dram.py`` in Amaranth's
    simulator (the cocotb bench models the SRAMs): random DRAM contents in, and after every
    instruction has run, the whole DRAM read back through the host port equals the
    functional simulator's; each instruction's ``done`` comes when the rules say."""
    config = dataclasses.replace(TINY, dram=dataclasses.replace(TINY.dram, bytes=2048))
    dut = DmaHarness(config, srams=True)
    rng = np.random.default_rng(3)
    machine = Machine.empty(config)
    machine.dram[:] = rng.integers(0, 256, size=machine.dram.size, dtype=np.uint8)
    # Stores first read the zero SRAMs; loads fill them, later stores show what they hold.
    program = make_instructions(config, rng, n_random=30)
    B, L = config.dram.bandwidth_bytes_per_cycle, config.dram.latency_cycles
    read_back = bytearray()

    async def bench(ctx):
        host = dut.dram_host
        ctx.set(host.en, 1)
        ctx.set(host.we, 1)
        for beat in range(machine.dram.size // B):
            ctx.set(host.addr, beat)
            ctx.set(host.wdata, int.from_bytes(machine.dram[beat * B : (beat + 1) * B], "little"))
            await ctx.tick()
        ctx.set(host.en, 0)
        for ins in program:
            cmd = dut.load_cmd if ins.opcode is Opcode.LOAD else dut.store_cmd
            done = dut.load_done if ins.opcode is Opcode.LOAD else dut.store_done
            for name, value in ins.fields().items():
                if name in ("space", "sram", "dram", "rows", "len", "stride"):
                    ctx.set(getattr(cmd.payload, name), int(value))
            ctx.set(cmd.valid, 1)
            ctx.set(done.ready, 1)
            await ctx.tick().until(cmd.ready)
            ctx.set(cmd.valid, 0)
            cycles = 1
            while not ctx.get(done.valid):
                await ctx.tick()
                cycles += 1
            assert cycles == timing(ins, B, L).done, ins
            await ctx.tick()
            reference(ins, machine)
        ctx.set(host.en, 1)
        ctx.set(host.we, 0)
        for beat in range(machine.dram.size // B):
            ctx.set(host.addr, beat)
            await ctx.tick()
            read_back.extend(ctx.get(host.rdata).to_bytes(B, "little"))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    got = np.frombuffer(bytes(read_back), np.uint8)
    assert np.array_equal(got, machine.dram), np.flatnonzero(got != machine.dram)[:8]


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_cocotb_bench(config):
    """The cocotb bench on the selected simulator (``EDGENPU_SIM``, default Verilator)."""
    run_bench(DmaHarness, params(bench_config(load_config(config))), BENCH)


@pytest.mark.parametrize(("latency", "beat_bytes"), [(0, 4), (2, 16)], ids=["L0-B4", "L2-B16"])
def test_cocotb_bench_variants(latency, beat_bytes):
    """DRAM latencies and beats the bundled configs do not have (a same-cycle response; a
    beat wider than the decompressor's output), on the tiny config."""
    config = dataclasses.replace(
        TINY,
        dram=dataclasses.replace(
            TINY.dram, latency_cycles=latency, bandwidth_bytes_per_cycle=beat_bytes
        ),
        decompressor=dataclasses.replace(TINY.decompressor, input_bytes_per_cycle=beat_bytes),
    )
    run_bench(DmaHarness, params(bench_config(config)), BENCH)


def test_cocotb_bench_icarus():
    """The Icarus subset: the tiny config."""
    run_bench_icarus(DmaHarness, params(bench_config(TINY)), BENCH)


@pytest.mark.parametrize("latency", [0, 1, 3])
def test_dram_contract(latency):
    """The simulation DRAM alone: a read requested in cycle c returns in c + L, one per
    cycle, in order, with the array as it is in cycle c + L - 1 (c for L = 0): every write
    transferred before then; masked writes; addresses wrap; the host port."""
    B, size = 4, 256
    depth = size // B
    dut = Dram(size=size, beat_bytes=B, latency=latency)
    rng = np.random.default_rng(latency)
    model = bytearray(rng.integers(0, 256, size=size, dtype=np.uint8).tobytes())
    #: The array after the writes of cycles <= k, by k (the channel phase's cycles).
    after: dict[int, bytes] = {-1: bytes(model)}

    async def bench(ctx):
        ctx.set(dut.host.en, 1)
        ctx.set(dut.host.we, 1)
        for beat in range(depth):
            ctx.set(dut.host.addr, beat)
            ctx.set(dut.host.wdata, int.from_bytes(model[beat * B : (beat + 1) * B], "little"))
            await ctx.tick()
        ctx.set(dut.host.we, 0)
        for beat in range(depth):
            ctx.set(dut.host.addr, beat)
            await ctx.tick()  # the edge that ends the read's cycle: rdata from here on
            want = int.from_bytes(model[beat * B : (beat + 1) * B], "little")
            assert ctx.get(dut.host.rdata) == want, f"host read of beat {beat}"
        ctx.set(dut.host.en, 0)
        due: dict[int, tuple[int, int]] = {}  # response cycle -> (array version, beat)
        for cycle in range(300):
            if rng.random() < 0.7:
                beat = int(rng.integers(0, depth))
                ctx.set(dut.rd_req.valid, 1)
                ctx.set(dut.rd_req.payload.addr, beat + depth * int(rng.integers(0, 3)))
                due[cycle + latency] = (cycle + max(latency, 1) - 2, beat)
            else:
                ctx.set(dut.rd_req.valid, 0)
            write = rng.random() < 0.5
            wbeat, mask = int(rng.integers(0, depth)), int(rng.integers(0, 1 << B))
            data = rng.integers(0, 256, size=B, dtype=np.uint8).tobytes()
            ctx.set(dut.wr.valid, write)
            ctx.set(dut.wr.payload.addr, wbeat)
            ctx.set(dut.wr.payload.data.as_value(), int.from_bytes(data, "little"))
            ctx.set(dut.wr.payload.mask, mask)
            assert ctx.get(dut.rd_req.ready) and ctx.get(dut.wr.ready)
            assert ctx.get(dut.rd_resp.valid) == (cycle in due), f"cycle {cycle}"
            if cycle in due:
                version, beat = due.pop(cycle)
                want = int.from_bytes(after[version][beat * B : (beat + 1) * B], "little")
                got = ctx.get(dut.rd_resp.payload.as_value())
                assert got == want, f"cycle {cycle}: beat {beat} read {got:#x}, want {want:#x}"
            await ctx.tick()
            if write:
                for j in range(B):
                    if mask >> j & 1:
                        model[wbeat * B + j] = data[j]
            after[cycle] = bytes(model)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
