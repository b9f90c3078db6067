"""What weight sparsity and int4 buy on a whole kernel, by the exact performance model.

Run ``python benchmarks/perf_sparsity.py [--config default] [--rows 512 --cols 512 --tile 64]``.
The kernel is a GEMV ``y = W x`` streamed through the weight memory in tiles of ``--tile``
rows, double-buffered (the load stream fetches and decompresses tile ``i + 1`` while the
MAC array multiplies tile ``i``), with random int8 activations. For int8 and int4 weights,
dense and 50 % sparse (unstructured, bitmask format; 2:4 structured, nm2_4 format), it prints
the modeled cycles, the DRAM weight bytes (values + metadata), each against dense int8, the
roofline bound and which unit binds. The issue's targets: 50 % unstructured sparsity at most
0.6x the cycles of dense, and int4 at most 0.52x the weight bytes of int8.
"""

from __future__ import annotations

import argparse

import numpy as np

from edgenpu import formats
from edgenpu.config import load_config
from edgenpu.formats import WeightFormat
from edgenpu.isa import Instruction, Opcode, Program, Segment, Space, encode
from edgenpu.precision import Precision, packed_size
from edgenpu.sim import perf

SEED = 0


def weights(rng, shape, prec: Precision, sparsity: str) -> np.ndarray:
    values = rng.integers(1, prec.max + 1, shape) * rng.choice([-1, 1], shape)
    if sparsity == "50% unstructured":
        values[rng.random(shape) < 0.5] = 0
    elif sparsity == "2:4":
        rank = np.argsort(rng.random((shape[0], shape[1] // 4, 4)), axis=2)
        keep = rank < 2
        values = values * keep.reshape(shape)
    return values


def kernel(rows: int, cols: int, tile: int, prec: Precision, fmt: WeightFormat, w) -> Program:
    """The double-buffered GEMV's program and DRAM image."""
    rng = np.random.default_rng(SEED + 1)
    make = Instruction.make
    x = rng.integers(-128, 128, cols, dtype=np.int8).tobytes()
    segments = [Segment(0, x)]
    code = [make(Opcode.LOAD, space=Space.ACT, sram=0, dram=0, rows=1, len=cols)]
    at = -(-cols // 64) * 64
    streams = []
    for r in range(0, rows, tile):
        stream = formats.encode(w[r : r + tile], fmt, prec)
        segments.append(Segment(at, stream))
        streams.append(at)
        at += -(-len(stream) // 64) * 64
    buffer = packed_size(tile * cols, prec)

    def load(i: int, wait: bool) -> Instruction:
        return make(
            Opcode.LOAD_WGT,
            wgt=(i % 2) * buffer,
            dram=streams[i],
            count=tile * cols,
            format=fmt,
            prec=prec,
            push_next=1,
            pop_next=int(wait),
        )

    tiles = len(streams)
    code += [load(i, False) for i in range(min(2, tiles))]
    for i in range(tiles):
        code.append(
            make(
                Opcode.MATMUL,
                acc=i * tile,
                w=(i % 2) * buffer,
                x=0,
                rows=tile,
                cols=cols,
                n=1,
                prec=prec,
                pop_prev=1,
                push_prev=1,
                push_next=int(i == tiles - 1),
            )
        )
        if i + 2 < tiles:
            code.append(load(i + 2, True))
    code.append(make(Opcode.STORE, space=Space.ACC, sram=0, dram=at, rows=1, len=rows, pop_prev=1))
    code.append(make(Opcode.HALT))
    return Program(tuple(int.from_bytes(encode(i), "little") for i in code), tuple(segments))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--tile", type=int, default=64)
    args = parser.parse_args()
    config = load_config(args.config)
    rng = np.random.default_rng(SEED)
    shape = (args.rows, args.cols)
    cases = [
        (Precision.INT8, WeightFormat.DENSE, "dense"),
        (Precision.INT8, WeightFormat.BITMASK, "50% unstructured"),
        (Precision.INT8, WeightFormat.NM2_4, "2:4"),
        (Precision.INT4, WeightFormat.DENSE, "dense"),
        (Precision.INT4, WeightFormat.BITMASK, "50% unstructured"),
        (Precision.INT4, WeightFormat.NM2_4, "2:4"),
    ]
    print(
        f"config {config.name}: GEMV {args.rows} x {args.cols}, tiles of {args.tile} rows, "
        "double-buffered; exact model"
    )
    header = (
        f"{'weights':<28} {'cycles':>9} {'x dense8':>9} {'wgt bytes':>10} {'x dense8':>9}"
        f"  {'roofline':<26} load util  MAC util"
    )
    print(header)
    base = None
    for prec, fmt, sparsity in cases:
        w = weights(rng, shape, prec, sparsity)
        report = perf.run(kernel(*shape, args.tile, prec, fmt, w), config)
        assert report.halted, report.trap
        c = report.counts
        wbytes = c.dram_read_weights + c.dram_read_metadata
        base = base or (report.cycles, wbytes)
        units = {u.unit: u for u in report.units}
        r = report.roofline
        print(
            f"{prec.label + ' ' + sparsity + ' (' + fmt.label + ')':<28} {report.cycles:>9,} "
            f"{report.cycles / base[0]:>9.3f} {wbytes:>10,} {wbytes / base[1]:>9.3f}  "
            f"{r.binding + f' bound, {r.ratio:.2f}x':<26} "
            f"{units[perf.Unit.LOAD].busy / report.cycles:>8.1%} "
            f"{units[perf.Unit.MAC_ARRAY].busy / report.cycles:>8.1%}"
        )


if __name__ == "__main__":
    main()
