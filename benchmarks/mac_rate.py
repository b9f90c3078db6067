"""MAC array cycles against non-zero work: int4 against int8, and zero-skip at each sparsity.

Run ``python benchmarks/mac_rate.py [--config default] [--rows 64 --cols 256 --n 1]``. For
one ``matmul`` (weights ``rows x cols``, ``n`` input vectors) it prints the MAC array's
cycles by the rules of ``docs/microarchitecture.md`` ("MAC array"), which the RTL meets
exactly (``tests/rtl/test_mac_array.py`` and the whole-processor bench check that on random
data of every density), for:

* int8 and int4 weights, dense;
* weights at 75 %, 50 %, 25 % and 10 % density, unstructured and 2:4 structured;
* activations with half of them zero (as after a ReLU), with and without weight sparsity;

each with its non-zero MACs, the cycles an ideal skipper would take (non-zero MACs over the
array's multipliers), the ratio to dense int8 and the lane imbalance (cycles over ideal).
``--lookahead`` lists zero-skip lookahead depths to compare (the config's, by default).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from edgenpu.config import load_config, override
from edgenpu.precision import Precision
from edgenpu.sim.benches.mac_array_ref import PIPELINE_DEPTH, timing

SEED = 0


def weights(
    rng: np.random.Generator, shape: tuple[int, int], prec: Precision, density: float, nm: bool
) -> np.ndarray:
    """Non-zero values uniform over ``prec``; exactly ``density`` of them non-zero, at random
    or (``nm``) two of every aligned four along a row."""
    rows, cols = shape
    values = rng.integers(1, prec.max + 1, shape) * rng.choice([-1, 1], shape)
    if nm:
        rank = np.argsort(np.argsort(rng.random((rows, cols // 4, 4)), axis=2), axis=2)
        present = (rank < 2).reshape(shape)
    else:
        present = np.zeros(rows * cols, dtype=bool)
        present[rng.permutation(rows * cols)[: round(rows * cols * density)]] = True
        present = present.reshape(shape)
    return values * present


def inputs(rng: np.random.Generator, n: int, cols: int, density: float) -> np.ndarray:
    x = rng.integers(1, 128, (n, cols)) * rng.choice([-1, 1], (n, cols))
    return x * (rng.random((n, cols)) < density)


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    cycles: int
    nonzero: int
    ideal: float


def measure(config, rows: int, cols: int, n: int) -> list[Row]:
    rng = np.random.default_rng(SEED)
    multipliers = config.mac.lanes * config.mac.macs_per_lane
    dense_x = inputs(rng, n, cols, 1.0)
    relu_x = inputs(rng, n, cols, 0.5)
    cases = [("int8 dense", Precision.INT8, 1.0, False, dense_x)]
    if Precision.INT4 in config.mac.precisions:
        cases.append(("int4 dense", Precision.INT4, 1.0, False, dense_x))
    for prec in config.mac.precisions:
        for density in (0.75, 0.5, 0.25, 0.1):
            cases.append((f"{prec.label} {density:.0%} random", prec, density, False, dense_x))
        cases.append((f"{prec.label} 2:4", prec, 0.5, True, dense_x))
    cases.append(("int8 dense, x 50% zero", Precision.INT8, 1.0, False, relu_x))
    cases.append(("int8 50% random, x 50% zero", Precision.INT8, 0.5, False, relu_x))
    out = []
    for label, prec, density, nm, x in cases:
        w = weights(rng, (rows, cols), prec, density, nm)
        t = timing(w, x, prec, config)
        nonzero = int(((w != 0).astype(np.int64) @ (x != 0).T.astype(np.int64)).sum())
        rate = multipliers * (8 // prec.bits)
        out.append(Row(label, t.windows + PIPELINE_DEPTH, nonzero, nonzero / rate))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--cols", type=int, default=256)
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--lookahead", type=int, nargs="*", default=[])
    args = parser.parse_args()
    base = load_config(args.config)
    for lookahead in args.lookahead or [base.zero_skip.lookahead]:
        config = override(base, {"zero_skip.lookahead": lookahead})
        print(
            f"\n{config.name}: {config.mac.lanes} lanes x {config.mac.macs_per_lane} MACs, "
            f"lookahead {lookahead}; matmul {args.rows}x{args.cols}, n={args.n} "
            f"(cycles include the {PIPELINE_DEPTH}-cycle pipeline)"
        )
        rows = measure(config, args.rows, args.cols, args.n)
        base_cycles = rows[0].cycles
        print(
            f"{'case':<30}{'cycles':>8}{'vs int8':>9}{'non-zero MACs':>15}{'ideal':>8}{'imbal.':>8}"
        )
        for r in rows:
            print(
                f"{r.label:<30}{r.cycles:>8}{r.cycles / base_cycles:>9.2f}{r.nonzero:>15}"
                f"{r.ideal:>8.1f}{(r.cycles - PIPELINE_DEPTH) / max(r.ideal, 1):>8.2f}"
            )


if __name__ == "__main__":
    main()
