"""What the DMA units must do: random ``load``/``store`` instructions, their effect (from the
functional simulator) and their cycles (:func:`timing`, the rules of
``docs/microarchitecture.md``, "DMA", in executable form).

No cocotb imports, so the Amaranth-level tests use it as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgenpu import formats
from edgenpu.config import HardwareConfig
from edgenpu.isa import DRAM_ADDR_BITS, Instruction, Opcode, Space
from edgenpu.isa.access import check
from edgenpu.sim.benches import decompressor_ref
from edgenpu.sim.functional import ExecStats, Machine, execute

__all__ = [
    "Timing",
    "WeightLoad",
    "make_weight_loads",
    "beats",
    "bench_config",
    "make_instructions",
    "reference",
    "timing",
]

#: The DRAM of the benches: small, so that the host port fills and drains it quickly.
BENCH_DRAM_BYTES = 1 << 16


def bench_config(config: HardwareConfig) -> HardwareConfig:
    """``config`` with a :data:`BENCH_DRAM_BYTES` DRAM (the RTL DRAM holds it all)."""
    return dataclasses.replace(
        config,
        dram=dataclasses.replace(config.dram, bytes=min(config.dram.bytes, BENCH_DRAM_BYTES)),
    )


def beats(ins: Instruction, beat_bytes: int) -> list[tuple[int, int]]:
    """The DRAM beats a ``load`` or ``store`` touches, in order: ``(row, beat address)``.

    Row ``r`` spans DRAM bytes ``[s, s + n)``, ``s = dram + r * stride`` (mod ``2**32``),
    ``n = len * unit_bytes``, hence beats ``s // B .. (s + n - 1) // B``: the ``B``-aligned
    words it touches, whatever its alignment.
    """
    rows, n = ins["rows"], ins["len"] * ins["space"].unit_bytes
    if not rows or not n:
        return []
    out = []
    for r in range(rows):
        s = (ins["dram"] + r * ins["stride"]) % (1 << DRAM_ADDR_BITS)
        out += [(r, a) for a in range(s // beat_bytes, (s + n - 1) // beat_bytes + 1)]
    return out


@dataclass(frozen=True)
class Timing:
    """Cycles from the command's transfer (cycle 0), with the DRAM channels always ready and
    ``done`` always taken.

    ``requests``: each DRAM read request (load) or on-chip read (store). ``writes``: each
    on-chip write (load) or DRAM write (store), one per beat. ``done``: the ``done``
    transfer; the unit takes its next command in cycle ``done + 1`` at the earliest.
    """

    requests: tuple[int, ...]
    writes: tuple[int, ...]
    done: int


def weight_start(ins: Instruction, beat_bytes: int, latency: int) -> int:
    """Rule W2: the cycle the decompressor takes a ``load_wgt``'s command, ``S = 2 + L``,
    plus one when ``dram`` is not beat-aligned (the aligner needs the second beat too)."""
    return 2 + latency + (ins["dram"] % beat_bytes != 0)


def timing(
    ins: Instruction,
    beat_bytes: int,
    latency: int,
    *,
    block_sizes: tuple[int, ...] | None = None,
    output_elements: int | None = None,
) -> Timing:
    """The DMA timing rules (``docs/microarchitecture.md``, "DMA"), for ``load``/``store``
    and, given the stream's ``block_sizes`` and the decompressor's ``output_elements``,
    ``load_wgt`` (whose ``requests`` are left empty: they depend on the FIFO's credits).

    With ``R`` = ``len(beats(ins, B))``: beat ``k`` is requested (load: DRAM read; store:
    on-chip read) in cycle ``1 + k``. Load: its data arrives and is written on chip in
    cycle ``1 + k + L``; ``done`` in cycle ``R + L + 1``. Store: its DRAM write is in cycle
    ``2 + k``; ``done`` in cycle ``R + 2``. With ``R = 0``, ``done`` is in cycle 1.
    """
    if ins.opcode is Opcode.LOAD_WGT:
        if not ins["count"]:
            return Timing((), (), 1)
        start = weight_start(ins, beat_bytes, latency)
        dec = decompressor_ref.timing(block_sizes, ins["count"], beat_bytes, output_elements)
        return Timing((), tuple(start + c for c in dec.writes), start + dec.done)
    R = len(beats(ins, beat_bytes))
    requests = tuple(1 + k for k in range(R))
    if not R:
        return Timing((), (), 1)
    if ins.opcode is Opcode.LOAD:
        return Timing(requests, tuple(1 + k + latency for k in range(R)), R + latency + 1)
    if ins.opcode is Opcode.STORE:
        return Timing(requests, tuple(2 + k for k in range(R)), R + 2)
    raise ValueError(f"timing covers load and store, not {ins.opcode.label}")


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
