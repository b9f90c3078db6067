"""Training speed of one process against data-parallel workers, on the same cores.

Run ``python benchmarks/data_parallel_speed.py --corpus DIR [--recipe default] [--cores 2]
[--steps 30]``; ``DIR`` is a feature cache built by ``edgenpu asr synth``. For each phase
of the recipe (CTC only, then the transducer with its loss), it trains the recipe's model
from scratch for ``--steps`` steps twice, in the real trainer: one process with ``--cores``
PyTorch threads, then ``--cores`` worker processes with one thread each
(``edgenpu asr train --workers``). It prints seconds per step of each (from the training
log, first step excluded: it includes start-up) and their ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from edgenpu.asr_workloads.recipe import load_recipe
from edgenpu.asr_workloads.training.checkpoint import read_log
from edgenpu.asr_workloads.training.trainer import train


def seconds_per_step(out_dir: Path) -> float:
    """Mean wall time of the logged steps after the first."""
    log = read_log(out_dir)
    first, last = log[0], log[-1]
    return (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    common = {"steps": args.steps, "log_every": 1, "sorted_steps": 0, "warmup_steps": 1}
    phases = {
        "CTC": {"ctc_only_steps": args.steps, "transducer_learning_rate": None},
        "transducer": {"ctc_only_steps": 0, "transducer_learning_rate": None},
    }
    print(
        f"recipe {recipe.name}, batch {recipe.train.batch_size}, "
        f"bfloat16 {recipe.train.bfloat16}, {args.cores} cores"
    )
    for phase, fields in phases.items():
        timed = dataclasses.replace(
            recipe, init=None, train=dataclasses.replace(recipe.train, **common, **fields)
        )
        with tempfile.TemporaryDirectory() as folder:
            one = Path(folder) / "one"
            train(timed, args.corpus, one, threads=args.cores)
            split = Path(folder) / "split"
            train(timed, args.corpus, split, threads=1, workers=args.cores)
            single, parallel = seconds_per_step(one), seconds_per_step(split)
        print(
            f"{phase} step: 1 process x {args.cores} threads {single:.3f} s, "
            f"{args.cores} workers x 1 thread {parallel:.3f} s: "
            f"{single / parallel:.2f}x the steps per second"
        )


if __name__ == "__main__":
    main()
