"""The statistical mode (``edgenpu.sim.perf.estimate``): exact where the data are certain,
close to the exact model's mean on random data, and close to the exact model on the
example kernels at their measured densities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgenpu import formats
from edgenpu.config import load_config
from edgenpu.formats import WeightFormat
from edgenpu.isa import Instruction, Opcode, SymbolKind
from edgenpu.isa.asm import assemble_file
from edgenpu.precision import Precision
from edgenpu.sim import functional, perf
from edgenpu.sim.perf import decompressor_rules, mac_rules
from edgenpu.sim.perf.statistical import expected_cost

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.s"))
DEFAULT = load_config("default")
TINY = load_config("tiny")


def _matmul(rows: int, cols: int, n: int, prec: Precision) -> Instruction:
    return Instruction.make(Opcode.MATMUL, rows=rows, cols=cols, n=n, prec=prec)


@pytest.mark.parametrize("prec", list(Precision))
@pytest.mark.parametrize("density", [0.0, 1.0])
def test_matmul_is_exact_when_the_data_are_certain(prec, density):
    rows, cols, n = 37, 300, 3
    rng = np.random.default_rng(1)
    w = rng.integers(1, prec.max + 1, (rows, cols)) * (density > 0)
    x = rng.integers(1, 128, (n, cols)) * (density > 0)
    exact = mac_rules.timing(w, x, prec, DEFAULT)
    cost = expected_cost(_matmul(rows, cols, n, prec), DEFAULT, density, density)
    assert cost.done == exact.done
    assert cost.counts.mac_windows == exact.windows


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
@pytest.mark.parametrize(("dw", "dx"), [(0.5, 1.0), (0.25, 0.6), (0.1, 0.3)])
def test_matmul_expectation_is_the_mean_of_random_data(config, dw, dx):
    rows, cols, n, prec = 2 * config.mac.lanes + 3, 200, 8, Precision.INT8
    rng = np.random.default_rng(2)
    windows = []
    for _ in range(40):
        w = rng.integers(1, 128, (rows, cols)) * (rng.random((rows, cols)) < dw)
        x = rng.integers(1, 128, (n, cols)) * (rng.random((n, cols)) < dx)
        windows.append(mac_rules.timing(w, x, prec, config).windows)
    cost = expected_cost(_matmul(rows, cols, n, prec), config, dw, dx)
    assert cost.counts.mac_windows == pytest.approx(np.mean(windows), rel=0.02)


@pytest.mark.parametrize("prec", list(Precision))
def test_weight_load_expectation_is_the_mean_of_random_streams(prec):
    count, dw = 1000, 0.3
    ins = Instruction.make(
        Opcode.LOAD_WGT, count=count, format=WeightFormat.BITMASK, prec=prec, dram=0
    )
    rng = np.random.default_rng(3)
    B, L = DEFAULT.dram.bandwidth_bytes_per_cycle, DEFAULT.dram.latency_cycles
    done = []
    for _ in range(60):
        values = rng.integers(1, prec.max + 1, count) * (rng.random(count) < dw)
        stream = formats.encode(values, WeightFormat.BITMASK, prec)
        sizes = formats.block_sizes(stream, count, WeightFormat.BITMASK, prec)
        out = DEFAULT.decompressor.output_elements_per_cycle
        done.append(2 + L + decompressor_rules.schedule(sizes, count, B, out).done)
    assert expected_cost(ins, DEFAULT, dw, 1.0).done == pytest.approx(np.mean(done), rel=0.02)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_land_near_the_exact_model(path):
    program = assemble_file(path)
    entry = program.symbols_of(SymbolKind.ENTRY)[0].addr
    exact = perf.run(program, DEFAULT, entry)
    image = functional.load_image(program, DEFAULT)
    weights = np.concatenate(
        [image.read_symbol(s).reshape(-1) for s in program.symbols_of(SymbolKind.WEIGHTS)]
    )
    stats = functional.run(program, DEFAULT, entry=entry).stats
    dw = np.count_nonzero(weights) / weights.size
    dx = stats.nonzero_macs / stats.nonzero_weight_macs
    guess = perf.estimate(program, DEFAULT, entry, weight_density=dw, activation_density=dx)
    assert guess.cycles == pytest.approx(exact.cycles, rel=0.05)
    assert guess.counts.dram_read == pytest.approx(exact.counts.dram_read, rel=0.05)
    for u in guess.units:
        assert u.busy + sum(u.stalls.values()) == guess.cycles


def test_density_out_of_range_is_named():
    program = assemble_file(EXAMPLES[0])
    with pytest.raises(ValueError, match="weight_density must be between 0 and 1, not 1.5"):
        perf.estimate(program, DEFAULT, weight_density=1.5, activation_density=1.0)
