"""What the DMA units must do: random ``load``/``store`` instructions, their effect (from the
functional simulator) and their cycles (:func:`timing`, the rules of
``docs/microarchitecture.md``, "DMA", in executable form, defined once in
:mod:`edgenpu.sim.perf.dma_rules`).

No cocotb imports, so the Amaranth-level tests use it as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgenpu import formats
from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode, Space
from edgenpu.isa.access import check
from edgenpu.sim.benches import decompressor_ref
from edgenpu.sim.functional import ExecStats, Machine, execute
from edgenpu.sim.perf.dma_rules import Timing, beats, timing, weight_start

__all__ = [
    "Timing",
    "WeightLoad",
    "make_weight_loads",
    "beats",
    "bench_config",
    "make_instructions",
    "reference",
    "timing",
    "weight_start",
]

#: The DRAM of the benches: small, so that the host port fills and drains it quickly.
BENCH_DRAM_BYTES = 1 << 16


def bench_config(config: HardwareConfig) -> HardwareConfig:
    """``config`` with a :data:`BENCH_DRAM_BYTES` DRAM (the RTL DRAM holds it all)."""
    return dataclasses.replace(
        config,
        dram=dataclasses.replace(config.dram, bytes=min(config.dram.bytes, BENCH_DRAM_BYTES)),
    )


def reference(ins: Instruction, machine: Machine) -> None:
    """Apply ``ins`` to ``machine`` with the functional simulator (the oracle)."""
    execute(ins, machine, ExecStats())


def _one(
    config: HardwareConfig, rng: np.random.Generator, opcode: Opcode, space: Space, shape: str
) -> Instruction:
    unit = space.unit_bytes
    size = config.sram_size(space)
    dram_bytes = config.dram.bytes
    B = config.dram.bandwidth_bytes_per_cycle
    for _ in range(1000):
        if shape == "empty":
            rows, length = (0, int(rng.integers(0, 9))) if rng.random() < 0.5 else (3, 0)
        elif shape == "long":
            rows, length = 1, int(rng.integers(1, min(size, 40 * B // unit + 7)))
        else:
            rows = int(rng.integers(1, 9))
            length = int(rng.integers(1, max(2, min(size // rows, 3 * B // unit + 5))))
        n = length * unit
        if shape == "overlap":
            stride = int(rng.integers(0, max(1, n)))
        elif shape == "tight":
            stride = n
        else:
            stride = n + int(rng.integers(0, 3 * B))
        span = (rows - 1) * stride + n if rows and n else 0
        if span > dram_bytes or rows * length > size:
            continue
        # Near the ends of the memories now and then; any alignment.
        if rng.random() < 0.2:
            dram = dram_bytes - span - int(rng.integers(0, min(4, dram_bytes - span) + 1))
        else:
            dram = int(rng.integers(0, dram_bytes - span + 1))
        if rng.random() < 0.2:
            sram = size - rows * length
        else:
            sram = int(rng.integers(0, size - rows * length + 1))
        ins = Instruction.make(
            opcode, space=space, sram=sram, dram=max(dram, 0), rows=rows, len=length, stride=stride
        )
        if check(ins, config) is None:
            return ins
    raise AssertionError(f"no legal {opcode.label} of shape {shape} for {space.label}")


def make_instructions(
    config: HardwareConfig, rng: np.random.Generator, n_random: int
) -> list[Instruction]:
    """Every space and shape (empty, long single row, strided, tight, overlapping rows) for
    both opcodes, then ``n_random`` random ones, interleaved at random."""
    shapes = ("empty", "long", "strided", "tight", "overlap")
    out = [
        _one(config, rng, op, space, shape)
        for op in (Opcode.LOAD, Opcode.STORE)
        for space in Space
        for shape in shapes
    ]
    for _ in range(n_random):
        op = Opcode.LOAD if rng.random() < 0.5 else Opcode.STORE
        shape = shapes[int(rng.integers(1, len(shapes)))]
        out.append(_one(config, rng, op, Space(int(rng.integers(0, 4))), shape))
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class WeightLoad:
    """A ``load_wgt`` with the stream to place at its ``dram`` address first."""

    ins: Instruction
    stream: bytes
    block_sizes: tuple[int, ...]


def make_weight_loads(
    config: HardwareConfig, rng: np.random.Generator, n_random: int
) -> list[WeightLoad]:
    """Every format and precision the config supports at a few counts (empty, partial
    blocks, several blocks), streams made by the encoder and arbitrary ones, at any DRAM and
    WGT alignment; then ``n_random`` random ones."""
    combos = [(f, p) for f in config.decompressor.formats for p in config.mac.precisions]
    todo = [(f, p, c) for f, p in combos for c in (0, 1, 33, 97, 160)]
    todo += [
        (*combos[int(rng.integers(0, len(combos)))], int(rng.integers(1, 300)))
        for _ in range(n_random)
    ]
    out = []
    for fmt, prec, count in todo:
        case = decompressor_ref.make_case(
            config, fmt, prec, count, rng, density=float(rng.random()), canonical=rng.random() < 0.7
        )
        stream = case.supply[: case.consumed]
        bound = formats.max_encoded_size(count, fmt, prec)
        dram = int(rng.integers(0, config.dram.bytes - bound + 1))
        ins = Instruction.make(
            Opcode.LOAD_WGT, wgt=case.addr, dram=dram, count=count, format=fmt, prec=prec
        )
        assert check(ins, config) is None, ins
        out.append(WeightLoad(ins, stream, tuple(int(b) for b in case.block_sizes)))
    return out
