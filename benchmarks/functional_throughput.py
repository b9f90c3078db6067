"""Functional-simulator throughput on a 1024x1024 int8 GEMV and a batched GEMM.

Run ``python benchmarks/functional_throughput.py``. The program streams the 1024x1024
weights in double-buffered tiles of 128 rows, multiplies, requantizes and stores; the
simulator's MACs per second of wall time are printed for the whole program (decompression
and DMA included). Times are the best of several runs in this process, so they compare like
with like on a shared machine; they are not targets.
"""

from __future__ import annotations

import numpy as np
from timing import best_time

from edgenpu.config import load_config
from edgenpu.formats import WeightFormat, encode
from edgenpu.isa import Instruction, Opcode, OperandKind, Program, Segment, Space
from edgenpu.precision import Precision
from edgenpu.sim.functional import run

ROWS = COLS = 1024
#: Rows per weight tile: two tiles (double buffering) fill the default weight SRAM.
TILE_ROWS = 128
REPEATS = 5


def gemm_program(n: int, fmt: WeightFormat, sparsity: float) -> Program:
    """Tiled, double-buffered y = W x for ``n`` vectors, requantized to int8 and stored."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (ROWS, COLS))
    w[rng.random(w.shape) < sparsity] = 0
    x = rng.integers(-128, 128, (n, COLS)).astype(np.int8)
    make = Instruction.make
    segments, dram = [], 0
    code = [make(Opcode.LOAD, space=Space.ACT, sram=0, dram=1 << 23, rows=1, len=n * COLS)]
    segments.append(Segment(1 << 23, x.tobytes()))
    tiles = ROWS // TILE_ROWS
    for t in range(tiles):
        stream = encode(w[t * TILE_ROWS : (t + 1) * TILE_ROWS], fmt, Precision.INT8)
        segments.append(Segment(dram, stream))
        buffer = (t % 2) * TILE_ROWS * COLS
        # A tile may only overwrite a buffer once the matmul two tiles back has read it.
        code.append(
            make(
                Opcode.LOAD_WGT,
                wgt=buffer,
                dram=dram,
                count=TILE_ROWS * COLS,
                format=fmt,
                prec=Precision.INT8,
                push_next=1,
                pop_next=int(t >= 2),
            )
        )
        dram += -(-len(stream) // 64) * 64
        if t >= 1:
            code.append(_tile_matmul(t - 1, n))
    code.append(_tile_matmul(tiles - 1, n, last=True))
    code += [
        make(
            Opcode.VCOPY,
            d_kind=OperandKind.ACT_I8,
            d_addr=65536,
            a_kind=OperandKind.ACC_I32,
            a_addr=0,
            len=ROWS * n,
            shift=10,
            push_next=1,
        ),
        make(
            Opcode.STORE,
            space=Space.ACT,
            sram=65536,
            dram=3 << 23,
            rows=1,
            len=ROWS * n,
            pop_prev=1,
        ),
        make(Opcode.HALT),
    ]
    return Program.from_instructions(code, tuple(segments))


def _tile_matmul(t: int, n: int, last: bool = False) -> Instruction:
    return Instruction.make(
        Opcode.MATMUL,
        acc=t * TILE_ROWS,
        w=(t % 2) * TILE_ROWS * COLS,
        x=0,
        rows=TILE_ROWS,
        cols=COLS,
        n=n,
        x_stride=COLS,
        acc_stride=ROWS,
        pop_prev=1,
        push_prev=int(not last),
    )


def main() -> None:
    config = load_config("default")
    print(f"functional simulator, {ROWS}x{COLS} int8 weights, best of {REPEATS}")
    print(f"{'kernel':28} {'MACs':>12} {'wall ms':>9} {'MACs/s':>10}")
    for n, fmt, sparsity in [
        (1, WeightFormat.DENSE, 0.0),
        (1, WeightFormat.BITMASK, 0.5),
        (16, WeightFormat.DENSE, 0.0),
        (16, WeightFormat.BITMASK, 0.5),
    ]:
        program = gemm_program(n, fmt, sparsity)
        result = run(program, config)
        assert result.halted, result.trap
        macs = result.stats.macs
        wall = best_time(lambda p=program: run(p, config), REPEATS)
        label = f"n={n} {fmt.label} {sparsity:.0%} sparse"
        print(f"{label:28} {macs:>12,} {wall * 1e3:>9.1f} {macs / wall:>10.3g}")


if __name__ == "__main__":
    main()
