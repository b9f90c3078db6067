"""Compile time of the bundled checkpoints, and how close the chosen formats come to ideal.

Run ``python benchmarks/compile_speed.py [--repeats 3]``. For the ``int4_sparse`` and
``int8`` bundles on the ``default`` and ``tiny`` configs it prints the best-of-N wall time
of :func:`edgenpu.compiler.compile.compile_model` (the goal is 2 s or less; a model that
does not fit a config is timed to its error, which comes after every retry), then for each
weight matrix the chosen format's stream bytes over the ideal bytes (the non-zero values
alone at their precision, no metadata: :func:`edgenpu.formats.ideal_size`) and over dense
int8.
"""

from __future__ import annotations

import argparse

from bundles import bundle_path
from timing import best_time

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.frontends.bundle_frontend import from_bundle
from edgenpu.config import load_config
from edgenpu.errors import CompileError

MODELS = ("int4_sparse", "int8")
CONFIGS = ("default", "tiny")
GOAL_SECONDS = 2.0


def attempt(model, config):
    """The compiled model, or the one-line error when it does not fit."""
    try:
        return compile_model(model, config)
    except CompileError as error:
        return error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the best counts")
    args = parser.parse_args()

    print(f"compile time, best of {args.repeats} (goal <= {GOAL_SECONDS:g} s):")
    print(f"  {'model':<12} {'config':<8} {'seconds':>8}  result")
    results = {}
    for name in MODELS:
        model = from_bundle(load_bundle(bundle_path(name)), source=f"{name}.yaml")
        for config_name in CONFIGS:
            config = load_config(config_name)
            seconds = best_time(lambda m=model, c=config: attempt(m, c), args.repeats)
            out = attempt(model, config)
            results[name, config_name] = out
            if isinstance(out, CompileError):
                what = f"does not fit: {out}"
            else:
                what = (
                    f"{len(out.program.words):,} instructions, {out.dram_bytes:,} B DRAM, "
                    f"chunk {out.qmodel.chunk_frames}"
                )
            flag = "" if seconds <= GOAL_SECONDS else "  (over the goal)"
            print(f"  {name:<12} {config_name:<8} {seconds:8.2f}  {what}{flag}")

    for (name, config_name), out in results.items():
        if isinstance(out, CompileError):
            continue
        print(f"\n{name} on {config_name}: chosen format per weight matrix")
        print(f"  {'weights':<24} {'prec':<5} {'format':<8} {'bytes':>9} {'/ideal':>7} /int8")
        for c in out.choices:
            ideal = c.stream_bytes / c.ideal_bytes
            dense = c.stream_bytes / c.dense_int8_bytes
            print(
                f"  {c.name:<24} {c.precision:<5} {c.format:<8} {c.stream_bytes:>9,} "
                f"{ideal:>7.3f} {dense:>6.3f}"
            )
        total = sum(c.stream_bytes for c in out.choices)
        ideal = sum(c.ideal_bytes for c in out.choices)
        print(f"  {'all':<24} {'':<5} {'':<8} {total:>9,} {total / ideal:>7.3f}")


if __name__ == "__main__":
    main()
