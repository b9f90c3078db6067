"""Performance model against RTL simulation: the same programs, cycles and wall time, one run.

Run ``python benchmarks/perf_vs_rtl.py [--config tiny] [--random 3 --length 200]``. Each
program (the tiny kernels of ``tests/rtl/kernels`` and ``--random`` race-free random programs
of ``--length`` instructions; ``--examples`` adds ``examples/*.s``, which need a config with
the default's memories; ``--gemv N`` adds the double-buffered N x N int8 GEMV of
``perf_sparsity.py``, dense and 50 % sparse, the size of a real layer) runs once on the RTL
(``edgenpu.sim.rtl_run.run_on_rtl``, Verilator unless ``EDGENPU_SIM`` says otherwise; the
build is cached) and through the performance model (best of ``--repeats``). Printed per
program: both cycle counts (they must be equal), the RTL's wall time for the program itself
(start to halt, no build or start-up), the model's wall time and the ratio, and the model's
simulated cycles per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edgenpu.config import load_config, override
from edgenpu.formats import WeightFormat
from edgenpu.isa import Program
from edgenpu.isa.asm import assemble_file
from edgenpu.precision import Precision
from edgenpu.sim import perf
from edgenpu.sim.random_programs import random_program
from edgenpu.sim.rtl_run import run_on_rtl

ROOT = Path(__file__).resolve().parent.parent


def programs(args, config) -> list[tuple[str, Program]]:
    out = [(p.stem, assemble_file(p)) for p in sorted((ROOT / "tests/rtl/kernels").glob("*.s"))]
    if args.examples:
        out += [(p.stem, assemble_file(p)) for p in sorted((ROOT / "examples").glob("*.s"))]
    if args.gemv:
        from perf_sparsity import kernel, weights  # a sibling script

        n, tile = args.gemv, max(1, config.sram.weight_bytes // (2 * args.gemv))
        for sparsity, fmt in (
            ("dense", WeightFormat.DENSE),
            ("50% unstructured", WeightFormat.BITMASK),
        ):
            w = weights(np.random.default_rng(args.seed), (n, n), Precision.INT8, sparsity)
            out.append((f"gemv{n} {fmt.label}", kernel(n, n, tile, Precision.INT8, fmt, w)))
    rng = np.random.default_rng(args.seed)
    for i in range(args.random):
        out.append((f"random{i}", random_program(rng, config, length=args.length).program))
    return out


def model_seconds(program: Program, config, repeats: int) -> tuple[int, float]:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        report = perf.run(program, config)
        best = min(best, time.perf_counter() - start)
    return report.cycles, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--random", type=int, default=3)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--examples", action="store_true")
    parser.add_argument("--gemv", type=int, default=0, metavar="N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_config(args.config)
    header = f"{'program':<22}{'RTL cyc':>9}{'model cyc':>10}{'RTL s':>9}{'model s':>9}"
    print(f"{config.name}\n{header}{'ratio':>8}{'model cyc/s':>13}")
    ratios = []
    for name, program in programs(args, config):
        print(f"{name}: RTL run ...", file=sys.stderr)
        rtl = run_on_rtl(program, config, name=name)
        # The model on the DRAM the RTL run used (the program behaves the same on both).
        sized = override(config, {"dram.bytes": rtl.dram_bytes})
        cycles, seconds = model_seconds(program, sized, args.repeats)
        ratio = rtl.run_seconds / seconds
        ratios.append(ratio)
        same = "" if cycles == rtl.cycles else "  CYCLES DIFFER"
        print(
            f"{name:<22}{rtl.cycles:>9,}{cycles:>10,}{rtl.run_seconds:>9.3f}{seconds:>9.4f}"
            f"{ratio:>8.0f}{cycles / seconds:>13,.0f}{same}"
        )
    print(f"model / RTL wall-time speed-up: geometric mean {np.exp(np.mean(np.log(ratios))):.0f}x")


if __name__ == "__main__":
    main()
