"""How fast the performance model runs: wall time, simulated cycles per second and
instructions per second, on the example kernels and on long random programs.

Run ``python benchmarks/perf_speed.py [--config default] [--length 2000] [--repeat 3]``.
It prints, per program, the modeled cycles, the best wall time of ``--repeat`` runs of
``edgenpu.sim.perf.run`` (functional execution, unit costs, the event-driven stream model
and the attribution, everything the report holds) and the rates; then, on the long random
program with every unit latency taken from its data, the stream model alone against the
stepped dispatcher rules it is tested against (same cycles, cycle-by-cycle stepping), which
is where the event-driven model's speed comes from. Beside each example, the statistical
mode (``edgenpu.sim.perf.estimate``) at the example's measured densities, and how far its
cycles land from the exact model's.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import deque
from pathlib import Path

import numpy as np

from edgenpu.config import load_config
from edgenpu.isa import Opcode, Stream, SymbolKind, stream_of
from edgenpu.isa.asm import assemble_file
from edgenpu.sim import functional, perf
from edgenpu.sim.benches.npu_ref import bench_config
from edgenpu.sim.perf import dispatch_rules, streams
from edgenpu.sim.perf.run import costs
from edgenpu.sim.random_programs import random_program

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = 0


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - began)
    return best, out


class _InOrder(dict):
    """Per-instruction latencies in the stepped rules' form (read once per issue)."""

    def __init__(self, per_stream: dict[Stream, list[int]]) -> None:
        super().__init__()
        self._queues = {s: deque(v) for s, v in per_stream.items()}

    def __getitem__(self, stream: Stream) -> int:
        return self._queues[stream].popleft()


def report_row(name: str, program, config, entry: int, repeat: int) -> perf.PerfReport:
    machine = functional.load_image(program, config)
    seconds, report = best_of(repeat, lambda: perf.run(program, config, entry, machine))
    n = len(report.instructions)
    print(
        f"{name:<28} {n:>6} instr {report.cycles:>10,} cycles  {seconds * 1e3:9.2f} ms  "
        f"{report.cycles / seconds:>14,.0f} cycles/s  {n / seconds:>10,.0f} instr/s"
    )
    return report


def statistical_row(name: str, program, config, entry: int, exact: perf.PerfReport) -> None:
    """The statistical mode at the program's measured densities (non-zero weights over all
    weight symbols; non-zero activations among the MACs with a non-zero weight)."""
    image = functional.load_image(program, config)
    symbols = program.symbols_of(SymbolKind.WEIGHTS)
    if not symbols:
        return
    weights = np.concatenate([image.read_symbol(s).reshape(-1) for s in symbols])
    stats = functional.run(program, config, entry=entry).stats
    dw = np.count_nonzero(weights) / weights.size
    dx = stats.nonzero_macs / max(1, stats.nonzero_weight_macs)
    began = time.perf_counter()
    guess = perf.estimate(program, config, entry, weight_density=dw, activation_density=dx)
    seconds = time.perf_counter() - began
    print(
        f"{'  statistical':<28} densities w {dw:.3f} x {dx:.3f}: {guess.cycles:>10,} cycles "
        f"({100 * (guess.cycles / exact.cycles - 1):+.2f} % of exact) in {seconds * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=2000, help="random program length")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = load_config(args.config)
    print(f"config {config.name}; best of {args.repeat} runs of edgenpu.sim.perf.run")
    for path in sorted(EXAMPLES.glob("*.s")):
        program = assemble_file(path)
        entries = program.symbols_of(SymbolKind.ENTRY)
        entry = entries[0].addr if entries else 0
        exact = report_row(path.stem, program, config, entry, args.repeat)
        statistical_row(path.stem, program, config, entry, exact)

    small = bench_config(config)
    rng = np.random.default_rng(SEED)
    program = random_program(rng, small, args.length).program
    report_row(f"random, {args.length} generated", program, small, 0, args.repeat)

    plan = functional.dispatch(program, small)
    latencies = [c.done for c in costs(plan, small, functional.load_image(program, small))]
    per_stream: dict[Stream, list[int]] = {s: [] for s in Stream}
    for ins, latency in zip(plan.instructions, latencies, strict=True):
        if ins.opcode is not Opcode.NOP:
            per_stream[stream_of(ins)].append(latency)
    event_s, sched = best_of(
        args.repeat, lambda: streams.schedule(plan.instructions, small, latencies)
    )
    stepped_s, timing = best_of(
        1, lambda: dispatch_rules.timing(plan, small, _InOrder(copy.deepcopy(per_stream)))
    )
    assert timing.cycles == sched.cycles
    n = len(plan.instructions)
    print(
        f"\nstream model alone, {n} instructions, {sched.cycles:,} cycles: event-driven "
        f"{event_s * 1e3:.2f} ms ({sched.cycles / event_s:,.0f} cycles/s, "
        f"{n / event_s:,.0f} instr/s); stepped rules {stepped_s * 1e3:.1f} ms "
        f"({sched.cycles / stepped_s:,.0f} cycles/s): {stepped_s / event_s:.0f}x"
    )


if __name__ == "__main__":
    main()
