"""The performance model (``edgenpu.sim.perf.run``): its cycles against the stepped
composition of the unit rules (what the RTL bench pinned ``npu_ref.timing`` to before it
became a call into the model), and its accounting against independent counts."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgenpu import formats
from edgenpu.config import load_config, override
from edgenpu.isa import Opcode, SymbolKind
from edgenpu.isa.asm import assemble_file
from edgenpu.precision import packed_size
from edgenpu.sim import functional, perf
from edgenpu.sim.benches import dma_ref
from edgenpu.sim.benches.npu_ref import bench_config, timing, unit_done
from edgenpu.sim.perf import dma_rules
from edgenpu.sim.random_programs import injectable_causes, random_program

from .test_perf_streams import stepped

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.s"))
DEFAULT = load_config("default")
TINY = load_config("tiny")
#: Fewer, narrower lanes, a faster DRAM and no weight skipping: every rule at other values.
NARROW = override(
    TINY,
    {
        "mac.lanes": 8,
        "mac.macs_per_lane": 2,
        "dram.bandwidth_bytes_per_cycle": 8,
        "decompressor.input_bytes_per_cycle": 8,
        "zero_skip.weights": False,
    },
)
CONFIGS = [bench_config(c) for c in (TINY, DEFAULT, NARROW)]
IDS = ["tiny", "default", "narrow"]


def stepped_cycles(program, config, entry: int, machine: functional.Machine) -> int:
    """Each instruction's unit latency on the data it meets, then the stepped rules."""
    state = copy.deepcopy(machine)
    plan = functional.dispatch(program, config, entry)
    latencies = []
    for ins in plan.instructions:
        latencies.append(0 if ins.opcode is Opcode.NOP else unit_done(ins, state, config))
        functional.execute(ins, state, functional.ExecStats())
    return stepped(plan, config, latencies).cycles


def _random_programs(config, count: int, seed: int):
    rng = np.random.default_rng(seed)
    causes = injectable_causes(config)
    for i in range(count):
        trap = causes[i % len(causes)] if i % 5 == 4 else None
        yield i, random_program(rng, config, int(rng.integers(5, 40)), trap=trap).program


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_cycles_equal_stepped_composition_on_random_programs(config):
    for i, program in _random_programs(config, 40, seed=11):
        start = functional.load_image(program, config)
        got = perf.run(program, config, 0, start)
        assert got.cycles == stepped_cycles(program, config, 0, start), f"program {i}"
        assert timing(program, config, 0, start) == got.cycles


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_cycles_equal_stepped_composition_on_examples(path):
    program = assemble_file(path)
    start = functional.load_image(program, DEFAULT)
    entry = program.symbols_of(SymbolKind.ENTRY)[0].addr
    report = perf.run(program, DEFAULT, entry)
    assert report.halted
    assert report.cycles == stepped_cycles(program, DEFAULT, entry, start)


def test_dma_beat_count_is_the_listed_beats():
    rng = np.random.default_rng(3)
    for config in (TINY, NARROW):
        B = config.dram.bandwidth_bytes_per_cycle
        for ins in dma_ref.make_instructions(dma_ref.bench_config(config), rng, 200):
            assert dma_rules.beat_count(ins, B) == len(dma_rules.beats(ins, B)), ins


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_counts_agree_with_the_functional_simulator(config):
    for i, program in _random_programs(config, 25, seed=12):
        start = functional.load_image(program, config)
        report = perf.run(program, config, 0, start)
        stats = functional.run(program, config, machine=copy.deepcopy(start)).stats
        c = report.counts
        assert c.dram_read == stats.dram_read_bytes, i
        assert c.dram_written == stats.dram_write_bytes, i
        assert c.decompressed_bytes == stats.weight_stream_bytes, i
        assert c.mac_pairs == stats.macs, i
        assert c.mac_active_int8 + c.mac_active_int4 == stats.nonzero_macs, i
        zero_operand = stats.macs - stats.nonzero_macs
        assert c.mac_gated + c.mac_skipped == zero_operand, i
        skip = config.zero_skip
        if skip.weights and skip.activations:
            assert c.mac_gated == 0, i
        elif skip.weights:  # zero activations with a non-zero weight take a slot
            assert c.mac_gated == stats.nonzero_weight_macs - stats.nonzero_macs, i
        elif not skip.activations:
            assert c.mac_skipped == 0, i
        assert c.vector_elements == stats.vector_elements, i
        # What a load writes on chip it read from DRAM; what a store writes it read on chip.
        assert c.dram_written <= c.sram_read


def test_energy_is_the_table_times_the_counts():
    path = next(p for p in EXAMPLES if p.stem == "sparse_gemv_int4")
    program = assemble_file(path)
    report = perf.run(program, DEFAULT, "main")
    stats = functional.run(program, DEFAULT, entry="main").stats
    e, c, table = report.energy, report.counts, DEFAULT.energy
    assert e.mac == pytest.approx(stats.nonzero_macs * table.mac_int4)
    assert e.dram_read == pytest.approx(stats.dram_read_bytes * table.dram_read_byte)
    assert e.dram_write == pytest.approx(stats.dram_write_bytes * table.dram_write_byte)
    assert e.decompress == pytest.approx(stats.weight_stream_bytes * table.decompress_byte)
    assert e.vector == pytest.approx(stats.vector_elements * table.vector_op)
    assert e.static == pytest.approx(report.cycles * table.static_per_cycle)
    assert e.sram_read == pytest.approx(c.sram_read * table.sram_read_byte)
    expected = sum(
        [e.mac, e.mac_gated, e.vector, e.sram_read, e.sram_write, e.dram_read, e.dram_write]
        + [e.decompress, e.static]
    )
    assert e.total == pytest.approx(expected)
    # The stream's metadata: what is not a packed non-zero value of its blocks.
    image = functional.load_image(program, DEFAULT)
    value_bytes = stream_bytes = 0
    for weights in program.symbols_of(SymbolKind.WEIGHTS):
        values = image.read_symbol(weights).reshape(-1)
        blocks = np.zeros(-(-values.size // formats.BLOCK) * formats.BLOCK, np.int64)
        blocks[: values.size] = values
        if weights.format is formats.WeightFormat.BITMASK:  # the non-zeros, packed
            nonzero = np.count_nonzero(blocks.reshape(-1, formats.BLOCK), axis=1)
        else:  # 2:4: two value slots per group of four, zero or not
            assert weights.format is formats.WeightFormat.NM2_4
            nonzero = [formats.BLOCK // 2] * (blocks.size // formats.BLOCK)
        value_bytes += sum(packed_size(int(n), weights.precision) for n in nonzero)
        stream_bytes += weights.nbytes
    assert c.dram_read_weights == value_bytes
    assert c.dram_read_metadata == stream_bytes - value_bytes


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_every_cycle_of_every_unit_is_attributed(config):
    for i, program in _random_programs(config, 15, seed=13):
        report = perf.run(program, config)
        for u in report.units:
            assert u.busy + sum(u.stalls.values()) == report.cycles, (i, u)
        by_unit = {u.unit: u for u in report.units}
        for unit in (perf.Unit.LOAD, perf.Unit.MAC_ARRAY, perf.Unit.VECTOR_UNIT, perf.Unit.STORE):
            mine = [r for r in report.instructions if r.unit == unit.value]
            occupied = sum(r.done - r.issued + 1 for r in mine)
            u = by_unit[unit]
            inside = (
                u.busy
                + u.stalls.get(perf.StallCause.DRAM, 0)
                + u.stalls.get(perf.StallCause.DECOMPRESSOR, 0)
            )
            held = sum(r.held for r in mine)
            assert inside + held == occupied, (i, unit)


def test_report_json_and_table():
    program = assemble_file(next(p for p in EXAMPLES if p.stem == "gemv_int8"))
    report = perf.run(program, DEFAULT, "main")
    data = json.loads(json.dumps(perf.report_to_dict(report)))
    assert data["cycles"] == report.cycles
    assert set(data["units"]) == {u.value for u in perf.Unit}
    assert data["dram"]["read"]["total"] == report.counts.dram_read
    assert len(data["instructions"]) == len(report.instructions)
    assert data["ranges"][0]["name"] == "main"
    assert data["ranges"][0]["instructions"] == len(report.instructions)
    text = perf.format_report(report)
    assert f"{report.cycles:,} cycles" in text and "roofline" in text
    r = report.roofline
    assert r.binding in ("compute", "memory")
    assert r.ratio == pytest.approx(report.cycles / max(r.compute_cycles, r.memory_cycles))


def test_run_leaves_the_machine_alone():
    program = assemble_file(next(p for p in EXAMPLES if p.stem == "gemv_int8"))
    machine = functional.load_image(program, DEFAULT)
    before = copy.deepcopy(machine)
    perf.run(program, DEFAULT, "main", machine)
    assert all(
        np.array_equal(getattr(machine, m), getattr(before, m))
        for m in ("dram", "wgt", "act", "acc", "lut")
    )


@pytest.mark.soak
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_cycles_equal_stepped_composition_soak(config):
    total = int(os.environ.get("EDGENPU_SOAK_PROGRAMS", "5000")) // len(CONFIGS)
    seed = int(os.environ.get("EDGENPU_SEED", "1000"))
    for i, program in _random_programs(config, total, seed=seed):
        start = functional.load_image(program, config)
        assert perf.run(program, config, 0, start).cycles == stepped_cycles(
            program, config, 0, start
        ), f"program {i} (seed {seed})"


def test_stalls_name_their_causes():
    # gemv_int8: three loads and a load_wgt each wait out the DRAM latency; the matmul waits
    # for the load_wgt's token, the vmul for the matmul (same stream: busy), the store for
    # the vmul's token.
    program = assemble_file(next(p for p in EXAMPLES if p.stem == "gemv_int8"))
    report = perf.run(program, DEFAULT, "main")
    L, B = DEFAULT.dram.latency_cycles, DEFAULT.dram.bandwidth_bytes_per_cycle
    plan = functional.dispatch(program, DEFAULT, report.entry)
    dram = sum(
        L + (ins.opcode is Opcode.LOAD_WGT and ins["dram"] % B != 0)
        for ins in plan.instructions
        if ins.opcode in (Opcode.LOAD, Opcode.LOAD_WGT)
    )
    units = {u.unit: u for u in report.units}
    assert units[perf.Unit.LOAD].stalls[perf.StallCause.DRAM] == dram
    by_op = {r.opcode: r for r in report.instructions}
    load_wgt, matmul = by_op["load_wgt"], by_op["matmul"]
    assert matmul.issued == load_wgt.done + 1  # T2: the token is visible the cycle after
    # The first compute instruction: queued from dispatched + 1, then waiting for the token.
    assert matmul.waited == {
        "dispatch": matmul.dispatched + 1,
        "token": matmul.issued - matmul.dispatched - 1,
    }
    assert by_op["store"].waited["token"] > 0
    assert units[perf.Unit.VECTOR_UNIT].stalls[perf.StallCause.SHARED] == (
        matmul.done - matmul.issued + 1
    )
